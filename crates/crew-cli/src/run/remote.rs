//! `crew run --cluster URL`: each job runs on a cluster worker instead of here (GNU parallel's
//! `--sshlogin`, without ssh).
//!
//! [`Remote`] is the cluster's stand-in for [`crew::subprocess::Runner`]: it takes the same
//! [`Command`]s (built by the same template code, so a value is quoted exactly as in a local
//! run: shell scripts read it from the job's environment, never from the script's text), sends
//! each as a [`CommandJob`] to the built-in `run_command` task, and yields the same
//! [`JobResult`]s, so output grouping, `--keep-order`, the joblog, `--results` and the exit
//! status are the local run's code. Design:
//! - at most `limit` (`-j`) jobs are submitted and not yet reported; a task's done-callback
//!   sends its number down a channel, so results are taken as they complete;
//! - `--retries`: a job that did not exit 0 is submitted again, here, up to `retries` more
//!   times (the cluster's own redelivery is for lost workers, not for failing commands);
//! - `--halt`: when the condition is met no job is started any more; with `now` the jobs in
//!   flight are cancelled (a queued one never runs; a running one's worker process is killed);
//! - `--keep-order`: finished jobs wait in a map until every earlier one is reported;
//! - `--timeout` with `--grace`: the worker sends `SIGTERM`, then `SIGKILL` after the grace;
//! - Ctrl-C (in `run`): the cluster is shut down cancelling everything pending, so a queued
//!   job never runs and a running one's worker process is killed.
//!
//! The joblog's Starttime is when the result arrived minus the worker's run time (the worker's
//! clock is not compared with ours), and its Host is the worker's host name.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, SystemTime};

use crew::cluster::Cluster;
use crew::subprocess::{Command, Completed, Error, ExitStatus, Halt, HaltWhen, JobResult};
use crew::{Executor, SubmitError, TaskError, TaskHandle};
use crew_cli::tasks::{run_command, CommandJob, CommandOutcome, CommandStatus};

/// A submitted job.
struct InFlight {
    /// The job, or why it cannot go to a worker.
    job: Result<CommandJob, SubmitError>,
    shown: String,
    attempts: u32,
    handle: TaskHandle<CommandOutcome>,
}

/// Runs jobs on a cluster and yields their [`JobResult`]s and hosts (see the module docs).
pub(crate) struct Remote<'c, I> {
    cluster: &'c Cluster,
    commands: I,
    limit: usize,
    keep_order: bool,
    retries: u32,
    halt: Halt,
    /// `--grace`: how long a job that reached its timeout gets between `SIGTERM` and `SIGKILL`.
    grace: Duration,
    launched: usize,
    in_flight: HashMap<usize, InFlight>,
    done_tx: Sender<usize>,
    done_rx: Receiver<usize>,
    /// With `--keep-order`: finished jobs not yet reported, and the next one to report.
    ready: BTreeMap<usize, (JobResult, String)>,
    next_to_report: usize,
    stopped: bool,
    halted_by: Option<usize>,
    failed: usize,
    succeeded: usize,
}

impl<'c, I: Iterator<Item = Command>> Remote<'c, I> {
    pub(crate) fn new(
        cluster: &'c Cluster,
        commands: I,
        limit: usize,
        keep_order: bool,
        retries: u32,
        halt: Halt,
        grace: Duration,
    ) -> Self {
        let (done_tx, done_rx) = channel();
        Self {
            cluster,
            commands,
            limit,
            keep_order,
            retries,
            halt,
            grace,
            launched: 0,
            in_flight: HashMap::new(),
            done_tx,
            done_rx,
            ready: BTreeMap::new(),
            next_to_report: 1,
            stopped: false,
            halted_by: None,
            failed: 0,
            succeeded: 0,
        }
    }

    /// Starts no more jobs and cancels those in flight (as `--halt now` does); their results
    /// still come.
    pub(crate) fn stop(&mut self) {
        self.stopped = true;
        for flight in self.in_flight.values() {
            flight.handle.cancel();
        }
    }

    /// The job whose result met the `--halt` condition, if one did.
    pub(crate) fn halted_by(&self) -> Option<usize> {
        self.halted_by
    }

    /// Submits job `seq`; a refused submission becomes its (failed) result at once.
    fn submit(
        &mut self,
        seq: usize,
        job: Result<CommandJob, SubmitError>,
        shown: String,
        attempts: u32,
    ) {
        let submitted = job
            .clone()
            .and_then(|job| self.cluster.submit(run_command, job));
        let handle = match submitted {
            Ok(handle) => handle,
            Err(error) => {
                // A handle that is already done carries the error through the same path.
                let (handle, completer) = crew::task::pair();
                completer.complete(Err(TaskError::Rejected(error)));
                handle
            }
        };
        let done = self.done_tx.clone();
        handle.add_done_callback(move |_| {
            let _ = done.send(seq);
        });
        self.in_flight.insert(
            seq,
            InFlight {
                job,
                shown,
                attempts,
                handle,
            },
        );
    }

