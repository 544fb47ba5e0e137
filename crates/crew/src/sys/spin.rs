//! A short, bounded, adaptive busy wait before a thread blocks on a socket.
//!
//! **Why.** A round trip over a socket pair between two processes that both sleep costs two
//! thread wake-ups (the worker's for the call, the caller's for the reply), each several
//! microseconds of scheduler latency, more than the work of a small task. A thread that expects
//! its data within a few microseconds polls for it with non-blocking reads for a little while
//! first, and blocks only when it does not come: when both ends do so, a small task's round trip
//! wakes nobody.
//!
//! **Bounded.** A spin lasts at most [`Spin::BUDGET`] (tens of microseconds, short against the
//! wake-up it saves when it wins and against a scheduler tick when it loses), and adapts: after
//! [`Spin::GIVE_UP`] spins in a row that found nothing (the other side is slow: long tasks, an
//! idle pool, a loaded machine), it stops spinning, and tries again once every
//! [`Spin::PROBE_EVERY`] waits, or as soon as a blocking wait turns out to have been short
//! (the data came within the budget after all). So a thread waiting on long work burns at most
//! one budget per [`Spin::PROBE_EVERY`] waits.
//!
//! **Off switch.** `CREW_SPIN=0` in the environment (read once per process; workers inherit
//! it) turns spinning off: every wait blocks at once, as before spinning existed. For a machine
//! so oversubscribed that even short spins cost more than they save, and to measure the
//! difference in one build.
//!
//! Used by the process pool's callers and workers (see the pool's note); anything that reads a
//! reply off a socket it expects soon (a process actor's caller) can use it the same way,
//! through [`FrameReader::read_spinning`](crate::task::codec::FrameReader::read_spinning).

use std::time::{Duration, Instant};

/// The adaptive state of one waiting side (keep one per socket and side).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Spin {
    /// Spins in a row that found nothing.
    misses: u32,
    /// Waits since spinning was given up.
    skipped: u32,
}

/// How one [`Spin::wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spun {
    /// `ready` said yes within the budget.
    Ready,
    /// It did not, or spinning is off for now: block.
    Block,
}

impl Spin {
    /// The longest a spin lasts.
    pub(crate) const BUDGET: Duration = Duration::from_micros(25);
    /// Spins in a row that find nothing before spinning stops.
    pub(crate) const GIVE_UP: u32 = 3;
    /// Once spinning stopped, one wait in this many spins again.
    pub(crate) const PROBE_EVERY: u32 = 64;

    /// Calls `ready` (a non-blocking attempt: `true` when it got what it waits for) until it
    /// succeeds or the budget is spent. Returns [`Spun::Block`] at once while spinning is off.
    pub(crate) fn wait(&mut self, mut ready: impl FnMut() -> bool) -> Spun {
        if !enabled() {
            return Spun::Block;
        }
        if self.misses >= Self::GIVE_UP {
            self.skipped += 1;
            if self.skipped < Self::PROBE_EVERY {
                return Spun::Block;
            }
            self.skipped = 0;
        }
        let start = Instant::now();
        loop {
            if ready() {
                self.misses = 0;
                self.skipped = 0;
                return Spun::Ready;
            }
            if start.elapsed() >= Self::BUDGET {
                self.misses = self.misses.saturating_add(1);
                return Spun::Block;
            }
            std::hint::spin_loop();
        }
    }

    /// After a blocking wait that followed [`Spun::Block`]: a wait that was short (the data
    /// came within twice the budget of the spin's start) turns spinning back on.
    pub(crate) fn blocked_for(&mut self, waited: Duration) {
        if waited <= Self::BUDGET * 2 {
            self.misses = 0;
            self.skipped = 0;
        }
    }
}

/// Whether spinning is on in this process (`CREW_SPIN=0` turns it off).
fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("CREW_SPIN").is_none_or(|value| value != "0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_until_ready_then_gives_up_and_probes() {
        let mut spin = Spin::default();
        let mut tries = 0;
        assert_eq!(
            spin.wait(|| {
                tries += 1;
                tries == 3
            }),
            Spun::Ready
        );
        assert_eq!(tries, 3);
        // Never ready: each spin lasts about the budget, then spinning stops.
        for _ in 0..Spin::GIVE_UP {
            let start = Instant::now();
            assert_eq!(spin.wait(|| false), Spun::Block);
            assert!(start.elapsed() >= Spin::BUDGET);
        }
        let mut called = 0;
        for _ in 0..Spin::PROBE_EVERY - 1 {
            assert_eq!(
                spin.wait(|| {
                    called += 1;
                    true
                }),
                Spun::Block
            );
        }
        assert_eq!(called, 0, "off: no attempt at all");
        // The probe spins again, and a hit turns spinning back on.
        assert_eq!(spin.wait(|| true), Spun::Ready);
        assert_eq!(spin.wait(|| true), Spun::Ready);
    }

    #[test]
    fn a_short_blocking_wait_turns_spinning_back_on() {
        let mut spin = Spin::default();
        for _ in 0..Spin::GIVE_UP {
            spin.wait(|| false);
        }
        spin.blocked_for(Duration::from_secs(1));
        assert_eq!(spin.wait(|| true), Spun::Block, "a long wait leaves it off");
        spin.blocked_for(Duration::from_micros(1));
        assert_eq!(spin.wait(|| true), Spun::Ready);
    }
}
