//! `crew run`: run a command for every argument, N at a time (like `xargs -P` and GNU parallel).
//!
//! ```text
//! crew run -j 4 --timeout 10s --keep-order --tag -- gzip -9 {} ::: *.log
//! find . -name '*.png' | crew run -j 8 -- convert {} {.}.jpg
//! crew run --joblog log --resume-failed -- ./fetch {1} {2} ::: a b :::: ports.txt
//! ```
//!
//! Input sources are in `input`, the template in `template`, `--halt` in `halt`, the
//! joblog (and `--resume`) in `joblog`, `--results` in `results`, `--cluster` (jobs run on
//! a cluster's workers) in `remote`.
//!
//! The work is done by [`crew::subprocess::Runner`]; this module parses arguments, expands the
//! template, prints each job's output whole, writes the joblog and maps the outcome to an exit
//! status (the number of failed jobs, at most 101, as GNU parallel does).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crew::subprocess::{Command, ExitStatus, Halt, HaltWhen, JobResult, Runner};
use crew_cli::tasks::READ_AFTER_EXIT;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `eprintln!` that never panics: standard error may be a closed pipe (`2>&1 | head`), and a
/// message nobody can read must not turn the exit status into a panic's 101.
macro_rules! warn {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod halt;
mod input;
mod joblog;
mod raw;
mod remote;
mod results;
mod suspend;
mod template;

use crate::cluster::Connection;
use crate::duration::parse_duration;
use halt::HaltSpec;
use input::{Jobs, Origin};
use joblog::JobLog;
use template::{Inputs, Template};

/// The highest exit status for failed jobs (GNU parallel's cap); 101 means "101 or more".
const MAX_FAILED_STATUS: usize = 101;

/// File descriptors one running job may hold in crew at once: its two output pipes and its
/// pidfd, two spool files, and the short-lived ones of a spawn (`/dev/null`, std's exec pipe).
const FILES_PER_JOB: u64 = 6;

/// File descriptors kept for crew itself: standard streams, the joblog, `--results` files...
const FILES_RESERVED: u64 = 32;

/// How much of each job's standard output, and of its standard error, is held in memory until
/// the job ends; beyond it the output goes to an unnamed temporary file (GNU parallel spools
/// all output to files), so a job printing gigabytes costs disk, not memory.
const SPOOL_AFTER: usize = 1 << 20;

/// Arguments of `crew run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Input sources: each ':::' group and each '::::' file (one argument a line; '-' \
is standard input) is one input source; without any, arguments are the lines of standard input. \
Several sources make the cartesian product, the last varying fastest (GNU parallel's order): \
'crew run echo {1}-{2} ::: a b ::: 1 2' runs a-1 a-2 b-1 b-2. ':::+' and '::::+' link a source \
to the one before it (they advance together, as long as the shorter): \
'::: a b :::+ 1 2' runs a 1, b 2. -0 splits standard input and '::::' files at NUL bytes.\n\n\
Replacement strings: {} the argument (all of them, separated by spaces, with several sources), \
{.} without extension, {/} basename, {//} directory, {/.} basename without extension, {#} job \
number, {%} job slot (1 to -j); {1} {2} ... the argument of that input source, also as {1.} \
{1/} {1//} {1/.}. Without any, the arguments are appended. Without a command, each argument \
is a shell command.\n\n\
Quoting: an argument is never shell code. In a shell script (one word with shell syntax, \
--shell, or the script after a shell's -c such as sh -c 'gzip {}') each replacement string \
reads the value from the job's environment (CREW_ARG for {}, CREW_ARG_NOEXT {.}, \
CREW_ARG_BASENAME {/}, CREW_ARG_DIRNAME {//}, CREW_ARG_BASENAME_NOEXT {/.}, CREW_ARG_2 {2}, \
CREW_ARG_2_NOEXT {2.} ..., CREW_SEQ {#}, CREW_SLOT {%}), \
written for where it stands: {} bare, \"{}\" and '{}' all give the argument byte for byte, \
one word, with $(...), backticks, $VAR, quotes, ';' and newlines left as text (a bare {} with \
several sources is one word per source); inside $(( )) \
only a whole number is accepted (the job fails otherwise). Otherwise (direct \
mode) crew starts no shell: each word is one argument of the program, values verbatim. A \
program that runs its arguments as code itself (ssh, eval, python -c, a nested sh -c inside a \
script) gets the text as is: pass the value as a separate argument instead, as in \
sh -c 'echo \"$1\"' sh {}.\n\n\
--dry-run prints each command as --joblog shows it (values quoted in place, ready to paste into \
a shell, where it does what the job would do) and runs nothing. --resume skips the jobs the \
--joblog already lists, --resume-failed the ones it lists as succeeded; both match jobs by \
number ({#}, the position in the input), so give the same input, and both add to the log. \
--results DIR writes DIR/1/ARG1/2/ARG2.../{seq,stdout,stderr,exit} for every job \
('/' in an argument is written \\_, '\\' as \\\\). --eta shows the progress bar with the \
estimated time left on standard error, and only when it is a terminal; it reads all the input \
before the first job, as percentages in --halt do.\n\n\
Values need not be UTF-8: a file name in another encoding reaches the job byte for byte.\n\n\
--cluster URL runs every job on the workers of a crew cluster (`crew worker --nats URL`) \
instead of here, with the same output, --timeout, --retries, --halt and --joblog (its Host \
column names the worker's host); {%} and values that are not UTF-8 are refused there.\n\n\
Ctrl-Z pauses the running jobs with crew; fg or bg continue them.\n\n\
Output: each job's output is printed whole when it ends; beyond 1 MiB per stream it waits in \
an unnamed temporary file in $TMPDIR, not in memory. When standard output is closed (| head), \
the running jobs are stopped and no more start. --tag output streams through a \
bounded buffer. A job ends when its program exits, as in GNU parallel: a background process \
it leaves ('sleep 60 & echo hi') runs on, and what that prints more than 100 ms after the \
job's exit is not captured (redirect it: 'cmd > log 2>&1 &').\n\n\
Input records (lines, or NUL-separated values with -0) longer than 128 KiB, more than one \
program argument can hold, stop the input with an error naming the record.\n\n\
Exit status: the number of failed jobs (at most 101); with --halt on failure, the exit code of \
the job that triggered it; 130 when interrupted; 141 when standard output was closed; 255 when \
crew itself fails (an unreadable argument file, an input record longer than 128 KiB...)."
)]
pub(crate) struct Args {
    /// Jobs to run at once [default: the number of CPUs]; 0 runs as many as the open-file
    /// and process limits (ulimit -n, ulimit -u) hold, at most 1024, as GNU parallel's -j 0
    /// and xargs -P 0 do.
    #[arg(short = 'j', long = "jobs")]
    jobs: Option<u16>,
    /// Kill a job (and everything it started) that runs longer than this: 10s, 1.5, 500ms, 2m;
    /// 0 means no time limit (as in GNU parallel and timeout(1)).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when a job is stopped.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    grace: Duration,
    /// Print outputs in input order instead of completion order.
    #[arg(short = 'k', long)]
    keep_order: bool,
    /// Run a failing job up to this many more times.
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// Stop early: never | now|soon,fail|success|done=N or =P% (P% of all jobs, rounded up),
    /// e.g. now,fail=1  soon,fail=10%. `now` kills running jobs, `soon` lets them finish.
    #[arg(long, default_value = "never", value_name = "WHEN")]
    halt: HaltSpec,
    /// Write GNU parallel's tab-separated job log to this file.
    #[arg(long, value_name = "FILE")]
    joblog: Option<PathBuf>,
    /// Skip the jobs the --joblog lists (a finished run's log), and add to it.
    #[arg(long)]
    resume: bool,
    /// Skip the jobs the --joblog lists as succeeded; run the failed and the missing ones.
    #[arg(long)]
    resume_failed: bool,
    /// Write each job's stdout, stderr, seq and exit status into files under DIR.
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// Print the commands that would run, one a line, and run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Arguments on standard input and in `::::` files end with a NUL byte, not a newline.
    #[arg(short = '0', long = "null")]
    null: bool,
    /// Prefix every output line with the job's argument and a tab.
    #[arg(long)]
    tag: bool,
    /// Run the command with /bin/sh -c (automatic when it is one word with shell syntax).
    #[arg(long)]
    shell: bool,
    /// Show the estimated time left (on a terminal only; reads all input first).
    #[arg(long)]
    eta: bool,
    /// Never show the progress bar (it is shown only when standard error is a terminal).
    #[arg(long)]
    no_progress: bool,
    /// Run every job on this cluster's workers (`crew worker --nats URL`) instead of here,
    /// e.g. nats://10.0.0.1:4222; authenticate with the options below (--token-file...).
    #[arg(long, value_name = "URL", conflicts_with_all = ["nats", "dry_run"])]
    cluster: Option<String>,
    #[command(flatten)]
    connection: Connection,
    /// The command template, then its input sources: `:::` ARGS, `:::+` ARGS, `::::` FILES,
    /// `::::+` FILES.
    ///
    /// Options go before the command: from its first word on, every word is the command's
    /// or an input's, whatever it looks like (`--` before a command that starts with `-`).
    // No `allow_hyphen_values` here: with it, clap reads `-j4` (its `4` is no flag) as the
    // command's first word.
    #[arg(
        trailing_var_arg = true,
        value_name = "CMD",
        value_parser = clap::value_parser!(std::ffi::OsString)
    )]
    command: Vec<std::ffi::OsString>,
}

