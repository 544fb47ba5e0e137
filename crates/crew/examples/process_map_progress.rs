//! tqdm's `process_map`, the crew way: a process pool's `map` with a progress bar.
//!
//! ```python
//! from tqdm.contrib.concurrent import process_map
//! flags = process_map(is_prime, numbers, max_workers=2, chunksize=8)
//! ```
//!
//! The bar (items done out of the total, rate, ETA, failures) is drawn on standard error while
//! it is a terminal, and not at all when it is piped or redirected: run it as
//! `cargo run -p crew --example process_map_progress` to watch it, with `2>log` to see that
//! nothing is written. The second part ticks a bar by hand in an `as_completed` loop.
//!
//! Prints:
//! ```text
//! 1000000000000..1000000001000: N primes
//! 12 jobs done, 0 failed
//! ```

use crew::progress::Progress;
use crew::{as_completed, Executor, MapOptions, ProcessPool};

const FIRST: u64 = 1_000_000_000_000;
const COUNT: u64 = 1_000;

/// Trial division: about a million steps for a prime near 10^12.
#[crew::task]
fn is_prime(n: u64) -> bool {
    if n < 2 || n % 2 == 0 {
        return n == 2;
    }
    let mut divisor = 3;
    while divisor * divisor <= n {
        if n % divisor == 0 {
            return false;
        }
        divisor += 2;
    }
    true
}

#[crew::task]
fn count_primes((from, to): (u64, u64)) -> u64 {
    (from..to).filter(|&n| is_prime(n)).count() as u64
}

fn main() {
    crew::init(); // first thing: worker processes serve tasks here
    let pool = ProcessPool::new(2);

    // process_map(is_prime, numbers, chunksize=8): the input's size (a range) is the total.
    let primes = pool
        .map_with(
            is_prime,
            FIRST..FIRST + COUNT,
            MapOptions::new().chunksize(8),
        )
        .progress(Progress::bar("is_prime"))
        .filter(|flag| *flag.as_ref().expect("is_prime does not fail"))
        .count();
    println!("{FIRST}..{}: {primes} primes", FIRST + COUNT);

    // A bar you tick yourself: submitted jobs, as they complete.
    let jobs: Vec<_> = (0..12)
        .map(|i| {
            let from = FIRST + i * 50;
            pool.submit(count_primes, (from, from + 50))
                .expect("the pool is running")
        })
        .collect();
    let progress = Progress::bar("ranges").with_total(jobs.len() as u64);
    for handle in as_completed(jobs, None) {
        match handle.expect("no timeout").result() {
            Ok(_) => progress.inc(1),
            Err(_) => progress.inc_failed(1),
        }
    }
    progress.finish();
    println!(
        "{} jobs done, {} failed",
        progress.position(),
        progress.failed()
    );
}
