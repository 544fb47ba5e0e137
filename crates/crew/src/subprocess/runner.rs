//! [`Runner`]: many commands at once, a bounded number at a time, on a crew [`ThreadPool`].
//!
//! Each job occupies one pool thread, which spawns the child and serves its pipes with a single
//! poll loop ([`Child::communicate`](super::Child::communicate)); the pool's size is the
//! concurrency limit. The iterator holds its jobs in crew's completion window (the engine under
//! `Executor::map`): it reads the input only to refill the window, and a job leaves the window
//! only when its result is yielded.
//!
//! # Design note: reading ahead
//!
//! In completion order the window holds `2 × limit` jobs (see [`Runner::read_ahead`]): `limit`
//! running and up to `limit` queued in the pool. A pool thread whose job ends starts the next
//! queued one at once, instead of waiting for the reading thread to wake, collect the result and
//! submit another: on a busy machine that wake-up is most of a short job's overhead. A queued
//! job checks the halt and the kill switch when a thread takes it, so nothing starts after a
//! halt; such a job yields nothing. In input order the window stays at `limit`, which bounds the
//! results held back behind a slow job.
//!
//! Each job counts its own outcome when it ends, in the pool thread, so a [`Halt`] takes effect
//! as soon as its condition is met, whatever order the results are yielded in.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::command::{Command, DEFAULT_GRACE};
use super::completed::Completed;
use super::error::Error;
use super::kill_switch::KillSwitch;
use crate::completion::{Next, Order, Window};
use crate::{SubmitError, TaskHandle, ThreadPool};

/// When a [`Runner`] stops early (GNU parallel's `--halt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Halt {
    /// Run every job (the default).
    #[default]
    Never,
    /// When the condition is met, start no new jobs; let the running ones finish.
    Soon(HaltWhen),
    /// When the condition is met, start no new jobs and kill the running ones.
    Now(HaltWhen),
}

/// The condition of a [`Halt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltWhen {
    /// After this many jobs failed.
    Fail(usize),
    /// After this many jobs succeeded.
    Success(usize),
    /// After this many jobs finished either way.
    Done(usize),
}

impl HaltWhen {
    fn met(self, failed: usize, succeeded: usize) -> bool {
        match self {
            HaltWhen::Fail(n) => failed >= n,
            HaltWhen::Success(n) => succeeded >= n,
            HaltWhen::Done(n) => failed + succeeded >= n,
        }
    }
}

/// Parses GNU parallel's syntax: `never`, `now,fail=1`, `soon,fail=3`, `now,success=1`,
/// `soon,done=10`.
///
/// ```
/// use crew::subprocess::{Halt, HaltWhen};
///
/// assert_eq!("now,fail=1".parse(), Ok(Halt::Now(HaltWhen::Fail(1))));
/// assert_eq!("soon,success=2".parse(), Ok(Halt::Soon(HaltWhen::Success(2))));
/// assert!("later,fail=1".parse::<Halt>().is_err());
/// ```
impl FromStr for Halt {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!(
                "invalid halt {text:?}: expected never, or now|soon followed by \
                 ,fail=N ,success=N or ,done=N (e.g. now,fail=1)"
            )
        };
        if text == "never" {
            return Ok(Halt::Never);
        }
        let (when, condition) = text.split_once(',').ok_or_else(usage)?;
        let (kind, count) = condition.split_once('=').ok_or_else(usage)?;
        let count: usize = count.parse().map_err(|_| usage())?;
        if count == 0 {
            return Err(usage());
        }
        let condition = match kind {
            "fail" => HaltWhen::Fail(count),
            "success" => HaltWhen::Success(count),
            "done" => HaltWhen::Done(count),
            _ => return Err(usage()),
        };
        match when {
            "now" => Ok(Halt::Now(condition)),
            "soon" => Ok(Halt::Soon(condition)),
            _ => Err(usage()),
        }
    }
}

