//! [`Command`]: the builder of a child program (Python's `Popen(...)` arguments).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::kill_switch::KillSwitch;

/// Where a child's standard input comes from.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Input {
    /// `/dev/null`: the child reads end-of-file at once (the default).
    #[default]
    Null,
    /// The parent's standard input.
    Inherit,
    /// These bytes, written by [`Child::communicate`](super::Child::communicate) while the outputs are drained; then
    /// standard input is closed.
    Bytes(Arc<[u8]>),
    /// The contents of this file.
    File(PathBuf),
    /// A pipe the caller writes: [`Child::stdin`](super::Child::stdin) takes it, or `communicate(Some(input), ..)`
    /// feeds it.
    Piped,
}

impl Input {
    /// Standard input from `bytes`.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Input::Bytes(bytes.into().into())
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Null => f.write_str("Null"),
            Input::Inherit => f.write_str("Inherit"),
            Input::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Input::File(path) => f.debug_tuple("File").field(path).finish(),
            Input::Piped => f.write_str("Piped"),
        }
    }
}

/// A callback that receives a child's output one line at a time, without the line end.
///
/// A line longer than [`MAX_LINE`] bytes reaches it in pieces of at most [`MAX_LINE`] bytes
/// (cut between UTF-8 characters), each delivered as if it were a line.
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The longest line a [`Redirect::Lines`] sink receives, in bytes (1 MiB): a longer line is
/// delivered in pieces of at most this size, cut between UTF-8 characters, so that a child
/// printing gigabytes without a newline costs the parent a bounded buffer (about this plus one
/// 4 MiB read), not all of it. The sink cannot tell a piece from a line; a program that needs
/// longer lines whole can take the pipe ([`Redirect::Capture`] and
/// [`Child::stdout`](super::Child::stdout)) and read it itself.
pub const MAX_LINE: usize = 1 << 20;

/// Where a child's standard output or standard error goes.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Redirect {
    /// Into a pipe: [`Child::communicate`](super::Child::communicate) collects it into [`Completed`](super::Completed), or the caller takes
    /// it with [`Child::stdout`](super::Child::stdout) / [`Child::stderr`](super::Child::stderr) (Python's `PIPE`; the default).
    #[default]
    Capture,
    /// The parent's stream.
    Inherit,
    /// `/dev/null` (Python's `DEVNULL`).
    Null,
    /// Line by line to a callback, as the child prints (invalid UTF-8 replaced; a line longer
    /// than [`MAX_LINE`] in pieces of at most that size). Nothing is kept in
    /// [`Completed`](super::Completed).
    Lines(LineSink),
    /// Into this file, created or truncated.
    File(PathBuf),
}

impl Redirect {
    /// Streams lines to `sink` as they arrive.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use crew::subprocess::{Command, Redirect};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// Command::new("printf")
    ///     .arg("a\nb\nc")
    ///     .stdout(Redirect::lines(move |line| sink.lock().unwrap().push(line.to_owned())))
    ///     .output()
    ///     .unwrap();
    /// assert_eq!(*seen.lock().unwrap(), ["a", "b", "c"]);
    /// ```
    pub fn lines(sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Redirect::Lines(Arc::new(sink))
    }
}

impl fmt::Debug for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Redirect::Capture => f.write_str("Capture"),
            Redirect::Inherit => f.write_str("Inherit"),
            Redirect::Null => f.write_str("Null"),
            Redirect::Lines(_) => f.write_str("Lines(..)"),
            Redirect::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// The default time between SIGTERM and SIGKILL when a timeout or a [`KillSwitch`] stops a
/// command.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// A program to run: its arguments, directory, environment, standard streams and time limit.
/// It only describes; [`spawn`](Command::spawn), [`output`](Command::output) and
/// [`status`](Command::status) (defined beside [`Child`](super::Child)) run it.
///
/// No shell is involved unless you ask for one with [`Command::shell`], so arguments need no
/// quoting. Every child starts in a process group of its own, so a timeout, [`Child::kill`](super::Child::kill) or
/// a [`KillSwitch`] stops its grandchildren too.
///
/// Defaults: standard input `/dev/null`, standard output and error captured, no timeout.
///
/// ```
/// use crew::subprocess::Command;
///
/// let done = Command::new("echo").arg("Hello from the child!").output().unwrap();
/// assert!(done.success());
/// assert_eq!(done.stdout_str(), "Hello from the child!\n");
/// ```
#[derive(Clone)]
pub struct Command {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) script: Option<String>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) env: Vec<(OsString, Option<OsString>)>,
    pub(crate) env_clear: bool,
    pub(crate) stdin: Input,
    pub(crate) stdout: Redirect,
    pub(crate) stderr: Redirect,
    pub(crate) timeout: Option<Duration>,
    pub(crate) grace: Duration,
    pub(crate) kill_switch: Option<KillSwitch>,
    pub(crate) kill_on_parent_death: bool,
    pub(crate) spool_after: Option<usize>,
    pub(crate) read_after_exit: Option<Duration>,
}