    fn start_more(&mut self) {
        while !self.stopped && self.in_flight.len() < self.limit {
            let Some(command) = self.commands.next() else {
                return;
            };
            self.launched += 1;
            let shown = command.to_string();
            self.submit(self.launched, command_job(&command, self.grace), shown, 1);
        }
    }

    /// Counts a final result and applies `--halt`.
    fn count(&mut self, seq: usize, success: bool) {
        if success {
            self.succeeded += 1;
        } else {
            self.failed += 1;
        }
        let (when, now) = match self.halt {
            Halt::Never => return,
            Halt::Soon(when) => (when, false),
            Halt::Now(when) => (when, true),
        };
        let met = match when {
            HaltWhen::Fail(n) => self.failed >= n,
            HaltWhen::Success(n) => self.succeeded >= n,
            HaltWhen::Done(n) => self.failed + self.succeeded >= n,
        };
        if met && !self.stopped {
            self.stopped = true;
            self.halted_by = Some(seq);
            if now {
                for flight in self.in_flight.values() {
                    flight.handle.cancel();
                }
            }
        }
    }
}

impl<I: Iterator<Item = Command>> Iterator for Remote<'_, I> {
    type Item = (JobResult, String);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.start_more();
            if self.keep_order {
                if let Some(result) = self.ready.remove(&self.next_to_report) {
                    self.next_to_report += 1;
                    return Some(result);
                }
            }
            if self.in_flight.is_empty() {
                // With --keep-order, what is left is reported in order (gaps cannot occur:
                // every started job is reported).
                return self.ready.pop_first().map(|(_, result)| result);
            }
            let seq = self.done_rx.recv().ok()?;
            let Some(flight) = self.in_flight.remove(&seq) else {
                continue;
            };
            let outcome = flight.handle.result();
            let success = matches!(&outcome, Ok(done) if done.success());
            if !success && flight.attempts <= self.retries && !self.stopped {
                self.submit(seq, flight.job, flight.shown, flight.attempts + 1);
                continue;
            }
            self.count(seq, success);
            let host = match &outcome {
                Ok(done) => done.host.clone(),
                Err(_) => ":".to_owned(),
            };
            let result = JobResult::new(seq, flight.attempts, completed(outcome, flight.shown));
            if self.keep_order {
                self.ready.insert(seq, (result, host));
                continue;
            }
            return Some((result, host));
        }
    }
}

/// The job a worker runs for `command`: its program, arguments, environment, timeout and
/// grace. A worker task carries text: a value that is not UTF-8 (a Latin-1 file name) is
/// refused with what to do, never sent altered.
fn command_job(command: &Command, grace: Duration) -> Result<CommandJob, SubmitError> {
    let text = |s: &OsStr| {
        s.to_str()
            .map(str::to_owned)
            .ok_or_else(|| SubmitError::Unsupported {
                message: format!(
                "{} is not UTF-8, and --cluster sends text to its workers: rename the file, or \
                 run this job without --cluster",
                s.to_string_lossy()
            ),
            })
    };
    let argv = std::iter::once(command.get_program())
        .chain(command.get_args().iter().map(|arg| arg.as_os_str()))
        .map(text)
        .collect::<Result<Vec<_>, _>>()?;
    let mut job = CommandJob::new(argv);
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            job = job.env(text(key)?, text(value)?);
        }
    }
    if let Some(timeout) = command.get_timeout() {
        job = job.timeout(timeout).grace(grace);
    }
    Ok(job)
}

/// A worker's outcome as the local runner would have reported it.
fn completed(
    outcome: Result<CommandOutcome, TaskError>,
    shown: String,
) -> Result<Completed, Error> {
    let outcome = outcome.map_err(|error| Error::Io {
        context: format!("the cluster could not run `{shown}`"),
        source: std::io::Error::other(error.to_string()),
    })?;
    let duration = Duration::from_millis(outcome.duration_ms);
    let (status, timed_out) = match outcome.status {
        CommandStatus::Exited(code) => (ExitStatus::Code(code), None),
        CommandStatus::Signaled(signal) => (ExitStatus::Signal(signal), None),
        CommandStatus::TimedOut { after_ms } => (
            ExitStatus::Signal(libc::SIGTERM),
            Some(Duration::from_millis(after_ms)),
        ),
        CommandStatus::NotStarted(why) => {
            return Err(if why.contains("not found") {
                Error::NotFound {
                    program: shown.clone(),
                }
            } else {
                Error::Io {
                    context: format!("the worker on {} could not start `{shown}`", outcome.host),
                    source: std::io::Error::other(why),
                }
            })
        }
    };
    let started = SystemTime::now()
        .checked_sub(duration)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Ok(Completed::new(
        shown,
        status,
        timed_out,
        started,
        duration,
        outcome.stdout,
        outcome.stderr,
    ))
}
