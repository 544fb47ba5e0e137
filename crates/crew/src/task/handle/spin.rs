//! A bounded, adaptive spin before a thread parks: the blocking wait of a [`TaskHandle`]
//! and a thread actor waiting for its next call.
//!
//! # Design note
//!
//! A thread that parks and is woken pays two futex system calls and a trip through the
//! scheduler (on a VM, an inter-processor interrupt): several microseconds, which is most of a
//! blocking call to an actor on a thread. When the other side answers within microseconds (a
//! tiny method, a caller sending its next call), spinning a little first avoids both. The spin
//! is bounded by [`MAX_SPIN`] and *adaptive*, so that a thread whose waits are long (an idle
//! actor, a caller of slow tasks) stops spending CPU on it:
//!
//! * a spin that saw the condition keeps its budget (or raises it to twice what it needed);
//! * a spin that ran out parks; when the thread is woken, a wait that turned out short (at most
//!   [`MAX_SPIN`] counting the wake-up itself) doubles the budget (a longer spin would have
//!   caught it), a longer one halves it, down to [`MIN_SPIN`].
//!
//! So a busy ping-pong converges on spinning and an idle or slow partner on [`MIN_SPIN`]: after a
//! burst the waste is at most a geometric series of halving budgets, and a parked thread burns
//! nothing. Each thread keeps its own budget (the callers' in a thread-local, an actor thread
//! its own), so no state is shared and nothing here needs to be synchronized.
//!
//! [`TaskHandle`]: crate::task::TaskHandle

use std::time::{Duration, Instant};

/// The longest spin, in nanoseconds: above a wake-up's cost on a loaded VM, far below a time
/// slice.
pub(crate) const MAX_SPIN: u32 = 20_000;
/// The shortest spin, in nanoseconds: what an idle partner costs per wait.
pub(crate) const MIN_SPIN: u32 = 500;
/// Spin-loop hints between two looks at the clock (a look costs tens of nanoseconds).
const CLOCK_EVERY: u32 = 16;
/// Rounds of spin-loop hints before the spin yields the CPU instead.
const PURE_ROUNDS: u32 = 4;

/// One thread's spin budget (see the module's note).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spin {
    budget: u32,
}

impl Default for Spin {
    fn default() -> Self {
        Spin { budget: MAX_SPIN }
    }
}

/// What a [`Spin::spin_until`] that ran out hands to [`Spin::woken`] after the park.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub(crate) struct Missed {
    since: Instant,
}

impl Spin {
    /// The current budget, in nanoseconds.
    #[cfg(test)]
    fn budget(&self) -> u32 {
        self.budget
    }

    /// Spins until `ready()` or the budget runs out: `Ok` when ready (at once if it already
    /// was), `Err` when the caller should park and then report [`woken`](Self::woken). The
    /// first rounds only hint the CPU; later ones yield it, so that on a machine with more
    /// runnable threads than cores the spin does not keep the other side off a core
    /// (measured: a pure spin made blocking calls slower there than parking at once).
    pub(crate) fn spin_until(&mut self, mut ready: impl FnMut() -> bool) -> Result<(), Missed> {
        if ready() {
            return Ok(());
        }
        let since = Instant::now();
        let budget = Duration::from_nanos(u64::from(self.budget));
        let mut round = 0;
        loop {
            if round < PURE_ROUNDS {
                for _ in 0..CLOCK_EVERY {
                    std::hint::spin_loop();
                    if ready() {
                        self.caught(since.elapsed());
                        return Ok(());
                    }
                }
                round += 1;
            } else {
                std::thread::yield_now();
                if ready() {
                    self.caught(since.elapsed());
                    return Ok(());
                }
            }
            if since.elapsed() >= budget {
                return Err(Missed { since });
            }
        }
    }

    /// The thread parked after `missed` and was woken: adapt the budget to how long the wait
    /// really was.
    pub(crate) fn woken(&mut self, missed: Missed) {
        self.parked_for(missed.since.elapsed());
    }

    /// A spin saw its condition after `waited`.
    fn caught(&mut self, waited: Duration) {
        let twice = u32::try_from(waited.as_nanos().saturating_mul(2)).unwrap_or(u32::MAX);
        self.budget = self.budget.max(twice).min(MAX_SPIN);
    }

    /// A spin ran out and the wait, counting the park, took `waited`.
    fn parked_for(&mut self, waited: Duration) {
        self.budget = if waited.as_nanos() <= u128::from(MAX_SPIN) {
            self.budget.saturating_mul(2).min(MAX_SPIN)
        } else {
            (self.budget / 2).max(MIN_SPIN)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_wait_halves_the_budget_down_to_the_floor() {
        let mut spin = Spin::default();
        spin.parked_for(Duration::from_millis(1));
        assert_eq!(spin.budget(), MAX_SPIN / 2);
        for _ in 0..64 {
            spin.parked_for(Duration::from_millis(1));
        }
        assert_eq!(spin.budget(), MIN_SPIN);
    }

    #[test]
    fn a_short_wait_after_a_park_doubles_the_budget_up_to_the_cap() {
        let mut spin = Spin { budget: MIN_SPIN };
        spin.parked_for(Duration::from_micros(5));
        assert_eq!(spin.budget(), 2 * MIN_SPIN);
        for _ in 0..64 {
            spin.parked_for(Duration::from_micros(5));
        }
        assert_eq!(spin.budget(), MAX_SPIN);
    }

    #[test]
    fn a_caught_spin_keeps_or_raises_the_budget() {
        let mut spin = Spin { budget: 4_000 };
        spin.caught(Duration::from_nanos(100));
        assert_eq!(spin.budget(), 4_000);
        spin.caught(Duration::from_micros(3));
        assert_eq!(spin.budget(), 6_000);
        spin.caught(Duration::from_millis(1));
        assert_eq!(spin.budget(), MAX_SPIN);
    }

    #[test]
    fn spin_until_returns_at_once_when_ready_and_runs_out_when_never() {
        let mut spin = Spin { budget: MIN_SPIN };
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
        assert!(started.elapsed() >= Duration::from_nanos(u64::from(MIN_SPIN)));
        assert!(looks > 1, "the condition is looked at while spinning");
    }
}
