//! [`TaskHandle`]: the caller's side of a submitted task.
//!
//! # Design note: the states of a handle
//!
//! A task's shared cell moves through four stages, always under its mutex:
//!
//! ```text
//!   Pending ──start()──▶ Running ──complete()──▶ Settling ──▶ Done
//!      │                                            ▲
//!      └──────────────cancel() / abandon()──────────┘
//! ```
//!
//! * `cancel()` wins only from `Pending`, as in Python: once a worker has called `start()` the
//!   task runs to the end. Whoever moves the cell to `Settling` owns the result from then on, so
//!   a cancel racing a start has exactly one winner.
//! * `Settling` exists so that done-callbacks run *outside* the lock with a reference to the
//!   result: the settler takes the callback list, runs it, and repeats until the list is empty,
//!   then publishes the result and moves to `Done` in the same critical section. A callback added
//!   during `Settling` is therefore run by the settler; one added after `Done` runs at once in the
//!   adding thread. Each callback runs exactly once.
//! * Waiters (blocking `result*`, `wait`) sleep on the condition variable; an async waiter leaves
//!   its `Waker`. Both are woken only after the result is published, so a woken waiter always
//!   finds it.
//! * Only the handle takes the result out (by value or by `poll`), and the handle is not `Clone`,
//!   so "taken twice" cannot happen; callbacks only ever see `&Result`.
//! * The executor holds a [`Completer`]. If it is dropped without completing (a queue torn down,
//!   a job discarded) the task settles as `Cancelled` if it never started and `Shutdown` otherwise,
//!   so no handle waits forever.

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::{panic_message, TaskError};
use crate::loom::{Arc, Condvar, Mutex, MutexGuard};

type Callback<T> = Box<dyn FnOnce(&Result<T, TaskError>) + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Pending,
    Running,
    Settling,
    Done,
}

struct State<T> {
    stage: Stage,
    cancelled: bool,
    result: Option<Result<T, TaskError>>,
    callbacks: Vec<Callback<T>>,
    waker: Option<Waker>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    done: Condvar,
}

/// The handle of a submitted task: wait for its result, poll it, cancel it, attach callbacks, or
/// `.await` it.
///
/// Python's `concurrent.futures.Future` under a name that does not clash with Rust's
/// [`Future`] trait, which it also implements. Dropping a handle detaches the task: it still
/// runs, its result is discarded.
///
/// ```
/// use crew::ThreadPool;
///
/// let pool = ThreadPool::new(2);
/// let handle = pool.spawn(|| 6 * 7).unwrap();
/// assert_eq!(handle.result().unwrap(), 42);
/// ```
#[must_use = "a dropped handle detaches its task; keep it to get the result"]
pub struct TaskHandle<T> {
    shared: Arc<Shared<T>>,
}

/// The executor's side of a task: start it, then complete it exactly once.
pub(crate) struct Completer<T> {
    shared: Option<Arc<Shared<T>>>,
}

/// A new pending task: the handle for the caller, the completer for the executor.
pub(crate) fn task<T>() -> (TaskHandle<T>, Completer<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            stage: Stage::Pending,
            cancelled: false,
            result: None,
            callbacks: Vec::new(),
            waker: None,
        }),
        done: Condvar::new(),
    });
    (
        TaskHandle {
            shared: shared.clone(),
        },
        Completer {
            shared: Some(shared),
        },
    )
}

impl<T> Shared<T> {
    /// Runs callbacks until none are left, then publishes `result`. The caller has moved the
    /// stage to `Settling`.
    fn settle(&self, result: Result<T, TaskError>) {
        loop {
            let mut state = self.state.lock();
            if state.callbacks.is_empty() {
                state.result = Some(result);
                state.stage = Stage::Done;
                let waker = state.waker.take();
                drop(state);
                self.done.notify_all();
                if let Some(waker) = waker {
                    waker.wake();
                }
                return;
            }
            let callbacks = std::mem::take(&mut state.callbacks);
            drop(state);
            for callback in callbacks {
                run_callback(callback, &result);
            }
        }
    }
}

/// A panicking callback must not take the completing worker down: report it and go on, as
/// Python logs and ignores exceptions raised by done-callbacks.
fn run_callback<T>(callback: Callback<T>, result: &Result<T, TaskError>) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(result))) {
        eprintln!(
            "crew: a done-callback panicked (ignored): {}",
            panic_message(&*payload)
        );
    }
}

impl<T> Completer<T> {
    /// Moves `Pending` to `Running`. Returns `false` when the task was cancelled meanwhile: the
    /// executor must then drop it without running it.
    pub(crate) fn start(&self) -> bool {
        let shared = self
            .shared
            .as_ref()
            .expect("completer used after completion");
        let mut state = shared.state.lock();
        if state.stage == Stage::Pending {
            state.stage = Stage::Running;
            true
        } else {
            false
        }
    }

    /// Publishes the task's outcome and runs its callbacks. A cancelled task ignores it.
    pub(crate) fn complete(mut self, result: Result<T, TaskError>) {
        if let Some(shared) = self.shared.take() {
            Self::finish(&shared, result);
        }
    }

