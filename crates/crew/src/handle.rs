//! [`TaskHandle`]: the caller's side of a submitted task.
//!
//! # Design note: the states of a handle
//!
//! A task's shared cell moves through four stages, kept in an atomic so `done()` and the
//! worker's `start()` need no lock; every move *into* `Settling` or `Done` is made while holding
//! the cell's mutex, which is what the condition variable's waiters rely on:
//!
//! ```text
//!   Pending ──start()──▶ Running ──complete()──▶ Settling ──▶ Done
//!      │                                            ▲
//!      └──────────────cancel() / abandon()──────────┘
//! ```
//!
//! * `cancel()` wins only from `Pending`, as in Python: once a worker has called `start()` the
//!   task runs to the end. `start()` and `cancel()` both compare-and-swap from `Pending`, so a
//!   cancel racing a start has exactly one winner; whoever moves the cell to `Settling` owns the
//!   outcome from then on.
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
// `std`'s `Arc` even under loom: the cell is unsized behind the handle (see `TaskCell`), which
// loom's `Arc` does not support, and reference counting is not what the models check.
use std::sync::Arc;

use crate::loom::{AtomicU8, Condvar, Mutex, MutexGuard, Ordering};

type Callback<T> = Box<dyn FnOnce(&Result<T, TaskError>) + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Stage {
    Pending = 0,
    Running = 1,
    Settling = 2,
    Done = 3,
}

impl Stage {
    fn from_u8(value: u8) -> Stage {
        match value {
            0 => Stage::Pending,
            1 => Stage::Running,
            2 => Stage::Settling,
            _ => Stage::Done,
        }
    }
}

struct State<T> {
    cancelled: bool,
    result: Option<Result<T, TaskError>>,
    /// Boxed and made only when someone attaches: most tasks have neither a callback nor an
    /// async waiter, and every byte of the cell is paid per task.
    waiters: Option<Box<Waiters<T>>>,
}

struct Waiters<T> {
    callbacks: Vec<Callback<T>>,
    waker: Option<Waker>,
}

impl<T> State<T> {
    fn waiters(&mut self) -> &mut Waiters<T> {
        self.waiters.get_or_insert_with(|| {
            Box::new(Waiters {
                callbacks: Vec::new(),
                waker: None,
            })
        })
    }

    fn take_callbacks(&mut self) -> Vec<Callback<T>> {
        self.waiters
            .as_mut()
            .map(|waiters| std::mem::take(&mut waiters.callbacks))
            .unwrap_or_default()
    }

    fn take_waker(&mut self) -> Option<Waker> {
        self.waiters
            .as_mut()
            .and_then(|waiters| waiters.waker.take())
    }
}

/// The shared cell of a task. `payload` is whatever the executor wants to keep in the same
/// allocation (the thread pool keeps the closure there, so a task costs one allocation); the
/// handle sees it only as `dyn Send + Sync`.
pub(crate) struct Shared<T, P: ?Sized = ()> {
    stage: AtomicU8,
    state: Mutex<State<T>>,
    done: Condvar,
    payload: P,
}

/// The cell as the handle and the completer see it.
type TaskCell<T> = Shared<T, dyn Send + Sync>;

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
    shared: Arc<TaskCell<T>>,
}

/// The executor's side of a task: start it, then complete it exactly once.
pub(crate) struct Completer<T> {
    shared: Option<Arc<TaskCell<T>>>,
}

/// A new pending task: the handle for the caller, the completer for the executor.
pub(crate) fn task<T: 'static>() -> (TaskHandle<T>, Completer<T>) {
    let cell: Arc<TaskCell<T>> = task_cell(());
    (
        TaskHandle {
            shared: cell.clone(),
        },
        Completer { shared: Some(cell) },
    )
}

/// A new pending task whose cell also holds `payload`: the handle for the caller, the typed
/// cell for the executor. The executor must settle the cell ([`Shared::complete`] after
/// [`Shared::start`], or [`Shared::abandon`]); nothing does it for it.
pub(crate) fn task_with<T: 'static, P: Send + Sync + 'static>(
    payload: P,
) -> (TaskHandle<T>, Arc<Shared<T, P>>) {
    let cell = task_cell(payload);
    (
        TaskHandle {
            shared: cell.clone(),
        },
        cell,
    )
}

fn task_cell<T, P>(payload: P) -> Arc<Shared<T, P>> {
    Arc::new(Shared {
        stage: AtomicU8::new(Stage::Pending as u8),
        state: Mutex::new(State {
            cancelled: false,
            result: None,
            waiters: None,
        }),
        done: Condvar::new(),
        payload,
    })
}

impl<T, P: ?Sized> Shared<T, P> {
    /// The executor's payload.
    pub(crate) fn payload(&self) -> &P {
        &self.payload
    }

    /// Moves `Pending` to `Running`. Returns `false` when the task was cancelled meanwhile: the
    /// executor must then not run it.
    pub(crate) fn start(&self) -> bool {
        self.advance(Stage::Pending, Stage::Running)
    }

    fn stage(&self) -> Stage {
        Stage::from_u8(self.stage.load(Ordering::Acquire))
    }

