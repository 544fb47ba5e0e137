//! `pool`: connections served by a fixed [`crew::ThreadPool`]. A connection holds a worker for
//! its lifetime; connections beyond the pool's size wait in its queue (up to the connection
//! limit).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use super::conn::{accept_loop, serve_connection, Connections};
use super::spec::{Bound, Design, ModelInfo, Spec};
use crate::config::ServeConfig;
use crate::fib::fib;
use crate::listen::bind_listener;
use crate::shutdown::Shutdown;

pub(super) const MODEL: Spec = Spec {
    info: ModelInfo {
        name: "pool",
        seed: None,
        python_peer: "thread_server",
        design: Design::PARALLEL,
        children: None,
    },
    bind,
};

/// Workers when `--workers` is not given: enough for the benchmark's clients.
const DEFAULT_WORKERS: usize = 16;

fn bind(addr: SocketAddr, config: Arc<ServeConfig>) -> anyhow::Result<Bound> {
    let listener = bind_listener(addr, config.reuse_port)?;
    let addr = listener.local_addr()?;
    Ok(Bound::new(addr, move |shutdown| run(&listener, &config, shutdown)))
}

fn run(
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
        // As Python's ThreadPoolExecutor: a thread when a connection needs one, so a large
        // `--workers` is a bound, not thousands of idle threads at start.
        .start_on_demand(true)
        .thread_name_prefix("crew-lab-pool")
        .build()?;
    let connections = Connections::new(config, shutdown);
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
