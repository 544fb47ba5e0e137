//! `crew bench actors`: a counter actor's calls/s and latency, crew on a thread and in a worker
//! process against xoscar (the seed's framework) and Ray actors.
//!
//! Two cases per implementation: `blocking` (one caller, each call waited for before the next:
//! calls/s and the median latency) and `pipelined` (one caller sends every call, then waits for
//! all: calls/s). The Python peers run from a virtualenv the benchmark makes and fills from PyPI
//! (`xoscar`, `ray`), at `$CREW_BENCH_VENV` or `~/.cache/crew-bench/actors-venv`; a peer that
//! cannot be installed or run is `not available (reason)`. `crew-remote` is the counter placed
//! on a [`Cluster::local`] worker (a private `nats-server` on loopback, one worker): every call
//! travels caller → server → worker → server → caller over TCP, like a remote actor's. Without
//! a `nats-server` it installs one as the tests and `crew bench cluster` do (the checkout's
//! `scripts/nats-server`); when that fails the rows are `not available (reason)`.
//!
//! JSON rows (`--json FILE`): `{"case": "blocking" | "pipelined", "impl": "crew-thread" |
//! "crew-process" | "crew-remote" | "xoscar" | "ray", "calls_per_sec": number, "p50_us": number
//! | null, "rounds": n, "note": null | "not available (...)"}`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::Context as _;
use crew::actor::{ActorOptions, Address};
use crew::cluster::{Backend, Cluster};
use serde::Serialize;

use crate::harness::{self, Cell, Measurement, Sample, Verdict};
use crate::pool::python_command;

/// The counter every implementation runs (also `examples/remote_wakeups.rs`'s).
#[derive(Debug)]
pub struct Counter {
    value: u64,
}

#[crew::actor(name = "crew_bench::actors::Counter")]
impl Counter {
    /// A counter at `start`.
    pub fn new(start: u64) -> Self {
        Counter { value: start }
    }

    /// Adds `by` and returns the new value.
    fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }
}

/// What a row measures.
#[derive(Debug, Clone, Serialize)]
pub struct Key {
    /// `blocking` or `pipelined`.
    pub case: &'static str,
    /// `crew-thread`, `crew-process`, `crew-remote`, `xoscar`, `ray`.
    #[serde(rename = "impl")]
    pub implementation: &'static str,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.implementation, self.case)
    }
}

/// One sample: calls per second and, for blocking calls, the median latency.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    /// Calls per second.
    pub calls_per_sec: f64,
    /// Median latency of one blocking call, in microseconds.
    pub p50_us: Option<f64>,
}

impl Sample for Rate {
    fn figure(&self) -> f64 {
        self.calls_per_sec
    }
}

/// Settings of `crew bench actors`.
#[derive(Debug, Clone)]
pub struct ActorsConfig {
    /// Calls per blocking measurement of crew's actors.
    pub blocking_calls: u64,
    /// Calls per pipelined measurement of crew's actors.
    pub pipelined_calls: u64,
    /// Calls per measurement of the Python peers (they are 100-1000x slower).
    pub peer_calls: u64,
    /// Rounds; the median is reported.
    pub rounds: usize,
    /// Only these implementations (empty: all).
    pub only: Vec<String>,
}

impl ActorsConfig {
    /// The defaults, or smaller ones with `quick`.
    pub fn new(quick: bool) -> Self {
        Self {
            blocking_calls: if quick { 20_000 } else { 100_000 },
            pipelined_calls: if quick { 200_000 } else { 1_000_000 },
            peer_calls: if quick { 1_000 } else { 5_000 },
            rounds: if quick { 3 } else { 5 },
            only: Vec::new(),
        }
    }
}

fn blocking(counter: &CounterRef, calls: u64) -> anyhow::Result<Rate> {
    let mut latencies = Vec::with_capacity(calls as usize);
    let start = Instant::now();
    let mut last = 0;
    for _ in 0..calls {
        let sent = Instant::now();
        last = counter.incr(1).result()?;
        latencies.push(sent.elapsed().as_secs_f64() * 1e6);
    }
    let elapsed = start.elapsed().as_secs_f64();
    anyhow::ensure!(last > 0, "the counter did not count");
    latencies.sort_by(f64::total_cmp);
    Ok(Rate {
        calls_per_sec: calls as f64 / elapsed,
        p50_us: Some(latencies[latencies.len() / 2]),
    })
}

fn pipelined(counter: &CounterRef, calls: u64) -> anyhow::Result<Rate> {
    let start = Instant::now();
    let handles: Vec<_> = (0..calls).map(|_| counter.incr(1)).collect();
    let mut previous = 0;
    for handle in handles {
        let value = handle.result()?;
        // One caller's calls run in order: the counter's values increase.
        anyhow::ensure!(value > previous, "calls ran out of order");
        previous = value;
    }
    Ok(Rate {
        calls_per_sec: calls as f64 / start.elapsed().as_secs_f64(),
        p50_us: None,
    })
}

