//! Seed 000's `xo.StatelessActor`: copies of a stateless actor share one mailbox, and calls
//! spread over them (and, the seed's point about processes, run in parallel when the copies
//! live in a worker process or on threads).
//!
//! Prints:
//! ```text
//! 8 primes checked by 4 instances sharing one mailbox
//! [true, true, true, true, false, true, false, true]
//! the work spread over more than one instance: true
//! ```

use std::collections::HashSet;

use crew::actor::ActorOptions;

struct PrimeChecker;

#[crew::actor(stateless)]
impl PrimeChecker {
    fn new(_: ()) -> Self {
        PrimeChecker
    }

    /// Stateless: `&self` only (a `&mut self` method would not compile here).
    fn is_prime(&self, n: u64) -> (bool, String) {
        let prime = n > 1 && (2..).take_while(|i| i * i <= n).all(|i| n % i != 0);
        // Slow enough that the calls overlap.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let instance = std::thread::current().name().unwrap_or_default().to_owned();
        (prime, instance)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    crew::init();
    let checkers = ActorOptions::<PrimeChecker>::new()
        .instances(4)
        .mailbox(16)
        .spawn(())?;
    let numbers = [
        112_272_535_095_293,
        112_582_705_942_171,
        115_280_095_190_773,
        115_797_848_077_099,
        1_099_726_899_285_419,
        2,
        4,
        7,
    ];
    let handles: Vec<_> = numbers.iter().map(|&n| checkers.is_prime(n)).collect();
    let mut primes = Vec::new();
    let mut instances = HashSet::new();
    for handle in handles {
        let (prime, instance) = handle.result()?;
        primes.push(prime);
        instances.insert(instance);
    }
    println!(
        "{} primes checked by 4 instances sharing one mailbox",
        numbers.len()
    );
    println!("{primes:?}");
    println!(
        "the work spread over more than one instance: {}",
        instances.len() > 1
    );
    checkers.stop().result()?;
    Ok(())
}
