//! [`Completed`]: the outcome of a finished command (Python's `CompletedProcess`).

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use super::error::Error;
use crate::exit::{signal_name, ExitStatus};

/// A finished command: how it ended, how long it ran, what it printed.
///
/// A command that failed (non-zero exit, a signal, a timeout) still produces a `Completed`, so
/// its output is never lost; [`check`](Self::check) turns failure into an [`Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Completed {
    /// The command line, for messages.
    pub command: String,
    /// How it ended.
    pub status: ExitStatus,
    /// `Some(limit)` when crew killed it because it ran longer than `limit`.
    pub timed_out: Option<Duration>,
    /// When it was started (wall clock).
    pub started: SystemTime,
    /// How long it ran, from spawn to exit.
    pub duration: Duration,
    /// Its captured standard output (empty unless captured).
    pub stdout: Vec<u8>,
    /// Its captured standard error (empty unless captured).
    pub stderr: Vec<u8>,
}

impl Completed {
    /// A command that ran elsewhere (on a cluster worker, say), as if it had run here: started
    /// at `started`, ran for `duration`, ended with `status` (and `timed_out` when its limit
    /// killed it).
    pub fn new(
        command: String,
        status: ExitStatus,
        timed_out: Option<Duration>,
        started: SystemTime,
        duration: Duration,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    ) -> Self {
        Self {
            command,
            status,
            timed_out,
            started,
            duration,
            stdout,
            stderr,
        }
    }

    /// Exit code 0 and no timeout.
    pub fn success(&self) -> bool {
        self.status.success() && self.timed_out.is_none()
    }

    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }

    /// `self` if it succeeded (Python's `check_returncode()`).
    ///
    /// ```
    /// use crew::subprocess::{Command, Error};
    ///
    /// let done = Command::new("sh").args(["-c", "echo oops >&2; exit 3"]).output().unwrap();
    /// match done.check() {
    ///     Err(Error::ExitCode { code: 3, stderr, .. }) => assert_eq!(stderr, "oops"),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::TimedOut`] if it was killed for running too long, [`Error::Signaled`] if a signal
    /// killed it, [`Error::ExitCode`] (with the end of its standard error) for a non-zero exit.
    pub fn check(self) -> Result<Self, Error> {
        if let Some(after) = self.timed_out {
            return Err(Error::TimedOut {
                command: self.command,
                after,
            });
        }
        match self.status {
            ExitStatus::Code(0) => Ok(self),
            ExitStatus::Code(code) => Err(Error::ExitCode {
                stderr: tail(&self.stderr),
                command: self.command,
                code,
            }),
            ExitStatus::Signal(signal) => Err(Error::Signaled {
                command: self.command,
                signal,
                name: signal_name(signal),
            }),
        }
    }
}

/// The last few hundred bytes of `bytes`, trimmed, as text.
fn tail(bytes: &[u8]) -> String {
    const MAX: usize = 400;
    let text = String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(MAX)..]);
    text.trim().to_owned()
}
