//! `process-pool`: a thread per connection, `fib` computed in crew's [`crew::ProcessPool`]
//! (seed 003's multiprocess_server). The connection threads are the `threads` model's; only the
//! computing differs. Worker processes are this executable started again, entered through
//! `crew::init()` at the top of the `crew` binary's `main`.

use std::sync::Arc;

use crew::Executor;

use super::conn::Compute;
use super::spec::{Design, ModelInfo, Spec};
use super::threads::bind_with;
use crate::config::ServeConfig;

pub(super) const MODEL: Spec = Spec {
    info: ModelInfo {
        name: "process-pool",
        seed: Some("multiprocess_server"),
        python_peer: "multiprocess_server",
        design: Design::PARALLEL,
        children: None,
    },
    bind: |addr, config| bind_with(addr, config, compute),
};

/// `fib` as a task a worker process can run by name.
#[crew::task]
pub(crate) fn fib_task(n: u32) -> u64 {
    crate::fib::fib(n)
}

/// A process pool of `--workers` processes (one per CPU by default), asked for every reply.
/// A failed task (a worker that died, a shut-down pool) becomes that request's `error:` line.
fn compute(config: &ServeConfig) -> anyhow::Result<Compute> {
    let pool = crew::ProcessPool::builder()
        .max_workers(config.workers_or_cpus())
        .build()
        .map_err(|error| anyhow::anyhow!("cannot start the process pool: {error}"))?;
    let pool = Arc::new(pool);
    Ok(Arc::new(move |n| {
        pool.submit(fib_task, n)
            .map_err(|error| format!("server cannot compute now: {error}"))?
            .result()
            .map_err(|error| format!("server failed to compute: {error}"))
    }))
}