/// What `main` needs to know about each started job.
#[derive(Debug, Default)]
struct Job {
    /// The job's number in input order (`{#}`, the joblog's Seq).
    seq: usize,
    slot: usize,
    values: Vec<String>,
    command: String,
}

/// Refuses option combinations that cannot mean anything.
fn check_combinations(args: &Args, sources: &[input::Source]) -> anyhow::Result<()> {
    if (args.resume || args.resume_failed) && args.joblog.is_none() {
        anyhow::bail!(
            "--resume and --resume-failed read the jobs already done from the joblog: give \
             --joblog FILE (the log of the run to resume)"
        );
    }
    if args.resume && args.resume_failed {
        anyhow::bail!(
            "--resume skips every logged job, --resume-failed reruns the failed ones: choose one"
        );
    }
    if args.dry_run && args.results.is_some() {
        anyhow::bail!("--dry-run runs nothing, so --results would have nothing to write: drop one");
    }
    if args.dry_run && args.eta {
        anyhow::bail!("--dry-run runs nothing, so there is no time left to estimate: drop --eta");
    }
    if args.eta && args.no_progress {
        anyhow::bail!("--eta shows the progress bar and --no-progress hides it: drop one");
    }
    if args.null
        && sources
            .iter()
            .all(|s| matches!(s.origin, Origin::Inline(_)))
    {
        anyhow::bail!(
            "-0/--null splits standard input and `::::` files at NUL bytes, and this run reads \
             neither (its arguments all follow `:::`): drop -0, or pass the input on standard \
             input or with `::::`"
        );
    }
    if args.cluster.is_none() && args.connection.has_url_flag() {
        anyhow::bail!(
            "crew run takes the cluster's address as --cluster URL (and runs locally without \
             it): replace --nats with --cluster"
        );
    }
    if let Some(dir) = &args.results {
        if dir.exists() && !dir.is_dir() {
            anyhow::bail!(
                "--results {} exists and is not a directory: name a directory",
                dir.display()
            );
        }
    }
    Ok(())
}

