//! What a row of the model table holds: the public description of a model ([`ModelInfo`],
//! [`Design`]) and, for the server, how to bind it ([`Spec`], [`Bound`]).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::ServeConfig;
use crate::shutdown::Shutdown;

/// What the lab knows about one model: its name, where it comes from, what it is compared with
/// and what its design allows. Read it with `Model::info`.
///
/// ```
/// use crew_lab::Model;
///
/// let info = Model::Single.info();
/// assert_eq!(info.name, "single");
/// assert_eq!(info.seed, Some("one_server"));
/// assert_eq!(info.python_peer, "one_server");
/// assert!(!info.design.concurrent_clients);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelInfo {
    /// The name on the command line (`crew serve --model NAME`) and in the benchmark's tables.
    pub name: &'static str,
    /// The seed 003 server this model answers, named as in the seed's results table
    /// (`one_server`, `thread_server`, `multiprocess_server`, `many_server`, `async_server`,
    /// `subinterpreters_server`), if there is one.
    pub seed: Option<&'static str>,
    /// The Python peer `crew bench` compares it with: a script in `peers/`, without `.py`.
    pub python_peer: &'static str,
    /// What its design allows.
    pub design: Design,
    /// For a model that serves through child processes (`reuseport`): the model the children
    /// run. Such a model needs [`ServeConfig::child_command`].
    pub children: Option<&'static str>,
}

/// What a model's design allows, so the benchmark holds it to a target only where it can meet
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Design {
    /// Serves several clients at once (`single` does not: a second client waits).
    pub concurrent_clients: bool,
    /// Computes the `fib` of several clients in parallel, on several cores (`gil` does not).
    pub parallel_compute: bool,
}

impl Design {
    /// Serves clients concurrently and computes in parallel.
    pub const PARALLEL: Design = Design {
        concurrent_clients: true,
        parallel_compute: true,
    };

    /// Whether the design lets the model keep up with a fully parallel server with `clients`
    /// clients, on the CPU-bound load (`cpu_bound`) or the I/O-bound one.
    ///
    /// ```
    /// use crew_lab::Model;
    ///
    /// let gil = Model::Gil.info().design;
    /// assert!(gil.allows(false, 4), "the GIL is released for I/O");
    /// assert!(!gil.allows(true, 2), "one core of fib, whatever the clients");
    /// assert!(Model::Threads.info().design.allows(true, 2));
    /// ```
    pub fn allows(self, cpu_bound: bool, clients: usize) -> bool {
        clients <= 1 || (self.concurrent_clients && (!cpu_bound || self.parallel_compute))
    }
}

/// Binds a model's socket(s) for [`ServeConfig`], ready to run.
pub(crate) type Bind = fn(SocketAddr, Arc<ServeConfig>) -> anyhow::Result<Bound>;

/// One row of the model table: the description, and how to bind the server.
#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) info: ModelInfo,
    pub(crate) bind: Bind,
}

/// The code that serves a bound model until the shutdown.
type Serve = Box<dyn FnOnce(&Shutdown) -> anyhow::Result<()> + Send>;

/// A model bound to its address: clients can connect (the kernel queues them) until it runs.
pub(crate) struct Bound {
    addr: SocketAddr,
    run: Serve,
}

impl Bound {
    /// Bound at `addr`; `run` serves until the shutdown is triggered.
    pub(crate) fn new(
        addr: SocketAddr,
        run: impl FnOnce(&Shutdown) -> anyhow::Result<()> + Send + 'static,
    ) -> Self {
        Self {
            addr,
            run: Box::new(run),
        }
    }

    /// The address clients connect to.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown`, then lets in-flight requests finish.
    pub(crate) fn run(self, shutdown: &Shutdown) -> anyhow::Result<()> {
        (self.run)(shutdown)
    }
}

impl fmt::Debug for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bound").field("addr", &self.addr).finish()
    }
}
