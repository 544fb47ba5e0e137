//! The fib-service lab: the same TCP service under every concurrency model and a load generator,
//! behind `crew serve` and `crew perf` (the benchmark `crew bench` lives in `crew-bench`).
//!
//! Seed 003 serves `fib(n)` over TCP as one_server, thread_server, multiprocess_server,
//! many_server and async_server and counts requests/sec with its perf2 client. Here each model is
//! a small module over crew's own pools with one row in the model table ([`Model`],
//! [`ModelInfo`]); [`session`] is the protocol of one connection, for the blocking and the async
//! servers alike; [`perf`] is the load generator (closed or open loop, HDR latency, every reply
//! verified). The benchmark driver that runs every model against its peers is the crew-bench crate.
//!
//! ```no_run
//! use crew_lab::{perf, Model, ServeConfig, Server};
//!
//! let server = Server::bind(Model::Pool, "127.0.0.1:0".parse()?, ServeConfig::default())?.spawn()?;
//! let report = perf::run(&perf::PerfConfig::new(server.addr(), 2, 25), None)?;
//! println!("{:.0} requests/sec, p99 {} µs", report.rps, report.latency_us.p99);
//! server.stop()?;
//! # Ok::<(), anyhow::Error>(())
//! ```

mod config;
pub mod fib;
pub mod limit;
mod listen;
mod models;
pub mod perf;
pub mod protocol;
mod server;
pub mod session;
mod shutdown;

pub use config::{cpus, ChildCommand, ServeConfig};
pub use limit::SharedLimit;
pub use listen::bind_listener;
pub use models::spec::{Design, ModelInfo};
pub use models::Model;
pub use server::{RunningServer, Server};
pub use shutdown::Shutdown;

/// Exits this process when its parent dies (for child servers started by `reuseport` and by
/// `crew bench`, so none outlives a killed parent).
///
/// # Errors
/// If the kernel refuses `PR_SET_PDEATHSIG`.
pub fn die_with_parent() -> std::io::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(std::io::Error::from)
}
