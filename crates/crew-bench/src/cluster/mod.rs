//! `crew bench cluster`: crew's cluster executor (NATS JetStream, two local workers, a local
//! server) against seed 004's `multiprocessing.managers` master/worker, Ray tasks and Dask
//! distributed, in one run.
//!
//! Cases, the same task everywhere (`n -> n * n`, seed 004's without its `sleep(1)`) and the same
//! work for every implementation in a case (the row's `n`):
//! * `submit`: `n` tasks of one item each, then every result (tasks/s end to end);
//! * `map`: `n` items in tasks of `chunksize` items (items/s);
//! * `latency`: `n` tasks one at a time, each result awaited before the next is submitted
//!   (round-trip p50 and p99; tasks/s is one over the mean).
//!
//! Every implementation runs on this machine with two workers: crew's [`Cluster::local`]
//! (a private `nats-server` and two worker processes, checked to be on NATS, never the
//! process-pool fallback), the managers peer (a master and two worker processes over TCP),
//! `ray.init(num_cpus=2)` and `LocalCluster(n_workers=2)`. Each is started once and kept up for
//! the whole run, as a deployed cluster is: the rounds measure tasks, not start-up. Ray and Dask
//! are installed by the benchmark from PyPI into a virtualenv ([`python::default_venv`]); a peer
//! that cannot be installed or started is `not available (reason)`.
//!
//! `--json FILE` rows: `{"case", "impl", "n", "tasks_per_sec", "p50_us", "p99_us", "rounds",
//! "note"}` with `impl` one of `crew-cluster`, `python-managers`, `ray`, `dask`, and
//! `crew-cluster-stream`: crew with every result stored in the results stream
//! ([`ResultPath::Stream`](crew::cluster::ResultPath)) instead of sent to the submitter's
//! inbox, measured beside the default to keep that choice honest; and, latency only, the floors
//! under crew's round trip (`nats-request`, `nats-jetstream`, `nats-jetstream-file`: NATS alone
//! on a server set up as `Cluster::local` sets up its own, see `floor.rs`).
//!
//! [`Cluster::local`]: crew::cluster::Cluster::local

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::harness::{self, Cell, Measurement, Sample, Verdict};

mod crew_side;
mod floor;
pub mod python;

/// Workers of every implementation.
pub const WORKERS: usize = 2;

/// The cases, in table order.
pub const CASES: [&str; 3] = ["submit", "map", "latency"];

/// What to run.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Tasks of the `submit` case.
    pub tasks: u64,
    /// Items of the `map` case.
    pub items: u64,
    /// Tasks of the `latency` case.
    pub latency_tasks: u64,
    /// Items per task in the `map` case.
    pub chunksize: usize,
    /// Rounds; the median is reported.
    pub rounds: usize,
    /// Only these implementations (empty: all).
    pub only: Vec<String>,
    /// The virtualenv the Python peers are installed into.
    pub venv: PathBuf,
}

impl ClusterConfig {
    /// The defaults: a full run, or with `quick` a short one.
    pub fn new(quick: bool) -> Self {
        let (tasks, items, latency_tasks, rounds) = if quick {
            (2_000, 200_000, 200, 3)
        } else {
            (10_000, 1_000_000, 1_000, 5)
        };
        Self {
            tasks,
            items,
            latency_tasks,
            chunksize: 4096,
            rounds,
            only: Vec::new(),
            venv: python::default_venv(),
        }
    }

    fn n(&self, case: &str) -> u64 {
        match case {
            "submit" => self.tasks,
            "map" => self.items,
            _ => self.latency_tasks,
        }
    }
}

/// What one measurement is: a case, an implementation and its work.
#[derive(Debug, Clone, Serialize)]
pub struct Key {
    /// `submit`, `map` or `latency`.
    pub case: &'static str,
    /// `crew-cluster`, `python-managers`, `ray` or `dask`.
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    /// Tasks (items, for `map`) of the case, the same for every implementation.
    pub n: u64,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.case, self.implementation, self.n)
    }
}

/// One round's figures.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Figures {
    /// Tasks (items, for `map`) per second.
    pub tasks_per_sec: f64,
    /// Median round trip of one task, in µs (`latency` only).
    pub p50_us: Option<f64>,
    /// 99th percentile round trip, in µs (`latency` only).
    pub p99_us: Option<f64>,
}

impl Sample for Figures {
    /// The latency case is ordered by its p50, the others by their rate.
    fn figure(&self) -> f64 {
        self.p50_us.unwrap_or(self.tasks_per_sec)
    }
}

impl Figures {
    /// Figures of `latencies` (µs, one per task, in any order) measured over `seconds`.
    pub fn of_latencies(mut latencies: Vec<f64>, seconds: f64) -> Self {
        latencies.sort_by(f64::total_cmp);
        let count = latencies.len();
        let at = |index: usize| latencies.get(index.min(count.saturating_sub(1))).copied();
        Self {
            tasks_per_sec: count as f64 / seconds,
            p50_us: at(count / 2),
            p99_us: at(count * 99 / 100),
        }
    }
}

