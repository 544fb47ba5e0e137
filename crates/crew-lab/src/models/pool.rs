//! `pool`: connections served by a fixed [`crew::ThreadPool`]. A connection holds a worker for
//! its lifetime; connections beyond the pool's size wait in its queue (up to the connection
//! limit).

use std::net::TcpListener;
use std::sync::Arc;

use super::conn::{accept_loop, serve_connection, Connections};
use crate::fib::fib;
use crate::server::ServeConfig;
use crate::Shutdown;

/// Workers when `--workers` is not given: enough for the benchmark's clients.
const DEFAULT_WORKERS: usize = 16;

pub(super) fn run(
    listener: &TcpListener,
    config: &Arc<ServeConfig>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let workers = if config.workers > 0 {
        config.workers
    } else {
        DEFAULT_WORKERS
    };
    let pool = crew::ThreadPool::builder()
        .max_workers(workers)
        .thread_name_prefix("crew-lab-pool")
        .build()?;
    let connections = Connections::new(config.max_connections, shutdown);
    let result = accept_loop(listener, &connections, shutdown, |stream, admitted| {
        let config = config.clone();
        let submitted = pool.spawn(move || {
            serve_connection(stream, &config, &|n| Ok(fib(n)));
            drop(admitted);
        });
        if let Err(error) = submitted {
            eprintln!("crew serve: the pool refused a connection: {error}");
        }
    });
    drop(pool); // joins the workers after the queued connections finish
    connections.wait_all_closed();
    result?;
    Ok(())
}
