//! Seed 004's distributed master (`task_master.py`): put ten random numbers in the task queue,
//! then read ten results, on crew's cluster executor.
//!
//! ```python
//! manager = QueueManager(address=('', 5000), authkey=b'abc')
//! manager.start()
//! task = manager.get_task_queue(); result = manager.get_result_queue()
//! for i in range(10):
//!     n = random.randint(0, 10000)
//!     print('Put task %d...' % n)
//!     task.put(n)
//! print('Try get results...')
//! for i in range(10):
//!     r = result.get(timeout=10)
//!     print('Result: %s' % r)
//! manager.shutdown()
//! print('master exit.')
//! ```
//!
//! On one machine, with no argument: `Cluster::local(2)` starts a private `nats-server` (random
//! token, free loopback port) and two workers, and stops them at the end (without `nats-server`
//! it runs on a local process pool instead, and says so):
//!
//! ```text
//! cargo run -p crew --features cluster --example task_master
//! ```
//!
//! Across machines: start `nats-server -js --auth "$CREW_NATS_TOKEN"` on one, `task_worker URL`
//! on each worker machine, then `task_master URL` (the URL as an argument or `CREW_NATS_URL`,
//! the token in `CREW_NATS_TOKEN`, the seed's authkey). The queues live in the server, not in
//! the master: workers may start before or after it, and a task survives a worker's crash.

use std::time::{Duration, SystemTime};

use crew::cluster::{Cluster, ClusterOptions};
use crew::Executor;

/// The task of `task_worker.rs`, under the same stable name (two programs, one task).
#[crew::task(name = "seed004::square")]
fn square(n: u64) -> String {
    println!("run task {n} * {n}...");
    format!("{n} * {n} = {}", n * n)
}

/// `random.randint(0, 10000)`, ten times, from a seed of the clock (no dependency needed).
fn ten_random_numbers() -> Vec<u64> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut state = nanos | 1;
    (0..10)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 10_001
        })
        .collect()
}

fn main() {
    crew::init(); // the local workers run tasks in worker processes of this program
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CREW_NATS_URL").ok());
    let cluster = match &url {
        None => Cluster::local(2),
        Some(url) => {
            let Ok(token) = std::env::var("CREW_NATS_TOKEN") else {
                eprintln!("set CREW_NATS_TOKEN to the token of `nats-server -js --auth TOKEN`");
                std::process::exit(2);
            };
            Cluster::connect(ClusterOptions::new(url.as_str()).token(token))
        }
    };
    let cluster = cluster.unwrap_or_else(|error| {
        eprintln!("task_master: {error}");
        std::process::exit(1);
    });
    let mut results = Vec::new();
    for n in ten_random_numbers() {
        println!("Put task {n}...");
        results.push(cluster.submit(square, n).expect("submitting"));
    }
    println!("Try get results...");
    for result in results {
        match result.result_timeout(Duration::from_secs(10)) {
            Ok(r) => println!("Result: {r}"),
            Err(error) => {
                eprintln!("task_master: {error}");
                std::process::exit(1);
            }
        }
    }
    drop(cluster);
    println!("master exit.");
}
