//! The fib-service lab: the same TCP service under every concurrency model and a load generator,
//! behind `crew serve` and `crew perf` (the benchmark `crew bench` lives in `crew-bench`).
//!
//! Seed 003 serves `fib(n)` over TCP as one_server, thread_server, multiprocess_server,
//! many_server and async_server and counts requests/sec with its perf2 client. Here each model is
//! a small module over crew's own pools ([`Model`]) and [`perf`] is the load generator (closed or
//! open loop, HDR latency, every reply verified).
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

pub mod fib;
mod models;
pub mod perf;
pub mod protocol;
mod server;
mod shutdown;

pub use server::{bind_listener, cpus, ChildCommand, Model, RunningServer, ServeConfig, Server};
pub use shutdown::Shutdown;

/// Exits this process when its parent dies (for child servers started by `reuseport` and by
/// `crew bench`, so none outlives a killed parent).
///
/// # Errors
/// If the kernel refuses `PR_SET_PDEATHSIG`.
pub fn die_with_parent() -> std::io::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(std::io::Error::from)
}