/// The lowest free job slots (`{%}`): a job takes one when its command is built and gives it
/// back when its result has been read, so jobs that run at once never share one.
#[derive(Debug, Default)]
struct Slots {
    free: BTreeSet<usize>,
    next: usize,
}

impl Slots {
    fn take(&mut self) -> usize {
        self.free.pop_first().unwrap_or_else(|| {
            self.next += 1;
            self.next
        })
    }

    fn give_back(&mut self, slot: usize) {
        if slot > 0 {
            self.free.insert(slot);
        }
    }
}

pub(crate) fn main(mut args: Args) -> anyhow::Result<ExitCode> {
    let (words, sources) = input::split_command(
        args.command
            .iter()
            .map(|word| raw::encode(word.as_bytes()))
            .collect(),
    )
    .map_err(anyhow::Error::msg)?;
    check_combinations(&args, &sources)?;
    if sources.iter().any(|s| s.origin == Origin::Stdin) && io::stdin().is_terminal() {
        // As GNU parallel warns: without it, a forgotten `:::` looks like a hang.
        warn!(
            "crew run: reading the arguments from the terminal, one a line; end them with \
             Ctrl-D (or give them after `:::`, in a file with `:::: FILE`, or through a pipe)"
        );
    }
    let template = Template::new(words, args.shell, sources.len()).map_err(anyhow::Error::msg)?;
    let separator = if args.null { 0 } else { b'\n' };
    let whole = args.eta || args.halt.is_percent();
    let mut jobs = Jobs::new(&sources, separator, whole)?;
    if whole && jobs.total.is_none() {
        let all = jobs.collect_all()?;
        jobs = Jobs {
            total: Some(all.len()),
            iter: Box::new(all.into_iter().map(Ok)),
        };
    }
    let Jobs { iter: input, total } = jobs;

    let skip: HashSet<usize> = match (&args.joblog, args.resume || args.resume_failed) {
        (Some(path), true) => joblog::finished(path, args.resume_failed)?,
        _ => HashSet::new(),
    };
    let limit = match args.jobs {
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        // GNU parallel's `-j 0` and `xargs -P 0`: as many at once as possible.
        Some(0) => jobs_the_limits_hold(),
        Some(jobs) => usize::from(jobs),
    };
    // A cluster's jobs hold no files here; a dry run starts none.
    let limit = if args.dry_run || args.cluster.is_some() {
        limit
    } else {
        jobs_that_fit(limit)
    };
    let input_error: Rc<RefCell<Option<anyhow::Error>>> = Rc::default();
    let pending = {
        let input_error = input_error.clone();
        input
            .map_while(move |job| match job {
                Ok(values) => Some(values),
                Err(error) => {
                    *input_error.borrow_mut() = Some(error);
                    None
                }
            })
            .enumerate()
            .map(|(index, values)| (index + 1, values))
            .filter(move |(seq, _)| !skip.contains(seq))
    };

    if args.dry_run {
        let mut out = io::stdout().lock();
        for (seq, values) in pending {
            let slot = (seq - 1) % limit + 1;
            let (_, shown) = template.command(&Inputs {
                values: &values,
                seq,
                slot,
            });
            // A closed stdout (`| head`) ends the listing quietly. Bytes that are not UTF-8
            // are printed as they are, inside the quotes.
            let mut line = raw::decode_bytes(&shown);
            line.push(b'\n');
            if out.write_all(&line).is_err() {
                break;
            }
        }
        if let Some(error) = input_error.borrow_mut().take() {
            return Err(error);
        }
        return Ok(ExitCode::SUCCESS);
    }

    let cluster = match args.cluster.clone() {
        Some(url) => {
            if template.uses_slot() {
                anyhow::bail!(
                    "{{%}} (the job slot) numbers this machine's slots, and with --cluster the \
                     jobs run on the workers' slots: drop {{%}} or run without --cluster"
                );
            }
            args.connection.set_url(url);
            Some(Arc::new(
                crew::cluster::Cluster::connect(args.connection.options()?).with_context(|| {
                    "cannot connect to the cluster given with --cluster (check the URL and the \
                 credentials, e.g. --token-file)"
                })?,
            ))
        }
        None => None,
    };
    let halt = args.halt.resolve(total);
    // Slots are numbered here as jobs are taken from the input, which is exact only when the
    // runner takes a job just as another one's result is yielded.
    let runner = Runner::new(limit)
        .read_ahead(!template.uses_slot())
        .keep_order(args.keep_order)
        .retries(args.retries)
        .halt(halt)
        .grace(args.grace);

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let switch = runner.kill_switch().clone();
        let interrupted = interrupted.clone();
        let grace = args.grace;
        let cluster = cluster.clone();
        ctrlc::set_handler(move || {
            interrupted.store(true, Ordering::SeqCst);
            switch.fire(grace);
            // Jobs sent to a cluster: the queued ones are removed (they never run), the running
            // ones' worker processes killed; the second below lets those notices go out.
            if let Some(cluster) = &cluster {
                crew::Executor::shutdown(&**cluster, false, true);
            }
            // The main thread may be blocked reading arguments from a stdin that never ends;
            // every job is stopped now, so give it a moment to report, then leave.
            std::thread::sleep(Duration::from_secs(1));
            warn!("crew run: interrupted; running jobs were stopped");
            std::process::exit(130);
        })
        .context("cannot install the Ctrl-C handler")?;
    }

    if cluster.is_none() {
        // Ctrl-Z pauses the jobs too: they lead process groups of their own, which the
        // terminal's stop does not reach (see `suspend`).
        suspend::pause_jobs_with_crew(runner.kill_switch().clone())
            .context("cannot set up Ctrl-Z (SIGTSTP) handling")?;
    }

    let mut joblog = match &args.joblog {
        Some(path) => {
            let log = if args.resume || args.resume_failed {
                JobLog::append(path)
            } else {
                JobLog::create(path)
            };
            Some(log.with_context(|| format!("cannot write the joblog {}", path.display()))?)
        }
        None => None,
    };
    if let Some(dir) = &args.results {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the --results directory {}", dir.display()))?;
    }

    let to_run = total.map(|total| total.saturating_sub(skip_count(&args, total)));
    let progress = progress_bar(to_run, args.no_progress, args.eta);

    // The commands are built lazily as the runner asks for them; remember each job (keyed by the
    // runner's own count, which skipped jobs do not advance) for output, the joblog and results.
    let jobs_seen: Rc<RefCell<HashMap<usize, Job>>> = Rc::default();
    let slots: Rc<RefCell<Slots>> = Rc::default();
    let commands = {
        let jobs_seen = jobs_seen.clone();
        let slots = slots.clone();
        // `--timeout 0` is no limit, as GNU parallel and timeout(1) read it, not "kill at once".
        let timeout = args.timeout.filter(|timeout| !timeout.is_zero());
        let grace = args.grace;
        let mut launched = 0usize;
        pending.map(move |(seq, values)| {
            launched += 1;
            let slot = slots.borrow_mut().take();
            let (command, shown) = template.command(&Inputs {
                values: &values,
                seq,
                slot,
            });
            let mut command: Command = command
                .grace(grace)
                .spool_after(SPOOL_AFTER)
                .read_after_exit(READ_AFTER_EXIT);
            if let Some(timeout) = timeout {
                command = command.timeout(timeout);
            }
            jobs_seen.borrow_mut().insert(
                launched,
                Job {
                    seq,
                    slot,
                    values,
                    command: shown,
                },
            );
            command
        })
    };

    let mut failed = 0usize;
    let mut halt_status = None;
    let mut stdout_closed = false;
    let mut results = match &cluster {
        Some(cluster) => Results::Remote(remote::Remote::new(
            cluster,
            commands,
            limit,
            args.keep_order,
            args.retries,
            halt,
            args.grace,
        )),
        None => Results::Local(runner.run(commands)),
    };
    while let Some((result, host)) = results.next() {
        let job = jobs_seen
            .borrow_mut()
            .remove(&result.seq)
            .unwrap_or_default();
        slots.borrow_mut().give_back(job.slot);
        if !result.success() {
            failed += 1;
        }
        if results.halted_by() == Some(result.seq)
            && matches!(
                halt,
                Halt::Now(HaltWhen::Fail(_)) | Halt::Soon(HaltWhen::Fail(_))
            )
        {
            halt_status = Some(match &result.outcome {
                Ok(done) => match done.status {
                    ExitStatus::Code(code) if code != 0 => code,
                    _ => 1,
                },
                Err(_) => 1,
            });
        }
        // Standard output closed (`| head` exited): stop as GNU parallel does when SIGPIPE
        // kills it, instead of running every remaining job for nobody. The stopped jobs are
        // still logged, so `--resume` can pick up from there.
        if !stdout_closed && !progress.suspend(|| print_job(&result, &job, args.tag)) {
            stdout_closed = true;
            results.stop(runner.kill_switch(), args.grace);
        }
        if let Some(log) = &mut joblog {
            log.record(job.seq, &host, &result, &job.command)
                .context("cannot write the joblog")?;
        }
        if let Some(dir) = &args.results {
            results::write(dir, &job.values, job.seq, &result).with_context(|| {
                format!(
                    "cannot write the results of job {} under {}",
                    job.seq,
                    dir.display()
                )
            })?;
        }
        progress.inc(1);
        progress.set_message(format!("{failed} failed"));
    }
    progress.finish_and_clear();
    if let Some(error) = input_error.borrow_mut().take() {
        return Err(error);
    }
    if interrupted.load(Ordering::SeqCst) {
        warn!("crew run: interrupted; running jobs were stopped");
        return Ok(ExitCode::from(130));
    }
    if stdout_closed {
        // What a shell reports for a program killed by SIGPIPE, as for GNU parallel.
        return Ok(ExitCode::from(128 + libc::SIGPIPE as u8));
    }
    let status = match halt_status {
        Some(code) => code.clamp(1, 255) as u8,
        None => failed.min(MAX_FAILED_STATUS) as u8,
    };
    Ok(ExitCode::from(status))
}

