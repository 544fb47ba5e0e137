//! `single`: one thread serves one client at a time; the next waits in the accept backlog
//! until the current one leaves (seed 003's one_server).

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
        name: "single",
        seed: Some("one_server"),
        python_peer: "one_server",
        design: Design {
            concurrent_clients: false,
            parallel_compute: false,
        },
        children: None,
    },
    bind,
};

fn bind(addr: SocketAddr, config: Arc<ServeConfig>) -> anyhow::Result<Bound> {
    let listener = bind_listener(addr, config.reuse_port)?;
    let addr = listener.local_addr()?;
    Ok(Bound::new(addr, move |shutdown| {
        run(&listener, &config, shutdown)
    }))
}

fn run(listener: &TcpListener, config: &ServeConfig, shutdown: &Shutdown) -> anyhow::Result<()> {
    let connections = Connections::new(config, shutdown);
    accept_loop(listener, &connections, shutdown, |stream, _admitted| {
        serve_connection(stream, config, &|n| Ok(fib(n)));
    })?;
    Ok(())
}
