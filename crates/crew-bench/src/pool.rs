//! `crew bench pool`: tiny-task throughput of crew's executors against their peers, in one run.
//!
//! Cases, each with the same trivial task (`x + 1`) and the same work for every implementation
//! in it (the row's `n`):
//! * `submit`: submit `n` tasks, then collect every result (submit + result throughput);
//! * `map`: map the task over `n` items in chunks of `chunksize` (Python's `ThreadPoolExecutor`
//!   has no chunks, so its peer maps over the chunks itself).
//!
//! Thread rows are short (tens of milliseconds), so every thread implementation is run once
//! untimed before the rounds (threads spun up, the allocator's pages mapped), and each `submit`
//! sample is the median of [`SUBMIT_REPEATS`] runs back to back. The header names the global
//! allocator of the binary (mimalloc for `crew`): crew's handles are allocated by the
//! submitter and freed after `result`, so the allocator shows in the `submit` rows.
//!
//! Peers: a raw crossbeam-channel worker pool (the floor of what a pool can cost), rayon
//! (`spawn` + channel, and `par_iter`) and Python's `ThreadPoolExecutor`; the process rows are
//! in [`processes`]. Two phases, threads then processes, each interleaved by the
//! [harness](mod@crate::harness): the process rows churn through tens of megabytes of buffers and
//! start processes, which the allocator and the kernel pay for in whichever measurement comes
//! next, so mixing the phases would charge that to thread rows at random.

use std::fmt;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::Context as _;
use crew::{Executor, MapOptions, ThreadPool};
use rayon::prelude::*;
use serde::Serialize;

use crate::chart::{Chart, Panel, Role};
use crate::harness::{self, Cell, Measurement, Sample};
use crate::PeerCommand;

pub mod processes;

/// What to run.
#[derive(Clone)]
pub struct PoolConfig {
    /// Tasks of the thread `submit` case, for every implementation.
    pub tasks: u64,
    /// Items of the thread `map` case, for every implementation.
    pub items: u64,
    /// Tasks of the process `submit` cases, for every implementation.
    pub process_tasks: u64,
    /// Items of the process `map` case, for every implementation.
    pub process_items: u64,
    /// Worker threads or processes of every pool.
    pub workers: usize,
    /// Tasks of the `cpu-gcd` cases (serial and parallel; Python's on scaled inputs).
    pub gcd_tasks: u64,
    /// Tasks of the `cpu-is_prime` cases.
    pub prime_tasks: u64,
    /// Items per task in the `map` cases.
    pub chunksize: usize,
    /// Rounds; the median is reported.
    pub rounds: usize,
    /// Only these implementations (empty: all).
    pub only: Vec<String>,
    /// Starts procspawn's peer in a process of its own.
    pub peer_command: PeerCommand,
}

impl fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolConfig")
            .field("tasks", &self.tasks)
            .field("items", &self.items)
            .field("process_tasks", &self.process_tasks)
            .field("process_items", &self.process_items)
            .field("gcd_tasks", &self.gcd_tasks)
            .field("prime_tasks", &self.prime_tasks)
            .field("workers", &self.workers)
            .field("chunksize", &self.chunksize)
            .field("rounds", &self.rounds)
            .field("only", &self.only)
            .finish()
    }
}

impl PoolConfig {
    /// The defaults: a full run, or with `quick` one of well under a minute.
    pub fn new(quick: bool, peer_command: PeerCommand) -> Self {
        let (tasks, items, process_tasks, process_items, rounds) = if quick {
            (50_000, 2_000_000, 10_000, 500_000, 3)
        } else {
            (200_000, 20_000_000, 50_000, 2_000_000, 5)
        };
        // The CPU cases: about 0.5 s (quick) or 1 s of serial work per round on the 2-core
        // VM, so that a speedup is measured over many tasks per worker, not over a handful.
        let (gcd_tasks, prime_tasks) = if quick { (64, 24) } else { (128, 48) };
        Self {
            tasks,
            items,
            process_tasks,
            process_items,
            gcd_tasks,
            prime_tasks,
            workers: crew_lab::cpus(),
            chunksize: 4096,
            rounds,
            only: Vec::new(),
            peer_command,
        }
    }
}

/// The phase of the thread rows.
pub const THREADS: &str = "threads";
/// The phase of the process rows.
pub const PROCESSES: &str = "processes";

