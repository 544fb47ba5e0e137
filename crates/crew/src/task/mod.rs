//! The task layer every executor stands on: handles and completers, task identity and
//! compatibility, per-task options, the codec, the frames and the worker protocol.
//!
//! The thread pool, the process pool and `process::spawn` are built from these parts, and so
//! can an executor outside this crate (a cluster, an actor system, a test double): everything
//! here is public.
//!
//! # Design note, for whoever writes the next backend
//!
//! **Handles and completers.** A task is a pair made by [`pair`] (or [`pair_with`], which also
//! fixes the task's deadline): the caller keeps the [`TaskHandle`], the executor the
//! [`Completer`]. The handle moves `Pending → Running → Done`; the executor calls
//! [`Completer::start`] when a worker takes the task (and must skip it when that returns
//! `false`: the caller cancelled it or its deadline passed) and [`Completer::complete`] exactly
//! once with the outcome. A completer dropped unused settles the handle (`Cancelled` if it
//! never started, `Shutdown` otherwise), so a crashed or torn-down backend never leaves a
//! caller waiting. Done-callbacks run in the thread that completes; keep that thread one that
//! may run user code. The state machine and its proofs are in the `handle` module's note.
//!
//! **Failures.** Report them with [`TaskError`](crate::TaskError): `Panicked` for the task's
//! own panic, `WorkerDied { worker, exit }` when the worker running it died (a
//! [`WorkerId`](crate::WorkerId) names a local pid or a pid on a node), `DeadlineExceeded`
//! when you stopped it at its deadline, `UnknownTask` / `Incompatible` when the worker does not
//! run the same task, `Transport` when bytes could not be moved.
//!
//! **Cancellation.** [`TaskHandle::cancel`] settles a pending task at once. To let callers
//! cancel a task you already sent (or started), register [`Completer::on_cancel`]: the hook
//! runs once after the handle settled as cancelled, and should revoke the work (drop it from a
//! remote queue, kill the worker). Without a hook a running task cannot be cancelled, as with
//! Python's threads. Backends that poll instead ask [`Completer::is_cancelled`] /
//! [`Completer::is_settled`].
//!
//! **Deadlines.** [`TaskOptions`] carries a per-task timeout, fixed into a deadline at
//! submission ([`Completer::deadline`]). A backend must not start a task past its deadline,
//! and should stop a running one at the deadline with `DeadlineExceeded` naming the worker (the
//! process pool kills the worker). A backend that cannot stop work calls
//! [`Completer::expire_at_deadline`]: one shared timer thread settles the handle at the
//! deadline (and runs the cancel hook); the late result is dropped. `TaskError::TimedOut` is
//! something else: the *caller* stopped waiting (`result_timeout`), the task goes on.
//!
//! **Identity and compatibility.** A function becomes a task with `#[crew::task]`, which
//! registers the `TypeId` of the function item's own type under a stable name (by default
//! `module_path::name`, or `#[crew::task(name = "...")]`). [`TaskInfo::of`] finds it from the
//! function the caller passed ([`TaskFn`]) without ever looking at an address; closures and
//! `fn` pointers are simply not registered and get a clear `Unsupported` error. Each task has
//! a signature hash ([`TaskInfo::signature`]: FNV-1a of its name, its argument and result type
//! names and crew's version, stable across Rust versions). Send name and signature with every
//! call; the worker runs it through [`run_call`], which refuses an unknown name or a different
//! signature with an outcome the caller turns into an error naming the task. There is no build
//! id: any program that registers the same tasks serves, wherever and whenever it was built.
//! (`type_name` strings can change with the compiler; then the same code built by two
//! compilers is refused task by task, which is the safe side.)
//!
//! **Bytes.** [`codec`] encodes values with postcard and frames them on a byte stream as
//! `[header length][payload length][header][payload]`; [`protocol`] holds the messages and the
//! worker protocol's note.

pub mod codec;
mod handle;
mod options;
pub mod protocol;
mod registry;
mod timer;

pub use handle::{pair, pair_with, Completer, TaskHandle};
pub use options::TaskOptions;
pub use registry::{run_call, TaskEntry, TaskFn, TaskInfo};

pub(crate) use handle::Driver;
pub(crate) use handle::{expire_at, task_with, Shared};
pub(crate) use registry::outcome_error;
// The process pool's tests check the signature hash directly.
#[cfg(all(test, not(loom)))]
pub(crate) use registry::signature as signature_of;
// The actor placement signs an actor's method table with the same hash as a task.
pub(crate) use registry::{signature as signature_hash, CREW_VERSION};

#[doc(hidden)]
pub use registry::{call_chunk, call_one, type_id_of};
