//! `crew`: the command-line face of the crew library.
//!
//! The binary is thin: argument parsing and wiring. The work lives in the `crew` library, in
//! `crew-lab` (the fib-service lab) and in `crew-bench` (the benchmarks and their peers).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The allocator is mimalloc, declared by `crew-bench` (`crew_bench::ALLOCATOR` gives the
// measurement behind that choice): linking the benchmarks brings it.

mod bench;
mod cluster;
mod duration;
mod perf;
mod run;
mod serve;

/// The exit status of `crew run` when crew itself fails rather than jobs (GNU parallel's).
const RUN_ERROR_STATUS: u8 = 255;

/// Concurrency for Rust, from threads to processes to a cluster.
#[derive(Debug, Parser)]
#[command(name = "crew", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve fib(n) over TCP under one concurrency model.
    Serve(serve::Args),
    /// Drive a fib server with load and report requests/sec and latency.
    Perf(perf::Args),
    /// Run crew's benchmarks (default: the fib-service lab) against their peers.
    Bench(bench::Args),
    /// Run many commands in parallel (like `xargs -P` or GNU parallel).
    Run(run::Args),
    /// Serve the tasks built into crew to a cluster (NATS JetStream) until SIGTERM.
    Worker(cluster::WorkerArgs),
    /// Inspect a cluster: status, dead letters.
    Cluster(cluster::ClusterArgs),
}

fn main() -> ExitCode {
    // The worker hook first: when this executable is started as a crew worker, it serves
    // tasks here and exits. (Benchmark peers that need a hook of their own, such as procspawn's,
    // set it up in `crew bench peer`, the only place they run.)
    crew::init();
    let cli = Cli::parse();
    // `crew run` exits with the number of failed jobs, so its own failures (an unreadable
    // argument file, a record too long...) take GNU parallel's 255, which no count reaches.
    let failure = match cli.command {
        Command::Run(_) => ExitCode::from(RUN_ERROR_STATUS),
        _ => ExitCode::FAILURE,
    };
    let outcome = match cli.command {
        Command::Serve(args) => serve::main(args),
        Command::Perf(args) => perf::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Run(args) => run::main(args),
        Command::Worker(args) => cluster::worker(args),
        Command::Cluster(args) => cluster::main(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            // No credentials from a cluster URL in a message (the library names the server
            // by the URL as given).
            eprintln!(
                "crew: error: {}",
                cluster::redact_urls_in(&format!("{err:#}"))
            );
            failure
        }
    }
}
