//! `threads`: a thread per connection (seed 003's thread_server), started with
//! [`crew::thread::spawn`]. Also runs `gil` and `loopback-limit`, which differ only in how
//! they compute.

use std::net::TcpListener;
use std::sync::Arc;

use super::conn::{accept_loop, serve_connection, Connections};
use crate::server::ServeConfig;
use crate::Shutdown;

pub(super) fn run(
    listener: &TcpListener,
    config: &Arc<crate::server::ServeConfig>,
    compute: super::Compute,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let connections = Connections::new(config.max_connections, shutdown);
    let result = accept_loop(listener, &connections, shutdown, |stream, admitted| {
        let config: Arc<ServeConfig> = config.clone();
        let compute = compute.clone();
        let spawned = crew::thread::spawn("crew-lab-conn", move || {
            serve_connection(stream, &config, &*compute);
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
