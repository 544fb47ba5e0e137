//! Peers hosted by the benchmark's own binary, each run in a process of its own:
//!
//! * `loopback-limit --addr ADDR`: the [loopback-limit server](crate::lab::loopback);
//! * `procspawn KIND N WORKERS CHUNKSIZE`: procspawn's pool for `crew bench pool`
//!   (see [`crate::pool::processes`]); prints tasks/sec (the `latency` case: also the p50 and
//!   p99 of a round trip in microseconds).
//!
//! procspawn starts its workers by re-executing the current binary with the same arguments and
//! finds them in `procspawn::init()`; calling it here, first thing in this subcommand, keeps
//! that hook out of every other start of the binary.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::ExitCode;

use anyhow::Context as _;

/// Runs the peer named by `args[0]`; prints `listening on ADDR` (servers) or one number
/// (measurements) on standard output.
///
/// # Errors
/// Unknown or malformed arguments, or the peer's own failure.
pub fn main(args: &[String]) -> anyhow::Result<ExitCode> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["procspawn", rest @ ..] => {
            // A procspawn worker serves here and exits; the parent goes on.
            procspawn::init();
            let line = crate::pool::processes::procspawn_peer(rest)?;
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        ["loopback-limit", "--addr", addr] => {
            die_with_parent()?;
            let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
            let mut stdout = std::io::stdout();
            writeln!(stdout, "listening on {}", listener.local_addr()?)?;
            stdout.flush()?;
            crate::lab::loopback::serve(listener).context("accepting")?;
            Ok(ExitCode::SUCCESS)
        }
        _ => anyhow::bail!(
            "unknown peer {args:?}: use `procspawn KIND N WORKERS CHUNKSIZE` or `loopback-limit --addr ADDR`"
        ),
    }
}

/// A server started by the benchmark never outlives it.
fn die_with_parent() -> anyhow::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .context("setting the parent-death signal")
}
