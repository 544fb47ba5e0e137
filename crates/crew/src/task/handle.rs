//! [`TaskHandle`] and [`Completer`]: the caller's and the executor's side of a task.
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
//! * `cancel()` wins from `Pending`, as in Python. From `Running` it wins only when the backend
//!   registered a cancel hook ([`Completer::on_cancel`]): the hook is how a backend stops a task
//!   it already sent (a process pool kills the worker). `start()` and `cancel()` both
//!   compare-and-swap from `Pending`, so a cancel racing a start has exactly one winner; every
//!   move out of `Running` is made under the mutex, so a cancel racing `complete()` has one
//!   winner too. Whoever moves the cell to `Settling` owns the outcome from then on.
//! * The cancel hook lives with the callbacks (boxed, made only when used). It runs exactly
//!   once, after the cell settled as cancelled (by `cancel()`, or at the deadline by the shared
//!   timer, [`Completer::expire_at_deadline`]), outside the lock; if the task settles any other
//!   way the hook is dropped unrun.
//! * `Settling` exists so that done-callbacks run *outside* the lock with a reference to the
//!   result: the settler takes the callback list, runs it, and repeats until the list is empty,
//!   then publishes the result and moves to `Done` in the same critical section. A callback added
//!   during `Settling` is therefore run by the settler; one added after `Done` runs at once in the
//!   adding thread. Each callback runs exactly once.
//! * Waiters (blocking `result*`, `wait`) sleep on the condition variable, after a bounded,
//!   adaptive spin (`sys/spin.rs`: cheaper than a park and a wake-up when the task ends within
//!   microseconds); an async waiter leaves
//!   its `Waker`. A backend may first lend a blocking waiter a *driver* (kept with the
//!   callbacks): the waiter runs it before sleeping, e.g. to read its own reply off a socket
//!   (process actors); it returns when the task is done or cannot help, and the waiter sleeps
//!   as usual if the task is not done yet. Both are woken only after the result is published, so a woken waiter always
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
use crate::task::timer;
// `std`'s `Arc` even under loom: the cell is unsized behind the handle (see `TaskCell`), which
// loom's `Arc` does not support, and reference counting is not what the models check.
use std::sync::Arc;

use crate::loom::{AtomicU8, Condvar, Mutex, MutexGuard, Ordering};
use crate::task::TaskOptions;

type Callback<T> = Box<dyn FnOnce(&Result<T, TaskError>) + Send>;
type Hook = Box<dyn FnOnce() + Send>;

/// Run by a blocking waiter before it sleeps, with "is the task done?" and the wait's
/// deadline: a backend whose replies the waiting thread can read itself (a process actor's
/// socket) lends that thread to its transport instead of having another thread read the reply
/// and wake it. It returns when the task is done, at the deadline, or when it cannot lead.
pub(crate) type Driver = Arc<dyn Fn(&dyn Fn() -> bool, Option<Instant>) + Send + Sync>;

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
    /// The error boxed: a `TaskError` is 48 bytes, which every cell would carry (and every
    /// live handle keep in memory) for the rare task that fails.
    result: Option<Result<T, Box<TaskError>>>,
    /// Boxed and made only when someone attaches: most tasks have neither a callback nor an
    /// async waiter, and every byte of the cell is paid per task.
    waiters: Option<Box<Waiters<T>>>,
}

struct Waiters<T> {
    callbacks: Vec<Callback<T>>,
    waker: Option<Waker>,
    on_cancel: Option<Hook>,
    driver: Option<Driver>,
}

impl<T> State<T> {
    fn waiters(&mut self) -> &mut Waiters<T> {
        self.waiters.get_or_insert_with(|| {
            Box::new(Waiters {
                callbacks: Vec::new(),
                waker: None,
                on_cancel: None,
                driver: None,
            })
        })
    }

    fn take_callbacks(&mut self) -> Vec<Callback<T>> {
        self.waiters
            .as_mut()
            .map(|waiters| std::mem::take(&mut waiters.callbacks))
            .unwrap_or_default()
    }

    fn take_hook(&mut self) -> Option<Hook> {
        self.waiters
            .as_mut()
            .and_then(|waiters| waiters.on_cancel.take())
    }