/// A measurement of this benchmark.
pub(crate) type ClusterMeasurement<'a> = Measurement<'a, Key, Figures>;

/// The measured cells of one run.
pub type ClusterCells = Vec<Cell<Key, Figures>>;

/// A module to import and the PyPI package that provides it.
type Package = (&'static str, &'static str);

/// The Python peers: implementation name, script, package (`None`: the standard library's, run
/// by the system `python3`).
const PYTHON_PEERS: [(&str, &str, Option<Package>); 3] = [
    ("python-managers", "managers_peer.py", None),
    ("ray", "ray_peer.py", Some(("ray", "ray"))),
    ("dask", "dask_peer.py", Some(("distributed", "distributed"))),
];

/// One Python peer's three measurements, sharing one peer process started at the first.
fn python_measurements<'a>(
    config: &'a ClusterConfig,
    scripts: &'a python::ScriptDir,
    implementation: &'static str,
    script: &'static str,
    package: Option<Package>,
) -> Vec<ClusterMeasurement<'a>> {
    // Started at its first measurement; a failed start is remembered, so every case says why.
    let peer: Rc<RefCell<Option<Result<python::PythonPeer, String>>>> = Rc::default();
    CASES
        .iter()
        .map(|&case| {
            let peer = Rc::clone(&peer);
            let n = config.n(case);
            Measurement::new(
                Key {
                    case,
                    implementation,
                    n,
                },
                move || {
                    let mut slot = peer.borrow_mut();
                    let running = slot.get_or_insert_with(|| {
                        let python = match package {
                            Some((module, package)) => {
                                python::ensure_package(&config.venv, module, package)
                            }
                            None => Ok(PathBuf::from("python3")),
                        };
                        python
                            .and_then(|python| python::PythonPeer::start(&python, scripts, script))
                            .map_err(|error| format!("{error:#}"))
                    });
                    match running {
                        Ok(running) => running.request(case, n, config.chunksize),
                        Err(reason) => Err(anyhow::anyhow!("{reason}")),
                    }
                },
            )
        })
        .collect()
}

/// `crew bench cluster`: runs every measurement, prints the table and the targets, writes the
/// JSON rows when asked.
///
/// # Errors
/// Bad settings, or a file that cannot be written.
pub fn main(config: &ClusterConfig, json: Option<&Path>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(config.chunksize > 0, "--chunksize must be at least 1");
    anyhow::ensure!(
        config.tasks > 0 && config.items > 0 && config.latency_tasks > 0,
        "--tasks, --items and --latency-tasks must be at least 1"
    );
    eprintln!(
        "crew bench cluster: {WORKERS} local workers each; submit {} tasks, map {} items in chunks \
         of {}, latency {} tasks one at a time; median of {}",
        config.tasks, config.items, config.chunksize, config.latency_tasks, config.rounds
    );
    let scripts = python::ScriptDir::create()?;
    let crews = crew_side::CrewCluster::both();
    let mut measurements: Vec<_> = crews
        .iter()
        .flat_map(|crew| crew.measurements(config))
        .collect();
    measurements.extend(floor::measurements(config));
    for (implementation, script, package) in PYTHON_PEERS {
        measurements.extend(python_measurements(
            config,
            &scripts,
            implementation,
            script,
            package,
        ));
    }
    if !config.only.is_empty() {
        measurements.retain(|m| config.only.iter().any(|o| o == m.key().implementation));
    }
    let cells = harness::run(measurements, config.rounds);
    let text = render_table(&cells) + &render_targets(&cells);
    harness::report(&text, &cells, json, None)?;
    Ok(ExitCode::SUCCESS)
}

/// The median figures of one row, if measured.
pub fn find<'c>(
    cells: &'c [Cell<Key, Figures>],
    case: &str,
    implementation: &str,
) -> Option<&'c Figures> {
    harness::find(cells, |key| {
        key.case == case && key.implementation == implementation
    })
}

/// Every row: its work, its medians, and crew's ratio to it in the same case; rows that could
/// not run say why.
pub fn render_table(cells: &[Cell<Key, Figures>]) -> String {
    let header = format!(
        "\n{:<8} {:<16} {:>8} {:>12} {:>10} {:>10} {:>12}",
        "case", "impl", "n", "tasks/s", "p50 µs", "p99 µs", "crew is"
    );
    harness::render_rows(
        cells,
        &header,
        |key| format!("{:<8} {:<16} {:>8}", key.case, key.implementation, key.n),
        |key, figures| {
            // crew's advantage: its rate over this row's, or for latency this row's p50 over
            // crew's.
            let crew = find(cells, key.case, "crew-cluster");
            let ratio = match crew {
                Some(_) if key.implementation == "crew-cluster" => "".to_owned(),
                Some(crew) => match (crew.p50_us, figures.p50_us) {
                    (Some(crew), Some(peer)) => format!("{:.1}x", peer / crew),
                    _ => format!("{:.1}x", crew.tasks_per_sec / figures.tasks_per_sec),
                },
                None => "-".to_owned(),
            };
            format!(
                "{:>12.0} {:>10} {:>10} {:>12}",
                figures.tasks_per_sec,
                harness::show(figures.p50_us, 0, ""),
                harness::show(figures.p99_us, 0, ""),
                ratio
            )
        },
    )
}