impl Command {
    /// Runs `program` (looked up on `PATH` unless it contains a `/`), with no arguments yet.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            script: None,
            cwd: None,
            env: Vec::new(),
            env_clear: false,
            stdin: Input::Null,
            stdout: Redirect::Capture,
            stderr: Redirect::Capture,
            timeout: None,
            grace: DEFAULT_GRACE,
            kill_switch: None,
            kill_on_parent_death: false,
            spool_after: None,
            read_after_exit: None,
        }
    }

    /// Runs `script` with `/bin/sh -c` (Python's `shell=True`). Quote untrusted values yourself,
    /// or better, pass them as [`arg`](Self::arg)s: they become `$1`, `$2`, ... in the script.
    ///
    /// ```
    /// use crew::subprocess::Command;
    ///
    /// let done = Command::shell("echo \"$1\" | tr a-z A-Z").arg("shout").output().unwrap();
    /// assert_eq!(done.stdout_str(), "SHOUT\n");
    /// ```
    pub fn shell(script: impl Into<String>) -> Self {
        let script = script.into();
        let mut command = Self::new("/bin/sh");
        command.args = vec!["-c".into(), script.clone().into(), "sh".into()];
        command.script = Some(script);
        command
    }

    /// [`shell`](Self::shell) for a script that need not be UTF-8 (it names a file whose name
    /// is Latin-1, say): the shell gets its exact bytes, and the command shows it (in
    /// [`Display`](std::fmt::Display), [`Completed::command`](super::Completed::command) and
    /// errors) as text, each byte that is not UTF-8 replaced by `U+FFFD`.
    ///
    /// ```
    /// use std::ffi::OsStr;
    /// use std::os::unix::ffi::OsStrExt;
    /// use crew::subprocess::Command;
    ///
    /// let command = Command::shell_os(OsStr::from_bytes(b"printf '%s' caf\xe9"));
    /// assert_eq!(command.to_string(), "printf '%s' caf\u{FFFD}");
    /// assert_eq!(command.output().unwrap().stdout, b"caf\xe9");
    /// ```
    pub fn shell_os(script: impl AsRef<OsStr>) -> Self {
        let script = script.as_ref();
        let mut command = Self::new("/bin/sh");
        command.args = vec!["-c".into(), script.to_owned(), "sh".into()];
        command.script = Some(script.to_string_lossy().into_owned());
        command
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Runs the child in `dir` (Python's `cwd`).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (key, value) in vars {
            self = self.env(key, value);
        }
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts the child with an empty environment (plus what [`env`](Self::env) adds).
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// Where standard input comes from (default [`Input::Null`]).
    pub fn stdin(mut self, input: Input) -> Self {
        self.stdin = input;
        self
    }

    /// Where standard output goes (default [`Redirect::Capture`]).
    pub fn stdout(mut self, redirect: Redirect) -> Self {
        self.stdout = redirect;
        self
    }

    /// Where standard error goes (default [`Redirect::Capture`]).
    pub fn stderr(mut self, redirect: Redirect) -> Self {
        self.stderr = redirect;
        self
    }

    /// A time limit for [`output`](Self::output) (and the runner): past it the child's whole
    /// process group gets SIGTERM, then SIGKILL after the [`grace`](Self::grace) period, and the
    /// result is marked [`timed_out`](super::Completed::timed_out).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The time between SIGTERM and SIGKILL when the child is stopped for a timeout
    /// (default [`DEFAULT_GRACE`]). Zero sends SIGKILL at once.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Registers the child with `switch` while it runs: [`KillSwitch::fire`] stops it and its
    /// process group.
    pub fn kill_switch(mut self, switch: &KillSwitch) -> Self {
        self.kill_switch = Some(switch.clone());
        self
    }

    /// With `true`, if this process dies while the child runs (even by `SIGKILL`, e.g. a
    /// process-pool worker killed for a cancel or a deadline), the child's whole process group
    /// is killed with `SIGKILL` (default `false`: the group, which leads itself, runs on).
    ///
    /// It costs a small watcher process per child (a `fork` without `exec`), which stays until
    /// the child is waited for or its [`Child`](super::Child) is dropped; after that the tie is
    /// gone. `crew worker` runs `crew run --cluster` jobs this way.
    ///
    /// ```
    /// use crew::subprocess::Command;
    ///
    /// let done = Command::shell("echo tied").kill_on_parent_death(true).output().unwrap();
    /// assert_eq!(done.stdout_str(), "tied\n");
    /// ```
    pub fn kill_on_parent_death(mut self, yes: bool) -> Self {
        self.kill_on_parent_death = yes;
        self
    }

    /// Keeps at most `bytes` of each captured stream in memory: once a stream's output grows
    /// past it, all of it goes to an unnamed temporary file in `TMPDIR` instead (deleted at
    /// once; its space is freed with the last handle), as Python's
    /// `tempfile.SpooledTemporaryFile(max_size)` does. Then [`Completed::stdout`] (or
    /// `stderr`) is empty and [`Completed::stdout_spool`] holds the output; a smaller output
    /// stays in memory as usual. [`Completed::stdout_len`] and [`Completed::copy_stdout_to`]
    /// handle both cases.
    ///
    /// A program printing gigabytes then costs disk, not memory: `crew run` keeps 1 MiB per
    /// stream of each job in memory this way. Default: no bound, everything in memory. Output
    /// to a [`Redirect::Lines`] sink is never kept, so the bound does not apply to it.
    ///
    /// ```
    /// use crew::subprocess::Command;
    ///
    /// let big = Command::shell("seq 100000").spool_after(64 * 1024).output().unwrap();
    /// assert!(big.stdout.is_empty());
    /// assert_eq!(big.stdout_len(), big.stdout_spool.as_ref().unwrap().len());
    /// assert!(big.stdout_str().ends_with("99999\n100000\n"));
    /// let small = Command::shell("seq 3").spool_after(64 * 1024).output().unwrap();
    /// assert_eq!((small.stdout.as_slice(), small.stdout_spool), (&b"1\n2\n3\n"[..], None));
    /// ```
    ///
    /// [`Completed::stdout`]: super::Completed::stdout
    /// [`Completed::stdout_spool`]: super::Completed::stdout_spool
    /// [`Completed::stdout_len`]: super::Completed::stdout_len
    /// [`Completed::copy_stdout_to`]: super::Completed::copy_stdout_to
    pub fn spool_after(mut self, bytes: usize) -> Self {
        self.spool_after = Some(bytes);
        self
    }

    /// Once the child itself has exited, reads its captured output at most `limit` longer,
    /// then keeps what was read and stops waiting for end-of-file.
    ///
    /// By default [`output`](Self::output) and [`Child::communicate`](super::Child::communicate)
    /// read until end-of-file, as Python's `communicate` does: a background process the child
    /// started and left running (`sleep 60 & echo started`) holds the pipes open and keeps the
    /// result waiting until it ends or the timeout strikes. With this bound the result comes
    /// `limit` after the child's exit; the background process runs on (as it would after a
    /// shell's or GNU parallel's job), and what it prints later is not captured: once the
    /// pipe is closed its next write fails (`SIGPIPE` or `EPIPE`), so redirect its output
    /// (`sleep 60 > log 2>&1 &`) if it must print. `crew run` reads 100 ms after each job's
    /// exit.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use crew::subprocess::Command;
    ///
    /// let start = Instant::now();
    /// let done = Command::shell("sleep 5 & echo started")
    ///     .read_after_exit(Duration::from_millis(50))
    ///     .output()
    ///     .unwrap();
    /// assert_eq!(done.stdout_str(), "started\n");
    /// assert!(start.elapsed() < Duration::from_secs(5));
    /// ```
    pub fn read_after_exit(mut self, limit: Duration) -> Self {
        self.read_after_exit = Some(limit);
        self
    }

    /// The configured timeout.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The program to run (`/bin/sh` for a [`shell`](Self::shell) command).
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments after the program (for a shell command: `-c`, the script, `sh`, then any
    /// [`arg`](Self::arg)s).
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    /// The environment changes, in the order given: `(key, Some(value))` sets a variable,
    /// `(key, None)` removes it.
    pub fn get_envs(&self) -> impl Iterator<Item = (&OsStr, Option<&OsStr>)> {
        self.env
            .iter()
            .map(|(key, value)| (key.as_os_str(), value.as_deref()))
    }
}

/// The command line as a shell would show it (arguments with spaces quoted).
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(script) = &self.script {
            f.write_str(script)?;
            for arg in self.args.iter().skip(3) {
                write!(f, " {}", quote(&arg.to_string_lossy()))?;
            }
            return Ok(());
        }
        f.write_str(&quote(&self.program.to_string_lossy()))?;
        for arg in &self.args {
            write!(f, " {}", quote(&arg.to_string_lossy()))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("command", &self.to_string())
            .field("cwd", &self.cwd)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("timeout", &self.timeout)
            .field("grace", &self.grace)
            .field("spool_after", &self.spool_after)
            .field("read_after_exit", &self.read_after_exit)
            .finish_non_exhaustive()
    }
}

/// `word` quoted for a POSIX shell if it needs it: `it's` becomes `'it'\''s'`.
///
/// ```
/// assert_eq!(crew::subprocess::quote("plain"), "plain");
/// assert_eq!(crew::subprocess::quote("two words"), "'two words'");
/// assert_eq!(crew::subprocess::quote("it's"), r"'it'\''s'");
/// ```
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=+,@%^".contains(&b));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
