//! `process-pool`: a thread per connection, `fib` computed in crew's [`crew::ProcessPool`]
//! (seed 003's multiprocess_server). The connection threads are the `threads` model's; only the
//! computing differs. Worker processes are this executable started again, entered through
//! `crew::init()` at the top of the `crew` binary's `main`.

use std::sync::Arc;

use crew::Executor;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::conn::Compute;
use super::spec::{Design, ModelInfo, Spec};
use super::threads::bind_with;
use crate::config::ServeConfig;
use crate::shutdown::Shutdown;

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
/// The pool is dropped, so its workers are stopped and reaped, before the server returns; a
/// forced shutdown kills them and reaps them before the process exits.
fn compute(config: &ServeConfig, shutdown: &Shutdown) -> anyhow::Result<Compute> {
    let pool = crew::ProcessPool::builder()
        .max_workers(config.workers_or_cpus())
        .build()
        .map_err(|error| anyhow::anyhow!("cannot start the process pool: {error}"))?;
    let pool = Arc::new(pool);
    let weak = Arc::downgrade(&pool);
    shutdown.on_force(move || {
        if let Some(pool) = weak.upgrade() {
            pool.shutdown(false, true);
            for pid in pool.worker_pids() {
                if let Ok(pid) = i32::try_from(pid) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            pool.shutdown(true, true);
        }
    });
    Ok(Arc::new(move |n| {
        pool.submit(fib_task, n)
            .map_err(|error| format!("server cannot compute now: {error}"))?
            .result()
            .map_err(|error| format!("server failed to compute: {error}"))
    }))
}
