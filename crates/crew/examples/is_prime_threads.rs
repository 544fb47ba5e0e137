//! Seed 001: `is_prime` over the seed's `PRIMES` with `executor.map`, here on crew's thread
//! pool, two numbers per task (`chunksize=2`).
//!
//! Prints, like the Python version:
//! ```text
//! 112272535095293 is prime: True
//! 112582705942171 is prime: True
//! 112272535095293 is prime: True
//! 115280095190773 is prime: True
//! 115797848077099 is prime: True
//! 1099726899285419 is prime: False
//! ```

use crew::{Executor, MapOptions, ThreadPool};

const PRIMES: [u64; 6] = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419,
];

/// The seed's trial division (odd divisors up to the square root).
fn is_prime(n: u64) -> bool {
    if n % 2 == 0 {
        return false;
    }
    let sqrt_n = (n as f64).sqrt().floor() as u64; // int(math.floor(math.sqrt(n)))
    let mut i = 3;
    while i <= sqrt_n {
        if n % i == 0 {
            return false;
        }
        i += 2;
    }
    true
}

fn main() -> Result<(), crew::TaskError> {
    // `with ThreadPoolExecutor() as executor:` — dropping the pool joins its workers.
    let executor = ThreadPool::builder()
        .build()
        .expect("cannot start the thread pool");
    let results = executor.map_with(is_prime, PRIMES, MapOptions::new().chunksize(2));
    for (number, prime) in PRIMES.into_iter().zip(results) {
        let prime = if prime? { "True" } else { "False" };
        println!("{number} is prime: {prime}");
    }
    Ok(())
}
