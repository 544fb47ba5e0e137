//! [`ServeConfig`]: the settings every model is served with.

use std::fmt;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::fib::DEFAULT_MAX_N;
use crate::limit::SharedLimit;
use crate::protocol::Framing;

/// Builds the command that starts one child process of a model that has children (see
/// `ModelInfo::children`) serving on the given address: a server
/// of the child model, binding with `SO_REUSEPORT`, that prints `listening on ADDR` when ready.
pub type ChildCommand = Arc<dyn Fn(SocketAddr) -> Command + Send + Sync>;

/// Settings shared by every model.
#[derive(Clone)]
pub struct ServeConfig {
    /// How requests are delimited.
    pub framing: Framing,
    /// The largest `n` served; at most [`MAX_N`](crate::fib::MAX_N).
    pub max_n: u32,
    /// Close a connection idle this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Refuse clients beyond this many open connections with an `error:` line.
    pub max_connections: usize,
    /// A limit shared with other processes (a `reuseport` child's, from
    /// [`SharedLimit::inherited`]): a connection is admitted only with a slot of it too.
    /// Honoured by the blocking models, which `reuseport`'s children run.
    pub shared_limit: Option<Arc<SharedLimit>>,
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
            shared_limit: None,
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
            .field("shared_limit", &self.shared_limit)
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
