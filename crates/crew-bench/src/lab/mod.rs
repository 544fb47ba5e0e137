//! `crew bench`: every model and every peer through the same client in one run, printed as
//! seed 003's tables (server × clients → requests/sec) plus p99 latency and the ratios the lab's
//! targets are about.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::perf::{self, PerfConfig};

mod chart;
pub mod peers;
mod report;

pub use chart::write_svg;
pub use peers::{CrewCommand, Peer};
pub use report::{render_ratios, render_tables};

/// The two loads of seed 003.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    /// `n = 1`: the reply costs nothing, so this measures I/O and scheduling.
    Io,
    /// `n = 25` by default: the reply costs a naive `fib`, so this measures parallel compute.
    Cpu,
}

impl Case {
    /// `io` or `cpu`.
    pub fn name(self) -> &'static str {
        match self {
            Case::Io => "io",
            Case::Cpu => "cpu",
        }
    }
}

/// What to run.
#[derive(Clone)]
pub struct BenchConfig {
    /// Short measurements (the whole run under two minutes).
    pub quick: bool,
    /// `n` of the CPU-bound case.
    pub n: u32,
    /// Seconds per measurement, overriding the defaults of `quick` or the full run.
    pub duration: Option<Duration>,
    /// Client counts.
    pub clients: Vec<usize>,
    /// Only these servers (names as in the table); empty: all.
    pub only: Vec<String>,
    /// Starts `crew serve` for a model.
    pub crew_command: CrewCommand,
    /// Where to build the Go peer.
    pub build_dir: PathBuf,
}

impl std::fmt::Debug for BenchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchConfig")
            .field("quick", &self.quick)
            .field("n", &self.n)
            .field("duration", &self.duration)
            .field("clients", &self.clients)
            .field("only", &self.only)
            .field("build_dir", &self.build_dir)
            .finish()
    }
}

impl BenchConfig {
    /// Rounds per cell: 5 with `--quick`, else 7 (the median is reported). Many short rounds
    /// interleaved over all servers filter out bursts of load from the rest of the machine.
    pub fn rounds(&self) -> usize {
        if self.quick {
            5
        } else {
            7
        }
    }

    /// Measured time and warm-up of one measurement.
    pub fn timing(&self, _peer: &Peer, _case: Case) -> (Duration, Duration) {
        let measure = self.duration.unwrap_or(if self.quick {
            Duration::from_millis(150)
        } else {
            Duration::from_millis(500)
        });
        let warmup = if self.quick {
            Duration::from_millis(40)
        } else {
            Duration::from_millis(100)
        };
        (measure, warmup)
    }

    /// The servers to run.
    pub fn peers(&self) -> Vec<Peer> {
        Peer::all()
            .into_iter()
            .filter(|peer| self.only.is_empty() || self.only.contains(&peer.name()))
            .collect()
    }

    /// About how long the run takes.
    pub fn expected_duration(&self) -> Duration {
        let mut total = Duration::ZERO;
        for peer in self.peers() {
            total += Duration::from_millis(400); // start and stop
            for case in [Case::Io, Case::Cpu] {
                let (measure, warmup) = self.timing(&peer, case);
                total += (measure + warmup) * (self.clients.len() * self.rounds()) as u32;
            }
        }
        total
    }
}

/// One measured cell.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `crew-threads`, `python-thread_server`, `go`, `loopback-limit`, ...
    pub server: String,
    /// `io` or `cpu`.
    pub case: Case,
    /// The `n` of every request.
    pub n: u32,
    /// Concurrent clients.
    pub clients: usize,
    /// Correct replies per second.
    pub rps: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Clients that got any reply (fewer than `clients` for one-at-a-time servers).
    pub clients_served: usize,
    /// Errors seen by the client.
    pub errors: u64,
}

/// A server that could not be measured, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Unavailable {
    /// Its name.
    pub server: String,
    /// Why: `not available: ...`.
    pub reason: String,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResults {
    /// The servers in table order.
    pub servers: Vec<String>,
    /// Measured cells.
    pub rows: Vec<Row>,
    /// Servers that could not run.
    pub unavailable: Vec<Unavailable>,
    /// Client counts.
    pub clients: Vec<usize>,
    /// `n` of the CPU-bound case.
    pub cpu_n: u32,
    /// Wall-clock seconds of the run.
    pub elapsed_s: f64,
    /// The 1-minute load average before the run started (Linux), to judge the noise.
    pub load_average: Option<f64>,
}

impl BenchResults {
    /// The row for one cell.
    pub fn get(&self, server: &str, case: Case, clients: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|row| row.server == server && row.case == case && row.clients == clients)
    }

    /// The JSON document of `--json`: an array of rows (unavailable servers as rows with
    /// `rps: null` and a `note`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|row| serde_json::to_value(row).unwrap_or_default())
            .collect();
        for missing in &self.unavailable {
            for case in [Case::Io, Case::Cpu] {
                for &clients in &self.clients {
                    rows.push(serde_json::json!({
                        "server": missing.server,
                        "case": case,
                        "n": if case == Case::Io { 1 } else { self.cpu_n },
                        "clients": clients,
                        "rps": null,
                        "p99_us": null,
                        "note": missing.reason,
                    }));
                }
            }
        }
        serde_json::Value::Array(rows)
    }
}

