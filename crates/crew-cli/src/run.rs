//! `crew run`: run a command for every argument, N at a time (like `xargs -P` and GNU parallel).
//!
//! ```text
//! crew run -j 4 --timeout 10s --keep-order --tag -- gzip -9 {} ::: *.log
//! find . -name '*.png' | crew run -j 8 -- convert {} {.}.jpg
//! ```
//!
//! The work is done by [`crew::subprocess::Runner`]; this module parses arguments, expands the
//! template, prints each job's output whole, writes the joblog and maps the outcome to an exit
//! status (the number of failed jobs, at most 101, as GNU parallel does).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crew::subprocess::{Command, ExitStatus, Halt, HaltWhen, JobResult, Runner};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

mod joblog;
mod template;

use crate::duration::parse_duration;
use joblog::JobLog;
use template::Template;

/// The highest exit status for failed jobs (GNU parallel's cap); 101 means "101 or more".
const MAX_FAILED_STATUS: usize = 101;

/// Arguments of `crew run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Replacement strings: {} the argument, {.} without extension, {/} basename, \
{//} directory, {/.} basename without extension, {#} job number. Without any, the argument is \
appended. Without a command, each argument is a shell command. Arguments come after ':::' or, \
without it, one per line on standard input.\n\n\
Quoting: an argument is never shell code. In a shell script (one word with shell syntax, \
--shell, or the script after a shell's -c such as sh -c 'gzip {}') each replacement string \
reads the value from the job's environment (CREW_ARG for {}, CREW_ARG_NOEXT {.}, \
CREW_ARG_BASENAME {/}, CREW_ARG_DIRNAME {//}, CREW_ARG_BASENAME_NOEXT {/.}, CREW_SEQ {#}), \
written for where it stands: {} bare, \"{}\" and '{}' all give the argument byte for byte, \
one word, with $(...), backticks, $VAR, quotes, ';' and newlines left as text; inside $(( )) \
only a whole number is accepted (the job fails otherwise). Otherwise (direct \
mode) crew starts no shell: each word is one argument of the program, values verbatim. A \
program that runs its arguments as code itself (ssh, eval, python -c, a nested sh -c inside a \
script) gets the text as is: pass the value as a separate argument instead, as in \
sh -c 'echo \"$1\"' sh {}.\n\n\
Exit status: the number of failed jobs (at most 101); with --halt on failure, the exit code of \
the job that triggered it; 130 when interrupted."
)]
pub(crate) struct Args {
    /// Jobs to run at once [default: the number of CPUs].
    #[arg(short = 'j', long = "jobs", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Kill a job (and everything it started) that runs longer than this: 10s, 1.5, 500ms, 2m.
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
    /// Stop early: now,fail=N | soon,fail=N | now,success=N | soon,done=N | never.
    #[arg(long, default_value = "never")]
    halt: Halt,
    /// Write GNU parallel's tab-separated job log to this file.
    #[arg(long, value_name = "FILE")]
    joblog: Option<PathBuf>,
    /// Prefix every output line with the job's argument and a tab.
    #[arg(long)]
    tag: bool,
    /// Run the command with /bin/sh -c (automatic when it is one word with shell syntax).
    #[arg(long)]
    shell: bool,
    /// Never show the progress bar (it is shown only when standard error is a terminal).
    #[arg(long)]
    no_progress: bool,
    /// The command template, then optionally `:::` and the arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<String>,
}

/// What `main` needs to know about each started job.
#[derive(Debug)]
struct Job {
    arg: String,
    command: String,
}

pub(crate) fn main(args: Args) -> anyhow::Result<ExitCode> {
    let mut words = args.command;
    let inline_args = match words.iter().position(|w| w == ":::") {
        Some(at) => {
            let rest = words.split_off(at + 1);
            words.pop();
            if rest.iter().any(|w| w == ":::") {
                anyhow::bail!("only one ':::' group is supported; put all arguments after it");
            }
            Some(rest)
        }
        None => None,
    };
    let template = Template::new(words, args.shell);

    let total = inline_args.as_ref().map(Vec::len);
    let input: Box<dyn Iterator<Item = io::Result<String>>> = match inline_args {
        Some(list) => Box::new(list.into_iter().map(Ok)),
        None => Box::new(io::stdin().lock().lines()),
    };

    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let runner = Runner::new(jobs)
        .keep_order(args.keep_order)
        .retries(args.retries)
        .halt(args.halt)
        .grace(args.grace);

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let switch = runner.kill_switch().clone();
        let interrupted = interrupted.clone();
        let grace = args.grace;
        ctrlc::set_handler(move || {
            interrupted.store(true, Ordering::SeqCst);
            switch.fire(grace);
            // The main thread may be blocked reading arguments from a stdin that never ends;
            // every job is stopped now, so give it a moment to report, then leave.
            std::thread::sleep(Duration::from_secs(1));
            eprintln!("crew run: interrupted; running jobs were stopped");
            std::process::exit(130);
        })
        .context("cannot install the Ctrl-C handler")?;
    }

    let mut joblog = match &args.joblog {
        Some(path) => Some(
            JobLog::create(path)
                .with_context(|| format!("cannot create the joblog {}", path.display()))?,
        ),
        None => None,
    };

    let progress = progress_bar(total, args.no_progress);

    // The commands are built lazily as the runner asks for them; remember each job's argument
    // and command line for output tagging and the joblog.
    let jobs_seen: Rc<RefCell<HashMap<usize, Job>>> = Rc::default();
    let input_error: Rc<RefCell<Option<io::Error>>> = Rc::default();
    let commands = {
        let jobs_seen = jobs_seen.clone();
        let input_error = input_error.clone();
        let timeout = args.timeout;
        let grace = args.grace;
        input
            .map_while(move |line| match line {
                Ok(line) => Some(line),
                Err(error) => {
                    *input_error.borrow_mut() = Some(error);
                    None
                }
            })
            .enumerate()
            .map(move |(index, arg)| {
                let seq = index + 1;
                let (command, shown) = template.command(&arg, seq);
                let mut command: Command = command.grace(grace);
                if let Some(timeout) = timeout {
                    command = command.timeout(timeout);
                }
                jobs_seen.borrow_mut().insert(
                    seq,
                    Job {
                        arg,
                        command: shown,
                    },
                );
                command
            })
    };

    let mut failed = 0usize;
    let mut halt_status = None;
    let mut results = runner.run(commands);
    while let Some(result) = results.next() {
        let job = jobs_seen.borrow_mut().remove(&result.seq).unwrap_or(Job {
            arg: String::new(),
            command: String::new(),
        });
        if !result.success() {
            failed += 1;
        }
        if results.halted_by() == Some(result.seq)
            && matches!(
                args.halt,
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
        progress.suspend(|| print_job(&result, &job, args.tag));
        if let Some(log) = &mut joblog {
            log.record(&result, &job.command)
                .context("cannot write the joblog")?;
        }
        progress.inc(1);
        progress.set_message(format!("{failed} failed"));
    }
    progress.finish_and_clear();
    if let Some(error) = input_error.borrow_mut().take() {
        return Err(error).context("cannot read arguments from standard input");
    }
    if interrupted.load(Ordering::SeqCst) {
        eprintln!("crew run: interrupted; running jobs were stopped");
        return Ok(ExitCode::from(130));
    }
    let status = match halt_status {
        Some(code) => code.clamp(1, 255) as u8,
        None => failed.min(MAX_FAILED_STATUS) as u8,
    };
    Ok(ExitCode::from(status))
}

fn progress_bar(total: Option<usize>, disabled: bool) -> ProgressBar {
    if disabled || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template("{elapsed_precise} {wide_bar} {pos}/{len} jobs, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {pos} jobs, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Prints one job's standard output and error, each whole, tagged if asked.
fn print_job(result: &JobResult, job: &Job, tag: bool) {
    let prefix = tag.then(|| format!("{}\t", job.arg));
    match &result.outcome {
        Ok(done) => {
            write_whole(&mut io::stdout().lock(), &done.stdout, prefix.as_deref());
            write_whole(&mut io::stderr().lock(), &done.stderr, prefix.as_deref());
            if let Some(after) = done.timed_out {
                eprintln!(
                    "crew run: job {} timed out after {after:?} and was killed: {}",
                    result.seq, job.command
                );
            }
        }
        Err(error) => {
            let message = format!("crew run: job {}: {error}\n", result.seq);
            write_whole(
                &mut io::stderr().lock(),
                message.as_bytes(),
                prefix.as_deref(),
            );
        }
    }
}

fn write_whole(out: &mut dyn Write, bytes: &[u8], prefix: Option<&str>) {
    if bytes.is_empty() {
        return;
    }
    // A closed stdout (`crew run ... | head`) must not abort the run; drop the output.
    let _ = match prefix {
        None => out.write_all(bytes),
        Some(prefix) => {
            let mut tagged = Vec::with_capacity(bytes.len() + 64);
            for line in bytes.split_inclusive(|&b| b == b'\n') {
                tagged.extend_from_slice(prefix.as_bytes());
                tagged.extend_from_slice(line);
            }
            out.write_all(&tagged)
        }
    };
    let _ = out.flush();
}