/// The issue's targets, with verdicts.
pub fn render_targets(cells: &[Cell<Key, Figures>]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let rate = |case: &str, implementation: &str| {
        find(cells, case, implementation).map(|figures| figures.tasks_per_sec)
    };
    let crew = rate("submit", "crew-cluster");
    let vs = |peer: &str| crew.zip(rate("submit", peer)).map(|(a, b)| a / b);
    let (vs_managers, vs_ray) = (vs("python-managers"), vs("ray"));
    let show = |value: Option<f64>, unit: &str, scale: f64, digits: usize| {
        value.map_or("-".to_owned(), |v| format!("{:.digits$}{unit}", v / scale))
    };
    let _ = writeln!(
        out,
        "\ntargets: one item per task {} tasks/s (>= 30,000): {}",
        show(crew, "", 1.0, 0),
        Verdict::of(crew, |r| r >= 30_000.0)
    );
    let _ = writeln!(
        out,
        "         one item per task {} multiprocessing.managers (>= 5x): {}",
        show(vs_managers, "x", 1.0, 1),
        Verdict::of(vs_managers, |r| r >= 5.0)
    );
    let _ = writeln!(
        out,
        "         one item per task {} Ray (>= 15x): {}",
        show(vs_ray, "x", 1.0, 1),
        Verdict::of(vs_ray, |r| r >= 15.0)
    );
    let map = rate("map", "crew-cluster");
    let _ = writeln!(
        out,
        "         map with chunks {} items/s (>= 2 M): {}",
        show(map, " M", 1e6, 2),
        Verdict::of(map, |r| r >= 2e6)
    );
    let p50 = find(cells, "latency", "crew-cluster").and_then(|figures| figures.p50_us);
    let _ = writeln!(
        out,
        "         one task at a time p50 {} (<= 250 µs): {}",
        show(p50, " µs", 1.0, 0),
        Verdict::of(p50, |p| p <= 250.0)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Outcome;

    fn cell(
        case: &'static str,
        implementation: &'static str,
        figures: Figures,
    ) -> Cell<Key, Figures> {
        Cell {
            key: Key {
                case,
                implementation,
                n: 10,
            },
            outcome: Outcome::Measured {
                median: figures,
                samples: vec![figures],
            },
        }
    }

    fn rate(tasks_per_sec: f64) -> Figures {
        Figures {
            tasks_per_sec,
            p50_us: None,
            p99_us: None,
        }
    }

    #[test]
    fn latency_figures_are_percentiles_and_order_by_p50() {
        let figures = Figures::of_latencies((1..=100).rev().map(f64::from).collect(), 0.5);
        assert_eq!(figures.tasks_per_sec, 200.0);
        assert_eq!(figures.p50_us, Some(51.0));
        assert_eq!(figures.p99_us, Some(100.0));
        assert_eq!(figures.figure(), 51.0);
        assert_eq!(rate(7.0).figure(), 7.0);
    }

    #[test]
    fn targets_use_same_run_ratios_and_never_meet_unmeasured() {
        let latency = Figures {
            tasks_per_sec: 5_000.0,
            p50_us: Some(200.0),
            p99_us: Some(900.0),
        };
        let cells = vec![
            cell("submit", "crew-cluster", rate(40_000.0)),
            cell("submit", "python-managers", rate(5_000.0)),
            cell("submit", "ray", rate(4_000.0)),
            cell("latency", "crew-cluster", latency),
            Cell {
                key: Key {
                    case: "map",
                    implementation: "crew-cluster",
                    n: 10,
                },
                outcome: Outcome::NotAvailable("nats-server not found".to_owned()),
            },
        ];
        let targets = render_targets(&cells);
        assert!(
            targets.contains("40000 tasks/s (>= 30,000): met"),
            "{targets}"
        );
        assert!(targets.contains("8.0x multiprocessing.managers (>= 5x): met"));
        assert!(targets.contains("10.0x Ray (>= 15x): MISSED"), "{targets}");
        assert!(
            targets.contains("items/s (>= 2 M): not measured"),
            "{targets}"
        );
        assert!(targets.contains("p50 200 µs (<= 250 µs): met"), "{targets}");
        let table = render_table(&cells);
        assert!(
            table.contains("not available (nats-server not found)"),
            "{table}"
        );
        assert!(table.contains("8.0x"), "{table}");
    }

    #[test]
    fn json_rows_have_the_issues_fields() {
        let cells = vec![cell("submit", "ray", rate(1_900.0))];
        let rows = harness::json_rows(&cells);
        let row = &rows[0];
        assert_eq!(row["case"], "submit");
        assert_eq!(row["impl"], "ray");
        assert_eq!(row["tasks_per_sec"], 1_900.0);
        assert!(row["p50_us"].is_null() && row["p99_us"].is_null());
    }
}
