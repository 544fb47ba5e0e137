//! The process rows of `crew bench pool`: crew's `ProcessPool` against Python's
//! `ProcessPoolExecutor` and `multiprocessing.Pool` and against procspawn's pool (the Rust
//! peer), plus the CPU-bound speedup of a pool with one worker per CPU over serial, and worker
//! start-up time.
//!
//! Rows (every implementation in a case does the same work, the row's `n`):
//! * `submit` (`crew-processes`, `python-processes`, `python-mp-pool`): submit `n` tasks, then
//!   collect every result;
//! * `submit-256` (`crew-processes`, `procspawn`): the same with at most 256 tasks in flight
//!   (each procspawn call holds descriptors until joined, so it cannot have `n` open at once);
//! * `map` (all four): `n` items in chunks;
//! * `cpu-gcd`, `cpu-is_prime` (`serial`, `ideal-threads`, `rayon`, `crew-processes`, ...):
//!   tasks/s of CPU-bound tasks, so a row's ratio to `serial` is its speedup with one worker
//!   per CPU; `ideal-threads` (plain threads, no pool) is what this machine gives in the same
//!   run, and each parallel row shows where its time went ([`Balance`]); Python's pools have
//!   the cases `cpu-gcd-python`, `cpu-is_prime-python` (its own serial against its pools, on
//!   scaled inputs, see `CpuCase`);
//! * `latency` (`crew-processes`, `procspawn`, `python-processes`): one task at a time, each
//!   submitted when the last result is back, on a warm pool; the row has the p50 and p99 of
//!   a round trip (submit to result) besides round trips per second. `n` is a fifth of the
//!   `submit` case's tasks, after a warm-up of [`LATENCY_WARM_UP`] round trips;
//! * `startup` (`crew-processes`, `procspawn`): worker starts per second (a new one-worker
//!   pool's first result for crew, spawn + call + join for procspawn).
//!
//! procspawn runs in a process of its own (`crew bench peer procspawn ...`, see
//! [`crate::peer`]), started afresh for each round like the Python peers, its pool warmed up
//! before the clock starts.

use std::time::Instant;

use crew::{Executor, MapOptions, ProcessPool};
use rayon::prelude::*;

use super::{
    expected_sum, find, inc, measure, measure_sample, peer_latency, peer_rate, python_command,
    rate, Balance, Key, Latency, PoolConfig, PoolMeasurement, Rate, PROCESSES,
};
use crate::harness::{self, Cell, Verdict};

const PYTHON_PROCESSES: &str = include_str!("../../peers/pool/pool_processes.py");

/// At most this many tasks in flight in the `submit-256` case.
const WINDOW: u64 = 256;

/// Round trips before the clock starts in the `latency` case (every implementation).
pub const LATENCY_WARM_UP: u64 = 200;

/// The seed's deliberately slow gcd (seed 002): count down from the smaller number. Not
/// inlined, so that every row of a `cpu-` case runs the same machine code.
#[inline(never)]
fn slow_gcd((a, b): (u64, u64)) -> u64 {
    let low = a.min(b);
    (1..=low)
        .rev()
        .find(|i| a % i == 0 && b % i == 0)
        .unwrap_or(1)
}

/// Seed 001's is_prime (not inlined, as [`slow_gcd`]).
#[inline(never)]
fn is_prime(n: u64) -> bool {
    if n % 2 == 0 {
        return false;
    }
    let sqrt_n = (n as f64).sqrt().floor() as u64;
    (3..=sqrt_n).step_by(2).all(|i| n % i != 0)
}

/// What a timed CPU task returns: its result, the worker it ran on (a process id, or a thread's
/// index) and how long it ran there, in nanoseconds.
type Timed<R> = (R, u64, u64);

fn timed<A, R>(f: fn(A) -> R, arg: A, worker: u64) -> Timed<R> {
    let start = Instant::now();
    let result = f(arg);
    (result, worker, start.elapsed().as_nanos() as u64)
}

