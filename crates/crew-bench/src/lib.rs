//! crew's benchmarks: every driver and peer behind `crew bench`, on one [`harness`].
//!
//! Each benchmark is one module that lists what it measures and renders its tables; the
//! [`harness`] does the rest the same way for all of them (interleaved rounds in rotating order,
//! medians, "not available (reason)", verdicts, JSON rows) and [`chart`] draws the SVG.
//!
//! | module | `crew bench ...` | compares |
//! |---|---|---|
//! | [`lab`] | (none) | the fib-service models against Python, Go and the loopback limit |
//! | [`pool`] | `pool` | crew's pools against crossbeam, rayon, procspawn and Python's pools |
//! | [`run`] | `run` | `crew run` against `xargs -P` and GNU parallel |
//! | [`cluster`] | `cluster` | crew's NATS cluster against `multiprocessing.managers`, Ray and Dask |
//! | [`actors`] | `actors` | crew's actors on a thread and in a process against xoscar and Ray |
//!
//! A new benchmark (`cluster`, `actors`) is one more module of the same shape: a key type and a
//! [`harness::Sample`] type, a list of [`harness::Measurement`]s, a table, and one line of clap
//! wiring in `crew-cli`.
//!
//! Peers that must run in a process of their own and cannot be a script (procspawn, which
//! re-executes the current binary, and the loopback-limit server) are [`peer`]s: the binary
//! that runs the benchmark hosts them behind a hidden subcommand, so neither the `crew` library
//! nor the binary's start-up does any work for them unless a benchmark starts one.

pub mod actors;
pub mod chart;
pub mod cluster;
pub mod harness;
pub mod lab;
// Finding or installing a nats-server, shared with the tests that start one.
#[path = "../../crew/tests/support/nats_server.rs"]
mod nats_server;
pub mod peer;
pub mod pool;
pub mod run;

/// Builds the command that runs [`peer::main`] with the given arguments in a new process of
/// the hosting binary (for `crew`: `crew bench peer ARGS...`).
pub type PeerCommand = std::sync::Arc<dyn Fn(&[&str]) -> std::process::Command + Send + Sync>;

/// The global allocator of every binary that links the benchmarks (the `crew` binary): the
/// in-process rows of `crew bench pool` (crew's thread pool, crossbeam, rayon) share it.
///
/// Measured on the 2-core machine under load (`crew bench pool --quick --only
/// crew-threads,crossbeam,rayon --repeat 5`, three runs of each build alternated): with glibc's
/// malloc, crew's thread `submit` fell to 0.45x of its mimalloc figure (1.9M against 4.1M
/// tasks/s: every task's handle is allocated by the submitter and freed by a worker, which
/// glibc's per-thread arenas handle badly), while crossbeam, rayon and the `map` rows did not
/// move beyond the noise (0.8x to 1.6x either way), nor did the servers of `crew bench`
/// (`crew serve` children, same binary). So mimalloc stays: it is the allocator crew's users
/// are advised to pick for submit-heavy work, and the README shows the glibc figure too.
#[global_allocator]
pub static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
