//! Seed 000, "异步编程": submit ten busy tasks to a pool of five threads and print each result
//! as it completes (`concurrent.futures.as_completed`), then the elapsed time.
//!
//! Prints the ten results in completion order (10000000, 20000000, ... 100000000, in some
//! order), then `Thread pool execution in 0.5 seconds`.

use std::hint::black_box;
use std::time::Instant;

use crew::{as_completed, Executor, ThreadPool};

const NUMBER_LIST: [u64; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

fn evaluate_item(x: u64) -> u64 {
    // "Compute a sum, just to consume time."
    count(x)
}

fn count(number: u64) -> u64 {
    let mut i = 0;
    for _ in 0..10_000_000 {
        i = black_box(i + 1);
    }
    i * number
}

fn main() -> Result<(), crew::TaskError> {
    let start_time = Instant::now();
    {
        let executor = ThreadPool::new(5);
        let futures = NUMBER_LIST
            .into_iter()
            .map(|item| executor.submit(evaluate_item, item))
            .collect::<Result<Vec<_>, _>>()?;
        for future in as_completed(futures, None) {
            println!("{}", future?.result()?);
        }
    } // the end of `with ThreadPoolExecutor(...)`: the pool shuts down
    println!(
        "Thread pool execution in {} seconds",
        start_time.elapsed().as_secs_f64()
    );
    Ok(())
}
