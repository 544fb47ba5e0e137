//! `crew bench`: the clap definitions of crew's benchmarks; the work is in `crew-bench`.
//!
//! `crew bench` alone runs the fib-service lab (crew's main job); `crew bench pool` and
//! `crew bench run` measure the executors and the command runner.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crew_bench::PeerCommand;

/// Where every benchmark writes its rows, besides the table on standard output.
#[derive(Debug, clap::Args)]
struct JsonOutput {
    /// Write the rows as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// The rows as JSON and, for the benchmarks that draw one, a chart.
#[derive(Debug, clap::Args)]
struct Output {
    #[command(flatten)]
    rows: JsonOutput,
    /// Write a chart (SVG) to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// How many rounds and which rows: the same flags for `pool`, `cluster` and `actors`.
#[derive(Debug, clap::Args)]
struct Rounds {
    /// Rounds of each measurement; the median is reported [default: 5; --quick 3].
    #[arg(long)]
    repeat: Option<usize>,
    /// Measure only these implementations (comma-separated `impl` names, as in the table).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

impl Rounds {
    /// Sets a benchmark's rounds (kept when `--repeat` is absent) and its `only` list.
    fn apply(self, rounds: &mut usize, only: &mut Vec<String>) {
        *rounds = self.repeat.unwrap_or(*rounds);
        *only = self.only;
    }
}

/// Arguments of `crew bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    which: Option<Which>,
    #[command(flatten)]
    lab: LabArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Which {
    /// Tiny-task throughput of crew's pools against crossbeam, rayon, procspawn and Python.
    Pool(PoolArgs),
    /// `crew run` against `xargs -P` and GNU parallel: jobs/sec and the seed's sleep case.
    Run(RunArgs),
    /// crew's NATS cluster (crew-cluster, crew-cluster-stream) against multiprocessing.managers
    /// (python-managers), Ray and Dask: tasks/s and latency.
    Cluster(ClusterArgs),
    /// A counter actor's calls/s and latency: crew on a thread and in a process, xoscar, Ray.
    Actors(ActorsArgs),
    /// A peer a benchmark runs in a process of its own (procspawn, the loopback limit).
    #[command(hide = true)]
    Peer {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Arguments of `crew bench` when no subcommand is given: the fib-service lab.
#[derive(Debug, clap::Args)]
struct LabArgs {
    /// Short measurements: the whole run in under two minutes.
    #[arg(long)]
    quick: bool,
    /// n of the CPU-bound case.
    #[arg(long, default_value_t = 25)]
    n: u32,
    /// Time per measurement, e.g. 500ms, 1s (default 0.5s × 7 rounds, median reported; --quick 0.15s × 5).
    #[arg(long, value_parser = crate::duration::parse_duration)]
    duration: Option<Duration>,
    /// Client counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    clients: Vec<usize>,
    /// Only these servers (names as in the table), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    #[command(flatten)]
    output: Output,
}

/// Arguments of `crew bench pool`.
#[derive(Debug, clap::Args)]
struct PoolArgs {
    /// Smaller cases and 3 rounds: well under a minute.
    #[arg(long)]
    quick: bool,
    /// Tasks of the thread `submit` case [default: 200000; --quick 50000].
    #[arg(long)]
    tasks: Option<u64>,
    /// Items of the thread `map` case [default: 20000000; --quick 2000000].
    #[arg(long)]
    items: Option<u64>,
    /// Tasks of the process `submit` cases [default: 50000; --quick 10000].
    #[arg(long)]
    process_tasks: Option<u64>,
    /// Items of the process `map` case [default: 2000000; --quick 500000].
    #[arg(long)]
    process_items: Option<u64>,
    /// Worker threads or processes of every pool [default: number of CPUs].
    #[arg(long)]
    workers: Option<usize>,
    /// Items per task in the `map` cases.
    #[arg(long, default_value_t = 4096)]
    chunksize: usize,
    #[command(flatten)]
    rounds: Rounds,
    #[command(flatten)]
    output: Output,
}

/// Arguments of `crew bench cluster`.
#[derive(Debug, clap::Args)]
struct ClusterArgs {
    /// Smaller cases and 3 rounds.
    #[arg(long)]
    quick: bool,
    /// Tasks of the `submit` case (one item each) [default: 10000; --quick 2000].
    #[arg(long)]
    tasks: Option<u64>,
    /// Items of the `map` case [default: 1000000; --quick 200000].
    #[arg(long)]
    items: Option<u64>,
    /// Tasks of the `latency` case, one at a time [default: 1000; --quick 200].
    #[arg(long)]
    latency_tasks: Option<u64>,
    /// Items per task in the `map` case.
    #[arg(long, default_value_t = 4096)]
    chunksize: usize,
    #[command(flatten)]
    rounds: Rounds,
    /// The virtualenv Ray and Dask are installed into [default: $CREW_BENCH_VENV or ~/.cache/crew/venv-cluster].
    #[arg(long, value_name = "DIR")]
    venv: Option<PathBuf>,
    #[command(flatten)]
    output: JsonOutput,
}

/// Arguments of `crew bench actors`.
#[derive(Debug, clap::Args)]
struct ActorsArgs {
    /// Fewer calls and 3 rounds.
    #[arg(long)]
    quick: bool,
    #[command(flatten)]
    rounds: Rounds,
    #[command(flatten)]
    output: JsonOutput,
}

/// Arguments of `crew bench run`.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Trivial jobs in the throughput case.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Concurrency of the throughput case for every implementation [default: the number of CPUs].
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Rounds of each case per implementation; the median is reported.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    #[command(flatten)]
    output: Output,
    /// The crew binary to measure [default: this one]; build it with --release.
    #[arg(long, value_name = "PATH")]
    crew: Option<PathBuf>,
}

pub(crate) fn main(args: Args) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the crew binary")?;
    let peer_command: PeerCommand = {
        let exe = exe.clone();
        Arc::new(move |args: &[&str]| {
            let mut command = Command::new(&exe);
            command.args(["bench", "peer"]).args(args);
            command
        })
    };
    match args.which {
        Some(Which::Peer { args }) => crew_bench::peer::main(&args),
        Some(Which::Actors(args)) => {
            let mut config = crew_bench::actors::ActorsConfig::new(args.quick);
            args.rounds.apply(&mut config.rounds, &mut config.only);
            crew_bench::actors::main(&config, args.output.json.as_deref())
        }
        Some(Which::Pool(args)) => {
            let mut config = crew_bench::pool::PoolConfig::new(args.quick, peer_command);
            config.tasks = args.tasks.unwrap_or(config.tasks);
            config.items = args.items.unwrap_or(config.items);
            config.process_tasks = args.process_tasks.unwrap_or(config.process_tasks);
            config.process_items = args.process_items.unwrap_or(config.process_items);
            config.workers = args.workers.unwrap_or(config.workers);
            config.chunksize = args.chunksize;
            args.rounds.apply(&mut config.rounds, &mut config.only);
            crew_bench::pool::main(
                &config,
                args.output.rows.json.as_deref(),
                args.output.svg.as_deref(),
            )
        }
        Some(Which::Cluster(args)) => {
            let mut config = crew_bench::cluster::ClusterConfig::new(args.quick);
            config.tasks = args.tasks.unwrap_or(config.tasks);
            config.items = args.items.unwrap_or(config.items);
            config.latency_tasks = args.latency_tasks.unwrap_or(config.latency_tasks);
            config.chunksize = args.chunksize;
            args.rounds.apply(&mut config.rounds, &mut config.only);
            config.venv = args.venv.unwrap_or(config.venv);
            crew_bench::cluster::main(&config, args.output.json.as_deref())
        }
        Some(Which::Run(args)) => {
            let config = crew_bench::run::RunConfig {
                count: args.count,
                jobs: args.jobs.unwrap_or_else(crew_lab::cpus),
                rounds: args.reps,
                crew: args.crew.unwrap_or(exe),
            };
            crew_bench::run::main(
                &config,
                args.output.rows.json.as_deref(),
                args.output.svg.as_deref(),
            )
        }
        None => {
            let args = args.lab;
            let build_dir = exe
                .parent()
                .map_or_else(std::env::temp_dir, |dir| dir.join("crew-lab-peers"));
            let crew_command = Arc::new(move |model: crew_lab::Model| {
                let mut command = Command::new(&exe);
                command.args(["serve", "--child", "--addr", "127.0.0.1:0", "--model"]);
                command.arg(model.name());
                command
            });
            let config = crew_bench::lab::BenchConfig {
                quick: args.quick,
                n: args.n,
                duration: args.duration,
                clients: args.clients,
                only: args.only,
                crew_command,
                peer_command,
                build_dir,
            };
            crew_bench::lab::main(
                &config,
                args.output.rows.json.as_deref(),
                args.output.svg.as_deref(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(Debug, clap::Parser)]
    struct Bench {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Which {
        let argv = std::iter::once("bench").chain(argv.iter().copied());
        Bench::try_parse_from(argv).unwrap().args.which.unwrap()
    }

    #[test]
    fn rounds_and_json_flags_are_the_same_on_every_benchmark() {
        let Which::Cluster(cluster) = parse(&["cluster", "--repeat", "2", "--only", "ray,dask"])
        else {
            panic!("not cluster")
        };
        let (mut rounds, mut only) = (5, Vec::new());
        cluster.rounds.apply(&mut rounds, &mut only);
        assert_eq!(
            (rounds, only),
            (2, vec!["ray".to_owned(), "dask".to_owned()])
        );
        assert_eq!(cluster.output.json, None);
        let Which::Actors(actors) = parse(&["actors", "--json", "rows.json"]) else {
            panic!("not actors")
        };
        let (mut rounds, mut only) = (3, vec!["stale".to_owned()]);
        actors.rounds.apply(&mut rounds, &mut only);
        assert_eq!(
            (rounds, only),
            (3, Vec::<String>::new()),
            "no --repeat keeps the default"
        );
        assert_eq!(actors.output.json, Some(PathBuf::from("rows.json")));
        let Which::Pool(pool) = parse(&["pool", "--json", "a.json", "--svg", "a.svg"]) else {
            panic!("not pool")
        };
        assert_eq!(pool.output.rows.json, Some(PathBuf::from("a.json")));
        assert_eq!(pool.output.svg, Some(PathBuf::from("a.svg")));
        let error = Bench::try_parse_from(["bench", "actors", "--svg", "x.svg"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
