//! An [`Executor`] written outside crew with nothing but crew's public API: one thread per task,
//! at most `limit` running at once, with deadlines and cancellation.
//!
//! It exists to prove that the task layer ([`crew::task`](mod@crew::task)) is enough to add a backend: make a
//! handle and its completer ([`task::pair_with`]), honour the deadline (skip a task that is
//! late, let the shared timer settle one that overruns), revoke a pending task through the
//! completer's cancel hook, report panics with [`TaskError::Panicked`]. Its tests drive it
//! through the generic `Executor` API only. The `sig_a` and `sig_b` programs are worker
//! programs for the process-pool compatibility tests (`tests/integration/workers.rs`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crew::task::{self, Completer, TaskFn, TaskOptions};
use crew::{Executor, Message, SubmitError, TaskError, TaskHandle};
use parking_lot::{Condvar, Mutex};

/// One thread per task, at most `limit` of them running; the others wait (pending, so
/// cancellable) for a turn.
///
/// ```
/// use crew::Executor;
/// use crew_conformance::ThreadPerTask;
///
/// fn double(x: u64) -> u64 {
///     2 * x
/// }
///
/// let executor = ThreadPerTask::new(2);
/// assert_eq!(executor.submit(double, 21).unwrap().result().unwrap(), 42);
/// ```
#[derive(Debug)]
pub struct ThreadPerTask {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    limit: usize,
    state: Mutex<State>,
    turn: Condvar,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    shut_down: bool,
    /// Set by `shutdown(_, cancel_pending = true)`: waiting tasks give up.
    cancel_pending: bool,
}

impl ThreadPerTask {
    /// An executor running at most `limit` tasks at once.
    ///
    /// # Panics
    /// If `limit` is 0.
    #[track_caller]
    pub fn new(limit: usize) -> Self {
        assert!(limit > 0, "ThreadPerTask::new: limit must be at least 1");
        Self {
            shared: Arc::new(Shared {
                limit,
                state: Mutex::new(State::default()),
                turn: Condvar::new(),
            }),
            threads: Mutex::new(Vec::new()),
        }
    }

    fn start<R, W>(&self, options: &TaskOptions, work: W) -> Result<TaskHandle<R>, SubmitError>
    where
        R: Send + 'static,
        W: FnOnce() -> R + Send + 'static,
    {
        if self.shared.state.lock().shut_down {
            return Err(SubmitError::Shutdown);
        }
        let (handle, completer) = task::pair_with::<R>(options);
        // A thread cannot be killed: the shared timer settles an overrunning task's handle.
        completer.expire_at_deadline();
        // Revoke a pending task: its thread stops waiting for a turn.
        let revoked = Arc::new(AtomicBool::new(false));
        let (flag, shared) = (revoked.clone(), self.shared.clone());
        completer.on_cancel(move || {
            flag.store(true, Ordering::SeqCst);
            let _guard = shared.state.lock();
            shared.turn.notify_all();
        });
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("thread-per-task".to_owned())
            .spawn(move || run(&shared, &revoked, completer, work))
            .map_err(|error| SubmitError::Unsupported {
                message: format!("cannot start a thread: {error}"),
            })?;
        self.threads.lock().push(thread);
        Ok(handle)
    }
}

/// Waits for a turn, then runs `work` unless the task was revoked or is past its deadline.
fn run<R, W>(shared: &Shared, revoked: &AtomicBool, completer: Completer<R>, work: W)
where
    W: FnOnce() -> R,
{
    let mut state = shared.state.lock();
    loop {
        if revoked.load(Ordering::SeqCst) || state.cancel_pending {
            return; // dropping the completer settles a pending task as cancelled
        }
        if state.running < shared.limit {
            break;
        }
        shared.turn.wait(&mut state);
    }
    state.running += 1;
    drop(state);
    let late = completer.deadline().is_some_and(|d| Instant::now() >= d);
    // From here on the task is on its thread, which cannot be interrupted: a cancel of the
    // running task must find no hook (and return `false`, as Python's does).
    completer.clear_on_cancel();
    if completer.start() {
        if late {
            completer.complete(Err(TaskError::DeadlineExceeded { worker: None }));
        } else {
            let result = catch_unwind(AssertUnwindSafe(work)).map_err(|payload| {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic".to_owned());
                TaskError::Panicked { message }
            });
            completer.complete(result);
        }
    }
    let mut state = shared.state.lock();
    state.running -= 1;
    shared.turn.notify_all();
}

impl Executor for ThreadPerTask {
    fn submit_with<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
        options: TaskOptions,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.start(&options, move || f(arg))
    }

    fn try_submit<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.submit(f, arg)
    }

    fn submit_chunk<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        args: Vec<A>,
        options: TaskOptions,
    ) -> Result<TaskHandle<Vec<R>>, SubmitError> {
        self.start(&options, move || args.into_iter().map(f).collect())
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        {
            let mut state = self.shared.state.lock();
            state.shut_down = true;
            state.cancel_pending |= cancel_pending;
            self.shared.turn.notify_all();
        }
        if wait {
            let current = std::thread::current().id();
            let threads = std::mem::take(&mut *self.threads.lock());
            for thread in threads {
                if thread.thread().id() != current {
                    let _ = thread.join();
                }
            }
        }
    }

    fn max_workers(&self) -> usize {
        self.shared.limit
    }
}

impl Drop for ThreadPerTask {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}
