//! Seed 004, "线程锁 Lock": two threads deposit and withdraw the same amount a million times;
//! the balance should stay 0. Without a lock it drifts; with `threading.Lock` (a `Mutex`
//! here) it does not.
//!
//! As in `counter_barrier.rs`, the unlocked version does Python's separate read and write with
//! an atomic `load` and `store`: memory-safe, and racy in exactly the seed's way.
//!
//! Prints:
//! ```text
//! without Lock: 13        (any number; 0 only by luck)
//! with Lock: 0
//! ```

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

const ROUNDS: u32 = 1_000_000;

/// `balance = balance + n; balance = balance - n`, each a separate read and write.
fn change_it(balance: &AtomicI64, n: i64) {
    let value = balance.load(Ordering::Relaxed);
    balance.store(value + n, Ordering::Relaxed);
    let value = balance.load(Ordering::Relaxed);
    balance.store(value - n, Ordering::Relaxed);
}

fn without_lock() -> std::io::Result<i64> {
    let balance = Arc::new(AtomicI64::new(0));
    let run_thread = |n: i64| {
        let balance = balance.clone();
        move || {
            for _ in 0..ROUNDS {
                change_it(&balance, n);
            }
        }
    };
    let t1 = crew::thread::spawn("Thread-1", run_thread(5))?;
    let t2 = crew::thread::spawn("Thread-2", run_thread(8))?;
    t1.result().expect("thread 1");
    t2.result().expect("thread 2");
    Ok(balance.load(Ordering::Relaxed))
}

fn with_lock() -> std::io::Result<i64> {
    // lock = threading.Lock(); the guard is the try/finally that always releases it.
    let balance = Arc::new(Mutex::new(0i64));
    let run_thread = |n: i64| {
        let balance = balance.clone();
        move || {
            for _ in 0..ROUNDS {
                let mut balance = balance.lock().expect("balance lock");
                *balance += n;
                *balance -= n;
            }
        }
    };
    let t1 = crew::thread::spawn("Thread-1", run_thread(5))?;
    let t2 = crew::thread::spawn("Thread-2", run_thread(8))?;
    t1.result().expect("thread 1");
    t2.result().expect("thread 2");
    let balance = *balance.lock().expect("balance lock");
    Ok(balance)
}

fn main() -> std::io::Result<()> {
    println!("without Lock: {}", without_lock()?);
    println!("with Lock: {}", with_lock()?);
    Ok(())
}
