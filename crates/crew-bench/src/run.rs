//! `crew bench run`: `crew run` against `xargs -P` and GNU parallel, in the same run.
//!
//! Four cases, each run by every implementation that can as an external command, with the same
//! concurrency, repetitions interleaved:
//!
//! * `true-2000`: 2,000 trivial jobs (`true`), arguments on standard input: jobs per second,
//!   i.e. the per-job overhead.
//! * `sleep-10`: the seed's ten `sleep 0.1` at once: total seconds (ideal: 0.1).
//! * `product`: GNU parallel's input sources: `echo {1} {2} ::: (20 values) ::: (25 values)`, the
//!   cartesian product (500 jobs, a quarter of `--count`), with `-k`. xargs has no input
//!   sources (not available).
//! * `argfile`: `echo {} :::: FILE` (500 lines, a quarter of `--count`), with `-k`; xargs reads
//!   it with `-a FILE`.
//!
//! In the last two every implementation's output is checked against the expected text (the
//! product in GNU parallel's order, the last source varying fastest): one that differs is shown
//! as not available, with the first line that differs.
//!
//! Medians (interleaved rounds in rotating order, by the [harness](mod@crate::harness)) are
//! reported with crew's ratio to each peer, in wall-clock time and in CPU time (user and system
//! time of the runner and every job it started, from `getrusage(RUSAGE_CHILDREN)`), which stays
//! meaningful on a machine shared with other work. A peer that is not installed is shown as
//! "not available (not installed ...)" (GNU parallel comes from `apt-get install parallel`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use crew::subprocess::{Command, Input, Redirect};
use serde::Serialize;

use crate::chart::{Chart, Panel, Role};
use crate::harness::{self, Cell, Measurement, Sample};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Trivial jobs in the throughput case.
    pub count: usize,
    /// Concurrency of the throughput case for every implementation.
    pub jobs: usize,
    /// Rounds; the median is reported.
    pub rounds: usize,
    /// The crew binary to measure.
    pub crew: PathBuf,
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

    /// The command that runs `case` with `jobs` at a time, or why this implementation cannot.
    fn command(self, crew: &PathBuf, jobs: usize, case: &Case) -> Result<Command, String> {
        let jobs = jobs.to_string();
        let command = match (&case.kind, self) {
            (Kind::Stdin { program, arg }, _) => {
                let input = format!("{arg}\n").repeat(case.count);
                let command = match self {
                    Impl::Crew => Command::new(crew).args([
                        "run",
                        "--no-progress",
                        "-j",
                        &jobs,
                        "--",
                        program,
                    ]),
                    Impl::Xargs => Command::new("xargs").args(["-P", &jobs, "-n", "1", program]),
                    Impl::Parallel => {
                        Command::new("parallel").args(["--will-cite", "-j", &jobs, program])
                    }
                };
                return Ok(command.stdin(Input::bytes(input)));
            }
            (Kind::Product { .. }, Impl::Xargs) => {
                return Err("xargs has no input sources to combine".to_owned())
            }
            (Kind::Product { first, second }, _) => {
                let mut args = vec!["-k".to_owned(), "-j".to_owned(), jobs];
                args.extend(["echo", "{1}", "{2}", ":::"].map(str::to_owned));
                args.extend(first.iter().cloned());
                args.push(":::".to_owned());
                args.extend(second.iter().cloned());
                self.parallel_like(crew, args)
            }
            (Kind::ArgFile { path }, Impl::Xargs) => Command::new("xargs")
                .args(["-P", &jobs, "-n", "1", "-a"])
                .arg(path)
                .arg("echo"),
            (Kind::ArgFile { path }, _) => {
                let args = vec![
                    "-k".to_owned(),
                    "-j".to_owned(),
                    jobs,
                    "echo".to_owned(),
                    "{}".to_owned(),
                    "::::".to_owned(),
                    path.display().to_string(),
                ];
                self.parallel_like(crew, args)
            }
        };
        Ok(command)
    }

    /// `crew run ARGS` or `parallel ARGS` (the same syntax).
    fn parallel_like(self, crew: &PathBuf, args: Vec<String>) -> Command {
        match self {
            Impl::Crew => Command::new(crew).args(["run", "--no-progress"]).args(args),
            _ => Command::new("parallel").arg("--will-cite").args(args),
        }
    }

    /// Whether it can be run here, or why not (GNU parallel is optional).
    fn installed(self, crew: &PathBuf) -> Result<(), String> {
        let (probe, install) = match self {
            Impl::Crew => (Command::new(crew).arg("--version"), "build crew"),
            Impl::Xargs => (
                Command::new("xargs").arg("--version"),
                "apt-get install findutils",
            ),
            Impl::Parallel => (
                Command::new("parallel").args(["--will-cite", "--version"]),
                "apt-get install parallel",
            ),
        };
        match probe.output() {
            Ok(done) if done.success() => Ok(()),
            _ => Err(format!("not installed: {install}")),
        }
    }
}

