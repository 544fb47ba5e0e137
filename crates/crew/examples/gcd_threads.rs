//! Seed 002, item 41: the greatest common divisors of the seed's four pairs, by brute force,
//! first one after the other (`map(gcd, numbers)`), then on a thread pool
//! (`ThreadPoolExecutor(max_workers=cpu_count()).map(gcd, numbers)`).
//!
//! Unlike Python's threads (held back by the GIL), crew's threads run the pairs in parallel.
//! `gcd` is a plain `fn`, so moving it to a process pool is the same one-line change as in
//! the seed.
//!
//! Prints:
//! ```text
//! Took 0.693 seconds
//! Took 0.361 seconds
//! results: [1, 1, 5, 1]
//! ```

use std::time::Instant;

use crew::{Executor, ThreadPool};

/// The seed's brute-force gcd.
fn gcd(pair: (u64, u64)) -> u64 {
    let (a, b) = pair;
    let low = a.min(b);
    for i in (1..=low).rev() {
        if a % i == 0 && b % i == 0 {
            return i;
        }
    }
    1
}

const NUMBERS: [(u64, u64); 4] = [
    (1963309, 2265973),
    (2030677, 3814172),
    (1551645, 2229620),
    (2039045, 2020802),
];

fn main() -> Result<(), crew::TaskError> {
    let start = Instant::now();
    let serial: Vec<u64> = NUMBERS.into_iter().map(gcd).collect();
    println!("Took {:.3} seconds", start.elapsed().as_secs_f64());

    let start = Instant::now();
    let cpu_count = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = ThreadPool::new(cpu_count);
    let results = pool.map(gcd, NUMBERS).collect::<Result<Vec<_>, _>>()?;
    println!("Took {:.3} seconds", start.elapsed().as_secs_f64());

    assert_eq!(results, serial);
    println!("results: {results:?}");
    Ok(())
}
