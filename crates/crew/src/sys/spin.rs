//! A short, bounded, adaptive spin before a thread blocks: on a socket (a process worker
//! waiting for its next call, a caller reading its reply), on a [`TaskHandle`] (a blocked
//! caller), on an empty mailbox (a thread actor). One mechanism for every such wait.
//!
//! # Design note
//!
//! **Why.** A thread that blocks and is woken pays two system calls and a trip through the
//! scheduler (on a VM, an inter-processor interrupt): several microseconds, which is most of a
//! small task's or a small actor method's round trip. When the other side answers within
//! microseconds (a small task's reply, the next call of a busy caller), looking for it a
//! little while first means nobody sleeps and nobody has to be woken.
//!
//! **Bounded and adaptive.** A spin lasts at most the thread's *budget*, between [`MIN_SPIN`]
//! and the process's maximum (`CREW_SPIN`, below). A spin that caught its condition keeps its
//! budget (or raises it to twice what it needed); one that ran out blocks, and when the thread
//! is woken, a wait that turned out short (within the maximum, counting the wake-up) doubles
//! the budget (a longer spin would have caught it), a longer one halves it. So a busy
//! ping-pong converges on spinning and an idle or slow partner (long tasks, an idle pool or
//! actor) on [`MIN_SPIN`]: after a burst the waste is a geometric series of halving budgets.
//! Each waiting side keeps its own `Spin` (one per socket and side, an actor thread its own,
//! blocked callers one per thread), so nothing here is shared or synchronized.
//!
//! **Oversubscribed machines.** Where more threads want to run than there are cores, a
//! spinning thread takes the CPU from the very thread it waits for (and, not sleeping, loses
//! the scheduler's wake-up preference): measured here, spinning on a loaded 2-core machine made
//! round trips up to 2× slower than blocking at once. So a spin that saw a long gap between two
//! of its looks (it lost its CPU: [`PREEMPTED`]) stops at once, halves the budget and turns
//! spinning off for the next [`OFF_AFTER_PREEMPTION`] waits (then one wait probes again).
//! (Yielding the CPU between looks, tried first, kept a thread actor's blocking p50 near 7 µs;
//! the pure spin reaches 1–2 µs on a quiet machine.)
//!
//! **Knob.** `CREW_SPIN=N` in the environment (microseconds, read once per process; process
//! workers inherit it) sets the maximum budget; `CREW_SPIN=0` turns spinning off: every wait
//! blocks at once, as before spinning existed.
//!
//! [`TaskHandle`]: crate::task::TaskHandle

use std::time::{Duration, Instant};

/// The default maximum spin, unless `CREW_SPIN` says otherwise: above a wake-up's cost on a
/// loaded VM, far below a time slice.
pub(crate) const MAX_SPIN: Duration = Duration::from_micros(20);
/// The shortest spin: what an idle partner costs per wait.
pub(crate) const MIN_SPIN: Duration = Duration::from_nanos(500);
/// A gap this long between two looks means the spinning thread lost its CPU.
pub(crate) const PREEMPTED: Duration = Duration::from_micros(8);
/// Waits that block at once after a spin lost its CPU (then one spins again, to probe).
pub(crate) const OFF_AFTER_PREEMPTION: u32 = 64;
/// Spin-loop hints between two looks. A look may be a system call (a non-blocking read), so
/// the clock is read at every look, not every few.
const PAUSES: u32 = 16;

/// One waiting side's spin budget (see the module's note).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spin {
    /// Nanoseconds.
    budget: u32,
    /// Waits left that block at once: a spin lost its CPU, the machine is oversubscribed.
    off_for: u32,
}

impl Default for Spin {
    fn default() -> Self {
        Spin {
            budget: nanos(max_spin()),
            off_for: 0,
        }
    }
}

/// What a [`Spin::spin_until`] that ran out hands to [`Spin::woken`] once the blocking wait
/// is over.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub(crate) struct Missed {
    since: Instant,
}

impl Spin {
    /// The current budget.
    #[cfg(test)]
    fn budget(&self) -> Duration {
        Duration::from_nanos(u64::from(self.budget))
    }

    /// Calls `ready` (a cheap, non-blocking look: `true` when what the thread waits for is
    /// there) until it says yes or the budget is spent: `Ok` when ready (at once if it already
    /// was), `Err` when the caller should block and then report [`woken`](Self::woken).
    pub(crate) fn spin_until(&mut self, mut ready: impl FnMut() -> bool) -> Result<(), Missed> {
        if ready() {
            return Ok(());
        }
        let since = Instant::now();
        let max = max_spin();
        if max.is_zero() {
            return Err(Missed { since });
        }
        if self.off_for > 0 {
            self.off_for -= 1;
            return Err(Missed { since });
        }
        let budget = Duration::from_nanos(u64::from(self.budget)).min(max);
        let mut last = since;
        loop {
            for _ in 0..PAUSES {
                std::hint::spin_loop();
            }
            let got = ready();
            let now = Instant::now();
            if now - last > PREEMPTED {
                self.preempted();
                return if got { Ok(()) } else { Err(Missed { since }) };
            }
            last = now;
            if got {
                self.caught(now - since, max);
                return Ok(());
            }
            if now - since >= budget {
                return Err(Missed { since });
            }
        }
    }

