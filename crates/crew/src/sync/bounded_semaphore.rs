//! [`BoundedSemaphore`]: a semaphore that refuses to be released above its initial value.

use std::fmt;
use std::time::Duration;

use super::semaphore::{Core, SemaphorePermit};

/// Python's `threading.BoundedSemaphore`: a [`Semaphore`](super::Semaphore) whose count may
/// never exceed its initial value. Releasing more often than acquiring is a bug in the caller,
/// and [`release`](Self::release) reports it (Python raises `ValueError`).
///
/// ```
/// use crew::sync::BoundedSemaphore;
///
/// let slots = BoundedSemaphore::new(1);
/// slots.acquire().forget();
/// assert_eq!(slots.available(), 0);
/// slots.release().unwrap();
/// assert!(slots.release().is_err()); // one release too many
/// ```
pub struct BoundedSemaphore {
    core: Core,
    bound: usize,
}

/// [`BoundedSemaphore::release`] would raise the count above the initial value; nothing was
/// released. Release only permits you took (or let the permit guard release them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "BoundedSemaphore released too many times: releasing {requested} would raise {available} \
     available permits above the bound of {bound}; release only permits that were acquired"
)]
pub struct ReleaseError {
    /// Permits the caller tried to release.
    pub requested: usize,
    /// Permits available at the time.
    pub available: usize,
    /// The semaphore's initial (and largest) value.
    pub bound: usize,
}

impl BoundedSemaphore {
    /// A semaphore with `permits` permits, which is also its largest count.
    pub fn new(permits: usize) -> Self {
        Self {
            core: Core::new(permits),
            bound: permits,
        }
    }

    /// Takes a permit, blocking while none is available; the guard releases it on drop.
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.core.acquire();
        SemaphorePermit::new(&self.core, Some(self.bound))
    }

    /// Takes a permit if one is available now.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.core
            .try_acquire()
            .then(|| SemaphorePermit::new(&self.core, Some(self.bound)))
    }

    /// Takes a permit, waiting at most `timeout`; `None` if none became available in time.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        let core = &self.core;
        super::wait_timeout(timeout, |d| core.acquire_deadline(d), || core.acquire())
            .then(|| SemaphorePermit::new(&self.core, Some(self.bound)))
    }

    /// Gives back one permit taken with [`SemaphorePermit::forget`].
    ///
    /// # Errors
    /// [`ReleaseError`] if every permit is already available.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.add_permits(1)
    }

    /// Gives back `n` permits at once.
    ///
    /// # Errors
    /// [`ReleaseError`] (and nothing is released) if that would exceed the initial value.
    pub fn add_permits(&self, n: usize) -> Result<(), ReleaseError> {
        self.core
            .add(n, Some(self.bound))
            .map_err(|available| ReleaseError {
                requested: n,
                available,
                bound: self.bound,
            })
    }

    /// The number of permits available now.
    pub fn available(&self) -> usize {
        self.core.available()
    }

    /// The initial value, which the count never exceeds.
    pub fn bound(&self) -> usize {
        self.bound
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available", &self.available())
            .field("bound", &self.bound)
            .finish()
    }
}