#[crew::task]
fn slow_gcd_task(pair: (u64, u64)) -> Timed<u64> {
    timed(slow_gcd, pair, u64::from(std::process::id()))
}

#[crew::task]
fn is_prime_task(n: u64) -> Timed<bool> {
    timed(is_prime, n, u64::from(std::process::id()))
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

/// Seed 002's four pairs (3 to 38 ms each here), cycled to `n` tasks.
fn gcd_inputs(n: u64) -> Vec<(u64, u64)> {
    let numbers = [
        (1963309, 2265973),
        (2030677, 3814172),
        (1551645, 2229620),
        (2039045, 2020802),
    ];
    numbers.iter().copied().cycle().take(n as usize).collect()
}

/// Seed 001's PRIMES (5 of the 6 are 5-million-step primes, 45 to 70 ms each here), cycled to
/// `n` tasks.
fn prime_inputs(n: u64) -> Vec<u64> {
    let primes = [
        112272535095293,
        112582705942171,
        112272535095293,
        115280095190773,
        115797848077099,
        1099726899285419,
    ];
    primes.iter().copied().cycle().take(n as usize).collect()
}

/// The process measurements; `pool` is a warm crew process pool of `config.workers`.
pub(crate) fn measurements<'a>(
    pool: &'a ProcessPool,
    config: &PoolConfig,
) -> Vec<PoolMeasurement<'a>> {
    let PoolConfig {
        workers,
        process_tasks: tasks,
        process_items: items,
        chunksize,
        ..
    } = *config;
    let python = move |kind: &'static str, case: &'static str, n: u64| {
        let args = [
            kind.to_owned(),
            case.to_owned(),
            n.to_string(),
            workers.to_string(),
            chunksize.to_string(),
        ];
        move || {
            peer_rate(python_command(
                PYTHON_PROCESSES,
                "pool_processes.py",
                &args,
            )?)
        }
    };
    let peer_command = config.peer_command.clone();
    let procspawn = move |case: &'static str, n: u64| {
        let peer_command = peer_command.clone();
        move || {
            let (n, workers, chunksize) =
                (n.to_string(), workers.to_string(), chunksize.to_string());
            peer_rate(peer_command(&["procspawn", case, &n, &workers, &chunksize]))
        }
    };
    let python_latency = move |n: u64| {
        let args = [
            "executor".to_owned(),
            "latency".to_owned(),
            n.to_string(),
            workers.to_string(),
            LATENCY_WARM_UP.to_string(),
        ];
        move || {
            peer_latency(python_command(
                PYTHON_PROCESSES,
                "pool_processes.py",
                &args,
            )?)
        }
    };
    let peer_command = config.peer_command.clone();
    let procspawn_latency = move |n: u64| {
        let peer_command = peer_command.clone();
        move || {
            let (n, workers) = (n.to_string(), workers.to_string());
            let warm_up = LATENCY_WARM_UP.to_string();
            peer_latency(peer_command(&[
                "procspawn",
                "latency",
                &n,
                &workers,
                &warm_up,
            ]))
        }
    };
    let round_trips = (tasks / 5).max(1);
    let mut rows = vec![
        measure(PROCESSES, "submit", "crew-processes", tasks, move || {
            crew_submit(pool, tasks)
        }),
        measure(
            PROCESSES,
            "submit",
            "python-processes",
            tasks,
            python("executor", "submit", tasks),
        ),
        measure(
            PROCESSES,
            "submit",
            "python-mp-pool",
            tasks,
            python("mp", "submit", tasks),
        ),
        measure(
            PROCESSES,
            "submit-256",
            "crew-processes",
            tasks,
            move || crew_submit_windowed(pool, tasks),
        ),
        measure(
            PROCESSES,
            "submit-256",
            "procspawn",
            tasks,
            procspawn("submit-256", tasks),
        ),
        measure(PROCESSES, "map", "crew-processes", items, move || {
            crew_map(pool, items, chunksize)
        }),
        measure(
            PROCESSES,
            "map",
            "python-processes",
            items,
            python("executor", "map", items),
        ),
        measure(
            PROCESSES,
            "map",
            "python-mp-pool",
            items,
            python("mp", "map", items),
        ),
        measure(
            PROCESSES,
            "map",
            "procspawn",
            items,
            procspawn("map", items),
        ),
        measure_sample(
            PROCESSES,
            "latency",
            "crew-processes",
            round_trips,
            move || crew_latency(pool, round_trips),
        ),
        measure_sample(
            PROCESSES,
            "latency",
            "procspawn",
            round_trips,
            procspawn_latency(round_trips),
        ),
        measure_sample(
            PROCESSES,
            "latency",
            "python-processes",
            round_trips,
            python_latency(round_trips),
        ),
        measure(PROCESSES, "startup", "crew-processes", STARTS, crew_startup),
        measure(
            PROCESSES,
            "startup",
            "procspawn",
            STARTS,
            procspawn("startup", STARTS),
        ),
    ];
    let rayon = std::sync::Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("cpu-rayon-{i}"))
            .build(),
    );
    for case in [
        CpuCase::Gcd(config.gcd_tasks),
        CpuCase::IsPrime(config.prime_tasks),
    ] {
        let (name, python_name, n) = (case.name(), case.python_name(), case.n());
        rows.push(measure(PROCESSES, name, "serial", n, move || case.serial()));
        rows.push(measure_sample(
            PROCESSES,
            name,
            "ideal-threads",
            n,
            move || case.ideal_threads(workers),
        ));
        let rayon = rayon.clone();
        rows.push(measure_sample(PROCESSES, name, "rayon", n, move || {
            let pool = rayon.as_ref().as_ref().map_err(|error| {
                anyhow::anyhow!("cannot start a rayon pool of {workers}: {error}")
            })?;
            case.rayon(pool)
        }));
        rows.push(measure_sample(
            PROCESSES,
            name,
            "crew-processes",
            n,
            move || case.crew(pool),
        ));
        rows.push(measure_sample(
            PROCESSES,
            name,
            "crew-submit-all",
            n,
            move || case.crew_eager(pool),
        ));
        rows.push(measure(
            PROCESSES,
            python_name,
            "python-serial",
            n,
            python("serial", python_name, n),
        ));
        rows.push(measure(
            PROCESSES,
            python_name,
            "python-processes",
            n,
            python("executor", python_name, n),
        ));
        rows.push(measure(
            PROCESSES,
            python_name,
            "python-mp-pool",
            n,
            python("mp", python_name, n),
        ));
    }
    rows
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