    /// The thread blocked after `missed` and was woken: adapt the budget to how long the wait
    /// really was.
    pub(crate) fn woken(&mut self, missed: Missed) {
        self.blocked_for(missed.since.elapsed(), max_spin());
    }

    /// A spin saw its condition after `waited`.
    fn caught(&mut self, waited: Duration, max: Duration) {
        self.budget = self.budget.max(nanos(waited * 2)).min(nanos(max));
    }

    /// A spin ran out and the wait, counting the block, took `waited`.
    fn blocked_for(&mut self, waited: Duration, max: Duration) {
        if waited <= max {
            self.budget = self.budget.saturating_mul(2).min(nanos(max));
        } else {
            self.halve();
        }
    }

    /// The spin lost its CPU: stop spinning for a while ([`OFF_AFTER_PREEMPTION`] waits).
    fn preempted(&mut self) {
        self.halve();
        self.off_for = OFF_AFTER_PREEMPTION;
    }

    fn halve(&mut self) {
        self.budget = (self.budget / 2).max(nanos(MIN_SPIN));
    }
}

fn nanos(duration: Duration) -> u32 {
    u32::try_from(duration.as_nanos()).unwrap_or(u32::MAX)
}

/// The maximum spin of this process: `CREW_SPIN` in microseconds (0 turns spinning off), else
/// [`MAX_SPIN`]. Read once.
fn max_spin() -> Duration {
    static MAX: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("CREW_SPIN")
            .ok()
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map_or(MAX_SPIN, |micros| Duration::from_micros(micros.min(1000)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(20);

    fn with_budget(budget: Duration) -> Spin {
        Spin {
            budget: nanos(budget),
            off_for: 0,
        }
    }

    #[test]
    fn a_long_wait_halves_the_budget_down_to_the_floor() {
        let mut spin = with_budget(MAX);
        spin.blocked_for(Duration::from_millis(1), MAX);
        assert_eq!(spin.budget(), MAX / 2);
        for _ in 0..64 {
            spin.blocked_for(Duration::from_millis(1), MAX);
        }
        assert_eq!(spin.budget(), MIN_SPIN);
    }

    #[test]
    fn a_short_wait_after_a_block_doubles_the_budget_up_to_the_cap() {
        let mut spin = with_budget(MIN_SPIN);
        spin.blocked_for(Duration::from_micros(5), MAX);
        assert_eq!(spin.budget(), 2 * MIN_SPIN);
        for _ in 0..64 {
            spin.blocked_for(Duration::from_micros(5), MAX);
        }
        assert_eq!(spin.budget(), MAX);
    }

    #[test]
    fn a_preempted_spin_turns_spinning_off_for_a_while() {
        let mut spin = with_budget(MAX);
        spin.preempted();
        assert_eq!(spin.budget(), MAX / 2);
        if max_spin().is_zero() {
            return;
        }
        for _ in 0..OFF_AFTER_PREEMPTION {
            let mut looked = 0;
            assert!(spin
                .spin_until(|| {
                    looked += 1;
                    false
                })
                .is_err());
            assert_eq!(looked, 1, "off: one look, no spin");
        }
        let mut looked = 0;
        let _ = spin.spin_until(|| {
            looked += 1;
            looked == 2
        });
        // The probe spins again, unless a loaded machine preempted it at once (off again).
        assert!(looked == 2 || spin.off_for == OFF_AFTER_PREEMPTION);
    }

    #[test]
    fn a_caught_spin_keeps_or_raises_the_budget() {
        let mut spin = with_budget(Duration::from_micros(4));
        spin.caught(Duration::from_nanos(100), MAX);
        assert_eq!(spin.budget(), Duration::from_micros(4));
        spin.caught(Duration::from_micros(3), MAX);
        assert_eq!(spin.budget(), Duration::from_micros(6));
        spin.caught(Duration::from_millis(1), MAX);
        assert_eq!(spin.budget(), MAX);
    }

    #[test]
    fn spin_until_returns_at_once_when_ready_and_runs_out_when_never() {
        let mut spin = with_budget(MIN_SPIN);
        assert!(spin.spin_until(|| true).is_ok());
        let mut looks = 0;
        let started = Instant::now();
        let missed = spin.spin_until(|| {
            looks += 1;
            false
        });
        assert!(
            missed.is_err(),
            "a condition never true runs the budget out"
        );
        assert!(started.elapsed() >= MIN_SPIN.min(max_spin()));
        assert!(
            looks > 1 || max_spin().is_zero(),
            "looked at while spinning"
        );
    }

    #[test]
    fn spins_until_ready_or_gives_up_only_after_the_budget() {
        let mut spin = with_budget(Duration::from_millis(1));
        let mut looks = 0;
        let started = Instant::now();
        let spun = spin.spin_until(|| {
            looks += 1;
            looks == 3
        });
        match spun {
            Ok(()) => assert_eq!(looks, 3, "ready on the third look"),
            // A loaded machine may hold the spinning thread off its CPU past the budget.
            Err(_) => assert!(started.elapsed() >= Duration::from_millis(1).min(max_spin())),
        }
    }
}
