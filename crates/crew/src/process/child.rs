//! The parent's side of one worker process: start it, handshake, talk, kill, reap.

use std::ffi::CString;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{TaskError, WorkerId};
use crate::exit::ExitStatus;
use crate::process::worker::is_unserved_worker;
use crate::sys::socket;
use crate::sys::supervise::{Setup, Supervised};
use crate::task::codec::{self, write_frame, Frame, FrameReader, ReadError};
use crate::task::protocol::{ToParent, ToWorker, PARENT_ENV, PROTOCOL, WORKER_ENV, WORKER_FD};
use rustix::event::PollFlags;
use rustix::process::Pid;

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

/// Why a worker did not start.
#[derive(Debug)]
pub(crate) struct StartError {
    /// What happened, and what to do about it.
    pub(crate) message: String,
    /// A signal killed it before its handshake (from outside: a killer, the OOM killer, or a
    /// crash at start-up): another start may succeed. Otherwise it cannot start or refused, and
    /// starting it again would do the same.
    pub(crate) killed: bool,
}

impl StartError {
    fn fatal(message: String) -> Self {
        Self {
            message,
            killed: false,
        }
    }
}

/// A live worker process and its socket.
#[derive(Debug)]
pub(crate) struct Child {
    process: Arc<Supervised>,
    writer: BufWriter<codec::SocketWriter>,
    /// Shared with a submitter that sends a call straight to the idle worker (see the pool).
    stream: Arc<UnixStream>,
    reader: FrameReader,
}