/// `submit` with at most [`WINDOW`] tasks in flight: submit a window, collect it, go on.
fn crew_submit_windowed(pool: &ProcessPool, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut sum = 0;
    for low in (0..n).step_by(WINDOW as usize) {
        let high = (low + WINDOW).min(n);
        let handles = (low..high)
            .map(|i| pool.submit(inc_task, i))
            .collect::<Result<Vec<_>, _>>()?;
        for handle in handles {
            sum += handle.result()?;
        }
    }
    anyhow::ensure!(
        sum == expected_sum(n),
        "crew-processes submit-256: wrong sum"
    );
    Ok(rate(n, start))
}

/// One task at a time on a warm pool, [`LATENCY_WARM_UP`] round trips first: round trips per
/// second and their p50 and p99.
fn crew_latency(pool: &ProcessPool, n: u64) -> anyhow::Result<Rate> {
    round_trips(n, |i| Ok(pool.submit(inc_task, i)?.result()?))
}

/// Times `n` calls of `round_trip(i)` (which must return `i + 1`), one after another, after
/// [`LATENCY_WARM_UP`] untimed ones.
fn round_trips(
    n: u64,
    mut round_trip: impl FnMut(u64) -> anyhow::Result<u64>,
) -> anyhow::Result<Rate> {
    for i in 0..LATENCY_WARM_UP {
        anyhow::ensure!(round_trip(i)? == i + 1, "wrong result");
    }
    let mut micros = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let sent = Instant::now();
        let result = round_trip(i)?;
        micros.push(sent.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(result == i + 1, "wrong result");
    }
    Ok(Rate {
        tasks_per_sec: rate(n, start),
        latency: Latency::of(micros),
        balance: None,
    })
}