/// Where the jobs run: here, with crew's [`Runner`], or on a cluster's workers.
enum Results<'r, I: Iterator<Item = Command>> {
    Local(crew::subprocess::Results<'r, I>),
    Remote(remote::Remote<'r, I>),
}

impl<I: Iterator<Item = Command>> Results<'_, I> {
    /// The next job's result and the host that ran it (`:` for this machine, as in GNU
    /// parallel's joblog).
    fn next(&mut self) -> Option<(JobResult, String)> {
        match self {
            Results::Local(results) => results.next().map(|result| (result, ":".to_owned())),
            Results::Remote(remote) => remote.next(),
        }
    }

    /// Starts no more jobs and stops the running ones (their results still come); `switch`
    /// is the local runner's.
    fn stop(&mut self, switch: &crew::subprocess::KillSwitch, grace: Duration) {
        match self {
            Results::Local(_) => switch.fire(grace),
            Results::Remote(remote) => remote.stop(),
        }
    }

    /// The job whose result met the `--halt` condition, if one did.
    fn halted_by(&self) -> Option<usize> {
        match self {
            Results::Local(results) => results.halted_by(),
            Results::Remote(remote) => remote.halted_by(),
        }
    }
}

/// `limit`, or fewer if the open-file limit (`ulimit -n`) cannot hold that many jobs' files:
/// the soft limit is raised first, towards the hard one but no further than the jobs need
/// (every job inherits it, and a program that closes every descriptor up to its limit, or
/// uses `select`, suffers from a huge one), and if that is still short, the jobs run fewer at
/// a time with a warning (as GNU parallel does), rather than failing with "Too many open
/// files".
fn jobs_that_fit(limit: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let needed = (limit as u64)
        .saturating_mul(FILES_PER_JOB)
        .saturating_add(FILES_RESERVED);
    let mut files = getrlimit(Resource::Nofile);
    if files.current.is_some_and(|current| current < needed) {
        let raised = rustix::process::Rlimit {
            current: Some(files.maximum.map_or(needed, |maximum| maximum.min(needed))),
            maximum: files.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            files = raised;
        }
    }
    let Some(open_files) = files.current else {
        return limit; // unlimited
    };
    let fit = open_files.saturating_sub(FILES_RESERVED) / FILES_PER_JOB;
    let fit = usize::try_from(fit).unwrap_or(usize::MAX).max(1);
    if fit < limit {
        warn!(
            "crew run: the open-file limit ({open_files}, ulimit -n) holds the files of {fit} \
             jobs at once, not {limit}: running {fit} at a time (raise ulimit -n for more)"
        );
        return fit;
    }
    limit
}

