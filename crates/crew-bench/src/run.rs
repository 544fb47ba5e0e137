//! `crew bench run`: `crew run` against `xargs -P` and GNU parallel, in the same run.
//!
//! Two cases, each run by every implementation as an external command fed the same arguments on
//! standard input, with the same concurrency, repetitions interleaved:
//!
//! * `true-2000`: 2,000 trivial jobs (`true`): jobs per second, i.e. the per-job overhead.
//! * `sleep-10`: the seed's ten `sleep 0.1` at once: total seconds (ideal: 0.1).
//!
//! Medians are reported with crew's ratio to each peer, in wall-clock time and in CPU time (user
//! and system time of the runner and every job it started, from `getrusage(RUSAGE_CHILDREN)`), which
//! stays meaningful on a machine shared with other work. A peer that is not installed is shown
//! as "not installed" (GNU parallel comes from `apt-get install parallel`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use crew::subprocess::{Command, Input, Redirect};
use serde::Serialize;

/// Arguments of `crew bench run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Trivial jobs in the throughput case.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Concurrency of the throughput case for every implementation [default: the number of CPUs].
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Repetitions of each case per implementation; the median is reported.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Also write the results as JSON rows to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// The crew binary to measure [default: this one]; build it with --release.
    #[arg(long, value_name = "PATH")]
    crew: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    Crew,
    Xargs,
    Parallel,
}

impl Impl {
    const ALL: [Impl; 3] = [Impl::Crew, Impl::Xargs, Impl::Parallel];

    fn name(self) -> &'static str {
        match self {
            Impl::Crew => "crew-run",
            Impl::Xargs => "xargs",
            Impl::Parallel => "gnu-parallel",
        }
    }

    /// The command that runs `program` once per input line, `jobs` at a time.
    fn command(self, crew: &PathBuf, jobs: usize, program: &str) -> Command {
        let jobs = jobs.to_string();
        match self {
            Impl::Crew => {
                Command::new(crew).args(["run", "--no-progress", "-j", &jobs, "--", program])
            }
            Impl::Xargs => Command::new("xargs").args(["-P", &jobs, "-n", "1", program]),
            Impl::Parallel => Command::new("parallel").args(["--will-cite", "-j", &jobs, program]),
        }
    }

    /// Whether it can be run here (GNU parallel is optional).
    fn installed(self, crew: &PathBuf) -> bool {
        let probe = match self {
            Impl::Crew => Command::new(crew).arg("--version"),
            Impl::Xargs => Command::new("xargs").arg("--version"),
            Impl::Parallel => Command::new("parallel").args(["--will-cite", "--version"]),
        };
        matches!(probe.output(), Ok(done) if done.success())
    }
}

struct Case {
    name: &'static str,
    program: &'static str,
    arg: &'static str,
    count: usize,
    jobs: usize,
}

#[derive(Debug, Serialize)]
struct Row {
    case: &'static str,
    #[serde(rename = "impl")]
    implementation: &'static str,
    jobs_per_sec: Option<f64>,
    seconds: Option<f64>,
    cpu_seconds: Option<f64>,
    reps: usize,
    note: Option<String>,
}

