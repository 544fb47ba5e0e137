//! [`Completed`]: the outcome of a finished command (Python's `CompletedProcess`).

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime};

use super::error::Error;
use super::spool::Spool;
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
    /// Its captured standard output (empty unless captured, and empty when it went to
    /// [`stdout_spool`](Self::stdout_spool)).
    pub stdout: Vec<u8>,
    /// Its captured standard error (empty unless captured, and empty when it went to
    /// [`stderr_spool`](Self::stderr_spool)).
    pub stderr: Vec<u8>,
    /// With [`Command::spool_after`](super::Command::spool_after): the whole standard output,
    /// when it outgrew the bound (then [`stdout`](Self::stdout) is empty).
    pub stdout_spool: Option<Spool>,
    /// With [`Command::spool_after`](super::Command::spool_after): the whole standard error,
    /// when it outgrew the bound (then [`stderr`](Self::stderr) is empty).
    pub stderr_spool: Option<Spool>,
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
            stdout_spool: None,
            stderr_spool: None,
        }
    }

    /// Exit code 0 and no timeout.
    pub fn success(&self) -> bool {
        self.status.success() && self.timed_out.is_none()
    }

    /// Standard output as text (invalid UTF-8 replaced), read back from its
    /// [spool](Self::stdout_spool) if it has one.
    pub fn stdout_str(&self) -> Cow<'_, str> {
        text(&self.stdout, self.stdout_spool.as_ref())
    }

    /// Standard error as text (invalid UTF-8 replaced), read back from its
    /// [spool](Self::stderr_spool) if it has one.
    pub fn stderr_str(&self) -> Cow<'_, str> {
        text(&self.stderr, self.stderr_spool.as_ref())
    }

    /// The length of the captured standard output, in memory or spooled.
    pub fn stdout_len(&self) -> u64 {
        self.stdout_spool
            .as_ref()
            .map_or(self.stdout.len() as u64, Spool::len)
    }

    /// The length of the captured standard error, in memory or spooled.
    pub fn stderr_len(&self) -> u64 {
        self.stderr_spool
            .as_ref()
            .map_or(self.stderr.len() as u64, Spool::len)
    }

    /// Writes the captured standard output to `out`, from memory or from its spool a chunk at
    /// a time; returns how many bytes.
    ///
    /// # Errors
    /// A failure to read the spool or to write to `out`.
    pub fn copy_stdout_to(&self, out: &mut impl Write) -> io::Result<u64> {
        copy(&self.stdout, self.stdout_spool.as_ref(), out)
    }

    /// Writes the captured standard error to `out`, from memory or from its spool.
    ///
    /// # Errors
    /// A failure to read the spool or to write to `out`.
    pub fn copy_stderr_to(&self, out: &mut impl Write) -> io::Result<u64> {
        copy(&self.stderr, self.stderr_spool.as_ref(), out)
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
                stderr: match &self.stderr_spool {
                    Some(spool) => tail(&spool.tail(TAIL).unwrap_or_default()),
                    None => tail(&self.stderr),
                },
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

/// How much of standard error an [`Error::ExitCode`] quotes.
const TAIL: usize = 400;

/// The last few hundred bytes of `bytes`, trimmed, as text.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(TAIL)..]);
    text.trim().to_owned()
}

fn text<'a>(memory: &'a [u8], spool: Option<&Spool>) -> Cow<'a, str> {
    let Some(spool) = spool else {
        return String::from_utf8_lossy(memory);
    };
    let mut bytes = Vec::new();
    let mut text = match spool.reader().read_to_end(&mut bytes) {
        Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => format!(
            "{}[crew: the rest of the spooled output cannot be read: {error}]",
            String::from_utf8_lossy(&bytes)
        ),
    };
    text.shrink_to_fit();
    Cow::Owned(text)
}

fn copy(memory: &[u8], spool: Option<&Spool>, out: &mut impl Write) -> io::Result<u64> {
    match spool {
        Some(spool) => spool.copy_to(out),
        None => out.write_all(memory).map(|()| memory.len() as u64),
    }
}
