//! [`Event`]: a flag threads (and async tasks) wait on.

use std::fmt;
use std::time::{Duration, Instant};

use super::waker_set::WakerSet;
use crate::loom::{Condvar, Mutex};

struct State {
    set: bool,
    /// Bumped by every `set()`, so a waiter that slept through a `set(); clear()` pair still
    /// wakes, as Python's `Event.wait` does.
    generation: u64,
    /// Threads blocked in a wait (for `Debug` and the loom models).
    waiting: usize,
    wakers: WakerSet,
}

/// Python's `threading.Event`: a flag, initially false, that threads wait on until another
/// thread sets it.
///
/// `set()` wakes every waiter; `clear()` resets the flag so later waits block again. A waiter
/// wakes even if the flag was cleared again before it ran (Python's behaviour). Share it with
/// [`Arc`](std::sync::Arc) (it is `Sync`); async code waits with [`wait_async`](Self::wait_async).
///
/// ```
/// use std::sync::Arc;
/// use crew::sync::Event;
///
/// let ready = Arc::new(Event::new());
/// let worker = {
///     let ready = ready.clone();
///     std::thread::spawn(move || {
///         ready.wait();
///         "started"
///     })
/// };
/// assert!(!ready.is_set());
/// ready.set();
/// assert_eq!(worker.join().unwrap(), "started");
/// ```
pub struct Event {
    state: Mutex<State>,
    changed: Condvar,
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl Event {
    /// A new event whose flag is false.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                set: false,
                generation: 0,
                waiting: 0,
                wakers: WakerSet::new(),
            }),
            changed: Condvar::new(),
        }
    }

    /// Sets the flag and wakes every thread and task waiting for it.
    pub fn set(&self) {
        let mut state = self.state.lock();
        if state.set {
            return;
        }
        state.set = true;
        state.generation = state.generation.wrapping_add(1);
        let wakers = state.wakers.take_all();
        drop(state);
        self.changed.notify_all();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Resets the flag: later waits block until the next [`set`](Self::set).
    pub fn clear(&self) {
        self.state.lock().set = false;
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.state.lock().set
    }

    /// Blocks until the flag is set (returns at once if it already is).
    pub fn wait(&self) {
        let mut state = self.state.lock();
        let generation = state.generation;
        while !state.set && state.generation == generation {
            state.waiting += 1;
            self.changed.wait(&mut state);
            state.waiting -= 1;
        }
    }

    /// The number of threads blocked in a wait now.
    #[cfg(all(test, loom))]
    pub(crate) fn waiting(&self) -> usize {
        self.state.lock().waiting
    }

    /// Blocks until the flag is set or `timeout` passes; returns whether it was set (Python's
    /// `wait(timeout)` returning `True`/`False`).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => {
                self.wait();
                true
            }
        }
    }

    /// Blocks until the flag is set or `deadline` passes; returns whether it was set.
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        let mut state = self.state.lock();
        let generation = state.generation;
        while !state.set && state.generation == generation {
            state.waiting += 1;
            let timed_out = self.changed.wait_until(&mut state, deadline);
            state.waiting -= 1;
            if timed_out {
                return state.set || state.generation != generation;
            }
        }
        true
    }

    /// A future that completes when the flag is set: Python's `asyncio.Event.wait()`, on the
    /// same event threads use. It registers a waker (no polling, no extra thread).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use crew::sync::Event;
    ///
    /// let event = Arc::new(Event::new());
    /// let setter = event.clone();
    /// std::thread::spawn(move || setter.set());
    /// event.wait_async().await;
    /// assert!(event.is_set());
    /// # });
    /// ```
    #[cfg(feature = "async")]
    pub fn wait_async(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            generation: None,
            slot: None,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Event")
            .field("is_set", &state.set)
            .field("waiting_threads", &state.waiting)
            .finish()
    }
}

/// The future of [`Event::wait_async`].
#[cfg(feature = "async")]
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a Event,
    generation: Option<u64>,
    slot: Option<u64>,
}

#[cfg(feature = "async")]
impl std::future::Future for EventWait<'_> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let this = &mut *self;
        let mut state = this.event.state.lock();
        let generation = *this.generation.get_or_insert(state.generation);
        if state.set || state.generation != generation {
            if let Some(id) = this.slot.take() {
                state.wakers.remove(id);
            }
            return std::task::Poll::Ready(());
        }
        state.wakers.register(&mut this.slot, cx.waker());
        std::task::Poll::Pending
    }
}

#[cfg(feature = "async")]
impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.slot.take() {
            // `set` wakes everyone, so there is no notification to pass on.
            self.event.state.lock().wakers.remove(id);
        }
    }
}

#[cfg(feature = "async")]
impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("registered", &self.slot.is_some())
            .finish()
    }
}