/// `-j 0`: as many jobs as the open-file limit (`ulimit -n`) holds as it is (the limit is not
/// raised for them: every job inherits it, see [`jobs_that_fit`]), and the process limit
/// (`ulimit -u`) too, at most [`MAX_JOBS_AT_ONCE`].
fn jobs_the_limits_hold() -> usize {
    use rustix::process::{getrlimit, Resource};
    jobs_within(
        getrlimit(Resource::Nofile).current,
        getrlimit(Resource::Nproc).current,
    )
}

/// The most jobs `-j 0` runs at once, whatever the limits: each costs a thread in crew and a
/// process, and an unlimited `ulimit -n` or `-u` would otherwise mean tens of thousands.
const MAX_JOBS_AT_ONCE: usize = 1024;

/// Processes (counted by `ulimit -u`: threads too) one running job takes: its thread in crew
/// and its own process.
const PROCESSES_PER_JOB: u64 = 2;

/// Processes left under `ulimit -u` for the user's other processes and the jobs' children:
/// the limit counts every process of the user, not only crew's.
const PROCESSES_RESERVED: u64 = 64;

/// [`jobs_the_limits_hold`] for these soft limits on open files and processes (`None`:
/// unlimited): at least one, at most [`MAX_JOBS_AT_ONCE`].
fn jobs_within(open_files: Option<u64>, processes: Option<u64>) -> usize {
    let by_files = open_files.map(|files| files.saturating_sub(FILES_RESERVED) / FILES_PER_JOB);
    let by_processes =
        processes.map(|processes| processes.saturating_sub(PROCESSES_RESERVED) / PROCESSES_PER_JOB);
    [by_files, by_processes]
        .into_iter()
        .flatten()
        .map(|fit| usize::try_from(fit).unwrap_or(usize::MAX))
        .fold(MAX_JOBS_AT_ONCE, usize::min)
        .max(1)
}

