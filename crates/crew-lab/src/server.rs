//! [`Server`]: one fib service bound to an address, run under one [`Model`].

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::fib::{DEFAULT_MAX_N, MAX_N};
use crate::models;
use crate::protocol::Framing;
use crate::Shutdown;

/// A concurrency model: how the service spreads connections and `fib` over threads,
/// processes and event loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Model {
    /// One thread, one client at a time: a second client waits (seed: one_server).
    Single,
    /// A thread per connection (seed: thread_server).
    Threads,
    /// Connections served by a fixed [`crew::ThreadPool`].
    Pool,
    /// A thread per connection with `fib` in crew's process pool (seed: multiprocess_server).
    /// Pending: lands with the process pool.
    ProcessPool,
    /// N processes, each accepting on the same port with `SO_REUSEPORT` (seed: many_server).
    Reuseport,
    /// A tokio multi-thread runtime computing `fib` inline (seed: async_server).
    Async,
    /// tokio for I/O, `fib` above a threshold offloaded to a crew pool and awaited.
    AsyncOffload,
    /// Thread-per-core: each thread its own current-thread runtime and `SO_REUSEPORT` listener.
    Shards,
    /// Threads whose `fib` holds one global lock, reproducing CPython's GIL.
    Gil,
    /// No work at all (replies from a table): the loopback limit for the load generator.
    LoopbackLimit,
}

impl Model {
    /// Every crew model, in the order the benchmark shows them (without the loopback limit).
    pub const CREW: [Model; 9] = [
        Model::Single,
        Model::Threads,
        Model::Pool,
        Model::ProcessPool,
        Model::Reuseport,
        Model::Async,
        Model::AsyncOffload,
        Model::Shards,
        Model::Gil,
    ];

    /// The name used on the command line (`crew serve --model NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Model::Single => "single",
            Model::Threads => "threads",
            Model::Pool => "pool",
            Model::ProcessPool => "process-pool",
            Model::Reuseport => "reuseport",
            Model::Async => "async",
            Model::AsyncOffload => "async-offload",
            Model::Shards => "shards",
            Model::Gil => "gil",
            Model::LoopbackLimit => "loopback-limit",
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Model::CREW
            .into_iter()
            .chain([Model::LoopbackLimit])
            .find(|model| model.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Model::CREW.iter().map(|m| m.name()).collect();
                format!("unknown model `{s}`: use one of {}", names.join(", "))
            })
    }
}

/// Builds the command that starts one `reuseport` child serving on the given address: a
/// `threads` server binding with `SO_REUSEPORT` that prints `listening on ADDR` when ready.
pub type ChildCommand = Arc<dyn Fn(SocketAddr) -> Command + Send + Sync>;

/// Settings shared by every model.
#[derive(Clone)]
pub struct ServeConfig {
    /// How requests are delimited.
    pub framing: Framing,
    /// The largest `n` served; at most [`MAX_N`].
    pub max_n: u32,
    /// Close a connection idle this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Refuse clients beyond this many open connections with an `error:` line.
    pub max_connections: usize,
    /// Threads, processes or shards (0: one per CPU; the `pool` model uses 16 by default).
    pub workers: usize,
    /// `async-offload`: `n` at or above this goes to the crew pool.
    pub offload_threshold: u32,
    /// Bind with `SO_REUSEPORT` (how `reuseport` children share one port).
    pub reuse_port: bool,
    /// `reuseport`: how to start a child process.
    pub child_command: Option<ChildCommand>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            framing: Framing::Line,
            max_n: DEFAULT_MAX_N,
            idle_timeout: Some(Duration::from_secs(60)),
            max_connections: 1024,
            workers: 0,
            offload_threshold: 15,
            reuse_port: false,
            child_command: None,
        }
    }
}

impl fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConfig")
            .field("framing", &self.framing)
            .field("max_n", &self.max_n)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("workers", &self.workers)
            .field("offload_threshold", &self.offload_threshold)
            .field("reuse_port", &self.reuse_port)
            .field("child_command", &self.child_command.is_some())
            .finish()
    }
}

impl ServeConfig {
    /// `workers`, or one per CPU when 0.
    pub fn workers_or_cpus(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            cpus()
        }
    }
}

