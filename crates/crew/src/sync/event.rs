//! [`Event`]: a flag threads (and async tasks) wait on, and hooks run when it is set.
//!
//! This is crew's one "fire once, wake the waiters, run the hooks" primitive: the subprocess
//! [`KillSwitch`](crate::subprocess::KillSwitch) and the lab's shutdown token are built on it.

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
    /// Run once by the next `set()`, in the order they were added.
    hooks: Vec<Hook>,
}

type Hook = Box<dyn FnOnce() + Send>;

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
                hooks: Vec::new(),
            }),
            changed: Condvar::new(),
        }
    }

    /// Sets the flag, wakes every thread and task waiting for it, then runs the hooks added
    /// with [`on_set`](Self::on_set) on this thread, each once. Does nothing if already set.
    ///
    /// # Panics
    /// If a hook panics; the hooks after it are dropped without running.
    pub fn set(&self) {
        let mut state = self.state.lock();
        if state.set {
            return;
        }
        state.set = true;
        state.generation = state.generation.wrapping_add(1);
        let wakers = state.wakers.take_all();
        let hooks = std::mem::take(&mut state.hooks);
        drop(state);
        self.changed.notify_all();
        for waker in wakers {
            waker.wake();
        }
        // Outside the lock, so that a hook may use the event (read it, add another hook).
        for hook in hooks {
            hook();
        }
    }

    /// Runs `hook` once when the flag is next set, on the thread that sets it; at once, on
    /// this thread, if the flag is set now. Hooks are how one event stops things that do not
    /// wait on it (close a listening socket, signal a process group).
    ///
    /// A hook runs exactly once even when `set` races with `on_set`. After a
    /// [`clear`](Self::clear), new hooks wait for the next `set`.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use crew::sync::Event;
    ///
    /// let stop = Event::new();
    /// let stopped = Arc::new(AtomicUsize::new(0));
    /// let counter = stopped.clone();
    /// stop.on_set(move || {
    ///     counter.fetch_add(1, Ordering::SeqCst);
    /// });
    /// stop.set();
    /// stop.set(); // already set: the hook does not run again
    /// assert_eq!(stopped.load(Ordering::SeqCst), 1);
    ///
    /// let counter = stopped.clone();
    /// stop.on_set(move || {
    ///     counter.fetch_add(1, Ordering::SeqCst); // set already: runs now
    /// });
    /// assert_eq!(stopped.load(Ordering::SeqCst), 2);
    /// ```
    ///
    /// # Panics
    /// If the flag is set and `hook` panics.
    pub fn on_set(&self, hook: impl FnOnce() + Send + 'static) {
        let mut state = self.state.lock();
        if !state.set {
            state.hooks.push(Box::new(hook));
            return;
        }
        drop(state);
        hook();
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
        super::wait_timeout(timeout, |d| self.wait_deadline(d), || self.wait())
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
            .field("hooks", &state.hooks.len())
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
