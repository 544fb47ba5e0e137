//! `crew perf`: drive a fib server and report requests/sec and latency.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

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
    /// How long to measure: `10`, `10s`, `500ms`, `2m`.
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

/// Parses `10`, `1.5s`, `500ms` or `2m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => {
            Ok(Duration::from_secs_f64(value * scale))
        }
        _ => Err(format!(
            "`{text}` is not a duration: use e.g. 10, 10s, 500ms or 2m"
        )),
    }
}

pub(crate) fn main(args: Args) -> anyhow::Result<ExitCode> {
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
