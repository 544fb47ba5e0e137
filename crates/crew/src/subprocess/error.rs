//! [`Error`]: what went wrong running a command.

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