/// The procspawn peer, in its own process (`crew bench peer procspawn CASE N WORKERS
/// CHUNKSIZE`): `procspawn::init()` has run; returns what the peer prints for one round:
/// tasks/s, and for the `latency` case (whose last argument is the warm-up instead of the
/// chunk size, which it has no use for) the p50 and p99 in microseconds after it.
pub(crate) fn procspawn_peer(args: &[&str]) -> anyhow::Result<String> {
    let [case, n, workers, chunksize] = args else {
        anyhow::bail!("procspawn peer: expected CASE N WORKERS CHUNKSIZE, got {args:?}");
    };
    let n: u64 = n.parse()?;
    let workers: usize = workers.parse()?;
    let chunksize: usize = chunksize.parse()?;
    if *case == "startup" {
        return procspawn_startup(n).map(|rate| rate.to_string());
    }
    let pool = procspawn::Pool::new(workers)
        .map_err(|error| anyhow::anyhow!("cannot start procspawn's pool: {error}"))?;
    // Start and warm up every worker before measuring, as crew's pool is.
    let warm: Vec<_> = (0..workers as u64 * 4)
        .map(|i| pool.spawn(i, inc_task))
        .collect();
    for handle in warm {
        handle.join()?;
    }
    let rate = match *case {
        "submit-256" => procspawn_submit(&pool, n),
        "map" => procspawn_map(&pool, n, chunksize),
        "latency" => {
            let sample = round_trips(n, |i| Ok(pool.spawn(i, inc_task).join()?))?;
            let latency = sample.latency.expect("n > 0 round trips");
            return Ok(format!(
                "{} {} {}",
                sample.tasks_per_sec, latency.p50_us, latency.p99_us
            ));
        }
        other => anyhow::bail!("procspawn peer: unknown case {other:?}"),
    }?;
    Ok(rate.to_string())
}

fn procspawn_submit(pool: &procspawn::Pool, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut sum = 0;
    for low in (0..n).step_by(WINDOW as usize) {
        let high = (low + WINDOW).min(n);
        let handles: Vec<_> = (low..high).map(|i| pool.spawn(i, inc_task)).collect();
        for handle in handles {
            sum += handle.join()?;
        }
    }
    anyhow::ensure!(sum == expected_sum(n), "procspawn: wrong sum");
    Ok(rate(n, start))
}

