//! `crew bench`: every model and every peer through the same client in one run, printed as
//! seed 003's tables (server × clients → requests/sec) plus p99 latency and the ratios the lab's
//! targets are about.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crew_lab::perf::{self, PerfConfig};
use serde::Serialize;

use crate::chart::{Chart, Panel, Role, Series};
use crate::harness::{self, Measurement, Outcome, Sample};
use crate::PeerCommand;

pub mod loopback;
pub mod peers;
mod report;

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
    /// Starts a peer this binary hosts (the loopback limit), given its arguments.
    pub peer_command: PeerCommand,
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
    /// Errors seen by the client, over every round.
    pub errors: u64,
}

/// What one lab measurement is: a server, a case and a client count.
#[derive(Debug, Clone, Serialize)]
pub struct Key {
    /// The server's name.
    pub server: String,
    /// `io` or `cpu`.
    pub case: Case,
    /// The `n` of every request.
    pub n: u32,
    /// Concurrent clients.
    pub clients: usize,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} client(s)",
            self.server,
            self.case.name(),
            self.clients
        )
    }
}

/// One round of one cell, as the load generator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// Correct replies per second (the figure the median is taken of).
    pub rps: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Clients that got any reply.
    pub clients_served: usize,
    /// Errors seen by the client.
    pub errors: u64,
}

impl Sample for Round {
    fn figure(&self) -> f64 {
        self.rps
    }
}

/// A server that could not be measured, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Unavailable {
    /// Its name.
    pub server: String,
    /// Why: `not available (...)`.
    pub reason: String,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct BenchResults {
    /// The servers in table order.
    pub servers: Vec<String>,
    /// Measured cells (the median round of each, with the errors of every round).
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
    /// The harness's cells, for the JSON rows of `--json` (`server`, `case`, `n`, `clients`,
    /// `rps`, `p99_us`, `clients_served`, `errors` of the median round, `rounds`, and a `note`
    /// `not available (reason)` with no figures for a server that could not run).
    pub cells: Vec<harness::Cell<Key, Round>>,
}

