//! A short, bounded, adaptive busy wait before a thread blocks on a socket.
//!
//! **Why.** A round trip over a socket pair between two processes that both sleep costs two
//! thread wake-ups (the worker's for the call, the caller's for the reply), each several
//! microseconds of scheduler latency, more than the work of a small task. A thread that expects
//! its data within a few microseconds polls for it with non-blocking reads for a little while
//! first, and blocks only when it does not come: when both ends do so, a small task's round trip
//! wakes nobody.
//!
//! **Bounded.** A spin lasts at most [`Spin::BUDGET`] (a few tens of microseconds, short against the
//! wake-up it saves when it wins and against a scheduler tick when it loses), and adapts: after
//! [`Spin::GIVE_UP`] spins in a row that found nothing (the other side is slow: long tasks, an
//! idle pool, a loaded machine), it stops spinning, and tries again once every
//! [`Spin::PROBE_EVERY`] waits, or as soon as a blocking wait turns out to have been short
//! (the data came within the budget after all). So a thread waiting on long work burns at most
//! one budget per [`Spin::PROBE_EVERY`] waits.
//!
//! **Oversubscribed machines.** Where more threads want to run than there are cores, a
//! spinning thread takes the CPU from the very thread it waits for, and a thread that spins
//! instead of sleeping loses the scheduler's wake-up preference: both ends spinning can then
//! be several times slower than both sleeping. A spin that sees a long gap between two of its
//! looks ([`Spin::PREEMPTED`]: it lost its CPU) counts as a miss even when it found its data,
//! so spinning turns itself off there.
//!
//! **Knob.** `CREW_SPIN=N` in the environment (microseconds, read once per process; workers
//! inherit it) sets the budget; `CREW_SPIN=0` turns spinning off: every wait blocks at once,
//! as before spinning existed.
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
    /// The longest a spin lasts, unless `CREW_SPIN` says otherwise.
    pub(crate) const BUDGET: Duration = Duration::from_micros(8);
    /// A gap this long between two looks means the spinning thread was preempted.
    pub(crate) const PREEMPTED: Duration = Duration::from_micros(8);
    /// Spins in a row that find nothing before spinning stops.
    pub(crate) const GIVE_UP: u32 = 3;
    /// Once spinning stopped, one wait in this many spins again.
    pub(crate) const PROBE_EVERY: u32 = 64;

    /// Calls `ready` (a non-blocking attempt: `true` when it got what it waits for) until it
    /// succeeds or the budget is spent. Returns [`Spun::Block`] at once while spinning is off.
    pub(crate) fn wait(&mut self, ready: impl FnMut() -> bool) -> Spun {
        let budget = budget();
        if budget.is_zero() || !self.spins_now() {
            return Spun::Block;
        }
        self.spin(budget, ready)
    }

    /// Whether this wait spins: yes unless spinning is off, and then once in
    /// [`PROBE_EVERY`](Self::PROBE_EVERY) waits.
    fn spins_now(&mut self) -> bool {
        if self.misses < Self::GIVE_UP {
            return true;
        }
        self.skipped += 1;
        if self.skipped < Self::PROBE_EVERY {
            return false;
        }
        self.skipped = 0;
        true
    }

    /// Counts one spin: a hit without preemption turns spinning (back) on.
    fn record(&mut self, hit: bool, preempted: bool) {
        if hit && !preempted {
            self.misses = 0;
            self.skipped = 0;
        } else {
            self.misses = self.misses.saturating_add(1);
        }
    }

    fn spin(&mut self, budget: Duration, mut ready: impl FnMut() -> bool) -> Spun {
        let start = Instant::now();
        let mut last = start;
        let mut preempted = false;
        loop {
            let got = ready();
            let now = Instant::now();
            // A long gap between two looks: this thread lost its CPU while spinning. The
            // machine is oversubscribed, and there a spinning thread takes the CPU from the
            // very thread it waits for, which (not sleeping) also loses its wake-up boost.
            preempted |= now - last > Self::PREEMPTED;
            last = now;
            if got {
                self.record(true, preempted);
                return Spun::Ready;
            }
            if now - start >= budget {
                self.record(false, preempted);
                return Spun::Block;
            }
            std::hint::spin_loop();
        }
    }

    /// After a blocking wait that followed [`Spun::Block`]: a wait that was short (the data
    /// came within twice the budget of the spin's start) turns spinning back on.
    pub(crate) fn blocked_for(&mut self, waited: Duration) {
        if waited <= budget() * 2 {
            self.misses = 0;
            self.skipped = 0;
        }
    }
}

/// The spin budget of this process: `CREW_SPIN` in microseconds (0 turns spinning off), else
/// [`Spin::BUDGET`]. Read once.
fn budget() -> Duration {
    static BUDGET: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var("CREW_SPIN")
            .ok()
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map_or(Spin::BUDGET, |micros| {
                Duration::from_micros(micros.min(1000))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_until_ready_or_the_budget_is_spent() {
        let budget = Duration::from_micros(50);
        let mut tries = 0;
        let spun = Spin::default().spin(budget, || {
            tries += 1;
            tries == 3
        });
        assert_eq!((spun, tries), (Spun::Ready, 3));
        let start = Instant::now();
        assert_eq!(Spin::default().spin(budget, || false), Spun::Block);
        assert!(start.elapsed() >= budget);
    }

    #[test]
    fn misses_turn_spinning_off_then_it_probes() {
        let mut spin = Spin::default();
        for _ in 0..Spin::GIVE_UP {
            assert!(spin.spins_now());
            spin.record(false, false);
        }
        for _ in 0..Spin::PROBE_EVERY - 1 {
            assert!(!spin.spins_now(), "off");
        }
        assert!(spin.spins_now(), "the probe");
        spin.record(true, false);
        assert!(spin.spins_now(), "a hit turns it back on");
    }

    #[test]
    fn preempted_hits_count_as_misses() {
        let mut spin = Spin::default();
        for _ in 0..Spin::GIVE_UP {
            spin.record(true, true);
        }
        assert!(!spin.spins_now());
    }

    #[test]
    fn a_short_blocking_wait_turns_spinning_back_on() {
        let mut spin = Spin::default();
        for _ in 0..Spin::GIVE_UP {
            spin.record(false, false);
        }
        spin.blocked_for(Duration::from_secs(1));
        assert!(!spin.spins_now(), "a long wait leaves it off");
        spin.blocked_for(Duration::ZERO);
        assert!(spin.spins_now());
    }
}
