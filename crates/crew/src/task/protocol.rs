//! The worker protocol: how a parent and a worker process talk.
//!
//! # Design note
//!
//! One mechanism serves the [`ProcessPool`](crate::ProcessPool) and
//! [`spawn`](crate::process::spawn): a *worker* is a program that registers the same tasks,
//! by default the parent's own executable started again (`/proc/self/exe`; another path with
//! [`ProcessPoolBuilder::worker_program`](crate::ProcessPoolBuilder::worker_program)), with
//! one end of a Unix `socketpair` as its descriptor 3 and the environment variable
//! `CREW_WORKER=3`. Its `main` calls [`crew::init()`](crate::init) first thing, which sees the
//! variable, serves the protocol below and exits; in the parent `init()` returns at once.
//!
//! **Start.** The child is started with `posix_spawn` (glibc's `vfork`+`exec`, never a bare
//! `fork` of the threaded parent, and no copy of its page tables): its file actions move the
//! IPC socket to descriptor 3 and close every other descriptor above 2 (nothing leaks in, seed
//! 001's pitfall). Pool workers ask for `SIGKILL` when the parent thread that started them
//! dies (`PR_SET_PDEATHSIG`) first thing in `init()`, told so by `CREW_WORKER_PARENT`, and
//! exit if that parent is already gone. With a memory limit (`RLIMIT_AS`), which only the
//! child can set before `exec`, the start is `fork`+`exec` with all of the above done between
//! the two, in the child only and with async-signal-safe calls. A worker also
//! runs a watchdog thread that exits the process as soon as its socket's peer hangs up, so a
//! worker never outlives its parent even in the middle of a long task.
//!
//! **Frames.** Both directions carry length-prefixed frames (the codec module): a small
//! postcard header (`ToWorker`, `ToParent`) and an opaque payload (an encoded argument or
//! result), so a 100 MB argument is copied, never re-encoded.
//!
//! **Handshake.** The worker speaks first: `Hello { protocol, pid }`. The parent checks the
//! protocol version and refuses a worker that speaks another one with a clear error, before any
//! task is sent. A child that exits before its `Hello` most likely did not call `crew::init()`
//! at the top of `main`; the error says so.
//!
//! **Compatibility is checked per task, by what runs.** Every `Call` carries the task's name and
//! its signature hash (name, argument and result type names, crew's version; see
//! [`TaskInfo::signature`](crate::task::TaskInfo::signature)). The worker runs the call only if
//! it has a task of that name with that signature; otherwise it answers `UnknownTask` or
//! `Mismatch` (with its own types and version, so the parent's error says what differs). So
//! the same code built elsewhere (another path, another mtime, another machine) serves the
//! parent, and a changed task is refused by name while the other tasks go on.
//!
//! **States of a worker, seen from the parent.**
//!
//! ```text
//!  Starting ──Hello ok──▶ Idle ──Call──▶ Busy(n calls in flight) ──Done (n-1 left)──▶ … Idle
//!     │                    │ ▲               │                       │
//!     │ bad Hello / exit   │ └─Init/InitDone─┘                       │ max_tasks_per_child
//!     ▼                    ▼                                         ▼
//!   Failed               Retiring: socket closed → worker reads EOF, exits 0 → reaped
//! ```
//!
//! The worker answers calls strictly in order, one at a time. Calls reach a worker from its
//! slot's thread or, while the slot is idle, straight from the submitting thread or from a
//! caller that just read its own reply and passes a queued call on (the pool's "Idle workers"
//! and "A waiting caller leads" notes); either way one writer at a time, one frame per call,
//! and one reader at a time (the slot's thread, or the caller blocked on that call). A pool
//! may pipeline several
//! calls to one worker when its queue has a backlog (they wait in the socket buffer, never
//! started); a call with a timeout is always sent alone, so its clock is the worker's.
//!
//! **Death and timeouts.** End of stream, a broken read or a malformed frame all mean the worker
//! is gone or untrustworthy: the parent kills it (`SIGKILL`), reaps it (`waitpid`, so no zombie)
//! and fails only the call the worker was running with
//! [`WorkerDied`](crate::TaskError::WorkerDied) (exit code or signal) or
//! [`Transport`](crate::TaskError::Transport) for a malformed frame. The calls queued behind it
//! had not started; they are sent again to the replacement. When a call's timeout passes, the
//! parent kills the worker the same way and fails the call with
//! [`DeadlineExceeded`](crate::TaskError::DeadlineExceeded). A panic inside a task is caught in the worker and
//! reported as `Done { outcome: Panicked }`; the worker lives on.

use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change of the messages below.
pub const PROTOCOL: u32 = 2;

/// The environment variable that makes a process a worker; its value is the IPC descriptor.
pub(crate) const WORKER_ENV: &str = "CREW_WORKER";

/// Set (to the parent's pid) when the worker must ask for `SIGKILL` at its parent thread's
/// death itself, first thing in `init()`: a worker started by `posix_spawn` cannot have it set
/// between `fork` and `exec`.
pub(crate) const PARENT_ENV: &str = "CREW_WORKER_PARENT";

/// The descriptor number of the IPC socket in a worker.
pub(crate) const WORKER_FD: i32 = 3;

/// Parent → worker. The payload follows the header in the same frame.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// Run the task `name` on the payload (a `Vec` of arguments when `chunk`).
    Call {
        /// Answered in the `Done` with the same id.
        id: u64,
        /// The task's registered name.
        name: String,
        /// The caller's signature hash of the task.
        signature: u64,
        /// Whether the payload is a `Vec` of arguments.
        chunk: bool,
    },
    /// Run the initializer `name` on the payload once, before any call.
    Init {
        /// The initializer's registered name.
        name: String,
        /// The caller's signature hash of the initializer.
        signature: u64,
    },
}

/// Worker → parent.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToParent {
    /// The worker's first frame.
    Hello {
        /// The worker's [`PROTOCOL`].
        protocol: u32,
        /// The worker's process id.
        pid: u32,
    },
    /// The call `id` finished; with `Outcome::Ok` the payload is the encoded result.
    Done {
        /// The id of the call.
        id: u64,
        /// How it ended.
        outcome: Outcome,
    },
    /// The initializer finished.
    InitDone {
        /// How it ended.
        outcome: Outcome,
    },
}

/// How a call ended inside the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Outcome {
    /// It returned; the payload holds the result.
    Ok,
    /// It panicked with this message; the worker is fine.
    Panicked(String),
    /// It could not run: undecodable argument, unencodable result.
    Failed(String),
    /// The worker has no task of this name.
    UnknownTask,
    /// The worker's task of this name has another signature: here are its types and version.
    Mismatch {
        /// The worker's argument type name.
        argument: String,
        /// The worker's result type name.
        result: String,
        /// The worker's crew version.
        version: String,
    },
}