fn venv_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CREW_BENCH_VENV") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache/crew-bench/actors-venv")
}

/// The virtualenv's Python with `module` importable, installing it from PyPI if needed.
fn python_with(module: &str) -> anyhow::Result<PathBuf> {
    let dir = venv_dir();
    let python = dir.join("bin/python");
    if !python.exists() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .context("python3 is not runnable")?;
        anyhow::ensure!(status.success(), "python3 -m venv {} failed", dir.display());
    }
    let imports = |python: &Path| {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if !imports(&python) {
        eprintln!(
            "crew bench actors: installing {module} into {}",
            dir.display()
        );
        let output = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", module])
            .output()
            .context("pip is not runnable")?;
        anyhow::ensure!(
            output.status.success(),
            "pip install {module} failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        );
        anyhow::ensure!(
            imports(&python),
            "{module} does not import after pip install"
        );
    }
    Ok(python)
}

/// Runs a Python peer that prints `calls_per_sec p50_us` (p50 `-` when none).
fn peer(python: &Path, script: &str, name: &str, case: &str, calls: u64) -> anyhow::Result<Rate> {
    let template = python_command(script, name, &[case.to_owned(), calls.to_string()])?;
    let mut command = Command::new(python);
    command.args(template.get_args());
    let output = command.output().context("the peer is not runnable")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.trim().lines().rev().take(2).collect();
        anyhow::bail!("{name} failed ({}): {}", output.status, tail.join(" / "));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut fields = stdout.split_whitespace().rev().take(2).collect::<Vec<_>>();
    fields.reverse();
    let [rate, p50] = fields[..] else {
        anyhow::bail!("{name} printed {:?}", stdout.trim());
    };
    Ok(Rate {
        calls_per_sec: rate.parse().context("a rate")?,
        p50_us: p50.parse().ok(),
    })
}

const XOSCAR: &str = include_str!("../peers/actors/xoscar_actor.py");
const RAY: &str = include_str!("../peers/actors/ray_actor.py");

/// `crew bench actors`: measures, prints the table and the targets, writes the JSON rows.
///
/// # Errors
/// An actor that cannot start, or a file that cannot be written.
pub fn main(config: &ActorsConfig, json: Option<&Path>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        config.blocking_calls > 0 && config.pipelined_calls > 0 && config.peer_calls > 0,
        "every call count must be at least 1"
    );
    let wanted = |implementation: &str| {
        config.only.is_empty() || config.only.iter().any(|only| only == implementation)
    };
    eprintln!(
        "crew bench actors: blocking {} calls, pipelined {} calls (peers {}), median of {}",
        config.blocking_calls, config.pipelined_calls, config.peer_calls, config.rounds
    );
    let thread = ActorOptions::<Counter>::new()
        .address(Address::new("bench"))
        .spawn(0)?;
    let process = ActorOptions::<Counter>::new()
        .address(Address::new("bench"))
        .in_process()
        .spawn(0)?;
    let remote = if wanted("crew-remote") {
        remote_counter()
    } else {
        Err("not selected".to_owned())
    };
    let key = |case, implementation| Key {
        case,
        implementation,
    };
    let (blocking_calls, pipelined_calls) = (config.blocking_calls, config.pipelined_calls);
    let mut measurements = vec![
        Measurement::new(key("blocking", "crew-thread"), || {
            blocking(&thread, blocking_calls)
        }),
        Measurement::new(key("pipelined", "crew-thread"), || {
            pipelined(&thread, pipelined_calls)
        }),
        Measurement::new(key("blocking", "crew-process"), || {
            blocking(&process, blocking_calls / 4)
        }),
        Measurement::new(key("pipelined", "crew-process"), || {
            pipelined(&process, pipelined_calls / 4)
        }),
    ];
    match &remote {
        Ok((_, counter)) => {
            let (blocking_counter, pipelined_counter) = (counter.clone(), counter.clone());
            measurements.push(Measurement::new(
                key("blocking", "crew-remote"),
                move || blocking(&blocking_counter, (blocking_calls / 10).max(1)),
            ));
            measurements.push(Measurement::new(
                key("pipelined", "crew-remote"),
                move || pipelined(&pipelined_counter, (pipelined_calls / 4).max(1)),
            ));
        }
        Err(reason) => {
            for case in ["blocking", "pipelined"] {
                measurements.push(Measurement::unavailable(
                    key(case, "crew-remote"),
                    reason.clone(),
                ));
            }
        }
    }
    let peer_calls = config.peer_calls;
    for (implementation, module, script, name) in [
        ("xoscar", "xoscar", XOSCAR, "xoscar_actor.py"),
        ("ray", "ray", RAY, "ray_actor.py"),
    ] {
        if !wanted(implementation) {
            continue;
        }
        match python_with(module) {
            Ok(python) => {
                for case in ["blocking", "pipelined"] {
                    let python = python.clone();
                    measurements.push(Measurement::new(key(case, implementation), move || {
                        peer(&python, script, name, case, peer_calls)
                    }));
                }
            }
            Err(error) => {
                for case in ["blocking", "pipelined"] {
                    measurements.push(Measurement::unavailable(
                        key(case, implementation),
                        format!("{error:#}"),
                    ));
                }
            }
        }
    }
    measurements.retain(|m| wanted(m.key().implementation));
    let cells = harness::run(measurements, config.rounds);
    thread.stop().result()?;
    process.stop().result()?;
    if let Ok((cluster, counter)) = remote {
        counter.stop().result()?;
        drop(cluster);
    }
    let text = render_table(&cells) + &render_targets(&cells);
    harness::report(&text, &cells, json, None)?;
    Ok(ExitCode::SUCCESS)
}