/// How many of the first `total` jobs `--resume` / `--resume-failed` skip (for the progress
/// bar's length).
fn skip_count(args: &Args, total: usize) -> usize {
    match (&args.joblog, args.resume || args.resume_failed) {
        (Some(path), true) => joblog::finished(path, args.resume_failed)
            .map(|done| done.iter().filter(|&&seq| seq >= 1 && seq <= total).count())
            .unwrap_or(0),
        _ => 0,
    }
}

fn progress_bar(total: Option<usize>, disabled: bool, eta: bool) -> ProgressBar {
    if disabled || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => {
            let template = if eta {
                "{elapsed_precise} {wide_bar} {pos}/{len} jobs, {msg}, ETA {eta}"
            } else {
                "{elapsed_precise} {wide_bar} {pos}/{len} jobs, {msg}"
            };
            ProgressBar::new(total as u64).with_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            )
        }
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {pos} jobs, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Prints one job's standard output and error, each whole, tagged if asked. Returns `false`
/// when standard output is closed (`crew run ... | head` after `head` exited).
fn print_job(result: &JobResult, job: &Job, tag: bool) -> bool {
    let prefix = tag.then(|| raw::decode_bytes(&format!("{}\t", job.values.join(" "))));
    let prefix = prefix.as_deref();
    match &result.outcome {
        Ok(done) => {
            // Output that outgrew memory was spooled to a file: stream it back a chunk at a time.
            let mut stdout = io::stdout().lock();
            let printed = match &done.stdout_spool {
                Some(spool) => write_stream(&mut stdout, spool.reader(), prefix),
                None => write_whole(&mut stdout, &done.stdout, prefix),
            };
            drop(stdout);
            let mut stderr = io::stderr().lock();
            // Standard error is for messages too: it is written to whatever happens.
            let _ = match &done.stderr_spool {
                Some(spool) => write_stream(&mut stderr, spool.reader(), prefix),
                None => write_whole(&mut stderr, &done.stderr, prefix),
            };
            drop(stderr);
            if let Some(after) = done.timed_out {
                warn!(
                    "crew run: job {} timed out after {after:?} and was killed: {}",
                    result.seq,
                    String::from_utf8_lossy(&raw::decode_bytes(&job.command))
                );
            }
            !matches!(printed, Err(error) if error.kind() == io::ErrorKind::BrokenPipe)
        }
        Err(error) => {
            let message = format!("crew run: job {}: {error}\n", result.seq);
            let _ = write_whole(&mut io::stderr().lock(), message.as_bytes(), prefix);
            true
        }
    }
}

