//! [`Child`]: a running command (Python's `Popen` object): poll, wait, signal, communicate.
//!
//! # Design note: never signal a reused process group
//!
//! Every child leads its own process group (`process_group(0)`), so one `killpg` reaches its
//! grandchildren. A group id stays reserved while its leader exists, zombie included, so crew
//! checks for exit with `waitid(WNOWAIT)` (or a pidfd) *without* reaping, finishes every group
//! signal it owes (timeout, [`KillSwitch`](super::KillSwitch)), and only then reaps. After the
//! reap the child is never signalled again. The waiting, signalling and reaping are crew's one
//! child supervisor (`sys::supervise`), shared with the process pool and `process::spawn`.
//!
//! The spawning half of [`Command`] (`spawn`, `output`, `status`) lives here too, so that
//! `command.rs` only describes a command and never needs `Child`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::process::{ChildStderr, ChildStdin, ChildStdout, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::Signal;

use super::command::{Command, Input, LineSink, Redirect, MAX_LINE};
use super::completed::Completed;
use super::error::Error;
use super::kill_switch::Registration;
use super::parent_guard::{announce_self, ParentGuard};
use super::spool::{Spool, Spooler};
use crate::exit::ExitStatus;
use crate::sys::supervise::{Setup, Supervised};

/// After the group has been killed, how long to wait for the pipes to reach end-of-file (a
/// process that left the group may still hold them).
const DRAIN_AFTER_KILL: Duration = Duration::from_secs(1);

/// A running (or finished, not yet dropped) child program, started by [`Command::spawn`].
///
/// ```
/// use std::time::Duration;
/// use crew::subprocess::Command;
///
/// let mut child = Command::new("sleep").arg("0.3").spawn().unwrap();
/// while child.poll().unwrap().is_none() {
///     // Working...
///     std::thread::sleep(Duration::from_millis(50));
/// }
/// assert!(child.poll().unwrap().unwrap().success());
/// ```
///
/// Dropping a `Child` neither waits for it nor kills it, like Python's `Popen`.
pub struct Child {
    inner: std::process::Child,
    process: Supervised,
    command: String,
    input: Option<Arc<[u8]>>,
    stdout_lines: Option<LineSink>,
    stderr_lines: Option<LineSink>,
    /// [`Command::spool_after`]: captured output beyond this many bytes goes to a file.
    spool_after: Option<usize>,
    /// [`Command::read_after_exit`]: how long output is read once the child has exited.
    read_after_exit: Option<Duration>,
    grace: Duration,
    started: SystemTime,
    start: Instant,
    finished: Option<(ExitStatus, Duration)>,
    registration: Option<Registration>,
    /// With [`Command::kill_on_parent_death`]: disarmed (dropped) before the child is reaped.
    parent_guard: Option<ParentGuard>,
}

