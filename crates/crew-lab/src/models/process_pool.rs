//! `process-pool`: every `fib` computed in a worker process of crew's [`crew::ProcessPool`]
//! (seed 003's multiprocess_server). Worker processes are this executable started again,
//! entered through `crew::init()` at the top of the `crew` binary's `main`.
//!
//! **Front end.** Connections are served by the `shards` front end: one thread per worker,
//! each running a current-thread tokio runtime on its own `SO_REUSEPORT` listener (a busier
//! shard hands a new connection to an idler one). A shard's requests wait in its [`Batch`];
//! the first one to arrive drives it: after letting the shard's other ready connections add
//! theirs, it sends every waiting `n` to the pool as one task ([`fib_batch`], each `fib`
//! computed in the worker) and blocks on it, so the shard's thread reads the reply off the
//! worker's socket itself (the pool's lead path). A shard has at most one call in flight, so
//! the pool's `W` workers serve `W` shards without a queue, and the CPU-bound case still keeps
//! every worker busy (each shard always has a call out while its clients wait).
//!
//! *Why not a thread per connection* (the seed's design, this model's before issue 11): a
//! request then costs the server three or four thread wake-ups (the connection's thread for
//! the request, the worker for the call, the connection's thread for the reply, and the
//! slot's thread when more connections than workers queue their calls) where Go's server,
//! whose netpoller serves many goroutines per wake-up, needs under one; on the 2-core machine
//! at 2 and 4 clients every wake-up costs CPU the load generator needs. With shards a thread
//! that has a connection ready does not sleep, and requests that arrive together share a
//! round trip to a worker (see the README's lab section for the measurements).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crew::Executor;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::aio::Compute;
use super::shards::ShardLoad;
use super::spec::{Bound, Design, ModelInfo, Spec};
use crate::config::ServeConfig;
use crate::listen::bind_listeners;
use crate::shutdown::Shutdown;

pub(super) const MODEL: Spec = Spec {
    info: ModelInfo {
        name: "process-pool",
        seed: Some("multiprocess_server"),
        python_peer: "multiprocess_server",
        design: Design::PARALLEL,
        children: None,
    },
    bind: |addr, config| {
        let listeners = bind_listeners(addr, config.workers_or_cpus())?;
        let addr = listeners[0].local_addr()?;
        Ok(Bound::new(addr, move |shutdown| {
            let pool = start_pool(&config, shutdown)?;
            let served = super::shards::run(
                listeners,
                config,
                shutdown,
                "crew-lab-pool-shard",
                |load| Compute::Batch(Arc::new(Batch::new(pool.clone(), load))),
            );
            // The shards are done (their runtimes dropped): this is the pool's last handle, so
            // its workers are stopped and reaped before the server returns.
            drop(pool);
            served
        }))
    },
};

/// The `fib` of every `n` of a batch, in order, computed in a worker process.
#[crew::task]
pub(crate) fn fib_batch(ns: Vec<u32>) -> Vec<u64> {
    ns.into_iter().map(crate::fib::fib).collect()
}

/// A process pool of `--workers` processes (one per CPU by default). A forced shutdown kills
/// its workers and reaps them before the process exits.
fn start_pool(config: &ServeConfig, shutdown: &Shutdown) -> anyhow::Result<Arc<crew::ProcessPool>> {
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
    Ok(pool)
}

type Reply = oneshot::Sender<Result<u64, String>>;

/// One shard's requests waiting for a worker (see the module note). Used by the tasks of one
/// current-thread runtime only, so one of them drives it at a time and none runs meanwhile.
pub(crate) struct Batch {
    pool: Arc<crew::ProcessPool>,
    /// The shard's connections: with one, nobody else can join a call.
    load: ShardLoad,
    waiting: Mutex<Vec<(u32, Reply)>>,
    /// A task is driving the batch: requests added now go with its call.
    driven: AtomicBool,
}

impl Batch {
    fn new(pool: Arc<crew::ProcessPool>, load: ShardLoad) -> Self {
        Self {
            pool,
            load,
            waiting: Mutex::new(Vec::new()),
            driven: AtomicBool::new(false),
        }
    }

    /// `fib(n)`, computed in a worker process with the other requests waiting in this shard.
    /// A failed call (a worker that died, a shut-down pool) fails every request it carried,
    /// each with its own `error:` line.
    pub(crate) async fn compute(&self, n: u32) -> Result<u64, String> {
        let (reply, answer) = oneshot::channel();
        self.waiting.lock().push((n, reply));
        if !self.driven.swap(true, Ordering::SeqCst) {
            let driver = Driver(self);
            if self.load.connections() > 1 {
                // The shard's other connections that are ready now (or whose data arrived
                // meanwhile: the runtime polls its sockets before it resumes this task) add
                // their requests first, so they share this call. (Alone, the look at the
                // sockets is a system call for nothing.)
                tokio::task::yield_now().await;
            }
            driver.call();
        }
        answer
            .await
            .unwrap_or_else(|_| Err("server failed to compute: the server is stopping".into()))
    }
}

/// The task driving a [`Batch`]. Dropped before its call (its runtime is going away), it
/// lets the batch be driven again and fails what waits.
struct Driver<'a>(&'a Batch);

impl Driver<'_> {
    /// Sends every waiting request as one call and blocks for its reply: the shard has nothing
    /// else to do that would not wait for a worker too, and a caller blocked on a call handed
    /// to an idle worker reads the reply itself, with one wake-up fewer.
    fn call(self) {
        let batch = self.0;
        let waiting = std::mem::take(&mut *batch.waiting.lock());
        let ns: Vec<u32> = waiting.iter().map(|&(n, _)| n).collect();
        let result = batch
            .pool
            .submit(fib_batch, ns)
            .map_err(|error| format!("server cannot compute now: {error}"))
            .and_then(|handle| {
                handle
                    .result()
                    .map_err(|error| format!("server failed to compute: {error}"))
            });
        match result {
            Ok(values) if values.len() == waiting.len() => {
                for ((_, reply), value) in waiting.into_iter().zip(values) {
                    let _ = reply.send(Ok(value));
                }
            }
            Ok(values) => {
                let error = format!(
                    "server failed to compute: {} results for {} requests",
                    values.len(),
                    waiting.len()
                );
                for (_, reply) in waiting {
                    let _ = reply.send(Err(error.clone()));
                }
            }
            Err(error) => {
                for (_, reply) in waiting {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
        // (`Drop` lets the batch be driven again.)
    }
}

impl Drop for Driver<'_> {
    fn drop(&mut self) {
        // Requests still waiting had no call: their replies are dropped (an `error:` line
        // each) rather than left waiting for a driver that will not come.
        drop(std::mem::take(&mut *self.0.waiting.lock()));
        self.0.driven.store(false, Ordering::SeqCst);
    }
}