/// The outcome of one job of a [`Runner`].
#[derive(Debug)]
#[non_exhaustive]
pub struct JobResult {
    /// The job's number, from 1, in input order (GNU parallel's `{#}`).
    pub seq: usize,
    /// How many times it was run (more than 1 after retries).
    pub attempts: u32,
    /// The last attempt's outcome: [`Completed`] (whatever its status), or why it could not run.
    pub outcome: Result<Completed, Error>,
}

impl JobResult {
    /// The result of job `seq`, run `attempts` times, for a caller that ran the job elsewhere
    /// (`crew run --cluster` runs it on a cluster worker) and reports it as a [`Runner`] would.
    pub fn new(seq: usize, attempts: u32, outcome: Result<Completed, Error>) -> Self {
        Self {
            seq,
            attempts,
            outcome,
        }
    }

    /// It ran and exited with code 0 within its time limit.
    pub fn success(&self) -> bool {
        matches!(&self.outcome, Ok(done) if done.success())
    }
}

/// Runs many commands, at most `limit` at a time, on a crew [`ThreadPool`] of up to `limit`
/// threads (started as jobs need them);
/// yields each job's [`JobResult`] as it completes, or in input order.
///
/// The seed's ten parallel `sleep 0.1` finish in about 0.1 s:
///
/// ```
/// use crew::subprocess::{Command, Runner};
///
/// let runner = Runner::new(10);
/// let start = std::time::Instant::now();
/// let results: Vec<_> = runner
///     .run((0..10).map(|_| Command::new("sleep").arg("0.1")))
///     .collect();
/// assert!(results.iter().all(|r| r.success()));
/// println!("Finished in {:.3} seconds", start.elapsed().as_secs_f64());
/// ```
///
/// Every job registers with the runner's [`KillSwitch`]: firing it (say, from a Ctrl-C
/// handler) stops all running jobs with their process groups, and no new job starts. A
/// [`Halt::Now`] fires it too. A fired runner stays fired; make a new one for more work.
pub struct Runner {
    pool: ThreadPool,
    limit: usize,
    ordered: bool,
    read_ahead: bool,
    retries: u32,
    halt: Halt,
    grace: Duration,
    switch: KillSwitch,
}

impl Runner {
    /// A runner of at most `limit` concurrent jobs, completion order, no retries, no halt.
    ///
    /// # Panics
    /// If `limit` is 0 or the system cannot start the pool's threads.
    #[track_caller]
    pub fn new(limit: usize) -> Self {
        assert!(
            limit > 0,
            "Runner::new: the concurrency limit must be at least 1"
        );
        // Threads on demand: `limit` is a ceiling (`crew run -j 65535 ::: a b c` needs three).
        let pool = ThreadPool::builder()
            .max_workers(limit)
            .start_on_demand(true)
            .thread_name_prefix("crew-run")
            .stack_size(256 * 1024)
            .build()
            .expect("crew: cannot start the runner's threads");
        Self {
            pool,
            limit,
            ordered: false,
            read_ahead: true,
            retries: 0,
            halt: Halt::Never,
            grace: DEFAULT_GRACE,
            switch: KillSwitch::new(),
        }
    }