impl Child {
    fn start(command: &Command) -> Result<Child, Error> {
        let mut std_command = std::process::Command::new(&command.program);
        std_command.args(&command.args);
        if let Some(dir) = &command.cwd {
            std_command.current_dir(dir);
        }
        if command.env_clear {
            std_command.env_clear();
        }
        for (key, value) in &command.env {
            match value {
                Some(value) => std_command.env(key, value),
                None => std_command.env_remove(key),
            };
        }
        Setup {
            own_group: true,
            ..Setup::default()
        }
        .apply(&mut std_command);
        let parent_guard = if command.kill_on_parent_death {
            let guard = ParentGuard::start().map_err(|e| {
                Error::io(format!("cannot start a parent guard for `{command}`"), e)
            })?;
            let fd = guard.child_fd();
            // SAFETY: runs in the forked child before exec, after std's `setpgid`; it only
            // calls getpid and write (async-signal-safe) on the guard's descriptor, which the
            // guard keeps open until the spawn has returned.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut std_command, move || {
                    announce_self(fd)
                });
            }
            Some(guard)
        } else {
            None
        };
        let mut input = None;
        let stdin = match &command.stdin {
            Input::Null => Stdio::null(),
            Input::Inherit => Stdio::inherit(),
            Input::Piped => Stdio::piped(),
            Input::Bytes(bytes) => {
                input = Some(bytes.clone());
                Stdio::piped()
            }
            Input::File(path) => File::open(path)
                .map_err(|e| {
                    Error::io(
                        format!("cannot open {} for standard input", path.display()),
                        e,
                    )
                })?
                .into(),
        };
        std_command.stdin(stdin);
        std_command.stdout(redirect(&command.stdout, "standard output")?);
        std_command.stderr(redirect(&command.stderr, "standard error")?);
        let started = SystemTime::now();
        let start = Instant::now();
        let inner = std_command
            .spawn()
            .map_err(|error| spawn_error(command, error))?;
        let process = Supervised::of(&inner);
        let pid = rustix::process::Pid::from_child(&inner);
        let registration = command.kill_switch.as_ref().map(|s| s.register(pid));
        let lines = |redirect: &Redirect| match redirect {
            Redirect::Lines(sink) => Some(sink.clone()),
            _ => None,
        };
        Ok(Child {
            inner,
            process,
            command: command.to_string(),
            input,
            stdout_lines: lines(&command.stdout),
            stderr_lines: lines(&command.stderr),
            spool_after: command.spool_after,
            read_after_exit: command.read_after_exit,
            grace: command.grace,
            started,
            start,
            finished: None,
            registration,
            parent_guard,
        })
    }

    /// The child's process id, which is also its process-group id.
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// The command line it runs.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Takes the write end of its standard input ([`Input::Piped`] or [`Input::Bytes`]); drop
    /// it to send end-of-file.
    pub fn stdin(&mut self) -> Option<ChildStdin> {
        self.input = None;
        self.inner.stdin.take()
    }

    /// Takes the read end of its captured standard output, e.g. to read lines as they come
    /// (`BufReader::new(out).lines()`). [`communicate`](Self::communicate) then leaves it alone.
    pub fn stdout(&mut self) -> Option<ChildStdout> {
        self.inner.stdout.take()
    }

    /// Takes the read end of its captured standard error.
    pub fn stderr(&mut self) -> Option<ChildStderr> {
        self.inner.stderr.take()
    }

    /// Its status if it has ended, `None` if it still runs. Never blocks.
    ///
    /// # Errors
    /// [`Error::Io`] if the system cannot report on the child.
    pub fn poll(&mut self) -> Result<Option<ExitStatus>, Error> {
        if let Some((status, _)) = self.finished {
            return Ok(Some(status));
        }
        if self.exited()? {
            return self.reap().map(Some);
        }
        Ok(None)
    }

    /// Waits for it to end. Standard input stays open: use [`communicate`](Self::communicate)
    /// when the child reads input or prints more than a pipe holds (64 KiB), or it may block
    /// forever on a full pipe.
    ///
    /// # Errors
    /// [`Error::Io`] if the system cannot wait for the child.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        self.wait_until(None)?;
        self.reap()
    }

    /// Waits at most `timeout` for it to end; `None` if it still runs (it is not killed).
    ///
    /// # Errors
    /// [`Error::Io`] if the system cannot wait for the child.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        // A timeout too long to be a deadline (`Duration::MAX`) waits forever.
        if self.wait_until(Instant::now().checked_add(timeout))? {
            self.reap().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Sends SIGTERM to its process group (the child and the processes it started). Does
    /// nothing once it has been waited for.
    ///
    /// # Errors
    /// [`Error::Io`] if the signal cannot be sent.
    pub fn terminate(&mut self) -> Result<(), Error> {
        self.send_signal(libc::SIGTERM)
    }

    /// Sends SIGKILL to its process group. Does nothing once it has been waited for.
    ///
    /// # Errors
    /// [`Error::Io`] if the signal cannot be sent.
    pub fn kill(&mut self) -> Result<(), Error> {
        self.send_signal(libc::SIGKILL)
    }

    /// Sends `signal` to its process group. Does nothing once it has been waited for.
    ///
    /// # Errors
    /// [`Error::Io`] if `signal` is not a valid signal number or cannot be sent.
    pub fn send_signal(&mut self, signal: i32) -> Result<(), Error> {
        if self.finished.is_some() {
            return Ok(());
        }
        let sig = Signal::from_named_raw(signal).ok_or_else(|| {
            Error::io(
                format!("cannot signal `{}`", self.command),
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{signal} is not a signal number"),
                ),
            )
        })?;
        self.process
            .signal_group(sig)
            .map_err(|error| Error::io(format!("cannot signal `{}`", self.command), error))
    }

    /// Feeds `input` (or the command's [`Input::Bytes`]) to its standard input and closes it,
    /// reads standard output and error to their end, and waits for it to exit, all without the
    /// classic deadlock: one poll loop serves the three pipes, so neither side blocks on a full
    /// pipe (Python's `communicate(input, timeout)`).
    ///
    /// With a `timeout`, counted from this call, a child still running at the deadline is
    /// stopped with its whole process group (SIGTERM, then SIGKILL after the grace period) and
    /// the result is marked [`timed_out`](Completed::timed_out); what it printed is kept.
    ///
    /// ```
    /// use crew::subprocess::{Command, Input};
    ///
    /// let mut child = Command::new("tr").args(["a-z", "A-Z"]).stdin(Input::Piped).spawn().unwrap();
    /// let done = child.communicate(Some(b"hello"), None).unwrap();
    /// assert_eq!(done.stdout, b"HELLO");
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if `input` is given but standard input is not a pipe, or reading, writing
    /// or waiting fails.
    pub fn communicate(
        &mut self,
        input: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<Completed, Error> {
        // A timeout too long to be a deadline (`Duration::MAX`) is no limit, not a panic.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let own_input = self.input.take();
        let data: &[u8] = input.or(own_input.as_deref()).unwrap_or_default();
        let mut stdin = self.inner.stdin.take();
        if !data.is_empty() && stdin.is_none() {
            return Err(Error::io(
                format!("cannot feed input to `{}`", self.command),
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "its standard input is not a pipe; use Input::Piped",
                ),
            ));
        }
        if data.is_empty() {
            stdin = None;
        }
        let mut out = Stream::new(
            self.inner.stdout.take(),
            self.stdout_lines.clone(),
            self.spool_after,
        );
        let mut err = Stream::new(
            self.inner.stderr.take(),
            self.stderr_lines.clone(),
            self.spool_after,
        );
        let command = self.command.clone();
        let context = || format!("cannot talk to `{command}`");
        // A failed pump (a pipe error, a spool that cannot be written: `$TMPDIR` full) ends
        // the group and reaps it before the error goes back: no process is left running
        // outside every timeout and kill switch, nor a zombie.
        let exit = self.read_after_exit.map(|linger| ExitWatch {
            process: &self.process,
            linger,
        });
        let drained = match pump(&mut stdin, data, &mut out, &mut err, deadline, exit) {
            Ok(drained) => drained,
            Err(error) => {
                drop(stdin.take());
                let _ = self.stop_group();
                let _ = self.reap();
                return Err(Error::io(context(), error));
            }
        };
        let mut timed_out = false;
        if !drained || !self.wait_until(deadline)? {
            timed_out = true;
            self.stop_group()?;
            drop(stdin);
            // Keep what the group printed before it died; bounded, in case a process that left
            // the group still holds a pipe.
            let mut none = None;
            let drained_after_kill = pump(
                &mut none,
                &[],
                &mut out,
                &mut err,
                Some(Instant::now() + DRAIN_AFTER_KILL),
                None,
            );
            if let Err(error) = drained_after_kill {
                let _ = self.reap();
                return Err(Error::io(context(), error));
            }
        }
        let status = self.reap()?;
        let duration = self
            .finished
            .map_or_else(|| self.start.elapsed(), |(_, d)| d);
        let (stdout, stdout_spool) = out.finish().map_err(|e| Error::io(context(), e))?;
        let (stderr, stderr_spool) = err.finish().map_err(|e| Error::io(context(), e))?;
        Ok(Completed {
            command: self.command.clone(),
            status,
            timed_out: if timed_out { timeout } else { None },
            started: self.started,
            duration,
            stdout,
            stderr,
            stdout_spool,
            stderr_spool,
        })
    }

    /// SIGTERM to the group, up to `grace` for the leader to exit, then SIGKILL to the group
    /// (the leader is not reaped yet, so the group id is still ours).
    fn stop_group(&mut self) -> Result<(), Error> {
        if !self.grace.is_zero() {
            self.terminate()?;
            // A grace too long to be a deadline waits for the leader however long it takes.
            self.wait_until(Instant::now().checked_add(self.grace))?;
        }
        self.kill()
    }

    /// Whether the child has exited, without reaping it.
    fn exited(&self) -> Result<bool, Error> {
        self.process
            .has_exited()
            .map_err(|error| Error::io(format!("cannot check on `{}`", self.command), error))
    }

    /// Waits, without reaping, until the child exits (`true`) or `deadline` passes (`false`).
    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<bool, Error> {
        if self.finished.is_some() {
            return Ok(true);
        }
        self.process
            .wait_exited(deadline)
            .map_err(|error| Error::io(format!("cannot wait for `{}`", self.command), error))
    }

    /// Reaps the exited (or about to exit) child; leaves the kill switch first.
    fn reap(&mut self) -> Result<ExitStatus, Error> {
        if let Some((status, _)) = self.finished {
            return Ok(status);
        }
        drop(self.registration.take());
        drop(self.parent_guard.take());
        let status = self
            .process
            .reap()
            .map_err(|e| Error::io(format!("cannot wait for `{}`", self.command), e))?;
        self.finished = Some((status, self.start.elapsed()));
        Ok(status)
    }
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.inner.id())
            .field("command", &self.command)
            .field("status", &self.finished.map(|(s, _)| s))
            .finish_non_exhaustive()
    }
}

