//! [`Server`]: one fib service bound to an address, run under one [`Model`].

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::bail;

use crate::config::ServeConfig;
use crate::fib::MAX_N;
use crate::models::spec::Bound;
use crate::models::Model;
use crate::shutdown::Shutdown;

/// A fib service bound to its address(es), ready to [`run`](Self::run).
///
/// ```no_run
/// use crew_lab::{Model, ServeConfig, Server, Shutdown};
///
/// let server = Server::bind(Model::Threads, "127.0.0.1:0".parse()?, ServeConfig::default())?;
/// println!("listening on {}", server.local_addr());
/// let shutdown = Shutdown::new();
/// shutdown.trigger_on_signals(std::time::Duration::from_secs(5))?;
/// server.run(&shutdown)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug)]
pub struct Server {
    model: Model,
    bound: Bound,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) for `model`. A model with child processes
    /// ([`ModelInfo::children`](crate::ModelInfo::children)) starts them here: once this
    /// returns, clients can connect.
    ///
    /// # Errors
    /// A `max_n` above [`MAX_N`], no connections allowed, a missing child command for a model
    /// with child processes, or the operating system's bind error.
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
        let bound = (model.spec().bind)(addr, Arc::new(config))?;
        Ok(Server { model, bound })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.bound.addr()
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
        self.bound.run(shutdown)
    }

    /// Runs the server on a background thread (for tests and in-process benchmarks).
    ///
    /// # Errors
    /// If the thread cannot be started.
    pub fn spawn(self) -> anyhow::Result<RunningServer> {
        let shutdown = Shutdown::new();
        let addr = self.local_addr();
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
