//! `shards`: thread-per-core, sharing (almost) nothing. Each thread runs its own current-thread
//! tokio runtime on its own `SO_REUSEPORT` listener; the kernel spreads connections over them.
//! Shared: the connection count (for the limit) and, because the kernel's hash can put two of a
//! few connections on one shard, a count per shard, so a busier shard hands a new connection to
//! an idler one. What subinterpreters aim at.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use super::aio::{accept_loop, Balancer, Compute};
use super::spec::{Bound, Design, ModelInfo, Spec};
use crate::config::ServeConfig;
use crate::listen::bind_listeners;
use crate::shutdown::Shutdown;

pub(super) const MODEL: Spec = Spec {
    info: ModelInfo {
        name: "shards",
        seed: Some("subinterpreters_server"),
        python_peer: "async_server",
        design: Design::PARALLEL,
        children: None,
    },
    bind,
};

/// A listener per shard, all on one port with `SO_REUSEPORT`.
fn bind(addr: SocketAddr, config: Arc<ServeConfig>) -> anyhow::Result<Bound> {
    let listeners = bind_listeners(addr, config.workers_or_cpus())?;
    let addr = listeners[0].local_addr()?;
    Ok(Bound::new(addr, move |shutdown| {
        run(listeners, config, shutdown)
    }))
}

fn run(
    listeners: Vec<TcpListener>,
    config: Arc<ServeConfig>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new(listeners.iter().map(|_| AtomicUsize::new(0)).collect());
    let (senders, receivers): (Vec<_>, Vec<_>) = listeners
        .iter()
        .map(|_| tokio::sync::mpsc::unbounded_channel())
        .unzip();
    let mut shards = Vec::new();
    for ((index, listener), receiver) in listeners.into_iter().enumerate().zip(receivers) {
        listener.set_nonblocking(true)?;
        let (config, open, shutdown) = (config.clone(), open.clone(), shutdown.clone());
        let balancer = Balancer {
            index,
            counts: counts.clone(),
            senders: senders.clone(),
            receiver,
        };
        let shard = crew::thread::spawn(format!("crew-lab-shard-{index}"), move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                accept_loop(
                    listener,
                    config,
                    Compute::Inline,
                    open,
                    shutdown,
                    Some(balancer),
                )
                .await;
                anyhow::Ok(())
            })
        })?;
        shards.push(shard);
    }
    let mut first_error = None;
    for shard in shards {
        let outcome = shard
            .result()
            .map_err(|error| anyhow::anyhow!("a shard failed: {error}"))
            .and_then(|result| result);
        if let Err(error) = outcome {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}
