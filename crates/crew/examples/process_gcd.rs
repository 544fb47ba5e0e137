//! Seed 002's gcd: serial, a thread pool, and a process pool. Moving from threads to processes
//! is the one-line change the seed talks about ("只需修改一行"):
//!
//! ```text
//! let pool = ThreadPool::new(2);     // threads
//! let pool = ProcessPool::new(2);    // processes: the only line that changes
//! let results: Vec<u64> = pool.map(gcd, numbers).map(Result::unwrap).collect();
//! ```
//!
//! In Rust threads already run in parallel (no GIL), so both pools beat serial here; processes
//! buy isolation: a crash, hang or leak in `gcd` cannot take the program down.

use std::time::Instant;

use crew::{Executor, ProcessPool, ThreadPool};

/// The seed's deliberately slow gcd: count down from the smaller number.
#[crew::task]
fn gcd((a, b): (u64, u64)) -> u64 {
    let low = a.min(b);
    (1..=low)
        .rev()
        .find(|i| a % i == 0 && b % i == 0)
        .unwrap_or(1)
}

const NUMBERS: [(u64, u64); 4] = [
    (1963309, 2265973),
    (2030677, 3814172),
    (1551645, 2229620),
    (2039045, 2020802),
];

fn main() {
    crew::init(); // worker processes enter (and stay) here

    let start = Instant::now();
    let serial: Vec<u64> = NUMBERS.iter().copied().map(gcd).collect();
    println!("serial:       {serial:?} took {:.3?}", start.elapsed());

    let start = Instant::now();
    let pool = ThreadPool::new(2);
    let threads: Vec<u64> = pool.map(gcd, NUMBERS).map(Result::unwrap).collect();
    println!("thread pool:  {threads:?} took {:.3?}", start.elapsed());

    let start = Instant::now();
    let pool = ProcessPool::new(2);
    let processes: Vec<u64> = pool.map(gcd, NUMBERS).map(Result::unwrap).collect();
    println!("process pool: {processes:?} took {:.3?}", start.elapsed());

    assert_eq!(serial, threads);
    assert_eq!(serial, processes);
}
