//! `crew bench`: benchmarks that put crew and its peers in the same run.
//!
//! `crew bench` alone runs the fib-service lab (crew's main job); `crew bench pool` and
//! `crew bench run` measure the executors and the command runner.

use std::process::ExitCode;

mod lab;
mod pool;
mod run;

/// Arguments of `crew bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    which: Option<Which>,
    #[command(flatten)]
    lab: lab::LabArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Which {
    /// Tiny-task throughput of crew's pools against crossbeam, rayon and Python.
    Pool(pool::Args),
    /// `crew run` against `xargs -P` and GNU parallel: jobs/sec and the seed's sleep case.
    Run(run::Args),
}

pub(crate) fn main(args: Args) -> anyhow::Result<ExitCode> {
    match args.which {
        Some(Which::Pool(args)) => pool::main(args),
        Some(Which::Run(args)) => run::main(args),
        None => lab::main(args.lab),
    }
}
