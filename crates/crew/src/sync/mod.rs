//! Coordination primitives that `std` lacks: [`Event`], [`Semaphore`], [`BoundedSemaphore`].
//!
//! For the rest of Python's `threading` module, use what `std` and `parking_lot` already do
//! well; crew does not re-implement them:
//!
//! | Python | Rust |
//! |---|---|
//! | `threading.Lock` | [`std::sync::Mutex`] (or `parking_lot::Mutex`) |
//! | `threading.RLock` | `parking_lot::ReentrantMutex` |
//! | `threading.Condition` | [`std::sync::Condvar`] |
//! | `threading.Barrier` | [`std::sync::Barrier`] |
//! | `threading.local` | [`std::thread_local!`] |
//! | `threading.Event` | [`Event`] (also awaitable: [`Event::wait_async`]) |
//! | `threading.Semaphore` | [`Semaphore`] |
//! | `threading.BoundedSemaphore` | [`BoundedSemaphore`] |
//!
//! Each primitive here is a plain struct: share it with [`Arc`](std::sync::Arc), as you would a
//! `Mutex` or a `Barrier`. (Queues, which are passed around like channels, are cloneable
//! handles instead: see [`crate::queue`].)
//!
//! ```
//! use std::sync::Arc;
//! use crew::sync::{Event, Semaphore};
//!
//! let go = Arc::new(Event::new());
//! let slots = Arc::new(Semaphore::new(2));
//! let workers: Vec<_> = (0..4)
//!     .map(|i| {
//!         let (go, slots) = (go.clone(), slots.clone());
//!         std::thread::spawn(move || {
//!             go.wait();
//!             let _permit = slots.acquire(); // at most two at a time
//!             i * 2
//!         })
//!     })
//!     .collect();
//! go.set();
//! let total: i32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
//! assert_eq!(total, 12);
//! ```

mod bounded_semaphore;
mod event;
mod semaphore;
pub(crate) mod waker_set;

pub use bounded_semaphore::{BoundedSemaphore, ReleaseError};
pub use event::Event;
#[cfg(feature = "async")]
pub use event::EventWait;
pub use semaphore::{Semaphore, SemaphorePermit};

/// The one way a `*_timeout` wait turns its timeout into a deadline: `until(now + timeout)`,
/// or, when that is too far to represent as an [`Instant`](std::time::Instant), `forever()`
/// (which waits until it succeeds), so the answer is then `true`.
pub(crate) fn wait_timeout(
    timeout: std::time::Duration,
    until: impl FnOnce(std::time::Instant) -> bool,
    forever: impl FnOnce(),
) -> bool {
    match std::time::Instant::now().checked_add(timeout) {
        Some(deadline) => until(deadline),
        None => {
            forever();
            true
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn timeouts_become_deadlines_and_endless_ones_wait_forever() {
        let before = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut seen = None;
        let reached = super::wait_timeout(
            timeout,
            |deadline| {
                seen = Some(deadline);
                false
            },
            || panic!("a representable deadline never waits forever"),
        );
        assert!(!reached, "until's answer is the answer");
        let deadline = seen.expect("until called");
        assert!(before + timeout <= deadline && deadline <= Instant::now() + timeout);
        let mut waited = false;
        let reached = super::wait_timeout(
            Duration::MAX,
            |_| panic!("no Instant is that far away"),
            || waited = true,
        );
        assert!(reached && waited);
    }
}