/// `map` in chunks; the chunks go in windows of [`WINDOW`] for procspawn's descriptors (2,000,000
/// items are 489 chunks of 4096: two windows).
fn procspawn_map(pool: &procspawn::Pool, n: u64, chunksize: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let chunk = chunksize as u64;
    let mut sum = 0;
    let lows: Vec<u64> = (0..n).step_by(chunksize).collect();
    for window in lows.chunks(WINDOW as usize) {
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

/// A CPU-bound case with its number of tasks: `cpu-gcd` ([`slow_gcd`] over [`gcd_inputs`]) or
/// `cpu-is_prime` ([`is_prime`] over [`prime_inputs`]).
///
/// Its rows: `serial` (one thread, no pool); `ideal-threads` (one plain `std::thread` per
/// worker, each taking the next input from a shared counter: the machine's own parallel
/// capacity on this work, with the same one-task-at-a-time schedule and no pool, no
/// processes, no messages); `rayon` (`par_iter`, one item per job); `crew-processes`
/// (`ProcessPool::map`, its defaults). The parallel rows time each task where it ran
/// ([`Balance`]).
///
/// Python's rows are a case of their own (`cpu-gcd-python`, `cpu-is_prime-python`): the same
/// algorithm and number of tasks, on inputs scaled down (gcd: numbers / 64; is_prime: primes
/// near p / 4096) so that a task takes about as long in CPython as crew's takes in Rust; the
/// ratio `python-processes` / `python-serial` is Python's own speedup on work of the same shape.
#[derive(Debug, Clone, Copy)]
enum CpuCase {
    Gcd(u64),
    IsPrime(u64),
}

impl CpuCase {
    fn name(self) -> &'static str {
        match self {
            CpuCase::Gcd(_) => "cpu-gcd",
            CpuCase::IsPrime(_) => "cpu-is_prime",
        }
    }

    fn python_name(self) -> &'static str {
        match self {
            CpuCase::Gcd(_) => "cpu-gcd-python",
            CpuCase::IsPrime(_) => "cpu-is_prime-python",
        }
    }

    fn n(self) -> u64 {
        match self {
            CpuCase::Gcd(n) | CpuCase::IsPrime(n) => n,
        }
    }

    fn serial(self) -> anyhow::Result<f64> {
        match self {
            CpuCase::Gcd(n) => serial(slow_gcd, gcd_inputs(n)),
            CpuCase::IsPrime(n) => serial(is_prime, prime_inputs(n)),
        }
    }

    fn ideal_threads(self, workers: usize) -> anyhow::Result<Rate> {
        match self {
            CpuCase::Gcd(n) => ideal_threads(workers, slow_gcd, gcd_inputs(n)),
            CpuCase::IsPrime(n) => ideal_threads(workers, is_prime, prime_inputs(n)),
        }
    }

    fn rayon(self, pool: &rayon::ThreadPool) -> anyhow::Result<Rate> {
        match self {
            CpuCase::Gcd(n) => on_rayon(pool, slow_gcd, gcd_inputs(n)),
            CpuCase::IsPrime(n) => on_rayon(pool, is_prime, prime_inputs(n)),
        }
    }

    fn crew_eager(self, pool: &ProcessPool) -> anyhow::Result<Rate> {
        match self {
            CpuCase::Gcd(n) => on_crew_eager(pool, slow_gcd_task, gcd_inputs(n)),
            CpuCase::IsPrime(n) => on_crew_eager(pool, is_prime_task, prime_inputs(n)),
        }
    }

    fn crew(self, pool: &ProcessPool) -> anyhow::Result<Rate> {
        match self {
            CpuCase::Gcd(n) => on_crew(pool, slow_gcd_task, gcd_inputs(n)),
            CpuCase::IsPrime(n) => on_crew(pool, is_prime_task, prime_inputs(n)),
        }
    }
}

fn serial<A, R>(f: fn(A) -> R, inputs: Vec<A>) -> anyhow::Result<f64> {
    let n = inputs.len() as u64;
    let start = Instant::now();
    for input in inputs {
        std::hint::black_box(f(input));
    }
    Ok(rate(n, start))
}

/// The rate of a parallel round that took from `start` until now, with its tasks' timings.
fn timed_rate<R>(start: Instant, timings: &[Timed<R>], workers: usize) -> Rate {
    let elapsed = start.elapsed();
    Rate {
        tasks_per_sec: timings.len() as f64 / elapsed.as_secs_f64(),
        latency: None,
        balance: Balance::of(
            timings.iter().map(|&(_, worker, nanos)| (worker, nanos)),
            workers,
        ),
    }
}

/// One plain thread per worker, each taking the next input off a shared counter.
fn ideal_threads<A: Sync + Clone, R: Send>(
    workers: usize,
    f: fn(A) -> R,
    inputs: Vec<A>,
) -> anyhow::Result<Rate> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let timings: Vec<Timed<R>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..workers as u64)
            .map(|worker| {
                let (next, inputs) = (&next, &inputs);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(input) = inputs.get(i) else {
                            return mine;
                        };
                        mine.push(timed(f, input.clone(), worker));
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|thread| thread.join().expect("a CPU task does not panic"))
            .collect()
    });
    Ok(timed_rate(start, &timings, workers))
}