/// The spawning half of [`Command`]; see the module note for why it lives here.
impl Command {
    /// Starts the child (Python's `Popen(...)`).
    ///
    /// # Errors
    /// [`Error::NotFound`] or [`Error::PermissionDenied`] when the program cannot be run,
    /// [`Error::Io`] when a redirect file cannot be opened, the working directory does not exist
    /// or the system refuses to start a process.
    pub fn spawn(&self) -> Result<Child, Error> {
        Child::start(self)
    }

    /// Runs the child to the end, feeding [`Input::Bytes`] and collecting captured output, within
    /// the [`timeout`](Self::timeout) if one is set (Python's `subprocess.run`).
    ///
    /// A failing command is not an error here: inspect [`Completed::status`] or call
    /// [`Completed::check`].
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn), plus [`Error::Io`] if reading or waiting fails.
    pub fn output(&self) -> Result<Completed, Error> {
        let mut child = self.spawn()?;
        child.communicate(None, self.timeout)
    }

    /// Runs the child to the end with its captured outputs going to the parent's instead, and
    /// returns how it ended (Python's `subprocess.call`). Other redirects are kept.
    ///
    /// ```
    /// use crew::subprocess::Command;
    ///
    /// let status = Command::new("sh").args(["-c", "exit 3"]).status().unwrap();
    /// assert_eq!(status.code(), Some(3));
    /// ```
    ///
    /// # Errors
    /// As [`output`](Self::output).
    pub fn status(&self) -> Result<ExitStatus, Error> {
        let mut command = self.clone();
        for redirect in [&mut command.stdout, &mut command.stderr] {
            if matches!(redirect, Redirect::Capture) {
                *redirect = Redirect::Inherit;
            }
        }
        Ok(command.output()?.status)
    }

    /// [`output`](Self::output) then [`Completed::check`]: `Ok` only for exit code 0 (Python's
    /// `check_output`).
    ///
    /// # Errors
    /// As `output`, plus the errors of [`Completed::check`].
    pub fn checked_output(&self) -> Result<Completed, Error> {
        self.output()?.check()
    }
}

