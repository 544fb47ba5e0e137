//! `async`: one tokio multi-thread runtime accepting and serving every connection, computing
//! `fib` inline, so a long `fib` blocks its worker's other connections (seed 003's
//! async_server). `async-offload` runs on the same runtime ([`bind_with`]) and sends `fib(n)`
//! with `n` at or above a threshold to a [`crew::ThreadPool`], awaiting its
//! [`crew::TaskHandle`], which keeps the event loop free for I/O.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use super::aio::{accept_loop, Compute};
use super::spec::{Bound, Design, ModelInfo, Spec};
use crate::config::ServeConfig;
use crate::listen::bind_listener;
use crate::shutdown::Shutdown;

pub(super) const MODEL: Spec = Spec {
    info: ModelInfo {
        name: "async",
        seed: Some("async_server"),
        python_peer: "async_server",
        design: Design::PARALLEL,
        children: None,
    },
    bind: |addr, config| bind_with(addr, config, false),
};

/// Binds one listener for a tokio runtime that computes inline, or offloads (`async-offload`).
pub(super) fn bind_with(
    addr: SocketAddr,
    config: Arc<ServeConfig>,
    offload: bool,
) -> anyhow::Result<Bound> {
    let listener = bind_listener(addr, config.reuse_port)?;
    let addr = listener.local_addr()?;
    Ok(Bound::new(addr, move |shutdown| {
        run(listener, config, offload, shutdown)
    }))
}

fn run(
    listener: TcpListener,
    config: Arc<ServeConfig>,
    offload: bool,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let cpus = config.workers_or_cpus();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus)
        .thread_name("crew-lab-async")
        .enable_all()
        .build()?;
    let compute = if offload {
        let pool = crew::ThreadPool::builder()
            .max_workers(cpus)
            .thread_name_prefix("crew-lab-fib")
            .build()?;
        Compute::Offload {
            pool: Arc::new(pool),
            threshold: config.offload_threshold,
        }
    } else {
        Compute::Inline
    };
    listener.set_nonblocking(true)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        accept_loop(
            listener,
            config,
            compute,
            Arc::new(AtomicUsize::new(0)),
            shutdown.clone(),
            None,
        )
        .await;
        anyhow::Ok(())
    })
}