/// What a case runs.
enum Kind {
    /// `program` once per line of standard input, each line `arg`.
    Stdin {
        program: &'static str,
        arg: &'static str,
    },
    /// `echo {1} {2} ::: first ::: second`.
    Product {
        first: Vec<String>,
        second: Vec<String>,
    },
    /// `echo {} :::: path`.
    ArgFile { path: PathBuf },
}

struct Case {
    name: &'static str,
    kind: Kind,
    count: usize,
    jobs: usize,
    /// The exact standard output every implementation must print, when checked.
    expected: Option<String>,
}

/// What one measurement is: a case and an implementation.
#[derive(Debug, Clone, Serialize)]
pub struct Key {
    /// `true-2000`, `sleep-10`, `product` or `argfile`.
    pub case: &'static str,
    /// `crew-run`, `xargs`, `gnu-parallel`.
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    /// Jobs in the case.
    pub count: usize,
    /// Jobs at a time.
    pub jobs: usize,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.case, self.implementation)
    }
}

/// One round of one case.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Round {
    /// Wall-clock seconds (the figure the median is taken of).
    pub seconds: f64,
    /// Jobs per second.
    pub jobs_per_sec: f64,
    /// CPU seconds of the runner and its jobs.
    pub cpu_seconds: f64,
}

impl Sample for Round {
    fn figure(&self) -> f64 {
        self.seconds
    }
}

/// `crew bench run`: measures every case, prints the table, writes the JSON rows and the chart
/// when asked.
///
/// # Errors
/// Bad settings, or a file that cannot be written. An implementation that fails is shown as
/// not available.
pub fn main(
    config: &RunConfig,
    json: Option<&Path>,
    svg: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(config.rounds > 0, "--reps must be at least 1");
    anyhow::ensure!(config.count > 0, "--count must be at least 1");
    anyhow::ensure!(config.jobs > 0, "--jobs must be at least 1");
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; measure with `cargo run --release -p crew-cli -- bench run`");
    }
    // The parity cases have a quarter of --count's jobs (500 by default): GNU parallel takes
    // about 15 ms a job here.
    let parity_jobs = (config.count / 4).max(4);
    let width = if parity_jobs >= 100 { 25 } else { 2 };
    let first: Vec<String> = (1..=parity_jobs / width).map(|i| format!("a{i}")).collect();
    let second: Vec<String> = (1..=width).map(|i| format!("b{i}")).collect();
    let product_expected: String = first
        .iter()
        .flat_map(|a| second.iter().map(move |b| format!("{a} {b}\n")))
        .collect();
    let lines: Vec<String> = (1..=parity_jobs).map(|i| format!("line-{i}")).collect();
    let argfile = std::env::temp_dir().join(format!("crew-bench-run-{}.args", std::process::id()));
    std::fs::write(&argfile, lines.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", argfile.display()))?;
    let cases = [
        Case {
            name: "true-2000",
            kind: Kind::Stdin {
                program: "true",
                arg: "x",
            },
            count: config.count,
            jobs: config.jobs,
            expected: None,
        },
        Case {
            name: "sleep-10",
            kind: Kind::Stdin {
                program: "sleep",
                arg: "0.1",
            },
            count: 10,
            jobs: 10,
            expected: None,
        },
        Case {
            name: "product",
            count: first.len() * second.len(),
            kind: Kind::Product { first, second },
            jobs: config.jobs,
            expected: Some(product_expected),
        },
        Case {
            name: "argfile",
            count: lines.len(),
            kind: Kind::ArgFile {
                path: argfile.clone(),
            },
            jobs: config.jobs,
            expected: Some(lines.iter().map(|line| format!("{line}\n")).collect()),
        },
    ];
    println!(
        "crew bench run: {} rounds, medians; throughput case with -j {}",
        config.rounds, config.jobs
    );
    let mut measurements = Vec::new();
    for case in &cases {
        for implementation in Impl::ALL {
            let key = Key {
                case: case.name,
                implementation: implementation.name(),
                count: case.count,
                jobs: case.jobs,
            };
            if let Err(reason) = implementation.installed(&config.crew) {
                measurements.push(Measurement::unavailable(key, reason));
                continue;
            }
            let command = match implementation.command(&config.crew, case.jobs, case) {
                Ok(command) => command,
                Err(reason) => {
                    measurements.push(Measurement::unavailable(key, reason));
                    continue;
                }
            };
            let count = case.count;
            let expected = case.expected.as_deref();
            measurements.push(Measurement::new(key, move || {
                let command = if expected.is_some() {
                    command.clone()
                } else {
                    command.clone().stdout(Redirect::Null)
                };
                let cpu_before = children_cpu();
                let start = Instant::now();
                let done = command
                    .output()
                    .with_context(|| format!("cannot run {}", implementation.name()))?;
                let seconds = start.elapsed().as_secs_f64();
                let cpu_seconds = children_cpu().saturating_sub(cpu_before).as_secs_f64();
                anyhow::ensure!(
                    done.success(),
                    "{} failed: {} {}",
                    implementation.name(),
                    done.status,
                    done.stderr_str()
                );
                if let Some(expected) = expected {
                    // xargs has no --keep-order: its lines are compared in sorted order.
                    let ordered = implementation != Impl::Xargs;
                    check_output(&done.stdout_str(), expected, ordered)?;
                }
                Ok(Round {
                    seconds,
                    jobs_per_sec: count as f64 / seconds,
                    cpu_seconds,
                })
            }));
        }
    }
    let cells = harness::run(measurements, config.rounds);
    let _ = std::fs::remove_file(&argfile);
    let svg = svg.map(|path| (path, chart(&cells)));
    harness::report(&render_table(&cells), &cells, json, svg)?;
    Ok(ExitCode::SUCCESS)
}

