//! `crew bench` (no subcommand): the fib-service lab, crew's main job.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crew_lab::bench::{self, BenchConfig};
use crew_lab::Model;

/// Arguments of `crew bench` when no subcommand is given.
#[derive(Debug, clap::Args)]
pub(crate) struct LabArgs {
    /// Short measurements: the whole run in under two minutes.
    #[arg(long)]
    quick: bool,
    /// n of the CPU-bound case.
    #[arg(long, default_value_t = 25)]
    n: u32,
    /// Time per measurement (default 0.5s × 7 rounds, median reported; --quick 0.15s × 5).
    #[arg(long, value_parser = crate::perf::parse_duration)]
    duration: Option<Duration>,
    /// Client counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    clients: Vec<usize>,
    /// Only these servers (names as in the table), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Write the rows as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a chart (SVG) to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

pub(crate) fn main(args: LabArgs) -> anyhow::Result<ExitCode> {
    if args.clients.is_empty() || args.clients.contains(&0) {
        anyhow::bail!("--clients needs counts of at least 1, e.g. 1,2,4");
    }
    if args.n > crew_lab::fib::DEFAULT_MAX_N {
        anyhow::bail!(
            "--n {} is above the servers' limit {}",
            args.n,
            crew_lab::fib::DEFAULT_MAX_N
        );
    }
    let exe = std::env::current_exe().context("finding the crew binary")?;
    let build_dir = exe
        .parent()
        .map_or_else(std::env::temp_dir, |dir| dir.join("crew-lab-peers"));
    let crew_command = Arc::new(move |model: Model| {
        let mut command = Command::new(&exe);
        command.args(["serve", "--child", "--addr", "127.0.0.1:0", "--model"]);
        command.arg(model.name());
        command
    });
    let config = BenchConfig {
        quick: args.quick,
        n: args.n,
        duration: args.duration,
        clients: args.clients,
        only: args.only,
        crew_command,
        build_dir,
    };
    let known: Vec<String> = bench::Peer::all().iter().map(bench::Peer::name).collect();
    if let Some(unknown) = config.only.iter().find(|name| !known.contains(name)) {
        anyhow::bail!(
            "--only: unknown server `{unknown}`; known: {}",
            known.join(", ")
        );
    }
    let expected = config.expected_duration();
    println!(
        "crew bench{}: {} servers, io (n = 1) and cpu (n = {}) with {:?} clients, about {:.0}s on {} CPUs",
        if config.quick { " --quick" } else { "" },
        config.peers().len(),
        config.n,
        config.clients,
        expected.as_secs_f64(),
        crew_lab::cpus()
    );
    let results = bench::run(&config)?;
    print!("{}", bench::render_tables(&results));
    print!("{}", bench::render_ratios(&results));
    println!("\nfinished in {:.0}s", results.elapsed_s);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&results.to_json())?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("rows written to {}", path.display());
    }
    if let Some(path) = &args.svg {
        bench::write_svg(&results, path)?;
        println!("chart written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