    /// Moves `from` to `to` if the cell is at `from`.
    fn advance(&self, from: Stage, to: Stage) -> bool {
        self.stage
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Publishes the task's outcome and runs its callbacks. Ignored if the task was already
    /// settled (a cancel won).
    pub(crate) fn complete(&self, result: Result<T, TaskError>) {
        let state = self.state.lock();
        if self.advance(Stage::Running, Stage::Settling)
            || self.advance(Stage::Pending, Stage::Settling)
        {
            self.settle(state, result);
        }
    }

    /// Settles a task its executor gives up on: `Cancelled` (and `cancelled()`) if it never
    /// started, `Shutdown` if it was running. Ignored if already settled.
    pub(crate) fn abandon(&self) {
        let mut state = self.state.lock();
        if self.advance(Stage::Pending, Stage::Settling) {
            state.cancelled = true;
            self.settle(state, Err(TaskError::Cancelled));
        } else if self.advance(Stage::Running, Stage::Settling) {
            self.settle(state, Err(TaskError::Shutdown));
        }
    }

    /// Runs callbacks until none are left, then publishes `result`. The caller has moved the
    /// stage to `Settling`.
    fn settle<'a>(&'a self, mut state: MutexGuard<'a, State<T>>, result: Result<T, TaskError>) {
        debug_assert_eq!(self.stage(), Stage::Settling);
        loop {
            let callbacks = state.take_callbacks();
            if callbacks.is_empty() {
                state.result = Some(result);
                self.stage.store(Stage::Done as u8, Ordering::Release);
                let waker = state.take_waker();
                drop(state);
                self.done.notify_all();
                if let Some(waker) = waker {
                    waker.wake();
                }
                return;
            }
            drop(state);
            for callback in callbacks {
                run_callback(callback, &result);
            }
            state = self.state.lock();
        }
    }

    /// Waits for `Done` under the lock, after a short spin: tiny tasks often finish within
    /// microseconds, and a spin is far cheaper than parking and being woken.
    fn lock_done(&self, deadline: Option<Instant>) -> MutexGuard<'_, State<T>> {
        #[cfg(not(loom))]
        for _ in 0..SPIN_LIMIT {
            if self.stage() == Stage::Done {
                break;
            }
            std::hint::spin_loop();
        }
        let mut state = self.state.lock();
        while self.stage() != Stage::Done {
            match deadline {
                None => self.done.wait(&mut state),
                Some(deadline) => {
                    if self.done.wait_until(&mut state, deadline) {
                        break;
                    }
                }
            }
        }
        state
    }
}

#[cfg(not(loom))]
const SPIN_LIMIT: u32 = 32;

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
    /// See [`Shared::start`].
    pub(crate) fn start(&self) -> bool {
        self.shared
            .as_ref()
            .expect("completer used after completion")
            .start()
    }

    /// See [`Shared::complete`].
    pub(crate) fn complete(mut self, result: Result<T, TaskError>) {
        if let Some(shared) = self.shared.take() {
            shared.complete(result);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.abandon();
        }
    }
}

impl<T> TaskHandle<T> {
    /// Blocks until the task finishes and returns its value.
    ///
    /// # Errors
    /// The task's failure: [`TaskError::Panicked`], [`TaskError::Cancelled`], [`TaskError::Shutdown`]
    /// or, for process and cluster executors, [`TaskError::WorkerDied`] and friends.
    pub fn result(self) -> Result<T, TaskError> {
        let mut state = self.shared.lock_done(None);
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
        if self.shared.stage() == Stage::Done {
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
        drop(self.shared.lock_done(None));
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
        drop(self.shared.lock_done(Some(deadline)));
        self.done()
    }

    /// Whether the task is done: finished, failed or cancelled.
    pub fn done(&self) -> bool {
        self.shared.stage() == Stage::Done
    }

    /// Whether a worker is running the task right now.
    pub fn running(&self) -> bool {
        self.shared.stage() == Stage::Running
    }

    /// Whether the task was cancelled (it never ran).
    pub fn cancelled(&self) -> bool {
        self.done() && self.shared.state.lock().cancelled
    }

    /// Cancels the task if it has not started. Returns `true` if it is now cancelled (also when it
    /// already was), `false` if it is running or finished: as Python, a running task is never
    /// interrupted.
    pub fn cancel(&self) -> bool {
        let mut state = self.shared.state.lock();
        if self.shared.advance(Stage::Pending, Stage::Settling) {
            state.cancelled = true;
            self.shared.settle(state, Err(TaskError::Cancelled));
            return true;
        }
        match self.shared.stage() {
            Stage::Done | Stage::Settling => state.cancelled,
            Stage::Pending | Stage::Running => false,
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
        if self.shared.stage() != Stage::Done {
            state.waiters().callbacks.push(Box::new(callback));
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
        if self.shared.stage() == Stage::Done {
            return Poll::Ready(Self::take(&mut state));
        }
        let waiters = state.waiters();
        match &waiters.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => waiters.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("stage", &self.shared.stage())
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
