//! `crew bench pool`: tiny-task throughput of crew's executors against their peers, in one run.
//!
//! Two cases, each with the same trivial task (`x + 1`):
//! * `submit`: submit N tasks, then collect every result (submit + result throughput);
//! * `map`: map the task over N items (chunked where the implementation supports chunks).
//!
//! Peers: a raw crossbeam-channel worker pool (the floor of what a pool can cost), rayon
//! (`spawn` + channel, and `par_iter`) and Python's `ThreadPoolExecutor`. Every row is the
//! median of several repetitions; ratios compare rows of the same run.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::Context as _;
use crew::{Executor, MapOptions, ThreadPool};
use rayon::prelude::*;

mod processes;

/// Arguments of `crew bench pool`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Tasks per measurement for the Rust implementations.
    #[arg(long, default_value_t = 200_000)]
    tasks: u64,
    /// Items per measurement of the `map` case.
    #[arg(long, default_value_t = 20_000_000)]
    items: u64,
    /// Tasks per measurement for the Python peers (they are much slower).
    #[arg(long, default_value_t = 50_000)]
    python_tasks: u64,
    /// Worker threads of every pool (default: number of CPUs).
    #[arg(long)]
    workers: Option<usize>,
    /// Items per task in the `map` case.
    #[arg(long, default_value_t = 4096)]
    chunksize: usize,
    /// Repetitions of each measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Measure only these implementations (comma-separated `impl` names).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Items per measurement of the `map` case for process pools (Python's are slow).
    #[arg(long, default_value_t = 2_000_000)]
    process_items: u64,
    /// Write the rows as a JSON array to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One measured row.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Row {
    pub(crate) case: &'static str,
    #[serde(rename = "impl")]
    pub(crate) implementation: &'static str,
    pub(crate) tasks_per_sec: f64,
}

/// The task. `black_box` keeps the optimiser from folding a whole `map` into a formula.
fn inc(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

fn expected_sum(n: u64) -> u64 {
    n * (n + 1) / 2
}

/// A named measurement: one call returns tasks per second.
type Measurement<'a> = (
    &'static str,
    &'static str,
    Box<dyn FnMut() -> anyhow::Result<f64> + 'a>,
);

/// Runs every measurement once per round, `repeat` rounds, in a rotating order, so that
/// background noise on this shared machine hits all implementations alike; returns the median rows and the
/// implementations that could not run (with the reason).
fn run_interleaved(
    measurements: &mut [Measurement<'_>],
    repeat: usize,
) -> (Vec<Row>, Vec<(String, String)>) {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); measurements.len()];
    let mut failures: Vec<Option<String>> = vec![None; measurements.len()];
    for round in 0..repeat.max(1) {
        eprintln!("round {}/{}", round + 1, repeat.max(1));
        // Each round starts one measurement later, so no implementation always runs right
        // after the same neighbour (a process pool's burst, a Python start-up).
        let count = measurements.len();
        for step in 0..count {
            let index = (round + step) % count;
            if failures[index].is_some() {
                continue;
            }
            let (case, implementation, run) = &mut measurements[index];
            match run() {
                Ok(value) => {
                    eprintln!("  {case:<7} {implementation:<16} {value:>14.0} tasks/s");
                    samples[index].push(value);
                }
                Err(error) => failures[index] = Some(format!("{error:#}")),
            }
        }
    }
    let mut rows = Vec::new();
    let mut unavailable = Vec::new();
    for (index, (case, implementation, _)) in measurements.iter().enumerate() {
        if let Some(reason) = &failures[index] {
            unavailable.push((format!("{case} {implementation}"), reason.clone()));
            continue;
        }
        let values = &mut samples[index];
        values.sort_by(f64::total_cmp);
        rows.push(Row {
            case,
            implementation,
            tasks_per_sec: values[values.len() / 2],
        });
    }
    (rows, unavailable)
}