    /// Yield results in input order (GNU parallel's `--keep-order`) instead of as they
    /// complete. Jobs still run at most `limit` at a time, and a finished job waits for its turn
    /// in its slot: at most `limit` jobs are started and not yet yielded. A slow job therefore
    /// lets at most `limit - 1` jobs run ahead of it, and the results held back never exceed
    /// `limit - 1`, however long the input.
    pub fn keep_order(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// In completion order, take up to `limit` more jobs from the input than are running, queued
    /// for the next free thread (the default, `true`; see the module's design note). `false`
    /// takes a job only when one has been yielded, e.g. when the caller numbers job slots
    /// itself as jobs are taken and gives a number back as each result is yielded.
    pub fn read_ahead(mut self, read_ahead: bool) -> Self {
        self.read_ahead = read_ahead;
        self
    }

    /// Run a failing job up to `retries` more times (a job that could not start because its
    /// program is missing or not executable is not retried).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// When to stop early.
    pub fn halt(mut self, halt: Halt) -> Self {
        self.halt = halt;
        self
    }

    /// SIGTERM-to-SIGKILL grace period when [`Halt::Now`] stops running jobs.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The switch that stops every job of this runner.
    pub fn kill_switch(&self) -> &KillSwitch {
        &self.switch
    }

    /// The concurrency limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Runs `commands` lazily: at most `limit` at a time, the input read only as the window
    /// has room (at most `limit` jobs ahead, see [`read_ahead`](Self::read_ahead)).
    pub fn run<I>(&self, commands: I) -> Results<'_, I::IntoIter>
    where
        I: IntoIterator<Item = Command>,
    {
        let order = if self.ordered {
            Order::Input
        } else {
            Order::Completion
        };
        Results {
            runner: self,
            commands: commands.into_iter(),
            input_done: false,
            seq: 0,
            window: Window::new(
                order,
                if self.ordered || !self.read_ahead {
                    self.limit
                } else {
                    self.limit.saturating_mul(2)
                },
            ),
            tally: Arc::new(Mutex::new(Tally::default())),
            refused: None,
        }
    }

    fn launch(
        &self,
        seq: usize,
        command: Command,
        tally: &Arc<Mutex<Tally>>,
        ahead: bool,
    ) -> Result<TaskHandle<Option<JobResult>>, SubmitError> {
        let command = command.kill_switch(&self.switch);
        let retries = self.retries;
        let halt = self.halt;
        let grace = self.grace;
        let switch = self.switch.clone();
        let tally = tally.clone();
        let job = move || {
            // Queued ahead (see the design note): start nothing once the run has stopped. A job
            // within the first `limit` was as good as started when it was submitted.
            if ahead && (tally.lock().stopped || switch.is_fired()) {
                return None;
            }
            let mut attempts = 0;
            loop {
                attempts += 1;
                let outcome = command.output();
                let retry = match &outcome {
                    Ok(done) => !done.success(),
                    Err(Error::NotFound { .. } | Error::PermissionDenied { .. }) => false,
                    Err(_) => true,
                };
                if !retry || attempts > retries || switch.is_fired() {
                    let result = JobResult {
                        seq,
                        attempts,
                        outcome,
                    };
                    Tally::count(&tally, &result, halt, &switch, grace);
                    return Some(result);
                }
            }
        };
        self.pool.spawn(job)
    }
}

/// The outcomes counted so far by one [`Results`] and its jobs, and whether a [`Halt`] stopped
/// it.
#[derive(Debug, Default)]
struct Tally {
    failed: usize,
    succeeded: usize,
    stopped: bool,
    halted_by: Option<usize>,
}

impl Tally {
    /// Counts one finished job and, when that meets the halt condition, stops the run (and, for
    /// [`Halt::Now`], fires the kill switch, outside the lock: firing waits for the others).
    fn count(
        tally: &Mutex<Tally>,
        result: &JobResult,
        halt: Halt,
        switch: &KillSwitch,
        grace: Duration,
    ) {
        let fire = {
            let mut tally = tally.lock();
            if result.success() {
                tally.succeeded += 1;
            } else {
                tally.failed += 1;
            }
            let (condition, now) = match halt {
                Halt::Never => return,
                Halt::Soon(condition) => (condition, false),
                Halt::Now(condition) => (condition, true),
            };
            if tally.stopped || !condition.met(tally.failed, tally.succeeded) {
                return;
            }
            tally.stopped = true;
            tally.halted_by = Some(result.seq);
            now
        };
        if fire {
            switch.fire(grace);
        }
    }
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("limit", &self.limit)
            .field("ordered", &self.ordered)
            .field("read_ahead", &self.read_ahead)
            .field("retries", &self.retries)
            .field("halt", &self.halt)
            .field("switch", &self.switch)
            .finish()
    }
}