/// Fails with the first line where `output` differs from `expected` (both sorted first unless
/// `ordered`).
fn check_output(output: &str, expected: &str, ordered: bool) -> anyhow::Result<()> {
    if output == expected {
        return Ok(());
    }
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if !ordered {
            lines.sort();
        }
        lines
    };
    let (output, expected) = (sorted(output), sorted(expected));
    let mut got = output.iter().map(String::as_str);
    for (index, want) in expected.iter().enumerate() {
        let line = got.next();
        anyhow::ensure!(
            line == Some(want.as_str()),
            "output differs at line {}: expected {want:?}, got {line:?}",
            index + 1
        );
    }
    match got.next() {
        None => Ok(()),
        Some(extra) => anyhow::bail!("output has extra lines after {}: {extra:?}", expected.len()),
    }
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

/// The table: seconds, jobs/sec and CPU per job, and crew's speed-up against each peer.
pub fn render_table(cells: &[Cell<Key, Round>]) -> String {
    let header = format!(
        "\n{:<10} {:<13} {:>9} {:>10} {:>9} {:>11}  crew-run speed-up vs this (wall, CPU)",
        "case", "impl", "seconds", "jobs/sec", "cpu s", "cpu ms/job"
    );
    harness::render_rows(
        cells,
        &header,
        |key| format!("{:<10} {:<13}", key.case, key.implementation),
        |key, round| {
            let crew = harness::find(cells, |crew| {
                crew.case == key.case && crew.implementation == Impl::Crew.name()
            });
            let ratio = match crew {
                Some(crew) if key.implementation != Impl::Crew.name() => format!(
                    "{:.2}x, {:.2}x",
                    round.seconds / crew.seconds,
                    round.cpu_seconds / crew.cpu_seconds
                ),
                _ => String::new(),
            };
            format!(
                "{:>9.3} {:>10.0} {:>9.3} {:>11.3}  {ratio}",
                round.seconds,
                round.jobs_per_sec,
                round.cpu_seconds,
                round.cpu_seconds * 1000.0 / key.count.max(1) as f64,
            )
        },
    )
}

/// The `--svg` chart: jobs/sec per implementation, one panel per case.
pub fn chart(cells: &[Cell<Key, Round>]) -> Chart {
    let panels = ["true-2000", "sleep-10", "product", "argfile"]
        .into_iter()
        .map(|case| {
            let rows: Vec<&Cell<Key, Round>> =
                cells.iter().filter(|cell| cell.key.case == case).collect();
            Panel::categories(
                format!("{case}: jobs/sec"),
                rows.iter().map(|cell| {
                    let implementation = cell.key.implementation;
                    (
                        implementation.to_owned(),
                        Role::crew_if(implementation == Impl::Crew.name()),
                        cell.median().map(|round| round.jobs_per_sec),
                    )
                }),
            )
        })
        .collect();
    Chart { panels }
}

#[cfg(test)]
mod tests {
    use super::check_output;

    #[test]
    fn outputs_are_compared_line_by_line_sorted_when_unordered() {
        assert!(check_output("a\nb\n", "a\nb\n", true).is_ok());
        assert!(check_output("b\na\n", "a\nb\n", false).is_ok());
        let error = check_output("b\na\n", "a\nb\n", true).unwrap_err();
        assert!(error.to_string().contains("line 1"), "{error}");
        assert!(check_output("a\nb\nc\n", "a\nb\n", false).is_err());
        assert!(check_output("a\n", "a\nb\n", false).is_err());
    }
}