    fn has_hook(&self) -> bool {
        self.waiters
            .as_ref()
            .is_some_and(|waiters| waiters.on_cancel.is_some())
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
///
/// Made with its [`TaskHandle`] by [`pair`] or [`pair_with`]. An executor calls
/// [`start`](Self::start) when a worker takes the task (and skips the task if it returns
/// `false`: the caller cancelled it), then [`complete`](Self::complete) with the outcome.
/// Dropping a completer without completing settles the handle as [`TaskError::Cancelled`] if
/// the task never started and [`TaskError::Shutdown`] otherwise, so no caller waits forever.
///
/// ```
/// use crew::task::{self, TaskOptions};
/// use std::time::Duration;
///
/// let (handle, completer) = task::pair_with::<u32>(&TaskOptions::new().timeout(Duration::from_secs(5)));
/// assert!(completer.deadline().is_some());
/// std::thread::spawn(move || {
///     if completer.start() {
///         completer.complete(Ok(6 * 7));
///     }
/// });
/// assert_eq!(handle.result().unwrap(), 42);
/// ```
pub struct Completer<T> {
    shared: Option<Arc<TaskCell<T>>>,
    deadline: Option<Instant>,
}

/// A new pending task: the handle for the caller, the completer for the executor
/// (as `futures::channel::oneshot::channel()`).
///
/// ```
/// let (handle, completer) = crew::task::pair::<&str>();
/// assert!(completer.start());
/// completer.complete(Ok("done"));
/// assert_eq!(handle.result(), Ok("done"));
/// ```
pub fn pair<T: 'static>() -> (TaskHandle<T>, Completer<T>) {
    let cell: Arc<TaskCell<T>> = task_cell(());
    (
        TaskHandle {
            shared: cell.clone(),
        },
        Completer {
            shared: Some(cell),
            deadline: None,
        },
    )
}

/// Like [`pair`], for a task submitted with `options`: the completer carries the task's
/// deadline ([`Completer::deadline`], fixed now from a timeout). Honouring it is the
/// executor's job: skip the task if the deadline passed before it started, stop it (or let
/// [`Completer::expire_at_deadline`] settle its handle) when the deadline passes while it runs.
pub fn pair_with<T: 'static>(options: &TaskOptions) -> (TaskHandle<T>, Completer<T>) {
    let (handle, mut completer) = pair();
    completer.deadline = options.deadline_from_now();
    (handle, completer)
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

/// Registers `cell` with the shared timer: at `deadline` it settles with
/// [`TaskError::DeadlineExceeded`] unless settled before.
pub(crate) fn expire_at<T, P>(cell: &Arc<Shared<T, P>>, deadline: Instant)
where
    T: Send + 'static,
    P: ?Sized + Send + Sync + 'static,
{
    let cell = Arc::downgrade(cell);
    timer::schedule(
        deadline,
        Box::new(move || {
            if let Some(cell) = cell.upgrade() {
                cell.expire();
            }
        }),
    );
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

    /// Cancels the task: from `Pending` always, from `Running` only if the backend registered a
    /// cancel hook (then run, after settling, to stop the task). See [`TaskHandle::cancel`].
    fn cancel(&self) -> bool {
        let mut state = self.state.lock();
        let won = self.advance(Stage::Pending, Stage::Settling)
            || (state.has_hook() && self.advance(Stage::Running, Stage::Settling));
        if !won {
            return matches!(self.stage(), Stage::Settling | Stage::Done) && state.cancelled;
        }
        state.cancelled = true;
        let hook = state.take_hook();
        self.settle(state, Err(TaskError::Cancelled));
        if let Some(hook) = hook {
            run_hook(hook);
        }
        true
    }

    /// Settles a task whose deadline passed with [`TaskError::DeadlineExceeded`] and runs the
    /// backend's cancel hook (so it can stop the task). Ignored if already settled.
    pub(crate) fn expire(&self) {
        let state = self.state.lock();
        if self.advance(Stage::Pending, Stage::Settling)
            || self.advance(Stage::Running, Stage::Settling)
        {
            let mut state = state;
            let hook = state.take_hook();
            self.settle(state, Err(TaskError::DeadlineExceeded { worker: None }));
            if let Some(hook) = hook {
                run_hook(hook);
            }
        }
    }

    /// Registers the backend's cancel hook; see [`Completer::on_cancel`].
    fn on_cancel(&self, hook: Hook) {
        let mut state = self.state.lock();
        match self.stage() {
            Stage::Pending | Stage::Running => state.waiters().on_cancel = Some(hook),
            Stage::Settling | Stage::Done => {
                let cancelled = state.cancelled;
                drop(state);
                if cancelled {
                    run_hook(hook);
                }
            }
        }
    }

    /// Whether the task settled without its executor: cancelled, or past its deadline.
    fn is_settled(&self) -> bool {
        matches!(self.stage(), Stage::Settling | Stage::Done)
    }

    /// Runs callbacks until none are left, then publishes `result`. The caller has moved the
    /// stage to `Settling`.
    fn settle<'a>(&'a self, mut state: MutexGuard<'a, State<T>>, result: Result<T, TaskError>) {
        debug_assert_eq!(self.stage(), Stage::Settling);
        loop {
            let callbacks = state.take_callbacks();
            if callbacks.is_empty() {
                state.result = Some(result.map_err(Box::new));
                self.stage.store(Stage::Done as u8, Ordering::Release);
                let waker = state.take_waker();
                // Settled some other way than a cancel: the backend's hook is not wanted.
                let hook = state.take_hook();
                drop(state);
                drop(hook);
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

    /// Waits for `Done` under the lock. Without a driver the waiter first spins a little
    /// (bounded and adaptive, see [`Spin`]): tiny tasks often finish within microseconds, and
    /// a spin is far cheaper than parking and being woken. With one it leads at once: the
    /// driver is what brings the result in.
    fn lock_done(&self, deadline: Option<Instant>) -> MutexGuard<'_, State<T>> {
        let mut state = self.state.lock();
        if self.stage() == Stage::Done {
            return state;
        }
        let driver = state.waiters.as_ref().and_then(|w| w.driver.clone());
        drop(state);
        #[cfg(not(loom))]
        let mut missed = None;
        match driver {
            Some(driver) => driver(&|| self.stage() == Stage::Done, deadline),
            #[cfg(not(loom))]
            None => {
                missed = WAIT_SPIN
                    .with(|spin| {
                        let mut budget = spin.get();
                        let spun = budget.spin_until(|| self.stage() == Stage::Done);
                        spin.set(budget);
                        spun
                    })
                    .err();
            }
            #[cfg(loom)]
            None => {}
        }
        state = self.state.lock();
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
        #[cfg(not(loom))]
        if let Some(missed) = missed {
            WAIT_SPIN.with(|spin| {
                let mut budget = spin.get();
                budget.woken(missed);
                spin.set(budget);
            });
        }
        state
    }
}

#[cfg(not(loom))]
thread_local! {
    /// This thread's spin budget for its blocking waits (see [`Spin`]).
    static WAIT_SPIN: std::cell::Cell<Spin> = std::cell::Cell::new(Spin::default());
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

/// A panicking cancel hook is reported and ignored, like a callback.
fn run_hook(hook: Hook) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(hook)) {
        eprintln!(
            "crew: a cancel hook panicked (ignored): {}",
            panic_message(&*payload)
        );
    }
}

impl<T> Completer<T> {
    fn cell(&self) -> &TaskCell<T> {
        self.shared
            .as_ref()
            .expect("a completer holds its cell until it completes")
    }

