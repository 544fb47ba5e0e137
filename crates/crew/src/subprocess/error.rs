//! [`Error`]: what went wrong running a command, and [`ExitStatus`]: how a command ended.

use std::fmt;
use std::io;
use std::time::Duration;

/// Why running a command failed, or why [`Completed::check`](super::Completed::check) rejected
/// its outcome.
///
/// Each variant names the command, so the message alone says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program does not exist (not on `PATH`, or a path that does not exist).
    #[error("command not found: `{program}`; check the name and that it is installed and on PATH")]
    NotFound {
        /// The program as given.
        program: String,
    },
    /// The program exists but may not be executed (not executable, or a directory).
    #[error(
        "permission denied running `{program}`; check that it is an executable file (chmod +x)"
    )]
    PermissionDenied {
        /// The program as given.
        program: String,
    },
    /// The command was killed by a signal (not by a crew timeout).
    #[error("`{command}` was killed by signal {signal} ({name})")]
    Signaled {
        /// The command line.
        command: String,
        /// The signal number.
        signal: i32,
        /// The signal's name, e.g. `SIGKILL`.
        name: &'static str,
    },
    /// The command ran past its timeout; it and its process group were terminated.
    #[error("`{command}` timed out after {after:?}; it and its process group were killed")]
    TimedOut {
        /// The command line.
        command: String,
        /// The time limit that expired.
        after: Duration,
    },
    /// The command exited with a non-zero code.
    #[error("`{command}` exited with code {code}{}", stderr_suffix(.stderr))]
    ExitCode {
        /// The command line.
        command: String,
        /// The exit code.
        code: i32,
        /// The end of its captured standard error (at most a few hundred bytes), if any.
        stderr: String,
    },
    /// An operating-system error while starting, feeding, reading or waiting for the command.
    #[error("{context}: {source}")]
    Io {
        /// What crew was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// How a finished command ended: an exit code or a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// The exit code, if it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Code(code) => Some(code),
            ExitStatus::Signal(_) => None,
        }
    }

    /// The signal number, if a signal killed it.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Code(_) => None,
            ExitStatus::Signal(signal) => Some(signal),
        }
    }

    pub(crate) fn from_std(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(signal)) => ExitStatus::Signal(signal),
            // Stopped/continued are not reported by `wait`; treat anything else as failure.
            (None, None) => ExitStatus::Code(-1),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(signal) => write!(f, "signal {signal} ({})", signal_name(signal)),
        }
    }
}

/// The conventional name of signal `signal` (`"SIGTERM"` for 15), or `"unknown signal"`.
///
/// ```
/// assert_eq!(crew::subprocess::signal_name(9), "SIGKILL");
/// ```
pub fn signal_name(signal: i32) -> &'static str {
    const NAMES: &[(i32, &str)] = &[
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGCHLD, "SIGCHLD"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGTSTP, "SIGTSTP"),
        (libc::SIGTTIN, "SIGTTIN"),
        (libc::SIGTTOU, "SIGTTOU"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGVTALRM, "SIGVTALRM"),
        (libc::SIGPROF, "SIGPROF"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    NAMES
        .iter()
        .find(|(number, _)| *number == signal)
        .map_or("unknown signal", |(_, name)| name)
}