fn rate(n: u64, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
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

/// Runs a Python peer script; `None` (with the reason) when Python cannot run it.
pub(crate) fn python_peer(script: &str, args: &[String]) -> Result<f64, String> {
    let dir = std::env::temp_dir().join(format!("crew-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("peer.py");
    std::fs::write(&path, script).map_err(|e| e.to_string())?;
    let output = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "python3 failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("unexpected output from the Python peer: {e}"))
}

const PYTHON_THREADS: &str = include_str!("peers/pool_threads.py");

pub(crate) fn main(args: Args) -> anyhow::Result<ExitCode> {
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let repeat = args.repeat;
    eprintln!(
        "crew bench pool: {workers} workers, submit {} tasks / map {} items (chunks of {}), median of {repeat}",
        args.tasks, args.items, args.chunksize
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
    let procspawn_pool = procspawn::Pool::new(workers)
        .map_err(|error| anyhow::anyhow!("cannot start procspawn's pool: {error}"))?;
    let (tasks, items, chunksize) = (args.tasks, args.items, args.chunksize);
    let python = |case: &str| {
        let peer_args = [
            case.to_owned(),
            args.python_tasks.to_string(),
            workers.to_string(),
            chunksize.to_string(),
        ];
        move || python_peer(PYTHON_THREADS, &peer_args).map_err(anyhow::Error::msg)
    };
    // Two phases, threads then processes, each interleaved within itself: the process rows
    // churn through tens of megabytes of buffers and start processes, which the allocator and
    // the kernel pay for in whichever measurement comes next, so mixing the phases would charge
    // that to thread rows at random.
    let mut thread_measurements: Vec<Measurement<'_>> = vec![
        (
            "submit",
            "crew-threads",
            Box::new(|| crew_submit(&crew, tasks)),
        ),
        (
            "map",
            "crew-threads",
            Box::new(|| crew_map(&crew, items, chunksize)),
        ),
        (
            "submit",
            "crossbeam",
            Box::new(|| crossbeam_submit(&raw, tasks)),
        ),
        (
            "map",
            "crossbeam",
            Box::new(|| crossbeam_map(&raw, items, chunksize)),
        ),
        ("submit", "rayon", Box::new(|| rayon_submit(&rayon, tasks))),
        ("map", "rayon", Box::new(|| rayon_map(&rayon, items))),
        ("submit", "python-threads", Box::new(python("submit"))),
        ("map", "python-threads", Box::new(python("map"))),
    ];
    let mut process_measurements = processes::measurements(
        &process_pool,
        &procspawn_pool,
        processes::Settings {
            workers,
            tasks,
            items: args.process_items,
            peer_tasks: args.python_tasks,
            chunksize,
        },
    );
    let mut rows = Vec::new();
    let mut unavailable = Vec::new();
    for measurements in [&mut thread_measurements, &mut process_measurements] {
        if !args.only.is_empty() {
            measurements
                .retain(|(_, implementation, _)| args.only.iter().any(|o| o == implementation));
        }
        let (phase_rows, phase_unavailable) = run_interleaved(measurements, repeat);
        rows.extend(phase_rows);
        unavailable.extend(phase_unavailable);
    }
    print_table(&rows);
    for (implementation, reason) in &unavailable {
        println!("{implementation}: not available ({reason})");
    }
    if let Some(path) = &args.json {
        let mut file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(&mut file, &rows)?;
        writeln!(file)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn find(rows: &[Row], case: &str, implementation: &str) -> Option<f64> {
    rows.iter()
        .find(|row| row.case == case && row.implementation == implementation)
        .map(|row| row.tasks_per_sec)
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<7} {:<16} {:>14} {:>12} {:>12}",
        "case", "impl", "tasks/s", "vs python", "vs crossbeam"
    );
    for row in rows {
        let ratio = |peer| {
            find(rows, row.case, peer).map_or_else(
                || "-".to_owned(),
                |base| format!("{:.2}x", row.tasks_per_sec / base),
            )
        };
        println!(
            "{:<7} {:<16} {:>14.0} {:>12} {:>12}",
            row.case,
            row.implementation,
            row.tasks_per_sec,
            ratio("python-threads"),
            ratio("crossbeam")
        );
    }
    println!();
    if let (Some(crew), Some(python), Some(raw)) = (
        find(rows, "submit", "crew-threads"),
        find(rows, "submit", "python-threads"),
        find(rows, "submit", "crossbeam"),
    ) {
        println!(
            "targets: submit+result {:.1}x Python ThreadPoolExecutor (>= 10x), {:.2}x slower than raw crossbeam (<= 2x)",
            crew / python,
            raw / crew
        );
    }
    if let Some(map) = find(rows, "map", "crew-threads") {
        println!(
            "targets: map with chunks {:.1} M items/s (>= 20 M)",
            map / 1e6
        );
    }
    processes::print_summary(rows);
}
