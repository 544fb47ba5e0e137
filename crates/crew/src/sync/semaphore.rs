//! [`Semaphore`] and the permit guard shared with [`BoundedSemaphore`](super::BoundedSemaphore).

use std::fmt;
use std::time::{Duration, Instant};

use crate::loom::{Condvar, Mutex};

/// The counter both semaphores share.
pub(crate) struct Core {
    permits: Mutex<usize>,
    available: Condvar,
}

impl Core {
    pub(crate) fn new(permits: usize) -> Self {
        Self {
            permits: Mutex::new(permits),
            available: Condvar::new(),
        }
    }

    pub(crate) fn acquire(&self) {
        let mut permits = self.permits.lock();
        while *permits == 0 {
            self.available.wait(&mut permits);
        }
        *permits -= 1;
    }

    pub(crate) fn try_acquire(&self) -> bool {
        let mut permits = self.permits.lock();
        if *permits == 0 {
            return false;
        }
        *permits -= 1;
        true
    }

    pub(crate) fn acquire_deadline(&self, deadline: Instant) -> bool {
        let mut permits = self.permits.lock();
        while *permits == 0 {
            if self.available.wait_until(&mut permits, deadline) && *permits == 0 {
                return false;
            }
        }
        *permits -= 1;
        true
    }

    /// Adds `n` permits; with a `bound`, fails (adding none) if the count would exceed it.
    pub(crate) fn add(&self, n: usize, bound: Option<usize>) -> Result<(), usize> {
        let mut permits = self.permits.lock();
        let total = permits.saturating_add(n);
        if let Some(bound) = bound {
            if total > bound {
                return Err(*permits);
            }
        }
        *permits = total;
        drop(permits);
        if n == 1 {
            self.available.notify_one();
        } else if n > 1 {
            self.available.notify_all();
        }
        Ok(())
    }

    pub(crate) fn available(&self) -> usize {
        *self.permits.lock()
    }
}

/// Python's `threading.Semaphore`: a counter of permits; `acquire` takes one, waiting while
/// there are none, and the returned guard gives it back when dropped.
///
/// Unlike [`BoundedSemaphore`](super::BoundedSemaphore), [`release`](Self::release) may raise
/// the count above its initial value (as in Python). Share it with
/// [`Arc`](std::sync::Arc).
///
/// ```
/// use crew::sync::Semaphore;
///
/// let connections = Semaphore::new(2);
/// let a = connections.acquire();
/// let _b = connections.acquire();
/// assert!(connections.try_acquire().is_none()); // both permits are out
/// drop(a);
/// assert!(connections.try_acquire().is_some());
/// ```
pub struct Semaphore {
    core: Core,
}

impl Semaphore {
    /// A semaphore with `permits` permits (Python's `Semaphore(value)`).
    pub fn new(permits: usize) -> Self {
        Self {
            core: Core::new(permits),
        }
    }

    /// Takes a permit, blocking while none is available; the guard releases it on drop.
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.core.acquire();
        SemaphorePermit::new(&self.core, None)
    }

    /// Takes a permit if one is available now.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.core
            .try_acquire()
            .then(|| SemaphorePermit::new(&self.core, None))
    }

    /// Takes a permit, waiting at most `timeout`; `None` if none became available in time.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        let core = &self.core;
        super::wait_timeout(timeout, |d| core.acquire_deadline(d), || core.acquire())
            .then(|| SemaphorePermit::new(&self.core, None))
    }

    /// Adds one permit, waking one waiter (Python's `release()`), whether or not it was taken
    /// through a guard: pair it with [`SemaphorePermit::forget`].
    pub fn release(&self) {
        self.add_permits(1);
    }

    /// Adds `n` permits (Python's `release(n)`), waking up to `n` waiters.
    pub fn add_permits(&self, n: usize) {
        // An unbounded core never refuses.
        let _ = self.core.add(n, None);
    }

    /// The number of permits available now.
    pub fn available(&self) -> usize {
        self.core.available()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .finish()
    }
}

/// A permit taken from a [`Semaphore`] or [`BoundedSemaphore`](super::BoundedSemaphore);
/// dropping it gives the permit back (Python's `with semaphore:` block).
#[must_use = "dropping the permit releases it at once"]
pub struct SemaphorePermit<'a> {
    core: &'a Core,
    bound: Option<usize>,
}

impl<'a> SemaphorePermit<'a> {
    pub(crate) fn new(core: &'a Core, bound: Option<usize>) -> Self {
        Self { core, bound }
    }

    /// Keeps the permit taken without a guard; give it back later with `release()`.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        // Giving back a guard's permit passes a bound only if someone also called `release()`
        // for it; the count then stays at the bound (the extra release already counted).
        let _ = self.core.add(1, self.bound);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}
