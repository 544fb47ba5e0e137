//! The async side: the accept loop and the per-connection driver shared by `async`,
//! `async-offload` and `shards`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::ServeConfig;
use crate::fib::fib;
use crate::protocol;
use crate::session::{Action, Session};
use crate::shutdown::Shutdown;

/// Where `fib` runs: inline on the event loop, or on a crew pool above a threshold.
#[derive(Clone)]
pub(crate) enum Compute {
    Inline,
    Offload {
        pool: Arc<crew::ThreadPool>,
        threshold: u32,
    },
}

/// `shards`: evens out connections when the kernel's `SO_REUSEPORT` hash puts two of a few
/// connections on the same shard. Each shard counts its connections; a shard that accepts a
/// connection while another has fewer hands the socket over (the only thing shards share).
pub(crate) struct Balancer {
    pub(crate) index: usize,
    pub(crate) counts: Arc<Vec<AtomicUsize>>,
    pub(crate) senders: Vec<mpsc::UnboundedSender<std::net::TcpStream>>,
    pub(crate) receiver: mpsc::UnboundedReceiver<std::net::TcpStream>,
}

impl Balancer {
    /// The shard that should take a new connection: this one unless another has fewer.
    fn target(&self) -> usize {
        let mine = self.counts[self.index].load(Ordering::SeqCst);
        let (best, count) = self
            .counts
            .iter()
            .enumerate()
            .map(|(index, count)| (index, count.load(Ordering::SeqCst)))
            .min_by_key(|&(index, count)| (count, index != self.index))
            .unwrap_or((self.index, mine));
        if count < mine {
            best
        } else {
            self.index
        }
    }
}