pub(crate) fn main(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.reps > 0, "--reps must be at least 1");
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    let crew = match args.crew {
        Some(path) => path,
        None => std::env::current_exe().context("cannot locate the crew binary")?,
    };
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; measure with `cargo run --release -p crew-cli -- bench run`");
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let cases = [
        Case {
            name: "true-2000",
            program: "true",
            arg: "x",
            count: args.count,
            jobs,
        },
        Case {
            name: "sleep-10",
            program: "sleep",
            arg: "0.1",
            count: 10,
            jobs: 10,
        },
    ];
    let installed: Vec<(Impl, bool)> = Impl::ALL.iter().map(|&i| (i, i.installed(&crew))).collect();
    println!(
        "crew bench run: {} reps per case, medians; throughput case with -j {jobs}",
        args.reps
    );
    let mut rows = Vec::new();
    for case in &cases {
        let input = format!("{}\n", case.arg).repeat(case.count);
        let mut times: Vec<(Impl, Vec<Duration>, Vec<Duration>)> = installed
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(i, _)| (*i, Vec::new(), Vec::new()))
            .collect();
        // Interleave the implementations so drift on the machine hits all of them alike.
        for _ in 0..args.reps {
            for (implementation, samples, cpu_samples) in &mut times {
                let command = implementation
                    .command(&crew, case.jobs, case.program)
                    .stdin(Input::bytes(input.clone()))
                    .stdout(Redirect::Null);
                let cpu_before = children_cpu();
                let start = Instant::now();
                let done = command
                    .output()
                    .with_context(|| format!("cannot run {}", implementation.name()))?;
                let elapsed = start.elapsed();
                cpu_samples.push(children_cpu().saturating_sub(cpu_before));
                anyhow::ensure!(
                    done.success(),
                    "{} failed on {}: {} {}",
                    implementation.name(),
                    case.name,
                    done.status,
                    done.stderr_str()
                );
                samples.push(elapsed);
            }
        }
        for (implementation, ok) in &installed {
            let samples = times.iter_mut().find(|(i, _, _)| i == implementation);
            let row = match samples {
                Some((_, samples, cpu_samples)) if *ok => {
                    let median = median_of(samples);
                    Row {
                        case: case.name,
                        implementation: implementation.name(),
                        jobs_per_sec: Some(case.count as f64 / median),
                        seconds: Some(median),
                        cpu_seconds: Some(median_of(cpu_samples)),
                        reps: args.reps,
                        note: None,
                    }
                }
                _ => Row {
                    case: case.name,
                    implementation: implementation.name(),
                    jobs_per_sec: None,
                    seconds: None,
                    cpu_seconds: None,
                    reps: 0,
                    note: Some("not installed".to_owned()),
                },
            };
            rows.push(row);
        }
    }
    print_table(&rows);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&rows)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn median_of(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64()
}

/// User + system CPU time of all waited-for descendants of this process so far.
fn children_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is valid for writes of a `rusage`, which is all getrusage writes.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: zero is a valid `rusage` (plain integers), and getrusage filled it in.
    let usage = unsafe { usage.assume_init() };
    let time = |tv: libc::timeval| {
        Duration::from_secs(tv.tv_sec.max(0) as u64)
            + Duration::from_micros(tv.tv_usec.max(0) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<10} {:<13} {:>9} {:>10} {:>9} {:>11}  crew-run speed-up vs this (wall, CPU)",
        "case", "impl", "seconds", "jobs/sec", "cpu s", "cpu ms/job"
    );
    for row in rows {
        let crew = rows
            .iter()
            .find(|r| r.case == row.case && r.implementation == Impl::Crew.name());
        let (Some(seconds), Some(cpu)) = (row.seconds, row.cpu_seconds) else {
            println!(
                "{:<10} {:<13} {:>9} {:>10} {:>9} {:>11}  {}",
                row.case,
                row.implementation,
                "-",
                "-",
                "-",
                "-",
                row.note.as_deref().unwrap_or("")
            );
            continue;
        };
        let ratio = match crew.and_then(|c| c.seconds.zip(c.cpu_seconds)) {
            Some((crew_wall, crew_cpu)) if row.implementation != Impl::Crew.name() => {
                format!("{:.2}x, {:.2}x", seconds / crew_wall, cpu / crew_cpu)
            }
            _ => String::new(),
        };
        let jobs = row.jobs_per_sec.unwrap_or(0.0) * seconds;
        println!(
            "{:<10} {:<13} {:>9.3} {:>10.0} {:>9.3} {:>11.3}  {ratio}",
            row.case,
            row.implementation,
            seconds,
            row.jobs_per_sec.unwrap_or(0.0),
            cpu,
            cpu * 1000.0 / jobs.max(1.0),
        );
    }
}