impl BenchResults {
    /// The row for one cell.
    pub fn get(&self, server: &str, case: Case, clients: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|row| row.server == server && row.case == case && row.clients == clients)
    }

    /// The chart of `--svg`: requests/sec against clients, one panel per case.
    pub fn chart(&self) -> Chart {
        let panels = [Case::Io, Case::Cpu]
            .into_iter()
            .map(|case| Panel {
                title: match case {
                    Case::Io => "IO-bound (n = 1): requests/sec".to_owned(),
                    Case::Cpu => format!("CPU-bound (n = {}): requests/sec", self.cpu_n),
                },
                x_desc: "clients".to_owned(),
                categories: None,
                series: self
                    .servers
                    .iter()
                    .map(|server| Series {
                        name: server.clone(),
                        role: match server.as_str() {
                            name if name.starts_with("crew-") => Role::Crew,
                            name if name == Peer::LoopbackLimit.name() => Role::Reference,
                            _ => Role::Peer,
                        },
                        points: self
                            .clients
                            .iter()
                            .filter_map(|&clients| {
                                let row = self.get(server, case, clients)?;
                                Some((clients as f64, row.rps))
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        Chart { panels }
    }
}

/// Runs the benchmark through the [harness](mod@crate::harness), showing a progress bar on a
/// terminal.
///
/// Every server is started first (an idle server costs nothing); then every cell (server ×
/// case × client count) is measured once per round, in rotating order, so background noise on
/// the machine spreads over all servers instead of hitting one; a cell's figure is its median
/// round.
///
/// # Errors
/// Only for a failure of the harness itself; a server that cannot run is reported in
/// [`BenchResults::unavailable`].
pub fn run(config: &BenchConfig) -> anyhow::Result<BenchResults> {
    let started = Instant::now();
    let peers = config.peers();
    let load_average = load_average();
    let python = peers::python_version();
    // Every server, or why it cannot run.
    let running: Vec<(Peer, Result<peers::Running, String>)> = peers
        .iter()
        .map(|peer| {
            let python = python.as_ref().map_err(|e| format!("{e:#}"));
            (peer.clone(), start_peer(peer, config, python))
        })
        .collect();
    let mut measurements = Vec::new();
    for case in [Case::Io, Case::Cpu] {
        let n = if case == Case::Io { 1 } else { config.n };
        for &clients in &config.clients {
            for (peer, server) in &running {
                let key = Key {
                    server: peer.name(),
                    case,
                    n,
                    clients,
                };
                let server = match server {
                    Ok(server) => server,
                    Err(reason) => {
                        measurements.push(Measurement::unavailable(key, reason.clone()));
                        continue;
                    }
                };
                let (measure, warmup) = config.timing(peer, case);
                let addr = server.addr;
                measurements.push(Measurement::new(key, move || {
                    let mut perf_config = PerfConfig::new(addr, clients, n);
                    perf_config.duration = measure;
                    perf_config.warmup = warmup;
                    let report = perf::run(&perf_config, None)?;
                    Ok(Round {
                        rps: report.rps,
                        p99_us: report.latency_us.p99,
                        clients_served: report.clients_served,
                        errors: report.errors,
                    })
                }));
            }
        }
    }
    let cells = harness::run(measurements, config.rounds());
    for (_, server) in running {
        if let Ok(server) = server {
            server.stop();
        }
    }
    let mut rows = Vec::new();
    let mut unavailable: Vec<Unavailable> = Vec::new();
    for cell in &cells {
        let key = &cell.key;
        match &cell.outcome {
            Outcome::Measured { median, samples } => rows.push(Row {
                server: key.server.clone(),
                case: key.case,
                n: key.n,
                clients: key.clients,
                rps: median.rps,
                p99_us: median.p99_us,
                clients_served: median.clients_served,
                errors: samples.iter().map(|round| round.errors).sum(),
            }),
            Outcome::NotAvailable(_) => {
                // A server that could not start, or failed part-way: shown as not available.
                if !unavailable.iter().any(|u| u.server == key.server) {
                    unavailable.push(Unavailable {
                        server: key.server.clone(),
                        reason: cell.outcome.to_string(),
                    });
                }
            }
        }
    }
    Ok(BenchResults {
        servers: peers.iter().map(Peer::name).collect(),
        rows,
        unavailable,
        clients: config.clients.clone(),
        cpu_n: config.n,
        elapsed_s: started.elapsed().as_secs_f64(),
        load_average,
        cells,
    })
}

/// The 1-minute load average from `/proc/loadavg`, if there is one.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Starts one server; `Err` says why it cannot run.
fn start_peer(
    peer: &Peer,
    config: &BenchConfig,
    python: Result<&String, String>,
) -> Result<peers::Running, String> {
    let timeout = Duration::from_secs(20);
    let command = match peer {
        Peer::Crew(model) => (config.crew_command)(*model),
        Peer::LoopbackLimit => (config.peer_command)(&["loopback-limit", "--addr", "127.0.0.1:0"]),
        Peer::Python(script) => {
            python?;
            let path = peers::peers_dir().join(format!("{script}.py"));
            if !path.exists() {
                return Err(format!("{} is missing", path.display()));
            }
            let mut command = std::process::Command::new("python3");
            command
                .arg(path)
                .args(["--addr", "127.0.0.1:0"])
                .env("PYTHONDONTWRITEBYTECODE", "1");
            command
        }
        Peer::Go => {
            let binary =
                peers::build_go(&config.build_dir).map_err(|error| format!("{error:#}"))?;
            let mut command = std::process::Command::new(binary);
            command.args(["-addr", "127.0.0.1:0"]);
            command
        }
    };
    peers::start(command, timeout).map_err(|error| format!("{error:#}"))
}

/// `crew bench`: checks the configuration, runs every server, prints the tables and the
/// targets, and writes the JSON rows and the chart when asked.
///
/// # Errors
/// Bad settings (no client count, `n` above the servers' limit, an unknown server in `only`),
/// a failure of the harness itself, or a file that cannot be written.
pub fn main(
    config: &BenchConfig,
    json: Option<&Path>,
    svg: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    if config.clients.is_empty() || config.clients.contains(&0) {
        anyhow::bail!("--clients needs counts of at least 1, e.g. 1,2,4");
    }
    if config.n > crew_lab::fib::DEFAULT_MAX_N {
        anyhow::bail!(
            "--n {} is above the servers' limit {}",
            config.n,
            crew_lab::fib::DEFAULT_MAX_N
        );
    }
    let known: Vec<String> = Peer::all().iter().map(Peer::name).collect();
    if let Some(unknown) = config.only.iter().find(|name| !known.contains(name)) {
        anyhow::bail!(
            "--only: unknown server `{unknown}`; known: {}",
            known.join(", ")
        );
    }
    println!(
        "crew bench{}: {} servers, io (n = 1) and cpu (n = {}) with {:?} clients, about {:.0}s on {} CPUs",
        if config.quick { " --quick" } else { "" },
        config.peers().len(),
        config.n,
        config.clients,
        config.expected_duration().as_secs_f64(),
        crew_lab::cpus()
    );
    let results = run(config)?;
    let text = format!(
        "{}{}\nfinished in {:.0}s\n",
        render_tables(&results),
        render_ratios(&results),
        results.elapsed_s
    );
    let svg = svg.map(|path| (path, results.chart()));
    harness::report(&text, &results.cells, json, svg)?;
    Ok(ExitCode::SUCCESS)
}