/// Accepts until shutdown, then waits for the connections it spawned to finish.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    config: Arc<ServeConfig>,
    compute: Compute,
    open: Arc<AtomicUsize>,
    shutdown: Shutdown,
    mut balancer: Option<Balancer>,
) {
    let mut tasks = JoinSet::new();
    loop {
        let handed_off = async {
            match balancer.as_mut() {
                Some(balancer) => balancer.receiver.recv().await,
                None => std::future::pending().await,
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted.map(|(stream, _)| (stream, true)),
            Some(stream) = handed_off => TcpStream::from_std(stream).map(|stream| (stream, false)),
            () = shutdown.wait() => break,
        };
        while tasks.try_join_next().is_some() {}
        let Ok((mut stream, fresh)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        if fresh {
            if open.fetch_add(1, Ordering::SeqCst) >= config.max_connections {
                open.fetch_sub(1, Ordering::SeqCst);
                let line = protocol::busy_line(config.max_connections);
                tasks.spawn(async move {
                    let _ = stream.write_all(&line).await;
                    linger_close(&mut stream).await;
                });
                continue;
            }
            if let Some(balancer) = &balancer {
                let target = balancer.target();
                if target != balancer.index {
                    // Counted at the target now, so the next accept sees it.
                    balancer.counts[target].fetch_add(1, Ordering::SeqCst);
                    let sent = stream
                        .into_std()
                        .map(|stream| balancer.senders[target].send(stream));
                    if !matches!(sent, Ok(Ok(()))) {
                        balancer.counts[target].fetch_sub(1, Ordering::SeqCst);
                        open.fetch_sub(1, Ordering::SeqCst);
                    }
                    continue;
                }
                balancer.counts[balancer.index].fetch_add(1, Ordering::SeqCst);
            }
        }
        let guard = OpenGuard(open.clone());
        let shard_guard = balancer
            .as_ref()
            .map(|b| ShardGuard(b.counts.clone(), b.index));
        let (config, compute, shutdown) = (config.clone(), compute.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut stream = stream;
            let linger = serve_connection(&mut stream, &config, &compute, &shutdown).await;
            // The slot is free before the client can see the close, so a client that
            // reconnects as soon as it sees it is never refused for its own old connection.
            drop((guard, shard_guard));
            if linger {
                linger_close(&mut stream).await;
            }
        });
    }
    drop(listener);
    // Connections handed to this shard after it stopped are dropped, hence closed.
    drop(balancer);
    while tasks.join_next().await.is_some() {}
}

struct ShardGuard(Arc<Vec<AtomicUsize>>, usize);

impl Drop for ShardGuard {
    fn drop(&mut self) {
        self.0[self.1].fetch_sub(1, Ordering::SeqCst);
    }
}

struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The async driver of the protocol's [`Session`]: the twin of [`super::conn::serve_connection`],
/// with each read raced against the idle timeout and the shutdown. Leaves the stream open for
/// the caller, who releases the connection's slot before closing it; returns whether to
/// [`linger_close`] (after a final `error:` line).
async fn serve_connection(
    stream: &mut TcpStream,
    config: &ServeConfig,
    compute: &Compute,
    shutdown: &Shutdown,
) -> bool {
    let _ = stream.set_nodelay(true);
    let mut session = Session::new(config.framing, config.max_n);
    let mut buffer = [0u8; 4096];
    loop {
        match session.next_action() {
            Action::Read => {
                let read = async {
                    match config.idle_timeout {
                        Some(idle) => tokio::time::timeout(idle, stream.read(&mut buffer))
                            .await
                            .ok(),
                        None => Some(stream.read(&mut buffer).await),
                    }
                };
                let event = tokio::select! {
                    read = read => Some(read),
                    () = shutdown.wait() => None,
                };
                match event {
                    Some(Some(Ok(0) | Err(_))) => session.closed(),
                    Some(Some(Ok(read))) => session.received(&buffer[..read]),
                    Some(None) => session.idle(config.idle_timeout.unwrap_or_default()),
                    // Shutting down: answer what already arrived, then close. (A direct
                    // non-blocking read: tokio's readiness may not know yet about data that
                    // arrived just now.)
                    None => {
                        let socket = socket2::SockRef::from(&*stream);
                        if let Ok(read @ 1..) = std::io::Read::read(&mut &*socket, &mut buffer) {
                            session.received(&buffer[..read]);
                        }
                        session.shutting_down();
                    }
                }
            }
            Action::Compute(n) => session.computed(compute_fib(compute, n).await),
            Action::Write(bytes) => {
                if stream.write_all(bytes).await.is_err() {
                    return false;
                }
                session.written();
            }
            Action::Close { linger } => return linger,
        }
    }
}

/// Closes our side, then waits briefly for the client's close, so the last (error) line is not
/// lost to a reset: the async twin of [`super::conn::linger_close`].
async fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 256];
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        stream.read(&mut sink),
    )
    .await;
}

async fn compute_fib(compute: &Compute, n: u32) -> Result<u64, String> {
    match compute {
        Compute::Offload { pool, threshold } if n >= *threshold => {
            let handle = pool
                .spawn(move || fib(n))
                .map_err(|error| format!("server cannot compute now: {error}"))?;
            handle
                .await
                .map_err(|error| format!("server failed to compute: {error}"))
        }
        _ => Ok(fib(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balancer(index: usize, counts: &[usize]) -> Balancer {
        let (sender, receiver) = mpsc::unbounded_channel();
        Balancer {
            index,
            counts: Arc::new(counts.iter().map(|&c| AtomicUsize::new(c)).collect()),
            senders: vec![sender; counts.len()],
            receiver,
        }
    }

    #[test]
    fn a_busier_shard_hands_over_to_the_idlest() {
        assert_eq!(balancer(0, &[1, 0]).target(), 1);
        assert_eq!(balancer(0, &[3, 2, 1]).target(), 2);
        assert_eq!(balancer(1, &[0, 0]).target(), 1, "ties stay local");
        assert_eq!(balancer(0, &[1, 1]).target(), 0);
        assert_eq!(balancer(2, &[2, 4, 2]).target(), 2);
    }
}
