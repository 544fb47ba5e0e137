//! `async` and `async-offload`: one tokio multi-thread runtime accepting and serving every
//! connection. `async` computes `fib` inline, so a long `fib` blocks its worker's other
//! connections (seed 003's async_server); `async-offload` sends `fib(n)` with `n` at or above a
//! threshold to a [`crew::ThreadPool`] and awaits its [`crew::TaskHandle`], keeping the event
//! loop free for I/O.

use std::net::TcpListener;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use super::aio::{accept_loop, Compute};
use crate::server::ServeConfig;
use crate::Shutdown;

pub(super) fn run(
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