/// The number of CPUs available to this process.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A fib service bound to its address(es), ready to [`run`](Self::run).
///
/// ```no_run
/// use crew_lab::{Model, ServeConfig, Server, Shutdown};
///
/// let server = Server::bind(Model::Threads, "127.0.0.1:0".parse()?, ServeConfig::default())?;
/// println!("listening on {}", server.local_addr());
/// let shutdown = Shutdown::new();
/// shutdown.trigger_on_signals()?;
/// server.run(&shutdown)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug)]
pub struct Server {
    pub(crate) model: Model,
    pub(crate) config: Arc<ServeConfig>,
    pub(crate) addr: SocketAddr,
    pub(crate) listeners: Vec<TcpListener>,
    /// `reuseport`: the port held (bound, not listening) while children start.
    pub(crate) reserved: Option<Socket>,
    /// `reuseport`: the children, already listening.
    pub(crate) children: Option<models::reuseport::Children>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) for `model`.
    ///
    /// # Errors
    /// A `max_n` above [`MAX_N`], a missing child command for `reuseport`, or
    /// the operating system's bind error.
    pub fn bind(model: Model, addr: SocketAddr, config: ServeConfig) -> anyhow::Result<Server> {
        if config.max_n > MAX_N {
            bail!(
                "--max-n {} is above {MAX_N}, the largest n whose fib(n) fits exactly",
                config.max_n
            );
        }
        if config.max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        let mut server = Server {
            model,
            addr,
            listeners: Vec::new(),
            reserved: None,
            children: None,
            config: Arc::new(config),
        };
        match model {
            Model::Shards => {
                let first = bind_listener(addr, true)?;
                let addr = first.local_addr()?;
                server.listeners.push(first);
                for _ in 1..server.config.workers_or_cpus() {
                    server.listeners.push(bind_listener(addr, true)?);
                }
            }
            Model::Reuseport => {
                if server.config.child_command.is_none() {
                    bail!("the reuseport model needs a command to start its child processes");
                }
                let socket = reuse_port_socket(addr)?;
                server.addr = socket
                    .local_addr()?
                    .as_socket()
                    .context("bound socket has no IP address")?;
                server.reserved = Some(socket);
                server.children = Some(models::reuseport::start_children(
                    server.addr,
                    &server.config,
                )?);
                return Ok(server);
            }
            _ => {
                let listener = bind_listener(addr, server.config.reuse_port)?;
                server.listeners.push(listener);
            }
        }
        server.addr = server.listeners[0].local_addr()?;
        Ok(server)
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The model this server runs.
    pub fn model(&self) -> Model {
        self.model
    }

    /// Serves until `shutdown` is triggered, then stops accepting, lets in-flight requests
    /// finish and returns.
    ///
    /// # Errors
    /// If the model cannot start its threads, runtime or child processes.
    pub fn run(self, shutdown: &Shutdown) -> anyhow::Result<()> {
        models::run(self, shutdown)
    }

    /// Runs the server on a background thread (for tests and in-process benchmarks).
    ///
    /// # Errors
    /// If the thread cannot be started.
    pub fn spawn(self) -> anyhow::Result<RunningServer> {
        let shutdown = Shutdown::new();
        let addr = self.addr;
        let token = shutdown.clone();
        let handle =
            crew::thread::spawn(format!("crew-lab-{}", self.model), move || self.run(&token))?;
        Ok(RunningServer {
            addr,
            shutdown,
            handle: Some(handle),
        })
    }
}

/// A server running on a background thread; dropping it shuts it down and waits.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: Shutdown,
    handle: Option<crew::TaskHandle<anyhow::Result<()>>>,
}

impl RunningServer {
    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Triggers a graceful shutdown and waits for the server to finish.
    ///
    /// # Errors
    /// What the server returned, or a panic in it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        match self.handle.take() {
            Some(handle) => handle
                .result()
                .map_err(|error| anyhow::anyhow!("server thread failed: {error}"))?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

fn reuse_port_socket(addr: SocketAddr) -> anyhow::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket
        .bind(&SockAddr::from(addr))
        .with_context(|| format!("cannot bind {addr}"))?;
    Ok(socket)
}

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
