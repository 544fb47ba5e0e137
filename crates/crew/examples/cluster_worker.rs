//! A cluster worker serving the tasks of this program only (`cluster_worker::square` and
//! `demo::changed`): another program's tasks are unknown here, which the cluster tests use.
//!
//! ```sh
//! nats-server -js --auth s3cret &
//! cargo run -p crew --features cluster --example cluster_worker -- nats://127.0.0.1:4222 s3cret
//! ```

use crew::cluster::{serve_worker, ClusterOptions, WorkerOptions};

#[crew::task]
fn square(n: u64) -> u64 {
    n * n
}

/// Registered under a name another program may use with other types.
#[crew::task(name = "demo::changed")]
fn changed(n: u32) -> u32 {
    n + 1
}

fn main() {
    crew::init();
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: cluster_worker NATS_URL [TOKEN]");
        std::process::exit(2);
    };
    let mut options = ClusterOptions::new(url);
    if let Some(token) = args.next() {
        options = options.token(token);
    }
    match serve_worker(WorkerOptions::new(options).concurrency(1)) {
        Ok(report) => eprintln!("cluster_worker: {report:?}"),
        Err(error) => {
            eprintln!("cluster_worker: {error}");
            std::process::exit(1);
        }
    }
}