/// The lazy iterator of [`Runner::run`]: one [`JobResult`] per job that was started.
///
/// Jobs not started because of a halt or a fired kill switch yield nothing. Dropping the
/// iterator early detaches the running jobs; they finish in the background.
///
/// The next command is taken from the input whenever the window has room (see
/// [`Runner::read_ahead`]), before waiting for a result; an input that blocks (a pipe with nothing to read yet) therefore also delays the
/// results of jobs already finished until it yields or ends.
pub struct Results<'a, I> {
    runner: &'a Runner,
    commands: I,
    input_done: bool,
    seq: usize,
    /// The jobs started and not yet yielded, tagged with their `seq`.
    /// A job that found the run stopped when a thread took it holds `None`.
    window: Window<usize, Option<JobResult>>,
    tally: Arc<Mutex<Tally>>,
    refused: Option<JobResult>,
}

impl<I: Iterator<Item = Command>> Results<'_, I> {
    /// The number of jobs that failed so far (counted as each job ends, which may be before
    /// its result is yielded).
    pub fn failed(&self) -> usize {
        self.tally.lock().failed
    }

    /// The number of jobs that succeeded so far (counted as each job ends).
    pub fn succeeded(&self) -> usize {
        self.tally.lock().succeeded
    }

    /// The `seq` of the job whose completion triggered the [`Halt`], if one did.
    pub fn halted_by(&self) -> Option<usize> {
        self.tally.lock().halted_by
    }

    fn refill(&mut self) {
        let Self {
            runner,
            commands,
            input_done,
            seq,
            window,
            tally,
            refused,
        } = self;
        // Jobs submitted while `limit` are already held wait in the pool's queue: ahead.
        let mut held = window.len();
        window.refill(|| {
            if *input_done || tally.lock().stopped || runner.switch.is_fired() {
                return None;
            }
            let Some(command) = commands.next() else {
                *input_done = true;
                return None;
            };
            *seq += 1;
            let ahead = held >= runner.limit;
            held += 1;
            match runner.launch(*seq, command, tally, ahead) {
                Ok(handle) => Some((*seq, handle)),
                Err(error) => {
                    // The pool lives as long as the runner, so this does not happen; report it.
                    tally.lock().stopped = true;
                    *refused = Some(JobResult {
                        seq: *seq,
                        attempts: 0,
                        outcome: Err(Error::io(
                            format!("the runner's pool refused job {seq}"),
                            io::Error::other(error),
                        )),
                    });
                    None
                }
            }
        });
    }
}

impl<I: Iterator<Item = Command>> Iterator for Results<'_, I> {
    type Item = JobResult;

    fn next(&mut self) -> Option<JobResult> {
        loop {
            self.refill();
            if let Some(result) = self.refused.take() {
                self.tally.lock().failed += 1;
                return Some(result);
            }
            let Next::Finished(job) = self.window.next(None) else {
                return None;
            };
            let seq = job.tag;
            match job.handle.result() {
                Ok(Some(result)) => return Some(result),
                // Queued ahead and not started: the run had stopped.
                Ok(None) => continue,
                Err(error) => {
                    // The job itself never returned (crew failed to run it): count it here.
                    let result = JobResult {
                        seq,
                        attempts: 1,
                        outcome: Err(Error::io(
                            format!("job {seq} failed inside crew"),
                            io::Error::other(error.to_string()),
                        )),
                    };
                    Tally::count(
                        &self.tally,
                        &result,
                        self.runner.halt,
                        &self.runner.switch,
                        self.runner.grace,
                    );
                    return Some(result);
                }
            }
        }
    }
}

impl<I> fmt::Debug for Results<'_, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tally = self.tally.lock();
        f.debug_struct("Results")
            .field("started", &self.seq)
            .field("in_flight", &self.window.len())
            .field("failed", &tally.failed)
            .field("succeeded", &tally.succeeded)
            .field("halted_by", &tally.halted_by)
            .finish_non_exhaustive()
    }
}
