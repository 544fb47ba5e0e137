//! Listening sockets: one per server, one per shard, or a port held for child processes.

use std::net::{SocketAddr, TcpListener};

use anyhow::Context;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// A listening socket on `addr` (backlog 1024), optionally with `SO_REUSEPORT`.
///
/// # Errors
/// The operating system's error, with the address.
pub fn bind_listener(addr: SocketAddr, reuse_port: bool) -> anyhow::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket
        .bind(&SockAddr::from(addr))
        .with_context(|| format!("cannot bind {addr}: is another server using it?"))?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// `count` listeners on one port with `SO_REUSEPORT` (the first picks the port when it is 0);
/// the kernel spreads connections over them.
pub(crate) fn bind_listeners(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<TcpListener>> {
    let first = bind_listener(addr, true)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count.max(1) {
        listeners.push(bind_listener(addr, true)?);
    }
    Ok(listeners)
}

/// A socket bound to `addr` with `SO_REUSEPORT` but not listening: it holds the port (port 0
/// picks one) while child processes bind it too, and no connection lands on it.
pub(crate) fn reserve_port(addr: SocketAddr) -> anyhow::Result<(Socket, SocketAddr)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket
        .bind(&SockAddr::from(addr))
        .with_context(|| format!("cannot bind {addr}"))?;
    let addr = socket
        .local_addr()?
        .as_socket()
        .context("bound socket has no IP address")?;
    Ok((socket, addr))
}