fn write_whole(out: &mut dyn Write, bytes: &[u8], prefix: Option<&[u8]>) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut tagged = Tagged::new(out, prefix);
    tagged.write(bytes)?;
    tagged.finish()
}

/// Copies `from` to `out` a chunk at a time, each line prefixed when `prefix` is given (a line
/// may span chunks: the prefix goes before the first byte after each newline).
fn write_stream(
    out: &mut dyn Write,
    mut from: impl io::Read,
    prefix: Option<&[u8]>,
) -> io::Result<()> {
    let mut chunk = vec![0u8; WRITE_CHUNK];
    let mut tagged = Tagged::new(out, prefix);
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                let _ = tagged.finish();
                warn!("crew run: cannot read a job's spooled output back: {error}");
                return Ok(());
            }
        };
        tagged.write(&chunk[..n])?;
    }
    tagged.finish()
}

/// How much tagged output is gathered before it is written: `--tag` adds the argument to every
/// line, so 1 MiB of empty lines with a 100 KiB argument is 100 GiB of output, which must
/// stream through a buffer of this size rather than be built in memory first.
const WRITE_CHUNK: usize = 64 * 1024;

/// A job's output on its way to `out`, each line prefixed (`--tag`) when a prefix is given,
/// gathered in pieces of at most [`WRITE_CHUNK`] plus one prefix.
struct Tagged<'o, 'p> {
    out: &'o mut dyn Write,
    prefix: Option<&'p [u8]>,
    /// Whether the next byte starts a line (and so gets the prefix).
    line_start: bool,
    pending: Vec<u8>,
}

