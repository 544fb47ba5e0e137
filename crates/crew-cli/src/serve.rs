//! `crew serve`: the fib service under one concurrency model.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crew_lab::protocol::Framing;
use crew_lab::{Model, ServeConfig, Server, Shutdown};

/// Arguments of `crew serve`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Protocol: send a decimal n and a newline, get fib(n) and a newline \
(try `nc 127.0.0.1 25000`). Bad input gets a line starting with `error:`. \
SIGINT/SIGTERM: stop accepting, finish in-flight requests, exit 0; still busy after --grace: \
exit 1 without finishing; a second signal: exit 130 at once."
)]
pub(crate) struct Args {
    /// The concurrency model.
    #[arg(long, default_value = "threads", value_parser = model_parser())]
    model: Model,
    /// Address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:25000")]
    addr: SocketAddr,
    /// `line` (a request per line) or `talk` (a request per read, for the talk's perf clients).
    #[arg(long, default_value = "line")]
    framing: Framing,
    /// Largest n served (at most 93, the largest whose fib fits u64 exactly).
    #[arg(long, default_value_t = crew_lab::fib::DEFAULT_MAX_N)]
    max_n: u32,
    /// Close connections idle this long, e.g. 60s, 2m (0: never).
    #[arg(long, default_value = "60s", value_parser = crate::duration::parse_duration)]
    idle_timeout: Duration,
    /// After SIGINT/SIGTERM, how long in-flight requests may take before the server exits
    /// without them, e.g. 5s, 500ms.
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse_duration)]
    grace: Duration,
    /// Refuse clients beyond this many open connections with an `error:` line.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Threads (pool, async), processes (reuseport) or shards; default: one per CPU (pool: 16).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// async-offload: n at or above this is computed on the crew pool.
    #[arg(long, default_value_t = 15)]
    offload_threshold: u32,
    /// Bind with SO_REUSEPORT (used by the reuseport model's children).
    #[arg(long, hide = true)]
    reuse_port: bool,
    /// Exit when the parent process dies (set for servers started by crew itself).
    #[arg(long, hide = true)]
    child: bool,
}

/// Every model's name as a possible value.
fn model_parser() -> impl clap::builder::TypedValueParser<Value = Model> {
    use clap::builder::TypedValueParser;
    let names = Model::ALL.map(|model| clap::builder::PossibleValue::new(model.name()));
    clap::builder::PossibleValuesParser::new(names).try_map(|name| name.parse::<Model>())
}

pub(crate) fn main(args: Args) -> anyhow::Result<ExitCode> {
    if args.child {
        crew_lab::die_with_parent().context("setting the parent-death signal")?;
    }
    let idle_timeout = (!args.idle_timeout.is_zero()).then_some(args.idle_timeout);
    let mut config = ServeConfig {
        framing: args.framing,
        max_n: args.max_n,
        idle_timeout,
        max_connections: args.max_connections,
        workers: args.workers,
        offload_threshold: args.offload_threshold,
        reuse_port: args.reuse_port,
        child_command: None,
        shared_limit: None,
    };
    if args.child {
        // A reuseport child: admit only with a slot of the limit its siblings share.
        config.shared_limit = crew_lab::SharedLimit::inherited()?.map(Arc::new);
    }
    if let Some(child_model) = args.model.info().children {
        let exe = std::env::current_exe().context("finding the crew binary to start children")?;
        let (framing, max_n) = (args.framing, args.max_n);
        let (max_connections, idle, grace) = (args.max_connections, args.idle_timeout, args.grace);
        config.child_command = Some(Arc::new(move |addr: SocketAddr| {
            let mut command = Command::new(&exe);
            command.args(["serve", "--model", child_model, "--reuse-port", "--child"]);
            command.arg("--addr").arg(addr.to_string());
            command.arg("--framing").arg(framing.to_string());
            command.arg("--max-n").arg(max_n.to_string());
            command
                .arg("--max-connections")
                .arg(max_connections.to_string());
            command
                .arg("--idle-timeout")
                .arg(format!("{}s", idle.as_secs_f64()));
            command
                .arg("--grace")
                .arg(format!("{}s", grace.as_secs_f64()));
            command
        }));
    }
    let shutdown = Shutdown::new();
    shutdown
        .trigger_on_signals(args.grace)
        .context("installing the SIGINT/SIGTERM handlers")?;
    let server = Server::bind(args.model, args.addr, config)?;
    let addr = server.local_addr();
    if !args.reuse_port {
        eprintln!(
            "crew serve: model {} on {addr} ({} framing, n <= {}); Ctrl-C stops it",
            args.model, args.framing, args.max_n
        );
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;
    drop(stdout);
    let result = server.run(&shutdown);
    shutdown.finish();
    result?;
    Ok(ExitCode::SUCCESS)
}
