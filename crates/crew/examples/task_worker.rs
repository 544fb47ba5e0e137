//! Seed 004's distributed worker (`task_worker.py`): connect to the server, take tasks, put
//! results; on crew's cluster executor.
//!
//! ```python
//! m = QueueManager(address=(server_addr, 5000), authkey=b'abc')
//! m.connect()
//! task = m.get_task_queue(); result = m.get_result_queue()
//! for i in range(10):
//!     n = task.get(timeout=1)
//!     print('run task %d * %d...' % (n, n))
//!     r = '%d * %d = %d' % (n, n, n*n)
//!     time.sleep(1)
//!     result.put(r)
//! print('worker exit.')
//! ```
//!
//! ```text
//! CREW_NATS_TOKEN=... cargo run -p crew --features cluster --example task_worker -- nats://10.0.0.1:4222
//! ```
//!
//! The URL is the argument or `CREW_NATS_URL`, the token `CREW_NATS_TOKEN`. Unlike the seed's
//! worker, which stops after ten tasks, this one serves until SIGTERM or Ctrl-C, then finishes
//! the task it holds and exits (the seed's one-second nap is left out). A task crashing in it
//! kills only the worker process running it; the task runs again.

use crew::cluster::{serve_worker, ClusterOptions, WorkerOptions};

/// The task of `task_master.rs`, under the same stable name.
#[crew::task(name = "seed004::square")]
fn square(n: u64) -> String {
    println!("run task {n} * {n}...");
    format!("{n} * {n} = {}", n * n)
}

fn main() {
    crew::init(); // tasks run in worker processes of this program
    let Some(url) = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CREW_NATS_URL").ok())
    else {
        eprintln!("usage: task_worker nats://HOST:4222 (or set CREW_NATS_URL)");
        std::process::exit(2);
    };
    let Ok(token) = std::env::var("CREW_NATS_TOKEN") else {
        eprintln!("set CREW_NATS_TOKEN to the token of `nats-server -js --auth TOKEN`");
        std::process::exit(2);
    };
    println!("Connect to server {url}...");
    let options = ClusterOptions::new(url.as_str()).token(token);
    match serve_worker(WorkerOptions::new(options).concurrency(1)) {
        Ok(report) => println!("worker exit. ({} tasks)", report.tasks_done),
        Err(error) => {
            eprintln!("task_worker: {error}");
            std::process::exit(1);
        }
    }
}