/// What one measurement is: a phase, a case, an implementation and its work.
#[derive(Debug, Clone, Serialize)]
pub struct Key {
    /// [`THREADS`] or [`PROCESSES`]: rows are compared within their phase only.
    pub phase: &'static str,
    /// `submit`, `map`, `submit-256`, `cpu-gcd`, `cpu-is_prime`, `startup`.
    pub case: &'static str,
    /// `crew-threads`, `crossbeam`, `rayon`, `python-threads`, `crew-processes`, ...
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    /// Tasks or items of the case (the same for every implementation in it).
    pub n: u64,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} ({})",
            self.phase, self.case, self.implementation, self.n
        )
    }
}

/// One round: tasks (or items) per second, and for the `latency` case the round trips' spread.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rate {
    /// Tasks (items, for `map`; round trips one after another, for `latency`) per second.
    pub tasks_per_sec: f64,
    /// Percentiles of the round trips (the `latency` case only).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// How the work spread over the workers (the CPU-bound rows that can see it).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Balance>,
}

/// How one round of a CPU-bound row spread over its workers: each task timed where it ran.
///
/// With the round's wall time this splits a speedup short of the worker count into its parts:
/// `busy_sum_ms` above the serial row's time is the work running slower in parallel (CPUs not
/// there, or taken by other threads); `busy_max_ms` above the mean is imbalance (one worker
/// got more); the wall time above `busy_max_ms` is start, hand-off and gaps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Balance {
    /// The busiest worker's time in tasks, in milliseconds.
    pub busy_max_ms: f64,
    /// Every worker's time in tasks, added up, in milliseconds.
    pub busy_sum_ms: f64,
    /// Tasks run by the busiest worker (by count).
    pub tasks_max: u64,
    /// Tasks run by the least busy worker (by count; 0 if a worker ran none).
    pub tasks_min: u64,
}

impl Balance {
    /// The balance of `(worker, nanoseconds)` task timings over `workers` workers (a worker
    /// with no task counts as idle); `None` if there are none.
    pub fn of(timings: impl IntoIterator<Item = (u64, u64)>, workers: usize) -> Option<Self> {
        let mut per_worker: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
        for (worker, nanos) in timings {
            let entry = per_worker.entry(worker).or_default();
            entry.0 += 1;
            entry.1 += nanos;
        }
        if per_worker.is_empty() {
            return None;
        }
        let ms = |nanos: u64| nanos as f64 / 1e6;
        let counts = per_worker.values().map(|&(count, _)| count);
        let idle_worker = per_worker.len() < workers;
        Some(Self {
            busy_max_ms: ms(per_worker.values().map(|&(_, nanos)| nanos).max()?),
            busy_sum_ms: ms(per_worker.values().map(|&(_, nanos)| nanos).sum()),
            tasks_max: counts.clone().max()?,
            tasks_min: if idle_worker { 0 } else { counts.min()? },
        })
    }
}

/// Percentiles of one round's round trips, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// The median round trip.
    pub p50_us: f64,
    /// The 99th percentile.
    pub p99_us: f64,
}

impl Latency {
    /// The percentiles of `samples` (microseconds, in any order); `None` if there are none.
    pub fn of(mut samples: Vec<f64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let at = |per_cent: usize| samples[(samples.len() * per_cent / 100).min(samples.len() - 1)];
        Some(Self {
            p50_us: at(50),
            p99_us: at(99),
        })
    }
}

impl Sample for Rate {
    /// Higher is better: tasks/s, or for a `latency` row the inverse of its p50 (so the row's
    /// median is the round with the median p50).
    fn figure(&self) -> f64 {
        match self.latency {
            Some(latency) => 1.0 / latency.p50_us,
            None => self.tasks_per_sec,
        }
    }
}

/// A measurement of this benchmark.
pub(crate) type PoolMeasurement<'a> = Measurement<'a, Key, Rate>;

/// The measured cells of one run.
pub type PoolCells = Vec<Cell<Key, Rate>>;

pub(crate) fn measure<'a>(
    phase: &'static str,
    case: &'static str,
    implementation: &'static str,
    n: u64,
    mut run: impl FnMut() -> anyhow::Result<f64> + 'a,
) -> PoolMeasurement<'a> {
    measure_sample(phase, case, implementation, n, move || {
        Ok(Rate {
            tasks_per_sec: run()?,
            latency: None,
            balance: None,
        })
    })
}

