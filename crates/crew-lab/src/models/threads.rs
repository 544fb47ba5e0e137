//! `threads`: a thread per connection (seed 003's thread_server), started with
//! [`crew::thread::spawn`]. `gil` and `process-pool` run on it too and differ
//! only in how they compute ([`bind_with`]).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use super::conn::{accept_loop, serve_connection, Compute, Connections};
use super::spec::{Bound, Design, ModelInfo, Spec};
use crate::config::ServeConfig;
use crate::fib::fib;
use crate::listen::bind_listener;
use crate::shutdown::Shutdown;

pub(super) const MODEL: Spec = Spec {
    info: ModelInfo {
        name: "threads",
        seed: Some("thread_server"),
        python_peer: "thread_server",
        design: Design::PARALLEL,
        children: None,
    },
    bind: |addr, config| bind_with(addr, config, |_, _| Ok(Arc::new(|n| Ok(fib(n))))),
};

/// Binds one listener (with `SO_REUSEPORT` if configured) for a thread per connection, each
/// computing with what `compute` makes when the server starts running (it may register
/// [`Shutdown::on_force`] hooks). What `compute` holds is dropped before the server returns.
pub(super) fn bind_with(
    addr: SocketAddr,
    config: Arc<ServeConfig>,
    compute: fn(&ServeConfig, &Shutdown) -> anyhow::Result<Compute>,
) -> anyhow::Result<Bound> {
    let listener = bind_listener(addr, config.reuse_port)?;
    let addr = listener.local_addr()?;
    Ok(Bound::new(addr, move |shutdown| {
        let compute = compute(&config, shutdown)?;
        run(&listener, &config, compute, shutdown)
    }))
}

fn run(
    listener: &TcpListener,
    config: &Arc<ServeConfig>,
    compute: Compute,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let connections = Connections::new(config, shutdown);
    let result = accept_loop(listener, &connections, shutdown, |stream, admitted| {
        let config = config.clone();
        let compute = compute.clone();
        let spawned = crew::thread::spawn("crew-lab-conn", move || {
            serve_connection(stream, &config, &*compute);
            // Before the connection counts as closed: the server's last reference to what
            // computes (a process pool, reaped when dropped) is then the one `run` drops.
            drop(compute);
            drop(admitted);
        });
        if let Err(error) = spawned {
            eprintln!("crew serve: cannot start a connection thread: {error}");
        }
    });
    connections.wait_all_closed();
    result?;
    Ok(())
}