    /// Marks the task as running. Returns `false` when the caller cancelled it (or its
    /// deadline passed) meanwhile: the executor must then not run it.
    pub fn start(&self) -> bool {
        self.cell().start()
    }

    /// Publishes the task's outcome and runs its done-callbacks, in this thread. Ignored when
    /// the handle already settled (cancelled, or past its deadline): a late result is dropped.
    pub fn complete(mut self, result: Result<T, TaskError>) {
        if let Some(shared) = self.shared.take() {
            shared.complete(result);
        }
    }

    /// The task's deadline, if it was submitted with one ([`TaskOptions::timeout`]).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the caller cancelled the task (as `oneshot::Sender::is_canceled`): its result is
    /// no longer wanted.
    pub fn is_cancelled(&self) -> bool {
        self.cell().state.lock().cancelled
    }

    /// Whether the handle already has its outcome without this completer: the task was
    /// cancelled or its deadline passed. The executor may drop the work.
    pub fn is_settled(&self) -> bool {
        self.cell().is_settled()
    }

    /// Registers how to stop this task once it was sent or started: `hook` runs once, outside
    /// any lock, in the thread that cancels (or, at the deadline, in the shared timer thread),
    /// after the handle settled. With a hook, [`TaskHandle::cancel`] also succeeds on a running
    /// task (it ends [`TaskError::Cancelled`]); without one a running task cannot be cancelled.
    /// If the task is already cancelled the hook runs at once; if it completes, the hook is
    /// dropped unrun. A second hook replaces the first. Keep hooks short: they run on the
    /// caller's or the timer's thread.
    pub fn on_cancel<H: FnOnce() + Send + 'static>(&self, hook: H) {
        self.cell().on_cancel(Box::new(hook));
    }

