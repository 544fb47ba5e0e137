//! Seed 004's process pool: five `apply_async` tasks on a pool of four, then close and join.
//!
//! ```python
//! p = Pool(4)
//! for i in range(5):
//!     p.apply_async(long_time_task, args=(i,))
//! p.close()
//! p.join()
//! ```

use std::time::{Duration, Instant};

use crew::{Executor, ProcessPool};

#[crew::task]
fn long_time_task(name: u32) -> f64 {
    println!("Run task {name} ({})...", std::process::id());
    let start = Instant::now();
    // A pseudo-random 0..3 s nap (the seed uses random.random() * 3), shortened tenfold.
    let nap = (u64::from(std::process::id()) * 7919 + u64::from(name) * 104_729) % 300;
    std::thread::sleep(Duration::from_millis(nap));
    let took = start.elapsed().as_secs_f64();
    println!("Task {name} runs {took:.2} seconds.");
    took
}

fn main() {
    crew::init();
    println!("Parent process {}.", std::process::id());
    let p = ProcessPool::new(4);
    for i in 0..5 {
        let _detached = p
            .apply_async(
                long_time_task,
                i,
                |_| {},
                |error| eprintln!("task failed: {error}"),
            )
            .expect("the pool accepts tasks");
    }
    println!("Waiting for all subprocesses done...");
    p.shutdown(true, false); // close() + join()
    println!("All subprocesses done.");
}