fn redirect(redirect: &Redirect, what: &str) -> Result<Stdio, Error> {
    Ok(match redirect {
        Redirect::Capture | Redirect::Lines(_) => Stdio::piped(),
        Redirect::Inherit => Stdio::inherit(),
        Redirect::Null => Stdio::null(),
        Redirect::File(path) => File::create(path)
            .map_err(|e| Error::io(format!("cannot create {} for {what}", path.display()), e))?
            .into(),
    })
}

fn spawn_error(command: &Command, error: io::Error) -> Error {
    let program = command.program.to_string_lossy().into_owned();
    match error.kind() {
        io::ErrorKind::NotFound => match &command.cwd {
            Some(dir) if !dir.is_dir() => Error::io(
                format!(
                    "cannot start `{command}`: working directory {} does not exist",
                    dir.display()
                ),
                error,
            ),
            _ => Error::NotFound { program },
        },
        io::ErrorKind::PermissionDenied => Error::PermissionDenied { program },
        // std's own words are "nul byte found in provided data".
        io::ErrorKind::InvalidInput if error.to_string().contains("nul byte") => Error::io(
            format!(
                "cannot start `{}`: its program, an argument or an environment variable holds \
                 a NUL byte, which no program can receive",
                command.to_string().replace('\0', "\\0")
            ),
            error,
        ),
        _ => Error::io(format!("cannot start `{command}`"), error),
    }
}

/// One output pipe being drained: captured whole (in memory, or beyond a bound in a
/// [`Spool`]), or cut into lines for a sink.
struct Stream<R> {
    pipe: Option<R>,
    sink: Option<LineSink>,
    buf: Vec<u8>,
    /// Bytes at the start of `buf` known to hold no newline (for a sink only).
    scanned: usize,
    spooler: Option<Spooler>,
}

