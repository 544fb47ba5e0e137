//! The errors of tasks and of submitting them.

use std::any::Any;
use std::fmt;

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
    /// The task was cancelled: before it started (by `cancel()` or by a shutdown that cancels
    /// pending work), or while running on an executor that can stop it (a process pool kills
    /// the worker running it). Its result, if any, is discarded.
    #[error("task was cancelled (by cancel() or a shutdown that cancels pending work); resubmit it if it is still wanted")]
    Cancelled,
    /// The caller stopped waiting (`result_timeout`, `as_completed`'s or `wait`'s timeout): the
    /// task itself goes on. Wait again, or give the task a deadline
    /// ([`TaskOptions::timeout`](crate::task::TaskOptions::timeout)) to stop it.
    #[error(
        "timed out waiting for the task (it goes on running); wait again or give it a deadline"
    )]
    TimedOut,
    /// The task was stopped at its deadline
    /// ([`TaskOptions::timeout`](crate::task::TaskOptions::timeout) or a pool's `task_timeout`):
    /// it had not started (it never runs), or it was running and was stopped: a process pool
    /// kills the worker (`worker` says which) and starts a replacement; a thread cannot be
    /// killed, so a thread-pool task runs on and its late result is dropped.
    #[error("task was stopped at its deadline{}; raise its timeout or make it faster", on_worker(.worker))]
    DeadlineExceeded {
        /// The worker that was running the task and was stopped, if it had started on one.
        worker: Option<WorkerId>,
    },
    /// The executor shut down (or broke) before the task could finish; submit to a live executor.
    #[error("executor shut down before the task finished")]
    Shutdown,
    /// The worker's initializer panicked, so the pool cannot run tasks; fix the initializer.
    #[error("worker initializer failed: {message}; the pool is broken")]
    InitializerFailed {
        /// The initializer's panic message.
        message: String,
    },
    /// The worker running the task died; the pool replaced it. Other tasks are unaffected.
    #[error("worker {worker} died ({}) while running the task; the pool replaced it, resubmit the task if it is safe to run again", describe_exit(.exit))]
    WorkerDied {
        /// Which worker: its process id and, for a remote worker, its node.
        worker: WorkerId,
        /// How it ended; `None` when that could not be observed.
        exit: Option<ExitStatus>,
    },
    /// The worker has no task of this name: the function is not marked `#[crew::task]` (with
    /// the same `name = ...`) in the program the worker runs, or that program is another one.
    #[error("the worker has no task named `{task}`: mark the function #[crew::task] in the worker's program (with the same name) and rebuild it")]
    UnknownTask {
        /// The task's registered name.
        task: String,
    },
    /// The worker's task of this name has another signature (argument or result type, or crew
    /// version): the two processes run different code. The message says what differs.
    #[error("task `{task}` differs between this process and the worker: {message}; run the same code on both sides")]
    Incompatible {
        /// The task's registered name.
        task: String,
        /// What differs.
        message: String,
    },
    /// Moving the task, its argument or its result between processes or machines failed
    /// (encoding, a malformed frame). The message says which.
    #[error("task transport failed: {message}")]
    Transport {
        /// What went wrong.
        message: String,
    },
    /// The executor refused the task (it was shut down, full or broken); see the inner error.
    #[error(transparent)]
    Rejected(#[from] SubmitError),
    /// An actor call could not be made: the actor is missing, stopped, or called itself; see
    /// the inner error.
    #[error(transparent)]
    Actor(#[from] crate::actor::ActorError),
}

fn describe_exit(exit: &Option<ExitStatus>) -> String {
    exit.map_or_else(
        || "its exit status is unknown".to_owned(),
        |exit| exit.to_string(),
    )
}

/// Where a task ran: a worker process, local or on another node.
///
/// Displays as `pid 123` for a local worker and `pid 123 on node-a` for a remote one.
///
/// ```
/// use crew::WorkerId;
///
/// assert_eq!(WorkerId::local(123).to_string(), "pid 123");
/// assert_eq!(WorkerId::remote("node-a", 123).to_string(), "pid 123 on node-a");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerId {
    node: Option<String>,
    pid: u32,
}

impl WorkerId {
    /// A worker process on this machine.
    pub fn local(pid: u32) -> Self {
        Self { node: None, pid }
    }

    /// A worker process on the node `node` (a host or node name).
    pub fn remote(node: impl Into<String>, pid: u32) -> Self {
        Self {
            node: Some(node.into()),
            pid,
        }
    }

    /// The worker's process id (on its node).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The worker's node, `None` for a local worker.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if let Some(node) = &self.node {
            write!(f, " on {node}")?;
        }
        Ok(())
    }
}

fn on_worker(worker: &Option<WorkerId>) -> String {
    match worker {
        Some(worker) => format!(" (worker {worker} was killed and replaced)"),
        None => String::new(),
    }
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
