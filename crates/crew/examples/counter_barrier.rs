//! Seed 002, item 38: five sensor workers, synchronised by a `Barrier`, increment a shared
//! counter 100 000 times each. Without a lock, increments are lost; with one, none are.
//!
//! Rust will not compile an unsynchronised `count += 1` across threads; the unlocked counter
//! below reproduces Python's three separate steps (get the value, add, set it back) with an
//! atomic `load` and `store`, which is memory-safe and just as wrong.
//!
//! Prints:
//! ```text
//! Counter should be 500000, found 249414      (any number; often less than 500000)
//! Counter should be 500000, found 500000
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};

trait Count: Send + Sync + 'static {
    fn increment(&self, offset: u64);
    fn count(&self) -> u64;
}

/// `class Counter`: `self.count += offset` is a read, an add and a write.
#[derive(Default)]
struct Counter {
    count: AtomicU64,
}

impl Count for Counter {
    fn increment(&self, offset: u64) {
        let value = self.count.load(Ordering::Relaxed); // value = getattr(counter, 'count')
        let result = value + offset; // result = value + offset
        self.count.store(result, Ordering::Relaxed); // setattr(counter, 'count', result)
    }
    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// `class LockingCounter`: `with self.lock: self.count += offset`.
#[derive(Default)]
struct LockingCounter {
    count: Mutex<u64>,
}

impl Count for LockingCounter {
    fn increment(&self, offset: u64) {
        *self.count.lock().expect("counter lock") += offset;
    }
    fn count(&self) -> u64 {
        *self.count.lock().expect("counter lock")
    }
}

fn worker(_sensor_index: usize, how_many: u64, counter: &dyn Count, barrier: &Barrier) {
    // The barrier makes the workers start counting together; otherwise starting a thread
    // takes so long that the race is hard to see.
    barrier.wait();
    for _ in 0..how_many {
        // Read from the sensor
        counter.increment(1);
    }
}

fn run_threads<C: Count>(how_many: u64, counter: &Arc<C>) -> std::io::Result<()> {
    let barrier = Arc::new(Barrier::new(5));
    let threads = (0..5)
        .map(|i| {
            let (counter, barrier) = (counter.clone(), barrier.clone());
            crew::thread::spawn(format!("sensor-{i}"), move || {
                worker(i, how_many, &*counter, &barrier);
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for thread in threads {
        thread.result().expect("worker thread");
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let how_many = 10u64.pow(5);

    let counter = Arc::new(Counter::default());
    run_threads(how_many, &counter)?;
    println!(
        "Counter should be {}, found {}",
        5 * how_many,
        counter.count()
    );

    let counter = Arc::new(LockingCounter::default());
    run_threads(how_many, &counter)?;
    println!(
        "Counter should be {}, found {}",
        5 * how_many,
        counter.count()
    );
    Ok(())
}
