//! The errors of tasks and of submitting them.

use std::any::Any;

use crate::exit::ExitStatus;

/// Why a task produced no value.
///
/// Every executor reports failures with this one type, so code that handles a thread-pool task
/// handles a process-pool or cluster task the same way. It is `Clone` so that the failure of a
/// chunk of `map` can be reported for each item of the chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; the message is the panic payload when it was a string.
    /// The pool and the caller are unharmed: fix the task or handle the error.
    #[error("task panicked: {message}")]
    Panicked {
        /// The panic message (or a placeholder when the payload was not a string).
        message: String,
    },
    /// The task was cancelled before it started (by `cancel()` or by a shutdown that cancels
    /// pending work); it never ran.
    #[error("task was cancelled before it started")]
    Cancelled,
    /// The task did not finish within its time limit (a `result_timeout`, a `wait` deadline or a
    /// per-task timeout of a process pool). Raise the limit or make the task faster.
    #[error("task timed out")]
    TimedOut,
    /// The executor shut down (or broke) before the task could finish; submit to a live executor.
    #[error("executor shut down before the task finished")]
    Shutdown,
    /// The worker's initializer panicked, so the pool cannot run tasks; fix the initializer.
    #[error("worker initializer failed: {message}; the pool is broken")]
    InitializerFailed {
        /// The initializer's panic message.
        message: String,
    },
    /// The worker process running the task died; the pool replaced it. Other tasks are unaffected.
    #[error("worker process {pid} died ({}) while running the task", describe_exit(.exit))]
    WorkerDied {
        /// Process id of the dead worker.
        pid: u32,
        /// How it ended; `None` when that could not be observed.
        exit: Option<ExitStatus>,
    },
    /// Moving the task, its argument or its result between processes or machines failed
    /// (encoding, a malformed frame, an unknown task name, a mismatched build). The message says which.
    #[error("task transport failed: {message}")]
    Transport {
        /// What went wrong.
        message: String,
    },
    /// The executor refused the task (it was shut down, full or broken); see the inner error.
    #[error(transparent)]
    Rejected(#[from] SubmitError),
}

fn describe_exit(exit: &Option<ExitStatus>) -> String {
    exit.map_or_else(
        || "its exit status is unknown".to_owned(),
        |exit| exit.to_string(),
    )
}

/// Why `submit` (or `try_submit`) refused a task. Nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The executor was shut down; submit to a live one.
    #[error("executor is shut down; no new tasks are accepted")]
    Shutdown,
    /// The task queue is at its bound (only from `try_submit`); retry later or use blocking `submit`.
    #[error("task queue is full; retry later or use the blocking submit")]
    Full,
    /// The pool is broken because a worker initializer failed; fix the initializer.
    #[error("pool is broken: worker initializer failed: {message}")]
    Broken {
        /// The initializer's panic message.
        message: String,
    },
    /// The executor cannot run this task (for example a function not registered with
    /// `#[crew::task]` on a process pool); the message says what to change.
    #[error("task cannot be submitted: {message}")]
    Unsupported {
        /// What is missing.
        message: String,
    },
}

/// The message of a panic payload, as `std` prints it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any> (a non-string panic payload)".to_owned()
    }
}