/// [`measure`] for a closure that returns the whole sample (the `latency` rows).
pub(crate) fn measure_sample<'a>(
    phase: &'static str,
    case: &'static str,
    implementation: &'static str,
    n: u64,
    run: impl FnMut() -> anyhow::Result<Rate> + 'a,
) -> PoolMeasurement<'a> {
    Measurement::new(
        Key {
            phase,
            case,
            implementation,
            n,
        },
        run,
    )
}

/// The task. `black_box` keeps the optimiser from folding a whole `map` into a formula.
pub(crate) fn inc(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

pub(crate) fn expected_sum(n: u64) -> u64 {
    n * (n + 1) / 2
}

pub(crate) fn rate(n: u64, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
}

/// Runs of the thread `submit` case per sample; the sample is their median rate.
pub const SUBMIT_REPEATS: usize = 3;

/// The median rate of [`SUBMIT_REPEATS`] runs of `run`.
fn median_of_repeats(mut run: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<f64> {
    let mut rates = (0..SUBMIT_REPEATS)
        .map(|_| run())
        .collect::<anyhow::Result<Vec<f64>>>()?;
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

fn crew_submit(pool: &ThreadPool, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        handles.push(pool.submit(inc, i)?);
    }
    let mut sum = 0;
    for handle in handles {
        sum += handle.result()?;
    }
    anyhow::ensure!(sum == expected_sum(n), "crew-threads: wrong sum");
    Ok(rate(n, start))
}

fn crew_map(pool: &ThreadPool, n: u64, chunksize: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut sum = 0;
    for value in pool.map_with(inc, 0..n, MapOptions::new().chunksize(chunksize)) {
        sum += value?;
    }
    anyhow::ensure!(sum == expected_sum(n), "crew-threads map: wrong sum");
    Ok(rate(n, start))
}

/// The simplest worker pool one can build on crossbeam-channel: boxed jobs in, nothing else.
struct RawPool {
    jobs: Option<crossbeam_channel::Sender<Box<dyn FnOnce() + Send>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl RawPool {
    fn new(workers: usize) -> Self {
        let (jobs, receiver) = crossbeam_channel::unbounded::<Box<dyn FnOnce() + Send>>();
        let threads = (0..workers)
            .map(|_| {
                let receiver = receiver.clone();
                std::thread::spawn(move || {
                    for job in receiver {
                        job();
                    }
                })
            })
            .collect();
        Self {
            jobs: Some(jobs),
            threads,
        }
    }

    fn execute(&self, job: impl FnOnce() + Send + 'static) {
        self.jobs
            .as_ref()
            .expect("pool is running")
            .send(Box::new(job))
            .expect("workers are alive");
    }
}

impl Drop for RawPool {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn crossbeam_submit(pool: &RawPool, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let (sender, receiver) = crossbeam_channel::unbounded();
    for i in 0..n {
        let sender = sender.clone();
        pool.execute(move || {
            let _ = sender.send(inc(i));
        });
    }
    drop(sender);
    let sum: u64 = receiver.iter().sum();
    anyhow::ensure!(sum == expected_sum(n), "crossbeam: wrong sum");
    Ok(rate(n, start))
}

fn crossbeam_map(pool: &RawPool, n: u64, chunksize: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let (sender, receiver) = crossbeam_channel::unbounded();
    let chunk = chunksize as u64;
    let mut low = 0;
    while low < n {
        let high = (low + chunk).min(n);
        let sender = sender.clone();
        pool.execute(move || {
            let _ = sender.send((low..high).map(inc).collect::<Vec<_>>());
        });
        low = high;
    }
    drop(sender);
    let sum: u64 = receiver.iter().flatten().sum();
    anyhow::ensure!(sum == expected_sum(n), "crossbeam map: wrong sum");
    Ok(rate(n, start))
}

fn rayon_submit(pool: &rayon::ThreadPool, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let (sender, receiver) = crossbeam_channel::unbounded();
    for i in 0..n {
        let sender = sender.clone();
        pool.spawn(move || {
            let _ = sender.send(inc(i));
        });
    }
    drop(sender);
    let sum: u64 = receiver.iter().sum();
    anyhow::ensure!(sum == expected_sum(n), "rayon: wrong sum");
    Ok(rate(n, start))
}

fn rayon_map(pool: &rayon::ThreadPool, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let sum: u64 = pool.install(|| (0..n).into_par_iter().map(inc).sum());
    anyhow::ensure!(sum == expected_sum(n), "rayon par_iter: wrong sum");
    Ok(rate(n, start))
}

/// Runs a peer process that prints one number (tasks/sec) on standard output.
///
/// # Errors
/// Why it could not run: not installed, failed (with the end of its standard error), or said
/// something else.
pub(crate) fn peer_rate(command: Command) -> anyhow::Result<f64> {
    let (program, stdout) = peer_output(command)?;
    stdout
        .parse()
        .with_context(|| format!("{program} printed {stdout:?}, not a rate"))
}

/// Runs a peer process of the `latency` case, which prints three numbers on standard output:
/// round trips per second, then the p50 and the p99 of a round trip in microseconds.
///
/// # Errors
/// As [`peer_rate`].
pub(crate) fn peer_latency(command: Command) -> anyhow::Result<Rate> {
    let (program, stdout) = peer_output(command)?;
    let numbers: Vec<f64> = stdout
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{program} printed {stdout:?}, not numbers"))?;
    let [tasks_per_sec, p50_us, p99_us] = numbers[..] else {
        anyhow::bail!("{program} printed {stdout:?}, not a rate, a p50 and a p99");
    };
    Ok(Rate {
        tasks_per_sec,
        latency: Some(Latency { p50_us, p99_us }),
        balance: None,
    })
}

/// Runs a peer and returns its name and what it printed (trimmed).
fn peer_output(mut command: Command) -> anyhow::Result<(String, String)> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .output()
        .with_context(|| format!("{program} is not runnable"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.trim().lines().rev().take(3).collect();
        anyhow::bail!(
            "{program} failed ({}): {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok((program, stdout))
}

/// The command that runs a Python peer script (written to a temporary file) with `args`.
pub(crate) fn python_command(script: &str, name: &str, args: &[String]) -> anyhow::Result<Command> {
    let dir = std::env::temp_dir().join(format!("crew-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    let mut command = Command::new("python3");
    command.arg(path).args(args);
    Ok(command)
}

const PYTHON_THREADS: &str = include_str!("../peers/pool/pool_threads.py");

/// `crew bench pool`: runs both phases, prints the table and the targets, writes the JSON rows
/// and the chart when asked.
///
/// # Errors
/// Bad settings, a pool that cannot start, or a file that cannot be written.
pub fn main(
    config: &PoolConfig,
    json: Option<&Path>,
    svg: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(config.workers > 0, "--workers must be at least 1");
    anyhow::ensure!(config.chunksize > 0, "--chunksize must be at least 1");
    anyhow::ensure!(
        config.tasks > 0
            && config.items > 0
            && config.process_tasks > 0
            && config.process_items > 0,
        "--tasks, --items, --process-tasks and --process-items must be at least 1"
    );
    let PoolConfig {
        tasks,
        items,
        workers,
        chunksize,
        ..
    } = *config;
    eprintln!(
        "crew bench pool: {workers} workers; threads: submit {tasks} tasks, map {items} items; \
         processes: submit {} tasks, map {} items; chunks of {chunksize}; median of {}; \
         allocator {}",
        config.process_tasks,
        config.process_items,
        config.rounds,
        allocator()
    );
    let crew = ThreadPool::new(workers);
    let raw = RawPool::new(workers);
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .context("cannot start the rayon pool")?;
    let process_pool = crew::ProcessPool::new(workers);
    // Start and warm up every worker before measuring.
    let _ = process_pool
        .map(processes::inc_task, 0..(workers as u64 * 4))
        .count();
    let python = |case: &'static str, n: u64| {
        let args = [
            case.to_owned(),
            n.to_string(),
            workers.to_string(),
            chunksize.to_string(),
        ];
        move || peer_rate(python_command(PYTHON_THREADS, "pool_threads.py", &args)?)
    };
    let wanted = |implementation: &str| {
        config.only.is_empty() || config.only.iter().any(|o| o == implementation)
    };
    // The warm-up round (see the module note); a failure shows in the measured rounds.
    if wanted("crew-threads") {
        let _ = crew_submit(&crew, tasks);
        let _ = crew_map(&crew, items, chunksize);
    }
    if wanted("crossbeam") {
        let _ = crossbeam_submit(&raw, tasks);
        let _ = crossbeam_map(&raw, items, chunksize);
    }
    if wanted("rayon") {
        let _ = rayon_submit(&rayon, tasks);
        let _ = rayon_map(&rayon, items);
    }
    let thread_measurements = vec![
        measure(THREADS, "submit", "crew-threads", tasks, || {
            median_of_repeats(|| crew_submit(&crew, tasks))
        }),
        measure(THREADS, "map", "crew-threads", items, || {
            crew_map(&crew, items, chunksize)
        }),
        measure(THREADS, "submit", "crossbeam", tasks, || {
            median_of_repeats(|| crossbeam_submit(&raw, tasks))
        }),
        measure(THREADS, "map", "crossbeam", items, || {
            crossbeam_map(&raw, items, chunksize)
        }),
        measure(THREADS, "submit", "rayon", tasks, || {
            median_of_repeats(|| rayon_submit(&rayon, tasks))
        }),
        measure(THREADS, "map", "rayon", items, || rayon_map(&rayon, items)),
        measure(
            THREADS,
            "submit",
            "python-threads",
            tasks,
            python("submit", tasks),
        ),
        measure(
            THREADS,
            "map",
            "python-threads",
            items,
            python("map", items),
        ),
    ];
    let process_measurements = processes::measurements(&process_pool, config);
    let mut cells = PoolCells::new();
    for mut measurements in [thread_measurements, process_measurements] {
        if !config.only.is_empty() {
            measurements.retain(|m| config.only.iter().any(|o| o == m.key().implementation));
        }
        cells.extend(harness::run(measurements, config.rounds));
    }
    println!("\nallocator: {}", allocator());
    let text = render_table(&cells) + &render_targets(&cells, workers);
    harness::report(&text, &cells, json, svg.map(|path| (path, chart(&cells))))?;
    Ok(ExitCode::SUCCESS)
}

/// The global allocator of this binary, by its type (`mimalloc::MiMalloc` for `crew`).
pub fn allocator() -> &'static str {
    std::any::type_name_of_val(&crate::ALLOCATOR)
}

/// The median rate of one row, if measured.
pub(crate) fn find(
    cells: &[Cell<Key, Rate>],
    phase: &str,
    case: &str,
    implementation: &str,
) -> Option<f64> {
    harness::find(cells, |key| {
        key.phase == phase && key.case == case && key.implementation == implementation
    })
    .map(|rate| rate.tasks_per_sec)
}

/// Every row: its work, its median, and its ratios to Python's and to crossbeam's row of the
/// same case; rows that could not run say why.
pub fn render_table(cells: &[Cell<Key, Rate>]) -> String {
    let header = format!(
        "\n{:<12} {:<16} {:>10} {:>14} {:>10} {:>12}",
        "case", "impl", "n", "tasks/s", "vs python", "vs crossbeam"
    );
    harness::render_rows(
        cells,
        &header,
        |key| format!("{:<12} {:<16} {:>10}", key.case, key.implementation, key.n),
        |key, rate| {
            // Ratios within the phase: Python's pool of the same kind, and (threads) crossbeam.
            let ratio = |peer: &str| {
                let base = find(cells, key.phase, key.case, peer);
                harness::show(base.map(|base| rate.tasks_per_sec / base), 2, "x")
            };
            let python = if key.phase == THREADS {
                "python-threads"
            } else {
                "python-processes"
            };
            let latency = rate.latency.map_or_else(String::new, |latency| {
                format!(
                    "  p50 {:.1} us, p99 {:.1} us",
                    latency.p50_us, latency.p99_us
                )
            });
            let balance = rate.balance.map_or_else(String::new, |balance| {
                format!(
                    "  busy: max {:.0} ms, sum {:.0} ms; tasks/worker {}-{}",
                    balance.busy_max_ms, balance.busy_sum_ms, balance.tasks_min, balance.tasks_max
                )
            });
            format!(
                "{:>14.0} {:>10} {:>12}{latency}{balance}",
                rate.tasks_per_sec,
                ratio(python),
                ratio("crossbeam")
            )
        },
    )
}

/// The targets of the thread rows, then the process rows', with verdicts.
pub fn render_targets(cells: &[Cell<Key, Rate>], workers: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let crew = find(cells, THREADS, "submit", "crew-threads");
    let vs_python = crew
        .zip(find(cells, THREADS, "submit", "python-threads"))
        .map(|(a, b)| a / b);
    let vs_raw = crew
        .zip(find(cells, THREADS, "submit", "crossbeam"))
        .map(|(a, b)| b / a);
    let _ = writeln!(
        out,
        "\ntargets: thread submit+result {} Python ThreadPoolExecutor (>= 10x): {}",
        harness::show(vs_python, 1, "x"),
        harness::Verdict::of(vs_python, |r| r >= 10.0)
    );
    let _ = writeln!(
        out,
        "         thread submit+result {} slower than raw crossbeam (<= 2x): {}",
        harness::show(vs_raw, 2, "x"),
        harness::Verdict::of(vs_raw, |r| r <= 2.0)
    );
    let map = find(cells, THREADS, "map", "crew-threads").map(|r| r / 1e6);
    let _ = writeln!(
        out,
        "         thread map with chunks {} M items/s (>= 20 M): {}",
        harness::show(map, 1, ""),
        harness::Verdict::of(map, |m| m >= 20.0)
    );
    out.push_str(&processes::render_targets(cells, workers));
    out
}

/// The `--svg` chart: one panel per case, tasks/s (log scale) per implementation.
pub fn chart(cells: &[Cell<Key, Rate>]) -> Chart {
    let mut cases: Vec<(&'static str, &'static str)> = Vec::new();
    for cell in cells {
        if !cases.contains(&(cell.key.phase, cell.key.case)) {
            cases.push((cell.key.phase, cell.key.case));
        }
    }
    let panels = cases
        .into_iter()
        .map(|(phase, case)| {
            let rows: Vec<&Cell<Key, Rate>> = cells
                .iter()
                .filter(|cell| cell.key.phase == phase && cell.key.case == case)
                .collect();
            Panel::categories(
                format!("{phase} {case}: tasks/s (n = {})", rows[0].key.n),
                rows.iter().map(|cell| {
                    let implementation = cell.key.implementation;
                    (
                        implementation.to_owned(),
                        Role::crew_if(implementation.starts_with("crew-")),
                        cell.median().map(|rate| rate.tasks_per_sec),
                    )
                }),
            )
        })
        .collect();
    Chart { panels }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Outcome;

    #[test]
    fn balance_adds_up_per_worker_and_counts_an_idle_one() {
        let ms = 1_000_000;
        let balance = Balance::of([(7, 30 * ms), (9, 10 * ms), (7, 20 * ms)], 2).unwrap();
        assert_eq!(
            balance,
            Balance {
                busy_max_ms: 50.0,
                busy_sum_ms: 60.0,
                tasks_max: 2,
                tasks_min: 1
            }
        );
        let one_idle = Balance::of([(7, ms), (7, ms)], 2).unwrap();
        assert_eq!((one_idle.tasks_min, one_idle.tasks_max), (0, 2));
        assert_eq!(Balance::of([], 2), None);
    }

    fn cell(
        case: &'static str,
        implementation: &'static str,
        n: u64,
        rate: Rate,
    ) -> Cell<Key, Rate> {
        Cell {
            key: Key {
                phase: PROCESSES,
                case,
                implementation,
                n,
            },
            outcome: Outcome::Measured {
                median: rate,
                samples: vec![rate],
            },
        }
    }

    fn rate(tasks_per_sec: f64, balance: Option<Balance>) -> Rate {
        Rate {
            tasks_per_sec,
            latency: None,
            balance,
        }
    }

    #[test]
    fn cpu_targets_set_crew_beside_the_ideal_and_python() {
        let balance = Balance {
            busy_max_ms: 400.0,
            busy_sum_ms: 780.0,
            tasks_max: 33,
            tasks_min: 31,
        };
        let cells = vec![
            cell("cpu-gcd", "serial", 64, rate(100.0, None)),
            cell("cpu-gcd", "ideal-threads", 64, rate(190.0, Some(balance))),
            cell("cpu-gcd", "crew-processes", 64, rate(160.0, Some(balance))),
            cell("cpu-gcd-python", "python-serial", 64, rate(50.0, None)),
            cell("cpu-gcd-python", "python-processes", 64, rate(85.0, None)),
        ];
        let text = processes::render_targets(&cells, 2);
        assert!(text.contains("cpu-gcd: speedup of a pool of 2 workers (one per CPU) over serial 1.60x (>= 1.8x): MISSED"), "{text}");
        assert!(
            text.contains("ideal (one plain thread per CPU, no pool) 1.90x"),
            "{text}"
        );
        assert!(text.contains("crew 84% of the ideal"), "{text}");
        assert!(text.contains("Python ProcessPoolExecutor 1.70x"), "{text}");
        // 64 tasks at 160/s: 400 ms of wall, all of it the busiest worker's.
        assert!(text.contains("crew-processes   wall 400 ms = busiest worker 400 ms + 0 ms; work 780 ms over 2 workers (serial 640 ms)"), "{text}");
    }
}
