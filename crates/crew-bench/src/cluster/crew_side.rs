//! crew's rows of `crew bench cluster`: [`Cluster::local`] with two workers, started at the first
//! measurement and kept for the run, never measured when it fell back to a process pool.

use std::cell::RefCell;
use std::time::Instant;

use anyhow::{bail, Context as _};
use crew::cluster::{Backend, Cluster, ResultPath};
use crew::{Executor, MapOptions};

use super::{ClusterConfig, ClusterMeasurement, Figures, Key, CASES, WORKERS};
use crate::harness::Measurement;

/// The task of every implementation: seed 004's `n * n`.
#[crew::task]
fn square(n: u64) -> u64 {
    std::hint::black_box(n) * n
}

/// 0² + 1² + ... + (n-1)²: every result is checked.
fn sum_of_squares(n: u64) -> u64 {
    n.saturating_sub(1) * n * (2 * n).saturating_sub(1) / 6
}

/// crew's cluster, started at its first measurement (a failed start is remembered, so every
/// case says why).
#[derive(Debug)]
pub(crate) struct CrewCluster {
    /// `crew-cluster` (results to the submitter's inbox, the default) or
    /// `crew-cluster-stream` (results through the results stream), for the choice between them.
    implementation: &'static str,
    results: ResultPath,
    cluster: RefCell<Option<Result<Cluster, String>>>,
}

impl CrewCluster {
    /// The default cluster (`crew-cluster`) and its variant with results through the results
    /// stream (`crew-cluster-stream`).
    pub(crate) fn both() -> [CrewCluster; 2] {
        [
            ("crew-cluster", ResultPath::Inbox),
            ("crew-cluster-stream", ResultPath::Stream),
        ]
        .map(|(implementation, results)| CrewCluster {
            implementation,
            results,
            cluster: RefCell::new(None),
        })
    }

    /// The three cases on one [`Cluster::local`].
    pub(crate) fn measurements<'a>(
        &'a self,
        config: &'a ClusterConfig,
    ) -> Vec<ClusterMeasurement<'a>> {
        CASES
            .iter()
            .map(|&case| {
                let n = config.n(case);
                let key = Key {
                    case,
                    implementation: self.implementation,
                    n,
                };
                Measurement::new(key, move || {
                    let mut slot = self.cluster.borrow_mut();
                    let cluster = slot
                        .get_or_insert_with(|| {
                            start(self.results).map_err(|error| format!("{error:#}"))
                        })
                        .as_ref()
                        .map_err(|reason| anyhow::anyhow!("{reason}"))?;
                    match case {
                        "submit" => submit(cluster, n),
                        "map" => map(cluster, n, config.chunksize),
                        _ => latency(cluster, n),
                    }
                })
            })
            .collect()
    }
}

/// A local cluster on NATS: installs `nats-server` as the tests do when none is found, and
/// refuses the process-pool fallback (it is not what this benchmark measures).
fn start(results: ResultPath) -> anyhow::Result<Cluster> {
    crate::nats_server::find_or_install_nats_server().map_err(anyhow::Error::msg)?;
    let cluster = Cluster::local_with(WORKERS, |options| options.results(results))
        .context("starting Cluster::local")?;
    if cluster.backend() != Backend::Nats {
        bail!("Cluster::local fell back to a ProcessPool (no nats-server): not measured as crew-cluster");
    }
    // Warm up: both workers' processes started.
    let warm: u64 = cluster
        .map(square, 0..200)
        .sum::<Result<u64, _>>()
        .context("warming up")?;
    anyhow::ensure!(warm == sum_of_squares(200), "warm-up: wrong results");
    Ok(cluster)
}

fn submit(cluster: &Cluster, n: u64) -> anyhow::Result<Figures> {
    let start = Instant::now();
    let handles = (0..n)
        .map(|i| cluster.submit(square, i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = 0;
    for handle in handles {
        total += handle.result()?;
    }
    let seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(total == sum_of_squares(n), "submit: wrong results");
    Ok(rate(n, seconds))
}

fn map(cluster: &Cluster, n: u64, chunksize: usize) -> anyhow::Result<Figures> {
    let start = Instant::now();
    let mut total = 0;
    for value in cluster.map_with(square, 0..n, MapOptions::new().chunksize(chunksize)) {
        total += value?;
    }
    let seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(total == sum_of_squares(n), "map: wrong results");
    Ok(rate(n, seconds))
}

fn latency(cluster: &Cluster, n: u64) -> anyhow::Result<Figures> {
    let mut latencies = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let sent = Instant::now();
        let value = cluster.submit(square, i)?.result()?;
        latencies.push(sent.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(value == i * i, "latency: wrong result");
    }
    Ok(Figures::of_latencies(
        latencies,
        start.elapsed().as_secs_f64(),
    ))
}

fn rate(n: u64, seconds: f64) -> Figures {
    Figures {
        tasks_per_sec: n as f64 / seconds,
        p50_us: None,
        p99_us: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_of_squares_matches_a_loop() {
        for n in [0, 1, 2, 10, 4097] {
            assert_eq!(sum_of_squares(n), (0..n).map(|i| i * i).sum::<u64>(), "{n}");
        }
    }
}
