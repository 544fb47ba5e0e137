use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::*;
use crate::{as_completed, wait, MapOptions, ReturnWhen};

fn square(x: u64) -> u64 {
    x * x
}

fn fails_on_three(x: u64) -> u64 {
    assert!(x != 3, "three is not allowed");
    x
}

#[test]
fn spawn_and_submit() {
    let pool = ThreadPool::new(2);
    assert_eq!(pool.spawn(|| 1 + 1).unwrap().result(), Ok(2));
    assert_eq!(pool.submit(square, 9).unwrap().result(), Ok(81));
}

#[test]
fn panics_are_errors_and_the_pool_survives() {
    let pool = ThreadPool::new(1);
    let failed = pool.spawn(|| -> u32 { panic!("boom {}", 7) }).unwrap();
    assert_eq!(
        failed.result(),
        Err(TaskError::Panicked {
            message: "boom 7".to_owned()
        })
    );
    assert_eq!(pool.spawn(|| 5).unwrap().result(), Ok(5));
}

#[test]
fn map_is_ordered_and_chunked() {
    let pool = ThreadPool::new(3);
    for chunksize in [1, 2, 7, 100] {
        let out: Vec<u64> = pool
            .map_with(square, 0..50, MapOptions::new().chunksize(chunksize))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(out, (0..50).map(square).collect::<Vec<_>>());
    }
}

#[test]
fn map_unordered_yields_every_item() {
    let pool = ThreadPool::new(3);
    let mut out: Vec<u64> = pool
        .imap_unordered(square, 0..200, 3)
        .collect::<Result<_, _>>()
        .unwrap();
    out.sort_unstable();
    assert_eq!(out, (0..200).map(square).collect::<Vec<_>>());
}

#[test]
fn map_reports_errors_per_item_of_a_failed_chunk() {
    let pool = ThreadPool::new(2);
    let out: Vec<_> = pool
        .map_with(fails_on_three, 0..6, MapOptions::new().chunksize(2))
        .collect();
    assert_eq!(out.len(), 6);
    assert_eq!(out[0], Ok(0));
    assert!(matches!(out[2], Err(TaskError::Panicked { .. })));
    assert!(matches!(out[3], Err(TaskError::Panicked { .. })));
    assert_eq!(out[5], Ok(5));
}

#[test]
fn map_is_lazy_on_endless_input() {
    let pool = ThreadPool::new(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let items = (0u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let first: Vec<u64> = pool
        .map_with(square, items, MapOptions::new().window(4).chunksize(5))
        .take(10)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(first, (0..10).map(square).collect::<Vec<_>>());
    assert!(
        pulled.load(Ordering::SeqCst) <= 10 + 4 * 5,
        "map read far ahead: {}",
        pulled.load(Ordering::SeqCst)
    );
}

#[test]
fn submit_after_shutdown_is_an_error() {
    let pool = ThreadPool::new(1);
    pool.shutdown(true, false);
    assert_eq!(pool.spawn(|| 1).unwrap_err(), SubmitError::Shutdown);
    let mut results = pool.map(square, 0..3);
    assert!(matches!(
        results.next(),
        Some(Err(TaskError::Rejected(SubmitError::Shutdown)))
    ));
    assert!(results.next().is_none());
}

#[test]
fn shutdown_cancels_pending_work() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Barrier::new(2));
    let blocker = {
        let gate = gate.clone();
        pool.spawn(move || {
            gate.wait();
            1
        })
        .unwrap()
    };
    let pending: Vec<_> = (0..5).map(|i| pool.spawn(move || i).unwrap()).collect();
    while !blocker.running() {
        std::thread::yield_now();
    }
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        gate.wait();
    });
    pool.shutdown(true, true);
    opener.join().unwrap();
    assert_eq!(blocker.result(), Ok(1), "the running task finishes");
    for handle in pending {
        assert!(handle.cancelled());
        assert_eq!(handle.result(), Err(TaskError::Cancelled));
    }
}

#[test]
fn drop_runs_queued_work() {
    let count = Arc::new(AtomicUsize::new(0));
    {
        let pool = ThreadPool::new(2);
        for _ in 0..100 {
            let count = count.clone();
            let _detached = pool.spawn(move || {
                count.fetch_add(1, Ordering::SeqCst);
            });
        }
    }
    assert_eq!(count.load(Ordering::SeqCst), 100);
}

#[test]
fn bounded_queue_reports_full() {
    let pool = ThreadPool::builder()
        .max_workers(1)
        .queue_bound(1)
        .build()
        .unwrap();
    let gate = Arc::new(Barrier::new(2));
    let blocker = {
        let gate = gate.clone();
        pool.spawn(move || gate.wait()).unwrap()
    };
    while !blocker.running() {
        std::thread::yield_now();
    }
    let queued = pool.try_spawn(|| 1).unwrap();
    assert_eq!(pool.try_spawn(|| 2).unwrap_err(), SubmitError::Full);
    gate.wait();
    assert_eq!(queued.result(), Ok(1));
}

