//! [`spawn`] and [`Process`]: Python's `multiprocessing.Process`, one function call in a child
//! process, over the same worker protocol as the pool.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustix::process::Signal;

use crate::error::{TaskError, WorkerId};
use crate::executor::Message;
use crate::exit::ExitStatus;
use crate::process::child::{Child, ChildOptions};
use crate::sys::supervise::Supervised;
use crate::task::codec::{self, ReadError};
use crate::task::protocol::{Outcome, ToParent, ToWorker};
use crate::task::{outcome_error, pair, TaskFn, TaskHandle, TaskInfo};

/// Runs `f(arg)` in a new child process and returns at once; `f` must be a `#[crew::task]`.
///
/// The child is this executable started again (its `main` must call [`crew::init()`](crate::init)
/// first); its standard output and error are the parent's. It exits when `f` returns.
///
/// ```no_run
/// #[crew::task]
/// fn run_proc(name: String) -> u32 {
///     println!("Run child process {name} ({})...", std::process::id());
///     std::process::id()
/// }
///
/// fn main() {
///     crew::init();
///     let p = crew::process::spawn(run_proc, "test".to_owned()).unwrap();
///     let child_pid = p.pid();
///     assert_eq!(p.join().unwrap(), child_pid);
/// }
/// ```
///
/// # Errors
/// `InvalidInput` when `f` is not a `#[crew::task]` or `arg` cannot be encoded; otherwise the
/// reason the child could not be started.
pub fn spawn<A: Message, R: Message, F: TaskFn<A, R>>(f: F, arg: A) -> io::Result<Process<R>> {
    let task = TaskInfo::of(&f)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))?;
    let payload = codec::encode(&arg)
        .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
    // No PR_SET_PDEATHSIG: it is tied to the calling thread, which may be short-lived. The
    // child's watchdog exits it when this process (its socket peer) goes away.
    let mut child =
        Child::start(&ChildOptions::default()).map_err(|error| io::Error::other(error.message))?;
    let header = ToWorker::Call {
        id: 0,
        name: task.name().to_owned(),
        signature: task.signature(),
        chunk: false,
    };
    child.send(&header, &payload)?;
    child.flush()?;
    let pid = child.pid();
    let process = child.process();
    let (handle, completer) = pair::<R>();
    std::thread::Builder::new()
        .name(format!("crew-process-{pid}"))
        .spawn(move || {
            completer.start();
            let result = match child.read(None) {
                Ok(frame) => match frame.header {
                    ToParent::Done {
                        outcome: Outcome::Ok,
                        ..
                    } => codec::decode::<R>(&frame.payload)
                        .map_err(|message| TaskError::Transport { message }),
                    ToParent::Done { outcome, .. } => Err(outcome_error(task, outcome)),
                    other => Err(TaskError::Transport {
                        message: format!("unexpected {other:?} from the child"),
                    }),
                },
                Err(ReadError::Eof | ReadError::Timeout | ReadError::Broken(_)) => {
                    Err(TaskError::WorkerDied {
                        worker: WorkerId::local(pid),
                        exit: None,
                    })
                }
                Err(ReadError::Malformed(message)) => Err(TaskError::Transport { message }),
            };
            // Let the child exit (end of stream) and reap it; the supervisor makes sure that
            // `kill()` never signals a recycled pid.
            child.close();
            let exit = child.reap();
            let result = match result {
                Err(TaskError::WorkerDied { worker, .. }) => {
                    Err(TaskError::WorkerDied { worker, exit })
                }
                other => other,
            };
            completer.complete(result);
        })?;
    Ok(Process {
        pid,
        handle,
        process,
    })
}

/// A child process running one function: Python's `multiprocessing.Process` after `start()`.
///
/// Dropping it detaches the child: it runs on and is reaped when it ends. A child never outlives
/// this process.
#[must_use = "a dropped Process detaches its child; keep it to join"]
pub struct Process<R> {
    pid: u32,
    handle: TaskHandle<R>,
    process: Arc<Supervised>,
}

impl<R> Process<R> {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the child to exit and returns its function's result.
    ///
    /// # Errors
    /// [`TaskError::Panicked`] if the function panicked; [`TaskError::WorkerDied`] with the
    /// signal or exit code if the child died first (killed, terminated, crashed, `exit(n)`).
    pub fn join(self) -> Result<R, TaskError> {
        self.handle.result()
    }

    /// Waits at most `timeout`: the result if the child finished, the `Process` back if not.
    ///
    /// # Errors
    /// `Err(self)` if the child is still running.
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<R, TaskError>, Self> {
        if self.handle.wait_timeout(timeout) {
            Ok(self.handle.result())
        } else {
            Err(self)
        }
    }

    /// Whether the child has not exited yet.
    pub fn is_alive(&self) -> bool {
        self.process.status().is_none()
    }

    /// How the child ended (`None` while it runs): Python's `exitcode`.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.process.status()
    }

    /// Sends `SIGTERM` (Python's `terminate()`); a no-op once the child has exited.
    pub fn terminate(&self) {
        self.signal(Signal::TERM);
    }

    /// Sends `SIGKILL` (Python's `kill()`); a no-op once the child has exited.
    pub fn kill(&self) {
        self.signal(Signal::KILL);
    }

    fn signal(&self, signal: Signal) {
        // The supervisor skips a reaped child, so a recycled pid is never signalled.
        let _ = self.process.signal(signal);
    }
}

impl<R> fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("exit_status", &self.exit_status())
            .finish()
    }
}
