//! The process rows of `crew bench pool`: crew's `ProcessPool` against Python's
//! `ProcessPoolExecutor` and `multiprocessing.Pool` and against procspawn's pool (the Rust
//! peer), plus CPU-bound speedup of two workers over serial and worker start-up time.
//!
//! Rows: `case` = `submit` | `map` for `impl` = `crew-processes`, `python-processes`,
//! `python-mp-pool`, `procspawn`; `case` = `cpu-gcd` | `cpu-is_prime` for `impl` = `serial` and
//! `crew-processes` (tasks/s, so the ratio is the speedup); `case` = `startup` (worker starts
//! per second: a new pool's first result for crew, spawn + join for procspawn).

use std::time::Instant;

use crew::{Executor, MapOptions, ProcessPool};

use super::{expected_sum, inc, python_peer, rate, Measurement, Row};

const PYTHON_PROCESSES: &str = include_str!("../peers/pool_processes.py");

/// The seed's deliberately slow gcd (seed 002): count down from the smaller number.
#[crew::task]
fn slow_gcd((a, b): (u64, u64)) -> u64 {
    let low = a.min(b);
    (1..=low)
        .rev()
        .find(|i| a % i == 0 && b % i == 0)
        .unwrap_or(1)
}

/// Seed 001's is_prime.
#[crew::task]
fn is_prime(n: u64) -> bool {
    if n % 2 == 0 {
        return false;
    }
    let sqrt_n = (n as f64).sqrt().floor() as u64;
    (3..=sqrt_n).step_by(2).all(|i| n % i != 0)
}

/// `inc` as a process task (`#[crew::task]` functions are never inlined, so the thread rows keep
/// their own plain `inc`).
#[crew::task]
pub(crate) fn inc_task(x: u64) -> u64 {
    inc(x)
}

#[crew::task]
fn inc_chunk(items: Vec<u64>) -> Vec<u64> {
    items.into_iter().map(inc).collect()
}

/// Seed 002's four pairs, four times over (16 tasks: an even load for two workers).
fn gcd_inputs() -> Vec<(u64, u64)> {
    let numbers = [
        (1963309, 2265973),
        (2030677, 3814172),
        (1551645, 2229620),
        (2039045, 2020802),
    ];
    numbers.iter().copied().cycle().take(16).collect()
}

/// Seed 001's PRIMES, twice over (10 of the 12 are 5-million-step primes).
fn prime_inputs() -> Vec<u64> {
    let primes = [
        112272535095293,
        112582705942171,
        112272535095293,
        115280095190773,
        115797848077099,
        1099726899285419,
    ];
    primes.iter().copied().cycle().take(12).collect()
}

/// Settings of the process rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) workers: usize,
    pub(crate) tasks: u64,
    pub(crate) items: u64,
    pub(crate) peer_tasks: u64,
    pub(crate) chunksize: usize,
}

/// The process measurements; `pool` is a warm crew process pool of `settings.workers`.
pub(crate) fn measurements<'a>(
    pool: &'a ProcessPool,
    procspawn_pool: &'a procspawn::Pool,
    settings: Settings,
) -> Vec<Measurement<'a>> {
    let Settings {
        workers,
        tasks,
        items,
        peer_tasks,
        chunksize,
    } = settings;
    let python = move |kind: &'static str, case: &'static str| {
        let args = [
            kind.to_owned(),
            case.to_owned(),
            if case == "submit" { peer_tasks } else { items }.to_string(),
            workers.to_string(),
            chunksize.to_string(),
        ];
        move || python_peer(PYTHON_PROCESSES, &args).map_err(anyhow::Error::msg)
    };
    vec![
        (
            "submit",
            "crew-processes",
            Box::new(move || crew_submit(pool, tasks)),
        ),
        (
            "map",
            "crew-processes",
            Box::new(move || crew_map(pool, items, chunksize)),
        ),
        (
            "submit",
            "python-processes",
            Box::new(python("executor", "submit")),
        ),
        (
            "map",
            "python-processes",
            Box::new(python("executor", "map")),
        ),
        ("submit", "python-mp-pool", Box::new(python("mp", "submit"))),
        ("map", "python-mp-pool", Box::new(python("mp", "map"))),
        (
            "submit",
            "procspawn",
            Box::new(move || procspawn_submit(procspawn_pool, peer_tasks)),
        ),
        (
            "map",
            "procspawn",
            Box::new(move || procspawn_map(procspawn_pool, items, chunksize)),
        ),
        (
            "cpu-gcd",
            "serial",
            Box::new(|| serial(slow_gcd, gcd_inputs())),
        ),
        (
            "cpu-gcd",
            "crew-processes",
            Box::new(move || parallel(pool, slow_gcd, gcd_inputs())),
        ),
        (
            "cpu-is_prime",
            "serial",
            Box::new(|| serial(is_prime, prime_inputs())),
        ),
        (
            "cpu-is_prime",
            "crew-processes",
            Box::new(move || parallel(pool, is_prime, prime_inputs())),
        ),
        ("startup", "crew-processes", Box::new(crew_startup)),
        ("startup", "procspawn", Box::new(procspawn_startup)),
    ]
}

