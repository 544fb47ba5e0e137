//! The parent's side of one worker process: start it, handshake, talk, kill, reap.

use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::error::{TaskError, WorkerExit, WorkerId};
use crate::process::worker::is_unserved_worker;
use crate::task::codec::{self, write_frame, Frame, FrameReader, ReadError};
use crate::task::protocol::{ToParent, ToWorker, PROTOCOL, WORKER_ENV, WORKER_FD};

/// How long a new worker may take to say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a worker.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChildOptions {
    /// The program to start; `None` is this executable (`/proc/self/exe`).
    pub(crate) program: Option<std::path::PathBuf>,
    /// `RLIMIT_AS` of the worker, in bytes.
    pub(crate) memory_limit: Option<u64>,
    /// Ask for `SIGKILL` when the starting thread dies (only from long-lived threads).
    pub(crate) death_signal: bool,
}

/// A live worker process and its socket.
#[derive(Debug)]
pub(crate) struct Child {
    pid: Pid,
    writer: BufWriter<codec::SocketWriter>,
    stream: UnixStream,
    reader: FrameReader,
    reaped: Option<WorkerExit>,
}

impl Child {
    /// Starts a worker and completes the handshake.
    ///
    /// # Errors
    /// A message saying why the worker could not be started or refused.
    pub(crate) fn start(options: &ChildOptions) -> Result<Child, String> {
        if is_unserved_worker() {
            return Err(format!(
                "this process is a crew worker whose main() did not call crew::init() first \
                 ({WORKER_ENV} is set); call crew::init() at the top of main"
            ));
        }
        let (parent_end, child_end) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|error| format!("cannot create the worker's socket: {error}"))?;
        let child = spawn_process(&child_end, options)
            .map_err(|error| format!("cannot start a worker process: {error}"))?;
        drop(child_end);
        let pid = Pid::from_raw(child.id() as i32);
        // `std::process::Child` would reap on its own terms; crew reaps with waitpid itself.
        drop(child);
        let stream = UnixStream::from(parent_end);
        let writer = stream
            .try_clone()
            .map(|s| BufWriter::with_capacity(64 * 1024, codec::SocketWriter(s)))
            .map_err(|error| format!("cannot clone the worker's socket: {error}"))?;
        let mut worker = Child {
            pid,
            writer,
            stream,
            reader: FrameReader::new(),
            reaped: None,
        };
        match worker.read(Some(Instant::now() + HANDSHAKE_TIMEOUT)) {
            Ok(Frame {
                header: ToParent::Hello { protocol, pid: _ },
                ..
            }) => {
                if let Err(message) = verify_hello(protocol) {
                    worker.kill_and_reap();
                    return Err(message);
                }
                Ok(worker)
            }
            Ok(_) => {
                worker.kill_and_reap();
                Err("the worker did not start with a Hello frame".to_owned())
            }
            Err(error) => {
                let exit = worker.kill_and_reap();
                Err(format!(
                    "worker {} failed before its handshake ({}; {exit}): does this program's \
                     main() call crew::init() first thing?",
                    pid,
                    describe(&error)
                ))
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Queues a frame in the write buffer.
    pub(crate) fn send(&mut self, header: &ToWorker, payload: &[u8]) -> io::Result<()> {
        write_frame(&mut self.writer, header, payload)
    }

    /// Writes out what [`send`](Self::send) buffered.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Reads the next frame from the worker.
    pub(crate) fn read(&mut self, deadline: Option<Instant>) -> Result<Frame<ToParent>, ReadError> {
        self.reader.read(&mut self.stream, deadline)
    }

    /// Whether the worker has closed its end (it died or exited).
    pub(crate) fn hung_up(&self) -> bool {
        codec::peer_hung_up(&self.stream)
    }

    /// Whether a whole reply is buffered.
    pub(crate) fn has_frame(&self) -> bool {
        self.reader.has_frame()
    }

    /// `SIGKILL`s the worker (unless already reaped) and reaps it.
    pub(crate) fn kill_and_reap(&mut self) -> WorkerExit {
        if self.reaped.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
        self.reap()
    }

    /// Waits for the worker to exit and reaps it.
    pub(crate) fn reap(&mut self) -> WorkerExit {
        if let Some(exit) = self.reaped {
            return exit;
        }
        let exit = reap(self.pid);
        self.reaped = Some(exit);
        exit
    }

    /// Closes the socket (the worker reads end of stream and exits 0) and reaps the worker.
    pub(crate) fn retire(mut self) -> WorkerExit {
        self.close();
        self.reap()
    }

    /// Closes the socket: the worker reads end of stream and exits 0.
    pub(crate) fn close(&mut self) {
        let _ = self.writer.flush();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// The error of a call whose worker broke with `error`; the worker is killed and reaped.
    pub(crate) fn failure(&mut self, error: &ReadError) -> TaskError {
        match error {
            ReadError::Malformed(message) => {
                self.kill_and_reap();
                TaskError::Transport {
                    message: format!("worker {} sent {message}; it was replaced", self.pid),
                }
            }
            _ => {
                let exit = self.kill_and_reap();
                TaskError::WorkerDied {
                    worker: WorkerId::local(self.pid()),
                    exit,
                }
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
            self.reap();
        }
    }
}

/// Checks a worker's `Hello` against this process.
///
/// # Errors
/// What differs, and what to do about it.
pub(crate) fn verify_hello(protocol: u32) -> Result<(), String> {
    if protocol != PROTOCOL {
        return Err(format!(
            "worker speaks protocol {protocol}, this process {PROTOCOL}: parent and worker \
             come from different crew versions; rebuild one of them with the other's crew"
        ));
    }
    Ok(())
}

fn describe(error: &ReadError) -> String {
    match error {
        ReadError::Eof => "it closed its socket".to_owned(),
        ReadError::Timeout => "it did not answer in time".to_owned(),
        ReadError::Broken(message) | ReadError::Malformed(message) => message.clone(),
    }
}

/// Blocks until `pid` exits and reaps it.
pub(crate) fn reap(pid: Pid) -> WorkerExit {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return WorkerExit::Code(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return WorkerExit::Signal(signal as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return WorkerExit::Unknown,
        }
    }
}

fn spawn_process(child_end: &OwnedFd, options: &ChildOptions) -> io::Result<std::process::Child> {
    let mut command = match &options.program {
        Some(program) => Command::new(program),
        None => {
            let mut command = Command::new("/proc/self/exe");
            if let Ok(exe) = std::env::current_exe() {
                command.arg0(exe);
            }
            command
        }
    };
    command
        .env(WORKER_ENV, WORKER_FD.to_string())
        .stdin(Stdio::null());
    let ipc_fd = child_end.as_raw_fd();
    let parent_pid = nix::unistd::getpid().as_raw();
    let memory_limit = options.memory_limit;
    let death_signal = options.death_signal;
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (dup2, fcntl, close_range/close, setrlimit, prctl, getppid, _exit) on plain
    // integers captured by value; it allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(move || {
            if ipc_fd == WORKER_FD {
                let flags = libc::fcntl(ipc_fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(ipc_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(ipc_fd, WORKER_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            // Nothing but stdio and the IPC socket crosses into the worker. std's own error
            // pipe to report a failed exec is CLOEXEC and above 3, so closing it is harmless:
            // std then sees a plain exit. Fall back to a loop if close_range is unavailable.
            if libc::syscall(libc::SYS_close_range, WORKER_FD + 1, u32::MAX, 0) != 0 {
                for fd in (WORKER_FD + 1)..4096 {
                    libc::close(fd);
                }
            }
            if let Some(bytes) = memory_limit {
                let limit = libc::rlimit {
                    rlim_cur: bytes as libc::rlim_t,
                    rlim_max: bytes as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if death_signal {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before the prctl took effect.
                if libc::getppid() != parent_pid {
                    libc::_exit(1);
                }
            }
            Ok(())
        });
    }
    command.spawn()
}
