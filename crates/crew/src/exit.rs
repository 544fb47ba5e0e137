//! [`ExitStatus`]: how a child process ended, for every kind of child crew starts (pool
//! workers, [`process::spawn`](crate::process::spawn), [`subprocess`](crate::subprocess)).

use std::fmt;

/// How a finished process ended: an exit code or a signal.
///
/// ```
/// use crew::ExitStatus;
///
/// assert!(ExitStatus::Code(0).success());
/// assert_eq!(ExitStatus::Code(3).to_string(), "exit code 3");
/// assert_eq!(ExitStatus::Signal(9).to_string(), "killed by SIGKILL");
/// assert_eq!(ExitStatus::Signal(9).signal(), Some(9));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal number (e.g. 9 for `SIGKILL`, 11 for `SIGSEGV`).
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
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(signal) => match signal_name(signal) {
                "unknown signal" => write!(f, "killed by signal {signal}"),
                name => write!(f, "killed by {name}"),
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_signal_or_the_code() {
        assert_eq!(ExitStatus::Signal(15).to_string(), "killed by SIGTERM");
        assert_eq!(ExitStatus::Signal(64).to_string(), "killed by signal 64");
        assert_eq!(ExitStatus::Code(-1).to_string(), "exit code -1");
        assert_eq!(ExitStatus::Code(0).code(), Some(0));
        assert_eq!(ExitStatus::Signal(6).code(), None);
        assert!(!ExitStatus::Signal(6).success());
    }
}