impl<'o, 'p> Tagged<'o, 'p> {
    fn new(out: &'o mut dyn Write, prefix: Option<&'p [u8]>) -> Self {
        Self {
            out,
            prefix,
            line_start: true,
            pending: Vec::new(),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(prefix) = self.prefix else {
            return self.out.write_all(bytes);
        };
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if self.line_start {
                self.pending.extend_from_slice(prefix);
            }
            self.line_start = line.ends_with(b"\n");
            if self.pending.len() + line.len() > WRITE_CHUNK {
                // A long line goes out as it is, after what was gathered.
                self.out.write_all(&self.pending)?;
                self.pending.clear();
                self.out.write_all(line)?;
            } else {
                self.pending.extend_from_slice(line);
            }
        }
        Ok(())
    }

    fn finish(self) -> io::Result<()> {
        self.out.write_all(&self.pending)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn j_0_is_capped_by_open_files_by_processes_and_by_a_constant() {
        assert_eq!(jobs_within(None, None), MAX_JOBS_AT_ONCE);
        assert_eq!(jobs_within(Some(65_535), Some(65_535)), MAX_JOBS_AT_ONCE);
        // 1024 files: (1024 - 32) / 6 jobs.
        assert_eq!(jobs_within(Some(1024), None), 165);
        // 200 processes: (200 - 64) / 2 jobs, fewer than the files allow.
        assert_eq!(jobs_within(Some(1024), Some(200)), 68);
        assert_eq!(jobs_within(None, Some(200)), 68);
        // Limits too low for even one: one at a time, never zero.
        assert_eq!(jobs_within(Some(10), Some(10)), 1);
    }

    /// Counts what is written and the largest single write, keeping nothing.
    #[derive(Default)]
    struct Counter {
        total: usize,
        lines: usize,
        largest_write: usize,
    }

    impl Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.total += bytes.len();
            self.lines += bytes.iter().filter(|&&b| b == b'\n').count();
            self.largest_write = self.largest_write.max(bytes.len());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tagging_many_empty_lines_streams_the_amplified_output_through_a_bounded_buffer() {
        // 20,000 empty lines tagged with a 1 KiB argument: 20 MB of output from 20 KB.
        // Before, it was built whole in memory and written in one call.
        let lines = vec![b'\n'; 20_000];
        let prefix = vec![b'a'; 1024];
        let expected = lines.len() * (prefix.len() + 1);
        let mut whole = Counter::default();
        write_whole(&mut whole, &lines, Some(&prefix)).unwrap();
        let mut streamed = Counter::default();
        write_stream(&mut streamed, &lines[..], Some(&prefix)).unwrap();
        for out in [whole, streamed] {
            assert_eq!((out.total, out.lines), (expected, lines.len()));
            assert!(
                out.largest_write <= WRITE_CHUNK + prefix.len(),
                "{} bytes in one write",
                out.largest_write
            );
        }
    }

    #[test]
    fn tags_go_before_every_line_also_across_chunks_and_after_a_long_line() {
        let long = "x".repeat(3 * WRITE_CHUNK);
        let text = format!("a\n\n{long}\nb");
        let expected = format!("T\ta\nT\t\nT\t{long}\nT\tb");
        let mut whole = Vec::new();
        write_whole(&mut whole, text.as_bytes(), Some(b"T\t")).unwrap();
        assert!(whole == expected.as_bytes());
        // Read back in pieces that split lines and the long one.
        let mut streamed = Vec::new();
        let reader = io::Read::chain(&text.as_bytes()[..5], &text.as_bytes()[5..]);
        write_stream(&mut streamed, reader, Some(b"T\t")).unwrap();
        assert!(streamed == expected.as_bytes());
        let mut plain = Vec::new();
        write_whole(&mut plain, text.as_bytes(), None).unwrap();
        assert!(plain == text.as_bytes());
    }
}