impl Child {
    /// Starts a worker and completes the handshake.
    ///
    /// # Errors
    /// Why the worker could not be started or refused, and whether a signal killed it.
    pub(crate) fn start(options: &ChildOptions) -> Result<Child, StartError> {
        if is_unserved_worker() {
            return Err(StartError::fatal(format!(
                "this process is a crew worker whose main() did not call crew::init() first \
                 ({WORKER_ENV} is set); call crew::init() at the top of main"
            )));
        }
        let (parent_end, child_end) = socket::socketpair().map_err(|error| {
            StartError::fatal(format!("cannot create the worker's socket: {error}"))
        })?;
        let process = spawn_process(&child_end, options).map_err(|error| {
            StartError::fatal(format!("cannot start a worker process: {error}"))
        })?;
        drop(child_end);
        let process = Arc::new(process);
        let pid = process.pid();
        let stream = UnixStream::from(parent_end);
        let writer = stream
            .try_clone()
            .map(|s| BufWriter::with_capacity(64 * 1024, codec::SocketWriter(s)))
            .map_err(|error| {
                StartError::fatal(format!("cannot clone the worker's socket: {error}"))
            })?;
        let mut worker = Child {
            process,
            writer,
            stream: Arc::new(stream),
            reader: FrameReader::new(),
        };
        match worker.read(Some(Instant::now() + HANDSHAKE_TIMEOUT)) {
            Ok(Frame {
                header: ToParent::Hello { protocol, pid: _ },
                ..
            }) => {
                if let Err(message) = verify_hello(protocol) {
                    worker.kill_and_reap();
                    return Err(StartError::fatal(message));
                }
                Ok(worker)
            }
            Ok(_) => {
                worker.kill_and_reap();
                Err(StartError::fatal(
                    "the worker did not start with a Hello frame".to_owned(),
                ))
            }
            Err(error) => {
                // Reaped after the kill: a worker that had closed its socket keeps the status
                // it ended with (a signal that reaches an exiting process changes nothing).
                let exit = worker.kill_and_reap();
                let signalled = exit.and_then(ExitStatus::signal).is_some();
                if signalled && !matches!(error, ReadError::Timeout) {
                    let exit = exit.map_or_else(String::new, |exit| exit.to_string());
                    return Err(StartError {
                        message: format!("worker {pid} was {exit} before its handshake"),
                        killed: true,
                    });
                }
                // It exited on its own (or never answered): it ran this program's main()
                // without serving as a worker.
                let exit = exit.map_or_else(|| "exit unknown".to_owned(), |exit| exit.to_string());
                Err(StartError::fatal(format!(
                    "worker {} failed before its handshake ({}; {exit}): does this program's \
                     main() call crew::init() first thing?",
                    pid,
                    describe(&error)
                )))
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The worker's supervisor, to signal it from another thread (a no-op once reaped).
    pub(crate) fn process(&self) -> Arc<Supervised> {
        self.process.clone()
    }

    /// The worker's socket, for sending to it while this side is idle (nothing buffered).
    pub(crate) fn stream(&self) -> Arc<UnixStream> {
        self.stream.clone()
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
        self.reader.read(&mut &*self.stream, deadline)
    }

    /// Lends the frame buffer out (to a caller reading its own reply while the pool's slot is
    /// parked); [`put_reader`](Self::put_reader) gives it back before the next read here.
    pub(crate) fn take_reader(&mut self) -> FrameReader {
        std::mem::take(&mut self.reader)
    }

    /// Takes back the frame buffer lent by [`take_reader`](Self::take_reader).
    pub(crate) fn put_reader(&mut self, reader: FrameReader) {
        self.reader = reader;
    }

    /// Whether the worker has closed its end (it died or exited).
    pub(crate) fn hung_up(&self) -> bool {
        codec::peer_hung_up(&*self.stream)
    }

    /// Whether the worker has sent something or hung up, right now (without consuming it):
    /// with nothing in flight, it died or is confused.
    pub(crate) fn stirred(&self) -> bool {
        !self.reader.is_empty()
            || socket::ready_now(&*self.stream, PollFlags::IN | PollFlags::RDHUP)
    }

    /// Whether a whole reply is buffered.
    pub(crate) fn has_frame(&self) -> bool {
        self.reader.has_frame()
    }

    /// `SIGKILL`s the worker (unless already reaped) and reaps it; `None` if its end could not
    /// be observed.
    pub(crate) fn kill_and_reap(&mut self) -> Option<ExitStatus> {
        self.process.kill_and_reap().ok()
    }

    /// Waits for the worker to exit and reaps it.
    pub(crate) fn reap(&mut self) -> Option<ExitStatus> {
        self.process.reap().ok()
    }

    /// Closes the socket (the worker reads end of stream and exits 0) and reaps the worker.
    pub(crate) fn retire(mut self) -> Option<ExitStatus> {
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
                    message: format!("worker {} sent {message}; it was replaced", self.pid()),
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
        if self.process.status().is_none() {
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

/// Starts the worker process; its supervisor reaps it.
///
/// Without a memory limit this is `posix_spawn` (glibc's is a `vfork`: the parent's page
/// tables are not copied, so a start costs the same in a process of 10 MB or 10 GB), with the
/// socket placed at [`WORKER_FD`] and every descriptor above it closed by the spawn's file
/// actions, standard input from `/dev/null`, the signal mask emptied and `SIGPIPE` back to its
/// default (as `std::process::Command` does). The death signal, which `posix_spawn` cannot
/// set, the worker asks for itself first thing in [`crate::init`] ([`PARENT_ENV`]). A memory
/// limit needs `setrlimit` between `fork` and `exec`: that start goes through
/// `std::process::Command` and [`Setup`].
fn spawn_process(child_end: &OwnedFd, options: &ChildOptions) -> io::Result<Supervised> {
    if options.memory_limit.is_none() {
        let pid = posix_spawn_worker(child_end, options)?;
        return Ok(Supervised::of_pid(pid));
    }
    let child = command_spawn(child_end, options)?;
    // The supervisor reaps; `std::process::Child` is dropped without waiting.
    Ok(Supervised::of(&child))
}

/// The program to start and its `argv[0]`.
fn program(options: &ChildOptions) -> (PathBuf, PathBuf) {
    match &options.program {
        Some(program) => (program.clone(), program.clone()),
        None => {
            let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
            (PathBuf::from("/proc/self/exe"), exe)
        }
    }
}

fn c_string(bytes: impl Into<Vec<u8>>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a worker's program path or environment contains a NUL byte",
        )
    })
}

/// `posix_spawn` of a worker; see [`spawn_process`].
fn posix_spawn_worker(child_end: &OwnedFd, options: &ChildOptions) -> io::Result<Pid> {
    let (program, arg0) = program(options);
    let program = c_string(program.into_os_string().into_vec())?;
    let arg0 = c_string(arg0.into_os_string().into_vec())?;
    let mut environment = Vec::new();
    for (key, value) in std::env::vars_os() {
        if key == WORKER_ENV || key == PARENT_ENV {
            continue;
        }
        let mut entry = key.into_vec();
        entry.push(b'=');
        entry.extend(value.into_vec());
        environment.push(c_string(entry)?);
    }
    environment.push(c_string(format!("{WORKER_ENV}={WORKER_FD}"))?);
    if options.death_signal {
        environment.push(c_string(format!("{PARENT_ENV}={}", std::process::id()))?);
    }
    let argv = [arg0.as_ptr().cast_mut(), std::ptr::null_mut()];
    let envp: Vec<*mut libc::c_char> = environment
        .iter()
        .map(|entry| entry.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let mut actions = SpawnActions::new()?;
    let mut attributes = SpawnAttributes::new()?;
    // SAFETY: `actions` and `attributes` were initialised by their constructors and are
    // destroyed only by their `Drop`; the strings, `argv` and `envp` (NUL-terminated arrays of
    // NUL-terminated strings) outlive the call; `child_end` is open for its whole duration.
    unsafe {
        check(libc::posix_spawn_file_actions_addopen(
            &mut actions.0,
            0,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY,
            0,
        ))?;
        // Also clears close-on-exec when the socket already is descriptor 3.
        check(libc::posix_spawn_file_actions_adddup2(
            &mut actions.0,
            child_end.as_raw_fd(),
            WORKER_FD,
        ))?;
        check(libc::posix_spawn_file_actions_addclosefrom_np(
            &mut actions.0,
            WORKER_FD + 1,
        ))?;
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        check(libc::posix_spawnattr_setsigmask(&mut attributes.0, &mask))?;
        let mut defaults: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut defaults);
        libc::sigaddset(&mut defaults, libc::SIGPIPE);
        check(libc::posix_spawnattr_setsigdefault(
            &mut attributes.0,
            &defaults,
        ))?;
        check(libc::posix_spawnattr_setflags(
            &mut attributes.0,
            (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
        ))?;
        let mut pid: libc::pid_t = 0;
        check(libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            &actions.0,
            &attributes.0,
            argv.as_ptr(),
            envp.as_ptr(),
        ))?;
        Pid::from_raw(pid).ok_or_else(|| io::Error::other("posix_spawn returned no pid"))
    }
}

/// A `posix_spawn` result code as an `io::Result`.
fn check(code: libc::c_int) -> io::Result<()> {
    match code {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

struct SpawnActions(libc::posix_spawn_file_actions_t);

impl SpawnActions {
    fn new() -> io::Result<Self> {
        // SAFETY: an all-zero value is a valid argument for init, which overwrites it.
        let mut actions = Self(unsafe { std::mem::zeroed() });
        // SAFETY: initialising a value we own; destroyed once, in Drop, only if this succeeded.
        check(unsafe { libc::posix_spawn_file_actions_init(&mut actions.0) })?;
        Ok(actions)
    }
}

impl Drop for SpawnActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed only here.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

struct SpawnAttributes(libc::posix_spawnattr_t);

impl SpawnAttributes {
    fn new() -> io::Result<Self> {
        // SAFETY: as for `SpawnActions::new`.
        let mut attributes = Self(unsafe { std::mem::zeroed() });
        // SAFETY: as for `SpawnActions::new`.
        check(unsafe { libc::posix_spawnattr_init(&mut attributes.0) })?;
        Ok(attributes)
    }
}

impl Drop for SpawnAttributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed only here.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

/// A start through `std::process::Command` and [`Setup`] (for a memory limit).
fn command_spawn(child_end: &OwnedFd, options: &ChildOptions) -> io::Result<std::process::Child> {
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
    Setup {
        own_group: false,
        pass_fd: Some((child_end.as_raw_fd(), WORKER_FD)),
        memory_limit: options.memory_limit,
        death_signal: options.death_signal,
    }
    .apply(&mut command);
    command.spawn()
}