fn crew_submit(pool: &ProcessPool, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        handles.push(pool.submit(inc_task, i)?);
    }
    let mut sum = 0;
    for handle in handles {
        sum += handle.result()?;
    }
    anyhow::ensure!(sum == expected_sum(n), "crew-processes: wrong sum");
    Ok(rate(n, start))
}

fn crew_map(pool: &ProcessPool, n: u64, chunksize: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut sum = 0;
    for value in pool.map_with(inc_task, 0..n, MapOptions::new().chunksize(chunksize)) {
        sum += value?;
    }
    anyhow::ensure!(sum == expected_sum(n), "crew-processes map: wrong sum");
    Ok(rate(n, start))
}

/// Each procspawn call holds a few descriptors until joined, so calls go in windows of 256.
const PROCSPAWN_WINDOW: u64 = 256;

fn procspawn_submit(pool: &procspawn::Pool, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut sum = 0;
    for low in (0..n).step_by(PROCSPAWN_WINDOW as usize) {
        let high = (low + PROCSPAWN_WINDOW).min(n);
        let handles: Vec<_> = (low..high).map(|i| pool.spawn(i, inc_task)).collect();
        for handle in handles {
            sum += handle.join()?;
        }
    }
    anyhow::ensure!(sum == expected_sum(n), "procspawn: wrong sum");
    Ok(rate(n, start))
}

fn procspawn_map(pool: &procspawn::Pool, n: u64, chunksize: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let chunk = chunksize as u64;
    let mut sum = 0;
    let lows: Vec<u64> = (0..n).step_by(chunksize).collect();
    for window in lows.chunks(PROCSPAWN_WINDOW as usize) {
        let handles: Vec<_> = window
            .iter()
            .map(|&low| pool.spawn((low..(low + chunk).min(n)).collect(), inc_chunk))
            .collect();
        for handle in handles {
            sum += handle.join()?.into_iter().sum::<u64>();
        }
    }
    anyhow::ensure!(sum == expected_sum(n), "procspawn map: wrong sum");
    Ok(rate(n, start))
}

fn serial<A: Clone, R>(f: fn(A) -> R, inputs: Vec<A>) -> anyhow::Result<f64> {
    let n = inputs.len() as u64;
    let start = Instant::now();
    for input in inputs {
        std::hint::black_box(f(input));
    }
    Ok(rate(n, start))
}

fn parallel<A: crew::Message, R: crew::Message>(
    pool: &ProcessPool,
    f: fn(A) -> R,
    inputs: Vec<A>,
) -> anyhow::Result<f64> {
    let n = inputs.len() as u64;
    let start = Instant::now();
    for result in pool.map(f, inputs) {
        std::hint::black_box(result?);
    }
    Ok(rate(n, start))
}

/// Worker starts per second: a new one-worker pool until its first result, 20 times.
fn crew_startup() -> anyhow::Result<f64> {
    let rounds = 20;
    let start = Instant::now();
    for i in 0..rounds {
        let pool = ProcessPool::new(1);
        anyhow::ensure!(pool.submit(inc_task, i)?.result()? == i + 1, "wrong result");
    }
    Ok(rate(rounds, start))
}

/// procspawn's equivalent: spawn a process for one call and join it, 20 times.
fn procspawn_startup() -> anyhow::Result<f64> {
    let rounds = 20;
    let start = Instant::now();
    for i in 0..rounds {
        anyhow::ensure!(
            procspawn::spawn(i, inc_task).join()? == i + 1,
            "wrong result"
        );
    }
    Ok(rate(rounds, start))
}

fn find(rows: &[Row], case: &str, implementation: &str) -> Option<f64> {
    rows.iter()
        .find(|row| row.case == case && row.implementation == implementation)
        .map(|row| row.tasks_per_sec)
}

/// The process targets, with the numbers of this run.
pub(crate) fn print_summary(rows: &[Row]) {
    let ratio = |case, a, b| Some(find(rows, case, a)? / find(rows, case, b)?);
    if let Some(r) = ratio("submit", "crew-processes", "python-processes") {
        println!("targets: process submit+result {r:.1}x Python ProcessPoolExecutor (>= 10x)");
    }
    if let Some(r) = ratio("submit", "crew-processes", "procspawn") {
        println!("         process submit+result {r:.1}x procspawn's pool");
    }
    if let Some(r) = ratio("map", "crew-processes", "python-mp-pool") {
        println!("targets: process map with chunks {r:.1}x multiprocessing.Pool.map (>= 1x)");
    }
    if let Some(r) = ratio("map", "crew-processes", "procspawn") {
        println!("         process map with chunks {r:.1}x procspawn's pool");
    }
    for case in ["cpu-gcd", "cpu-is_prime"] {
        if let Some(r) = ratio(case, "crew-processes", "serial") {
            println!("targets: {case} speedup of the process pool over serial {r:.2}x (>= 1.8x)");
        }
    }
    if let Some(starts) = find(rows, "startup", "crew-processes") {
        println!(
            "targets: worker start-up (new pool to first result) {:.2} ms (<= 5 ms)",
            1e3 / starts
        );
    }
    if let Some(starts) = find(rows, "startup", "procspawn") {
        println!(
            "         procspawn spawn + call + join {:.2} ms",
            1e3 / starts
        );
    }
}