/// rayon's `par_iter`, one item per job (so that a thread that runs out steals single tasks).
fn on_rayon<A: Sync + Clone, R: Send>(
    pool: &rayon::ThreadPool,
    f: fn(A) -> R,
    inputs: Vec<A>,
) -> anyhow::Result<Rate> {
    let start = Instant::now();
    let timings: Vec<Timed<R>> = pool.install(|| {
        inputs
            .par_iter()
            .with_max_len(1)
            .map(|input| {
                let worker = rayon::current_thread_index().unwrap_or(usize::MAX) as u64;
                timed(f, input.clone(), worker)
            })
            .collect()
    });
    Ok(timed_rate(start, &timings, pool.current_num_threads()))
}

/// crew's process pool, every task submitted at once, then every result collected (what
/// Python's `executor.map` does).
fn on_crew_eager<A: crew::Message, R: crew::Message>(
    pool: &ProcessPool,
    f: impl crew::task::TaskFn<A, Timed<R>>,
    inputs: Vec<A>,
) -> anyhow::Result<Rate> {
    let start = Instant::now();
    let handles = inputs
        .into_iter()
        .map(|input| pool.submit(f, input))
        .collect::<Result<Vec<_>, _>>()?;
    let timings = handles
        .into_iter()
        .map(|handle| handle.result())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(timed_rate(start, &timings, pool.max_workers()))
}

/// crew's process pool, as a user calls it: `pool.map(task, inputs)`.
fn on_crew<A: crew::Message, R: crew::Message>(
    pool: &ProcessPool,
    f: impl crew::task::TaskFn<A, Timed<R>>,
    inputs: Vec<A>,
) -> anyhow::Result<Rate> {
    let start = Instant::now();
    let timings = pool.map(f, inputs).collect::<Result<Vec<_>, _>>()?;
    Ok(timed_rate(start, &timings, pool.max_workers()))
}

/// Worker starts per round of the `startup` case.
const STARTS: u64 = 20;

/// Worker starts per second: a new one-worker pool until its first result, [`STARTS`] times.
fn crew_startup() -> anyhow::Result<f64> {
    let start = Instant::now();
    for i in 0..STARTS {
        let pool = ProcessPool::new(1);
        anyhow::ensure!(pool.submit(inc_task, i)?.result()? == i + 1, "wrong result");
    }
    Ok(rate(STARTS, start))
}

/// procspawn's equivalent: spawn a process for one call and join it, `rounds` times.
fn procspawn_startup(rounds: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    for i in 0..rounds {
        anyhow::ensure!(
            procspawn::spawn(i, inc_task).join()? == i + 1,
            "wrong result"
        );
    }
    Ok(rate(rounds, start))
}

/// The work (`n`) of a process case, if it has a row.
fn cell_n(cells: &[Cell<Key, Rate>], case: &str) -> Option<u64> {
    cells
        .iter()
        .find(|cell| cell.key.phase == PROCESSES && cell.key.case == case)
        .map(|cell| cell.key.n)
}