/// The counter on a [`Cluster::local`] worker, or why not.
fn remote_counter() -> Result<(Cluster, CounterRef), String> {
    crate::nats_server::find_or_install_nats_server()?;
    let cluster = Cluster::local(1).map_err(|error| format!("Cluster::local: {error}"))?;
    if cluster.backend() != Backend::Nats {
        return Err("Cluster::local fell back to a ProcessPool (no nats-server)".to_owned());
    }
    let counter = ActorOptions::<Counter>::new()
        .uid("bench-counter")
        .on_cluster(&cluster)
        .spawn(0)
        .map_err(|error| format!("creating the remote actor: {error}"))?;
    Ok((cluster, counter))
}

fn find(cells: &[Cell<Key, Rate>], case: &str, implementation: &str) -> Option<Rate> {
    harness::find(cells, |key| {
        key.case == case && key.implementation == implementation
    })
    .cloned()
}

/// Every row: calls/s, median latency, and the ratio to xoscar's row of the same case.
pub fn render_table(cells: &[Cell<Key, Rate>]) -> String {
    let header = format!(
        "{:<10} {:<13} {:>14} {:>10} {:>10}",
        "case", "impl", "calls/s", "p50 µs", "vs xoscar"
    );
    harness::render_rows(
        cells,
        &header,
        |key| format!("{:<10} {:<13}", key.case, key.implementation),
        |key, rate| {
            let xoscar = find(cells, key.case, "xoscar");
            let versus = xoscar.map(|x| rate.calls_per_sec / x.calls_per_sec);
            format!(
                "{:>14.0} {:>10} {:>10}",
                rate.calls_per_sec,
                harness::show(rate.p50_us, 1, ""),
                harness::show(versus, 1, "x")
            )
        },
    )
}

/// The targets for the thread and process placements.
pub fn render_targets(cells: &[Cell<Key, Rate>]) -> String {
    let thread_pipelined = find(cells, "pipelined", "crew-thread").map(|r| r.calls_per_sec);
    let thread_p50 = find(cells, "blocking", "crew-thread").and_then(|r| r.p50_us);
    let process_blocking = find(cells, "blocking", "crew-process").map(|r| r.calls_per_sec);
    let remote_blocking = find(cells, "blocking", "crew-remote").map(|r| r.calls_per_sec);
    let remote_pipelined = find(cells, "pipelined", "crew-remote").map(|r| r.calls_per_sec);
    let ratio = |peer: &str| {
        let peer = find(cells, "blocking", peer).map(|r| r.calls_per_sec)?;
        Some(remote_blocking? / peer)
    };
    let (versus_xoscar, versus_ray) = (ratio("xoscar"), ratio("ray"));
    let show = |value: Option<f64>, unit: &str| {
        value.map_or("not measured".to_owned(), |v| format!("{v:.1}{unit}"))
    };
    format!(
        "targets:\n  thread actor pipelined >= 1,000,000 calls/s: {} -> {}\n  thread actor \
         blocking p50 <= 5 µs: {} -> {}\n  process actor blocking >= 50,000 calls/s: {} -> {}\n  \
         remote actor blocking >= 8,000 calls/s: {} -> {}\n  remote actor blocking >= 2.5x \
         xoscar: {} -> {}\n  remote actor blocking >= 6x ray: {} -> {}\n  remote actor \
         pipelined >= 100,000 calls/s: {} -> {}\n",
        show(thread_pipelined, ""),
        Verdict::of(thread_pipelined, |v| v >= 1e6),
        show(thread_p50, " µs"),
        Verdict::of(thread_p50, |v| v <= 5.0),
        show(process_blocking, ""),
        Verdict::of(process_blocking, |v| v >= 50_000.0),
        show(remote_blocking, ""),
        Verdict::of(remote_blocking, |v| v >= 8_000.0),
        show(versus_xoscar, "x"),
        Verdict::of(versus_xoscar, |v| v >= 2.5),
        show(versus_ray, "x"),
        Verdict::of(versus_ray, |v| v >= 6.0),
        show(remote_pipelined, ""),
        Verdict::of(remote_pipelined, |v| v >= 100_000.0),
    )
}
