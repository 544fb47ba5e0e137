//! `single`: one thread serves one client at a time; the next waits in the accept backlog
//! until the current one leaves (seed 003's one_server).

use std::net::TcpListener;

use super::conn::{accept_loop, serve_connection, Connections};
use crate::fib::fib;
use crate::server::ServeConfig;
use crate::Shutdown;

pub(super) fn run(
    listener: &TcpListener,
    config: &ServeConfig,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let connections = Connections::new(config.max_connections, shutdown);
    accept_loop(listener, &connections, shutdown, |stream, _admitted| {
        serve_connection(stream, config, &|n| Ok(fib(n)));
    })?;
    Ok(())
}