#[test]
fn broken_initializer_breaks_the_pool() {
    let pool = ThreadPool::builder()
        .max_workers(1)
        .initializer(|| panic!("no database"))
        .build()
        .unwrap();
    let handle = pool.spawn(|| 1);
    // Either refused at submit or failed in the queue, never run and never hung.
    match handle {
        Err(SubmitError::Broken { message }) => assert_eq!(message, "no database"),
        Ok(handle) => assert_eq!(
            handle.result(),
            Err(TaskError::InitializerFailed {
                message: "no database".to_owned()
            })
        ),
        Err(other) => panic!("unexpected {other}"),
    }
}

#[test]
fn as_completed_yields_in_completion_order() {
    let pool = ThreadPool::new(2);
    let slow = pool
        .spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            "slow"
        })
        .unwrap();
    let fast = pool.spawn(|| "fast").unwrap();
    let order: Vec<_> = as_completed(vec![slow, fast], None)
        .map(|h| h.unwrap().result().unwrap())
        .collect();
    assert_eq!(order, ["fast", "slow"]);
}

#[test]
fn as_completed_times_out() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Barrier::new(2));
    let stuck = {
        let gate = gate.clone();
        pool.spawn(move || gate.wait()).unwrap()
    };
    let mut iter = as_completed(vec![stuck], Some(Duration::from_millis(30)));
    assert!(matches!(iter.next(), Some(Err(TaskError::TimedOut))));
    assert!(iter.next().is_none());
    let pending = iter.into_pending();
    assert_eq!(pending.len(), 1);
    gate.wait();
}

#[test]
fn wait_first_completed_and_first_exception() {
    let pool = ThreadPool::new(2);
    let gate = Arc::new(Barrier::new(2));
    let blocked = {
        let gate = gate.clone();
        pool.spawn(move || {
            gate.wait();
            0
        })
        .unwrap()
    };
    let quick = pool.spawn(|| 1).unwrap();
    let (done, not_done) = wait(vec![blocked, quick], ReturnWhen::FirstCompleted, None);
    assert_eq!(done.len(), 1);
    assert_eq!(not_done.len(), 1);
    let failing = pool.spawn(|| -> i32 { panic!("bad") }).unwrap();
    let mut handles = not_done;
    handles.push(failing);
    let (done, not_done) = wait(handles, ReturnWhen::FirstException, None);
    assert_eq!(done.len(), 1);
    assert!(matches!(
        done.into_iter().next().unwrap().result(),
        Err(TaskError::Panicked { .. })
    ));
    let (_, not_done) = wait(
        not_done,
        ReturnWhen::AllCompleted,
        Some(Duration::from_millis(20)),
    );
    assert_eq!(
        not_done.len(),
        1,
        "timed out with the blocked task still running"
    );
    gate.wait();
    let (done, _) = wait(not_done, ReturnWhen::AllCompleted, None);
    assert_eq!(done.into_iter().next().unwrap().result(), Ok(0));
}

#[test]
fn apply_async_calls_back() {
    let pool = ThreadPool::new(2);
    let (sender, receiver) = crossbeam_channel::unbounded();
    let ok = sender.clone();
    pool.apply_async(square, 4, move |v| ok.send(Ok(*v)).unwrap(), |_| {})
        .unwrap()
        .wait();
    pool.apply_async(
        fails_on_three,
        3,
        |_| {},
        move |e| sender.send(Err(e.clone())).unwrap(),
    )
    .unwrap()
    .wait();
    assert_eq!(receiver.recv().unwrap(), Ok(16));
    assert!(matches!(
        receiver.recv().unwrap(),
        Err(TaskError::Panicked { .. })
    ));
}

#[test]
fn workers_are_named() {
    let pool = ThreadPool::builder()
        .max_workers(2)
        .thread_name_prefix("seed")
        .build()
        .unwrap();
    let name = pool
        .spawn(|| std::thread::current().name().map(str::to_owned))
        .unwrap()
        .result()
        .unwrap()
        .unwrap();
    assert!(name == "seed-0" || name == "seed-1", "{name}");
}

#[test]
fn shutdown_from_inside_a_worker_does_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(2));
    let inner = pool.clone();
    let handle = pool.spawn(move || inner.shutdown(true, false)).unwrap();
    assert_eq!(handle.result(), Ok(()));
}

#[test]
fn stress_many_tiny_tasks() {
    let pool = ThreadPool::new(4);
    for round in 0..20u64 {
        let handles: Vec<_> = (0..1_000u64)
            .map(|i| pool.spawn(move || i + round).unwrap())
            .collect();
        let sum: u64 = handles.into_iter().map(|h| h.result().unwrap()).sum();
        assert_eq!(sum, (0..1_000).sum::<u64>() + 1_000 * round);
    }
}