/// The process targets, with the numbers of this run.
pub(crate) fn render_targets(cells: &[Cell<Key, Rate>], workers: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let ratio =
        |case, a, b| Some(find(cells, PROCESSES, case, a)? / find(cells, PROCESSES, case, b)?);
    let x = |r: Option<f64>, digits: usize| harness::show(r, digits, "x");
    let r = ratio("submit", "crew-processes", "python-processes");
    let _ = writeln!(
        out,
        "targets: process submit+result {} Python ProcessPoolExecutor (>= 10x): {}",
        x(r, 1),
        Verdict::of(r, |r| r >= 10.0)
    );
    let _ = writeln!(
        out,
        "         process submit+result, 256 in flight, {} procspawn's pool",
        x(ratio("submit-256", "crew-processes", "procspawn"), 1)
    );
    let r = ratio("map", "crew-processes", "python-mp-pool");
    let _ = writeln!(
        out,
        "         process map with chunks {} multiprocessing.Pool.map (>= 1x): {}",
        x(r, 1),
        Verdict::of(r, |r| r >= 1.0)
    );
    let _ = writeln!(
        out,
        "         process map with chunks {} procspawn's pool",
        x(ratio("map", "crew-processes", "procspawn"), 1)
    );
    for case in ["cpu-gcd", "cpu-is_prime"] {
        let r = ratio(case, "crew-processes", "serial");
        let _ = writeln!(
            out,
            "         {case}: speedup of a pool of {workers} workers (one per CPU) over serial {} (>= 1.8x): {}",
            x(r, 2),
            Verdict::of(r, |r| r >= 1.8)
        );
        let ideal = ratio(case, "ideal-threads", "serial");
        let python_case = format!("{case}-python");
        let python = |implementation| {
            Some(
                find(cells, PROCESSES, &python_case, implementation)?
                    / find(cells, PROCESSES, &python_case, "python-serial")?,
            )
        };
        let _ = writeln!(
            out,
            "           same run: ideal (one plain thread per CPU, no pool) {}, rayon {}; crew {} \
             of the ideal; Python ProcessPoolExecutor {}, multiprocessing.Pool {} (over \
             Python's serial)",
            x(ideal, 2),
            x(ratio(case, "rayon", "serial"), 2),
            harness::show(r.zip(ideal).map(|(r, ideal)| 100.0 * r / ideal), 0, "%"),
            x(python("python-processes"), 2),
            x(python("python-mp-pool"), 2),
        );
        let serial_ms = find(cells, PROCESSES, case, "serial")
            .zip(cell_n(cells, case))
            .map(|(rate, n)| 1e3 * n as f64 / rate);
        for implementation in [
            "ideal-threads",
            "rayon",
            "crew-processes",
            "crew-submit-all",
        ] {
            let Some((rate, n)) = harness::find(cells, |key| {
                key.phase == PROCESSES && key.case == case && key.implementation == implementation
            })
            .zip(cell_n(cells, case)) else {
                continue;
            };
            let Some(balance) = rate.balance else {
                continue;
            };
            let wall_ms = 1e3 * n as f64 / rate.tasks_per_sec;
            let _ = writeln!(
                out,
                "           {implementation:<16} wall {wall_ms:.0} ms = busiest worker {:.0} ms + \
                 {:.0} ms; work {:.0} ms over {workers} workers (serial {}); tasks per worker {}-{}",
                balance.busy_max_ms,
                wall_ms - balance.busy_max_ms,
                balance.busy_sum_ms,
                harness::show(serial_ms, 0, " ms"),
                balance.tasks_min,
                balance.tasks_max,
            );
        }
    }
    let p50 = |implementation| {
        harness::find(cells, |key| {
            key.case == "latency" && key.implementation == implementation
        })
        .and_then(|rate| rate.latency)
        .map(|latency| latency.p50_us)
    };
    let us = |p: Option<f64>| harness::show(p, 1, " us");
    let crew_p50 = p50("crew-processes");
    let _ = writeln!(
        out,
        "         process round trip, one task at a time, p50 {} (<= 10 us): {}; procspawn {}, \
         Python ProcessPoolExecutor {}",
        us(crew_p50),
        Verdict::of(crew_p50, |p| p <= 10.0),
        us(p50("procspawn")),
        us(p50("python-processes"))
    );
    // Issue 11's target: at or below procspawn's spawn + call + join, in the same run.
    let starts = find(cells, PROCESSES, "startup", "crew-processes").map(|s| 1e3 / s);
    let procspawn_starts = find(cells, PROCESSES, "startup", "procspawn").map(|s| 1e3 / s);
    let ms = |ms: Option<f64>| harness::show(ms, 2, " ms");
    let _ = writeln!(
        out,
        "         worker start-up (new pool to first result) {} (<= procspawn's spawn + call + \
         join, {}): {}",
        ms(starts),
        ms(procspawn_starts),
        Verdict::of(starts.zip(procspawn_starts), |(crew, procspawn)| crew
            <= procspawn)
    );
    out
}
