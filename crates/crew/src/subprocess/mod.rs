//! Child programs: Python's `subprocess`, with timeouts that kill whole process groups and a
//! runner for many commands at once.
//!
//! | Python | crew |
//! |---|---|
//! | `subprocess.run(args, capture_output=True, timeout=t)` | `Command::new(p).args(a).timeout(t).output()` |
//! | `subprocess.check_output(args)` | `Command::new(p).args(a).checked_output()` |
//! | `subprocess.call(args)` | `Command::new(p).args(a).status()` |
//! | `CompletedProcess.check_returncode()` | [`Completed::check`] |
//! | `Popen(args, stdin=PIPE, stdout=PIPE)` | `Command::new(p).stdin(Input::Piped).spawn()` |
//! | `proc.communicate(input, timeout)` | [`Child::communicate`]`(Some(input), Some(t))` |
//! | `proc.poll()`, `wait()`, `wait(timeout)` | [`Child::poll`], [`Child::wait`], [`Child::wait_timeout`] |
//! | `proc.terminate()`, `proc.kill()` | [`Child::terminate`], [`Child::kill`] (the whole process group) |
//! | `shell=True` | [`Command::shell`] |
//! | `stdout=DEVNULL`, `stdout=None` | [`Redirect::Null`], [`Redirect::Inherit`] |
//! | many `Popen`s, then `communicate()` each | [`Runner::new(n).run(commands)`](Runner::run) |
//! | output too big for memory (`stdout=SpooledTemporaryFile(max_size)`) | [`Command::spool_after`]`(max_size)`, then [`Completed::stdout_spool`] |
//!
//! ```
//! use std::time::Duration;
//! use crew::subprocess::{Command, Input};
//!
//! // Feed a program its input and read its answer.
//! let done = Command::new("sort").stdin(Input::bytes("b\nc\na\n")).output().unwrap();
//! assert_eq!(done.stdout_str(), "a\nb\nc\n");
//!
//! // A program that hangs is stopped, with everything it started.
//! let done = Command::shell("sleep 10 & sleep 10")
//!     .timeout(Duration::from_millis(100))
//!     .output()
//!     .unwrap();
//! assert!(done.timed_out.is_some());
//! assert!(done.check().is_err());
//! ```
//!
//! Every child leads its own process group; see [`Child`] for why it is only reaped after the
//! group has been signalled.

mod child;
mod command;
mod completed;
mod error;
mod kill_switch;
mod parent_guard;
mod runner;
mod spool;

pub use crate::exit::{signal_name, ExitStatus};
pub use child::Child;
pub use command::{quote, Command, Input, LineSink, Redirect, DEFAULT_GRACE, MAX_LINE};
pub use completed::Completed;
pub use error::Error;
pub use kill_switch::KillSwitch;
pub use runner::{Halt, HaltWhen, JobResult, Results, Runner};
pub use spool::{Spool, SpoolReader};