/// Runs the benchmark, showing a progress bar on a terminal.
///
/// Every server is started first (an idle server costs nothing), then each cell (case × client
/// count) is measured on every server back to back, round after round, so background noise on
/// the machine spreads over all servers instead of hitting one; a cell's figure is the median of
/// its rounds.
///
/// # Errors
/// Only for a failure of the harness itself; a server that cannot run is reported in
/// [`BenchResults::unavailable`].
pub fn run(config: &BenchConfig) -> anyhow::Result<BenchResults> {
    let started = Instant::now();
    let peers = config.peers();
    let mut results = BenchResults {
        servers: peers.iter().map(Peer::name).collect(),
        rows: Vec::new(),
        unavailable: Vec::new(),
        clients: config.clients.clone(),
        cpu_n: config.n,
        elapsed_s: 0.0,
        load_average: load_average(),
    };
    let python = peers::python_version();
    let mut running = Vec::new();
    for peer in &peers {
        match start_peer(peer, config, python.as_ref().map_err(|e| e.to_string())) {
            Ok(server) => running.push((peer.clone(), server)),
            Err(reason) => results.unavailable.push(Unavailable {
                server: peer.name(),
                reason,
            }),
        }
    }
    let rounds = config.rounds();
    let bar =
        indicatif::ProgressBar::new((rounds * running.len() * 2 * config.clients.len()) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} {msg} (eta {eta})",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    let mut samples: Vec<Vec<Row>> = Vec::new();
    for round in 0..rounds {
        for case in [Case::Io, Case::Cpu] {
            let n = if case == Case::Io { 1 } else { config.n };
            for &clients in &config.clients {
                for (peer, server) in &running {
                    let name = peer.name();
                    bar.set_message(format!(
                        "round {}/{rounds}: {name} {} {clients} client(s)",
                        round + 1,
                        case.name()
                    ));
                    let (measure, warmup) = config.timing(peer, case);
                    let mut perf_config = PerfConfig::new(server.addr, clients, n);
                    perf_config.duration = measure;
                    perf_config.warmup = warmup;
                    let report = perf::run(&perf_config, None)?;
                    let row = Row {
                        server: name,
                        case,
                        n,
                        clients,
                        rps: report.rps,
                        p99_us: report.latency_us.p99,
                        clients_served: report.clients_served,
                        errors: report.errors,
                    };
                    match samples.iter_mut().find(|cell| {
                        cell[0].server == row.server
                            && cell[0].case == case
                            && cell[0].clients == clients
                    }) {
                        Some(cell) => cell.push(row),
                        None => samples.push(vec![row]),
                    }
                    bar.inc(1);
                }
            }
        }
    }
    bar.finish_and_clear();
    for (_, server) in running {
        server.stop();
    }
    results.rows = samples.into_iter().map(median_row).collect();
    results.elapsed_s = started.elapsed().as_secs_f64();
    Ok(results)
}

/// The 1-minute load average from `/proc/loadavg`, if there is one.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The round with the median requests/sec stands for the cell (its p99 with it); errors add up.
fn median_row(mut cell: Vec<Row>) -> Row {
    let errors = cell.iter().map(|row| row.errors).sum();
    cell.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let mut row = cell.swap_remove(cell.len() / 2);
    row.errors = errors;
    row
}

fn start_peer(
    peer: &Peer,
    config: &BenchConfig,
    python: Result<&String, String>,
) -> Result<peers::Running, String> {
    let timeout = Duration::from_secs(20);
    let command = match peer {
        Peer::Crew(model) => (config.crew_command)(*model),
        Peer::LoopbackLimit => (config.crew_command)(crate::Model::LoopbackLimit),
        Peer::Python(script) => {
            python.map_err(|error| format!("not available ({error})"))?;
            let path = peers::peers_dir().join(format!("{script}.py"));
            if !path.exists() {
                return Err(format!("not available ({} is missing)", path.display()));
            }
            let mut command = std::process::Command::new("python3");
            command
                .arg(path)
                .args(["--addr", "127.0.0.1:0"])
                .env("PYTHONDONTWRITEBYTECODE", "1");
            command
        }
        Peer::Go => {
            let binary = peers::build_go(&config.build_dir)
                .map_err(|error| format!("not available ({error:#})"))?;
            let mut command = std::process::Command::new(binary);
            command.args(["-addr", "127.0.0.1:0"]);
            command
        }
    };
    peers::start(command, timeout).map_err(|error| format!("not available ({error:#})"))
}