impl<R: Read + AsFd> Stream<R> {
    fn new(pipe: Option<R>, sink: Option<LineSink>, spool_after: Option<usize>) -> Self {
        if let Some(pipe) = &pipe {
            let _ = rustix::io::ioctl_fionbio(pipe, true);
        }
        let spooler = match (&sink, spool_after) {
            (None, Some(limit)) => Some(Spooler::new(limit)),
            _ => None,
        };
        Self {
            pipe,
            sink,
            buf: Vec::new(),
            scanned: 0,
            spooler,
        }
    }

    /// Reads what is available; closes the pipe at end-of-file.
    fn read_available(&mut self) -> io::Result<()> {
        let Some(pipe) = &mut self.pipe else {
            return Ok(());
        };
        // At most this much per wake-up, so that a child that never stops printing cannot keep
        // the loop from feeding stdin or noticing the deadline (and, when spooling, so that
        // memory stays near the bound).
        const BATCH: u64 = 4 << 20;
        let batch = self
            .spooler
            .as_ref()
            .map_or(BATCH, |s| s.batch().min(BATCH));
        // `read_to_end` grows the buffer adaptively without zeroing it, and on a non-blocking
        // pipe keeps what it read before `WouldBlock`.
        let result = pipe.by_ref().take(batch).read_to_end(&mut self.buf);
        if let Some(spooler) = &mut self.spooler {
            spooler.absorb(&mut self.buf)?;
        }
        let sink = self.sink.as_ref();
        match result {
            Ok(n) if n as u64 == batch => {
                flush_lines(sink, &mut self.buf, &mut self.scanned, false);
                Ok(())
            }
            Ok(_) => {
                self.pipe = None;
                flush_lines(sink, &mut self.buf, &mut self.scanned, true);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                flush_lines(sink, &mut self.buf, &mut self.scanned, false);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the pipe has something to read (or its end) right now.
    fn readable_now(&self) -> io::Result<bool> {
        let Some(pipe) = &self.pipe else {
            return Ok(false);
        };
        let mut fds = [PollFd::new(pipe, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match poll(&mut fds, Some(&zero)) {
            Ok(_) => Ok(!fds[0].revents().is_empty()),
            Err(rustix::io::Errno::INTR) => Ok(true),
            Err(errno) => Err(errno.into()),
        }
    }

    /// What was captured: in memory, or (all of it) in a spool.
    fn finish(mut self) -> io::Result<(Vec<u8>, Option<Spool>)> {
        if self.sink.is_some() {
            return Ok((Vec::new(), None));
        }
        let spool = match self.spooler.take() {
            Some(spooler) => spooler.finish(&mut self.buf)?,
            None => None,
        };
        Ok((self.buf, spool))
    }
}

/// Hands complete lines (and at end-of-file the rest) to the sink, if there is one; a line
/// longer than [`MAX_LINE`] goes in pieces of at most that many bytes, so that a child printing
/// without newlines cannot make `buf` grow without bound. `scanned` is how much of `buf` is
/// already known to hold no newline (kept between calls, so that a long partial line is not
/// searched again on every read).
fn flush_lines(sink: Option<&LineSink>, buf: &mut Vec<u8>, scanned: &mut usize, eof: bool) {
    let Some(sink) = sink else {
        return;
    };
    let mut start = 0;
    loop {
        let rest = &buf[start..];
        let searched = (*scanned).min(rest.len());
        let newline = rest[searched..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| searched + i);
        let (line, used) = match newline {
            Some(end) if end <= MAX_LINE => (&rest[..end], end + 1),
            _ if rest.len() > MAX_LINE => {
                let cut = utf8_cut(rest, MAX_LINE);
                (&rest[..cut], cut)
            }
            None if eof && !rest.is_empty() => (rest, rest.len()),
            _ => {
                *scanned = rest.len();
                break;
            }
        };
        sink(&String::from_utf8_lossy(line));
        start += used;
        *scanned = 0;
    }
    buf.drain(..start);
}

/// Where to end a piece of at most `max` bytes of `text` (longer than `max`): at `max`, or up
/// to three bytes before it so that a UTF-8 character is not split between two pieces (invalid
/// UTF-8 is cut at `max`).
fn utf8_cut(text: &[u8], max: usize) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&cut| cut > 0 && !is_continuation(text[cut]))
        .unwrap_or(max)
}

/// [`Command::read_after_exit`] in the poll loop: the child to watch, and how long its output
/// is read once it has exited.
struct ExitWatch<'p> {
    process: &'p Supervised,
    linger: Duration,
}

/// Without a pidfd to poll (Linux before 5.3), how often [`pump`] checks whether the child it
/// watches ([`ExitWatch`]) has exited.
const EXIT_CHECK_WITHOUT_PIDFD: Duration = Duration::from_millis(10);

/// Writes `data` to `stdin` (then closes it) while draining `out` and `err`, until all three
/// are done (`true`) or `deadline` passes (`false`).
///
/// With `exit`, the child's exit is watched too (its pidfd is one more descriptor in the poll);
/// `exit.linger` after it, what is buffered in the pipes is read and the pump ends (`true`) even
/// if a process the child left behind still holds them open, and even if `deadline` passes
/// during the linger (the child itself exited in time).
fn pump(
    stdin: &mut Option<ChildStdin>,
    mut data: &[u8],
    out: &mut Stream<ChildStdout>,
    err: &mut Stream<ChildStderr>,
    deadline: Option<Instant>,
    exit: Option<ExitWatch<'_>>,
) -> io::Result<bool> {
    if let Some(pipe) = stdin.as_ref() {
        rustix::io::ioctl_fionbio(pipe, true)?;
    }
    // Set when the watched child has been seen to exit: when reading stops.
    let mut stop_reading: Option<Instant> = None;
    loop {
        if stdin.is_none() && out.pipe.is_none() && err.pipe.is_none() {
            return Ok(true);
        }
        let now = Instant::now();
        if stop_reading.is_some_and(|stop| now >= stop) {
            // What the child (or a straggler) left in the pipes, without waiting for more.
            for _ in 0..16 {
                if !(out.readable_now()? || err.readable_now()?) {
                    break;
                }
                out.read_available()?;
                err.read_available()?;
            }
            return Ok(true);
        }
        let watching = exit.as_ref().filter(|_| stop_reading.is_none());
        // Once the child was seen to exit in time, the linger alone bounds the reading: the
        // deadline passing meanwhile (a straggler holding the pipes) is no timeout of the child.
        let deadline = deadline.filter(|_| stop_reading.is_none());
        let wake = [
            deadline,
            stop_reading,
            watching
                .filter(|watch| watch.process.exit_fd().is_none())
                .map(|_| now + EXIT_CHECK_WITHOUT_PIDFD),
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = match wake {
            None => None,
            Some(wake) => {
                let remaining = wake.saturating_duration_since(now);
                if remaining.is_zero() && deadline.is_some_and(|deadline| now >= deadline) {
                    return Ok(false);
                }
                Some(Timespec::try_from(remaining).unwrap_or(Timespec {
                    tv_sec: i64::MAX,
                    tv_nsec: 0,
                }))
            }
        };
        let (write_ready, out_ready, err_ready, exit_ready) = {
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(4);
            let mut slots = [usize::MAX; 4];
            if let Some(pipe) = stdin.as_ref() {
                slots[0] = fds.len();
                fds.push(PollFd::new(pipe, PollFlags::OUT));
            }
            if let Some(pipe) = out.pipe.as_ref() {
                slots[1] = fds.len();
                fds.push(PollFd::new(pipe, PollFlags::IN));
            }
            if let Some(pipe) = err.pipe.as_ref() {
                slots[2] = fds.len();
                fds.push(PollFd::new(pipe, PollFlags::IN));
            }
            if let Some(pidfd) = watching.and_then(|watch| watch.process.exit_fd()) {
                slots[3] = fds.len();
                fds.push(PollFd::from_borrowed_fd(pidfd, PollFlags::IN));
            }
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(errno) => return Err(errno.into()),
            }
            let ready = |slot: usize| slot != usize::MAX && !fds[slot].revents().is_empty();
            (
                ready(slots[0]),
                ready(slots[1]),
                ready(slots[2]),
                ready(slots[3]),
            )
        };
        if let Some(watch) = watching {
            // The pidfd turned readable, or (without one) a check may be due: a cheap waitid.
            if (exit_ready || watch.process.exit_fd().is_none()) && watch.process.has_exited()? {
                stop_reading = Some(Instant::now() + watch.linger);
            }
        }
        if write_ready {
            if let Some(pipe) = stdin.as_mut() {
                match pipe.write(data) {
                    Ok(n) => data = &data[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // The child stopped reading: the rest of the input is not wanted.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => data = &[],
                    Err(e) => return Err(e),
                }
                if data.is_empty() {
                    *stdin = None;
                }
            }
        }
        if out_ready {
            out.read_available()?;
        }
        if err_ready {
            err.read_available()?;
        }
    }
}
