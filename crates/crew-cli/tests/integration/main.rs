//! This crate's integration tests as one test binary (each module was a file of its own under
//! `tests/`): every test binary is compiled and linked against the whole dependency tree on its
//! own, which made up much of the suite's time. One module: `cargo test --test integration NAME::`.

mod bench_pool;
mod lab_bench;
mod lab_perf;
mod lab_serve;
mod run_cli;
mod run_injection;
mod run_parity;
mod support;