    /// Removes the cancel hook: the task can no longer be stopped (a backend that could revoke
    /// it while queued is about to run it on a thread). Call it before
    /// [`start`](Self::start), so that a cancel after the start finds no hook and, as for any
    /// running task that cannot be stopped, returns `false`.
    pub fn clear_on_cancel(&self) {
        let hook = self.cell().state.lock().take_hook();
        drop(hook);
    }
}

impl<T: Send + 'static> Completer<T> {
    /// Settles the handle with [`TaskError::DeadlineExceeded`] when the deadline passes, if
    /// nothing settled it first, and then runs the cancel hook: one shared timer thread serves
    /// every task of every executor. Does nothing without a deadline. For executors that cannot
    /// stop a task themselves (a thread cannot be killed): the task may run on, its late
    /// result is dropped.
    pub fn expire_at_deadline(&self) {
        if let (Some(deadline), Some(cell)) = (self.deadline, &self.shared) {
            expire_at(cell, deadline);
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
        crate::sync::wait_timeout(timeout, |d| self.wait_deadline(d), || self.wait())
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

    /// Whether the task was cancelled.
    pub fn cancelled(&self) -> bool {
        self.done() && self.shared.state.lock().cancelled
    }

    /// Cancels the task. Returns `true` if it is now cancelled (also when it already was).
    ///
    /// A task that has not started is cancelled at once and never runs. A running task is
    /// cancelled only if its executor can stop it (a process pool kills the worker running it
    /// and starts a replacement; see [`Completer::on_cancel`]); a thread cannot be interrupted,
    /// so on a thread pool, as in Python, `cancel()` of a running task returns `false`. A
    /// finished task returns `false`.
    pub fn cancel(&self) -> bool {
        self.shared.cancel()
    }

    /// Calls `callback` with the task's outcome once it is done; at once (in this thread) if it
    /// already is. Callbacks run in the thread that completes the task, in the order they were
    /// added; one that panics is reported on stderr and ignored.
    ///
    /// A callback should be quick and should not block on other tasks: the thread running it
    /// may be the one those tasks need. A process pool's callback may submit and wait (another
    /// worker takes the job), but a remote actor's callback that waits on another call of the
    /// same reference never returns, because it runs on the thread that reads that reference's
    /// replies. Hand such work to another thread or executor instead.
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
        let result = state
            .result
            .take()
            .expect("a done task holds its result")
            .map_err(|error| *error);
        drop(state);
        run_callback(Box::new(callback), &result);
        self.shared.state.lock().result = Some(result.map_err(Box::new));
    }

    /// Lends a blocking waiter of this handle to `driver` before it sleeps (see [`Driver`]).
    pub(crate) fn set_driver(&self, driver: Driver) {
        self.shared.state.lock().waiters().driver = Some(driver);
    }

    /// Whether a blocking waiter would drive the task (see [`set_driver`](Self::set_driver))
    /// rather than just sleep until it is done.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn has_driver(&self) -> bool {
        let state = self.shared.state.lock();
        state.waiters.as_ref().is_some_and(|w| w.driver.is_some())
    }

    fn take(state: &mut MutexGuard<'_, State<T>>) -> Result<T, TaskError> {
        state
            .result
            .take()
            .expect("the result of a task is taken only once, by its handle")
            .map_err(|error| *error)
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
        f.debug_struct("Completer")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

#[cfg(not(loom))]
use crate::sys::spin::Spin;

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;