    fn finish(shared: &Shared<T>, result: Result<T, TaskError>) {
        let mut state = shared.state.lock();
        match state.stage {
            Stage::Pending | Stage::Running => {
                state.stage = Stage::Settling;
                drop(state);
                shared.settle(result);
            }
            // Cancelled first: the cancel owns the outcome.
            Stage::Settling | Stage::Done => {}
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        let mut state = shared.state.lock();
        let error = match state.stage {
            Stage::Pending => {
                state.cancelled = true;
                TaskError::Cancelled
            }
            Stage::Running => TaskError::Shutdown,
            Stage::Settling | Stage::Done => return,
        };
        state.stage = Stage::Settling;
        drop(state);
        shared.settle(Err(error));
    }
}

impl<T> TaskHandle<T> {
    /// Blocks until the task finishes and returns its value.
    ///
    /// # Errors
    /// The task's failure: [`TaskError::Panicked`], [`TaskError::Cancelled`], [`TaskError::Shutdown`]
    /// or, for process and cluster executors, [`TaskError::WorkerDied`] and friends.
    pub fn result(self) -> Result<T, TaskError> {
        let mut state = self.shared.state.lock();
        while state.stage != Stage::Done {
            self.shared.done.wait(&mut state);
        }
        Self::take(&mut state)
    }

    /// Like [`result`](Self::result), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`TaskError::TimedOut`] if the task has not finished in time (the task itself goes on;
    /// use [`wait_timeout`](Self::wait_timeout) to wait again without giving up the handle), or
    /// the task's own failure.
    pub fn result_timeout(self, timeout: Duration) -> Result<T, TaskError> {
        if self.wait_timeout(timeout) {
            self.result()
        } else {
            Err(TaskError::TimedOut)
        }
    }

    /// Returns the result if the task has finished, or the handle back if it has not.
    ///
    /// ```
    /// let pool = crew::ThreadPool::new(1);
    /// let mut handle = pool.spawn(|| 1).unwrap();
    /// let value = loop {
    ///     match handle.try_result() {
    ///         Ok(result) => break result.unwrap(),
    ///         Err(pending) => handle = pending,
    ///     }
    /// };
    /// assert_eq!(value, 1);
    /// ```
    ///
    /// # Errors
    /// `Err(self)` while the task is not done.
    pub fn try_result(self) -> Result<Result<T, TaskError>, Self> {
        let mut state = self.shared.state.lock();
        if state.stage == Stage::Done {
            let result = Self::take(&mut state);
            drop(state);
            Ok(result)
        } else {
            drop(state);
            Err(self)
        }
    }

    /// Blocks until the task is done (finished, failed or cancelled).
    pub fn wait(&self) {
        let mut state = self.shared.state.lock();
        while state.stage != Stage::Done {
            self.shared.done.wait(&mut state);
        }
    }

    /// Blocks until the task is done or `timeout` passes; returns whether it is done.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => {
                self.wait();
                true
            }
        }
    }

    pub(crate) fn wait_deadline(&self, deadline: Instant) -> bool {
        let mut state = self.shared.state.lock();
        while state.stage != Stage::Done {
            if self.shared.done.wait_until(&mut state, deadline) {
                return state.stage == Stage::Done;
            }
        }
        true
    }

    /// Whether the task is done: finished, failed or cancelled.
    pub fn done(&self) -> bool {
        self.shared.state.lock().stage == Stage::Done
    }

    /// Whether a worker is running the task right now.
    pub fn running(&self) -> bool {
        self.shared.state.lock().stage == Stage::Running
    }

    /// Whether the task was cancelled (it never ran).
    pub fn cancelled(&self) -> bool {
        let state = self.shared.state.lock();
        state.cancelled && state.stage == Stage::Done
    }

    /// Cancels the task if it has not started. Returns `true` if it is now cancelled (also when it
    /// already was), `false` if it is running or finished: as Python, a running task is never
    /// interrupted.
    pub fn cancel(&self) -> bool {
        let mut state = self.shared.state.lock();
        match state.stage {
            Stage::Pending => {
                state.stage = Stage::Settling;
                state.cancelled = true;
                drop(state);
                self.shared.settle(Err(TaskError::Cancelled));
                true
            }
            Stage::Done | Stage::Settling => state.cancelled,
            Stage::Running => false,
        }
    }

    /// Calls `callback` with the task's outcome once it is done; at once (in this thread) if it
    /// already is. Callbacks run in the thread that completes the task, in the order they were
    /// added; one that panics is reported on stderr and ignored.
    pub fn add_done_callback<F>(&self, callback: F)
    where
        F: FnOnce(&Result<T, TaskError>) + Send + 'static,
    {
        let mut state = self.shared.state.lock();
        if state.stage != Stage::Done {
            state.callbacks.push(Box::new(callback));
            return;
        }
        // Only this handle takes the result out, and it is busy here, so lending it is safe;
        // it goes back before the lock is taken again.
        let result = state.result.take().expect("a done task holds its result");
        drop(state);
        run_callback(Box::new(callback), &result);
        self.shared.state.lock().result = Some(result);
    }

    fn take(state: &mut MutexGuard<'_, State<T>>) -> Result<T, TaskError> {
        state
            .result
            .take()
            .expect("the result of a task is taken only once, by its handle")
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    /// # Panics
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.shared.state.lock();
        if state.stage == Stage::Done {
            return Poll::Ready(Self::take(&mut state));
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("TaskHandle")
            .field("stage", &state.stage)
            .field("cancelled", &state.cancelled)
            .finish()
    }
}

impl<T> fmt::Debug for Completer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completer").finish_non_exhaustive()
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;
