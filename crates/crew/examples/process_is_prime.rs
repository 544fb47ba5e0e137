//! Seed 001's is_prime over PRIMES with a process pool: `map`, then `map` with a `chunksize`
//! (which matters for processes: one round trip per chunk instead of per item).

use crew::{Executor, MapOptions, ProcessPool};

const PRIMES: [u64; 6] = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419,
];

#[crew::task]
fn is_prime(n: u64) -> bool {
    if n % 2 == 0 {
        return false;
    }
    let sqrt_n = (n as f64).sqrt().floor() as u64;
    (3..=sqrt_n).step_by(2).all(|i| n % i != 0)
}

fn main() {
    crew::init();
    // ProcessPoolExecutor(): one worker per CPU by default.
    let pool = ProcessPool::builder().build().expect("start the pool");
    for (number, prime) in PRIMES.iter().zip(pool.map(is_prime, PRIMES)) {
        println!("{number} is prime: {}", prime.unwrap());
    }

    // Many small items: chunks amortise the per-task round trip.
    let count = pool
        .map_with(is_prime, 1..200_001, MapOptions::new().chunksize(5_000))
        .filter(|prime| *prime.as_ref().unwrap())
        .count();
    println!("is_prime accepts {count} of 1..=200000 (like the seed's, it says yes to 1, no to 2)");
}
