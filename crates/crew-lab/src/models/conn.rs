//! The blocking side: a registry of open connections (the connection limit and the shutdown
//! wake-up), the accept loop and the per-connection driver shared by the thread-based models.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::config::ServeConfig;
use crate::limit::SharedLimit;
use crate::protocol;
use crate::session::{Action, Session};
use crate::shutdown::Shutdown;

/// How a blocking model computes a reply: `fib(n)`, or a message for an `error:` line.
pub(crate) type ComputeFn = dyn Fn(u32) -> Result<u64, String> + Send + Sync;

/// A shared [`ComputeFn`], for the connection threads of one server.
pub(crate) type Compute = Arc<ComputeFn>;

/// Open connections of one server: enforces the limit and wakes idle readers on shutdown.
pub(crate) struct Connections {
    open: Mutex<(u64, HashMap<u64, TcpStream>)>,
    closed: Condvar,
    limit: usize,
    shared: Option<Arc<SharedLimit>>,
    shutdown: Shutdown,
}

impl Connections {
    /// The limit is `config.max_connections`, and its shared limit if it has one.
    pub(crate) fn new(config: &ServeConfig, shutdown: &Shutdown) -> Arc<Self> {
        let connections = Arc::new(Self {
            open: Mutex::new((0, HashMap::new())),
            closed: Condvar::new(),
            limit: config.max_connections,
            shared: config.shared_limit.clone(),
            shutdown: shutdown.clone(),
        });
        let weak = Arc::downgrade(&connections);
        shutdown.on_trigger(move || {
            if let Some(connections) = weak.upgrade() {
                for stream in connections.open.lock().1.values() {
                    let _ = stream.shutdown(Direction::Read);
                }
            }
        });
        connections
    }

    /// Registers `stream`, or refuses it with an error line when the limit is reached.
    pub(crate) fn admit(self: &Arc<Self>, stream: &TcpStream) -> Option<Admitted> {
        let clone = stream.try_clone().ok()?;
        let mut open = self.open.lock();
        let shared_full = || {
            self.shared
                .as_ref()
                .is_some_and(|shared| !shared.try_acquire())
        };
        if open.1.len() >= self.limit || shared_full() {
            drop(open);
            refuse(stream, self.limit);
            return None;
        }
        let id = open.0;
        open.0 += 1;
        open.1.insert(id, clone);
        drop(open);
        if self.shutdown.is_triggered() {
            let _ = stream.shutdown(Direction::Read);
        }
        Some(Admitted {
            connections: self.clone(),
            id,
        })
    }

    /// Blocks until every admitted connection is closed.
    pub(crate) fn wait_all_closed(&self) {
        let mut open = self.open.lock();
        while !open.1.is_empty() {
            self.closed.wait(&mut open);
        }
    }
}

/// A registered connection; dropping it unregisters.
pub(crate) struct Admitted {
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        // The slot is given back before the last descriptor of the socket (the registry's
        // clone) closes, so a client that sees the close can connect again at once.
        if let Some(shared) = &self.connections.shared {
            shared.release();
        }
        let mut open = self.connections.open.lock();
        open.1.remove(&self.id);
        if open.1.is_empty() {
            self.connections.closed.notify_all();
        }
    }
}

fn refuse(stream: &TcpStream, limit: usize) {
    let mut stream = stream;
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(&protocol::busy_line(limit));
    linger_close(stream);
}

/// Closes politely after a final error line: stop writing, then drain what the client still
/// sends for a moment so the kernel does not reset the connection before the line arrives.
pub(crate) fn linger_close(stream: &TcpStream) {
    let _ = stream.shutdown(Direction::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 1024];
    let mut stream = stream;
    for _ in 0..64 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Wakes a blocking `accept` on `listener` when `shutdown` triggers.
pub(crate) fn stop_accepting_on(shutdown: &Shutdown, listener: &TcpListener) -> io::Result<()> {
    let socket = socket2::Socket::from(listener.try_clone()?);
    shutdown.on_trigger(move || {
        // Linux: shutting down a listening socket makes a blocked accept fail with EINVAL.
        let _ = socket.shutdown(Direction::Read);
    });
    Ok(())
}

/// Accepts until shutdown, handing each admitted connection to `handle`.
pub(crate) fn accept_loop(
    listener: &TcpListener,
    connections: &Arc<Connections>,
    shutdown: &Shutdown,
    mut handle: impl FnMut(TcpStream, Admitted),
) -> io::Result<()> {
    stop_accepting_on(shutdown, listener)?;
    loop {
        if shutdown.is_triggered() {
            return Ok(());
        }
        match listener.accept() {
            Ok((stream, _)) => {
                if let Some(admitted) = connections.admit(&stream) {
                    handle(stream, admitted);
                }
            }
            Err(_) if shutdown.is_triggered() => return Ok(()),
            Err(error) if transient(&error) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => return Err(error),
        }
    }
}

fn transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Serves requests on one connection until the client leaves, idles out, sends a fatal line
/// or the server shuts down (after replying to what was already read): the blocking driver of
/// the protocol's [`Session`].
pub(crate) fn serve_connection(stream: TcpStream, config: &ServeConfig, compute: &ComputeFn) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(config.idle_timeout);
    let _ = stream.set_write_timeout(config.idle_timeout);
    let mut session = Session::new(config.framing, config.max_n);
    let mut buffer = [0u8; 4096];
    loop {
        match session.next_action() {
            // Shutdown shuts the socket down for reading: the read returns what had arrived,
            // then end-of-file.
            Action::Read => match (&stream).read(&mut buffer) {
                Ok(0) => session.closed(),
                Ok(read) => session.received(&buffer[..read]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    session.idle(config.idle_timeout.unwrap_or_default());
                }
                Err(_) => session.closed(),
            },
            Action::Compute(n) => session.computed(compute(n)),
            Action::Write(bytes) => {
                if (&stream).write_all(bytes).is_err() {
                    return;
                }
                session.written();
            }
            Action::Close { linger } => {
                if linger {
                    linger_close(&stream);
                }
                return;
            }
        }
    }
}
