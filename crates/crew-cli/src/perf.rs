//! `crew perf`: drive a fib server and report requests/sec and latency.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use crate::duration::parse_duration;

use anyhow::Context;
use crew_lab::perf::{self, PerfConfig};
use crew_lab::protocol::Framing;

/// Arguments of `crew perf`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The server, e.g. 127.0.0.1:25000.
    #[arg(long, default_value = "127.0.0.1:25000")]
    addr: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// The n of every request (1: IO-bound; 25: CPU-bound).
    #[arg(long, default_value_t = 1)]
    n: u32,
    /// How long to measure, e.g. 10s, 1.5, 500ms, 2m, 1h.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Load before measuring, not counted.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    warmup: Duration,
    /// Open loop: this many requests/sec in total, latency measured from each request's
    /// intended send time (corrected for coordinated omission, as wrk2).
    #[arg(long)]
    rate: Option<f64>,
    /// `line` (default) or `talk` (bare numbers, one per read).
    #[arg(long, default_value = "line")]
    framing: Framing,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn main(args: Args) -> anyhow::Result<ExitCode> {
    if args.duration.is_zero() {
        anyhow::bail!("--duration must be more than 0 (e.g. 5s): a run of 0 s measures nothing");
    }
    let addr: SocketAddr = args
        .addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve --addr {}", args.addr))?
        .next()
        .with_context(|| format!("--addr {} resolves to nothing", args.addr))?;
    let config = PerfConfig {
        addr,
        clients: args.clients,
        n: args.n,
        duration: args.duration,
        warmup: args.warmup,
        rate: args.rate,
        framing: args.framing,
    };
    let progress = perf::terminal_progress(format!("crew perf {addr}"));
    let report = perf::run(
        &config,
        progress
            .as_ref()
            .map(|p| p as &(dyn Fn(perf::Progress) + Sync)),
    )?;
    if progress.is_some() {
        eprint!("\r\x1b[2K");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", perf::render(&report));
    }
    if report.requests == 0 {
        eprintln!(
            "crew perf: no correct reply from {addr}{}",
            report
                .first_error
                .as_ref()
                .map_or(String::new(), |e| format!(": {e}"))
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
