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

/// Regression (shared lifecycle): shutting the pool down, or dropping it, from a done-callback
/// (which runs on a worker) joins every other worker and never the calling one.
#[test]
fn shutdown_or_drop_inside_a_callback() {
    for drop_it in [false, true] {
        let pool = Arc::new(parking_lot::Mutex::new(Some(ThreadPool::new(3))));
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let others: Vec<_> = (0..2)
            .map(|_| {
                let guard = pool.lock();
                guard
                    .as_ref()
                    .unwrap()
                    .spawn(|| std::thread::sleep(Duration::from_millis(50)))
                    .unwrap()
            })
            .collect();
        let handle = pool.lock().as_ref().unwrap().spawn(|| 7).unwrap();
        let (in_callback, done) = (pool.clone(), finished.clone());
        handle.add_done_callback(move |_| {
            if drop_it {
                let taken = in_callback.lock().take();
                drop(taken);
            } else {
                in_callback.lock().as_ref().unwrap().shutdown(true, false);
            }
            done.store(true, Ordering::SeqCst);
        });
        assert_eq!(handle.result(), Ok(7));
        for other in others {
            assert_eq!(
                other.result(),
                Ok(()),
                "the other workers finished their tasks"
            );
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !finished.load(Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the callback never returned"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(pool.lock().take());
    }
}

static LATE_RUNS: AtomicUsize = AtomicUsize::new(0);

fn count_late_run(_: ()) {
    LATE_RUNS.fetch_add(1, Ordering::SeqCst);
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn deadline_passed_before_start_never_runs() {
    let pool = ThreadPool::new(1);
    let blocker = pool.submit(sleep_ms, 300).unwrap();
    let late = pool
        .submit_with(
            count_late_run,
            (),
            TaskOptions::new().timeout(Duration::from_millis(20)),
        )
        .unwrap();
    // The handle settles at the deadline, while the task still waits in the queue.
    assert_eq!(
        late.result_timeout(Duration::from_millis(200)),
        Err(TaskError::DeadlineExceeded { worker: None })
    );
    assert!(!blocker.done());
    assert_eq!(blocker.result(), Ok(300));
    pool.shutdown(true, false);
    assert_eq!(LATE_RUNS.load(Ordering::SeqCst), 0, "it never ran");
}

#[test]
fn running_task_settles_at_its_deadline_and_its_late_result_is_dropped() {
    let pool = ThreadPool::new(1);
    let started = std::time::Instant::now();
    let slow = pool
        .submit_with(
            sleep_ms,
            300,
            TaskOptions::new().timeout(Duration::from_millis(50)),
        )
        .unwrap();
    let mut slow = slow;
    while !slow.running() && !slow.done() {
        std::thread::yield_now();
    }
    assert!(!slow.cancel(), "a running thread cannot be cancelled");
    slow = match slow.try_result() {
        Ok(result) => panic!("finished too early: {result:?}"),
        Err(pending) => pending,
    };
    assert_eq!(
        slow.result(),
        Err(TaskError::DeadlineExceeded { worker: None })
    );
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "settled at the deadline, not when the thread finished"
    );
    // The worker is still busy with the stale task, then serves the next one.
    assert_eq!(pool.submit(square, 4).unwrap().result(), Ok(16));
    // A task that meets its deadline is unaffected, in a chunked map too.
    let options = MapOptions::new()
        .chunksize(10)
        .task_options(TaskOptions::new().timeout(Duration::from_secs(30)));
    let total: u64 = pool
        .map_with(square, 0..100, options)
        .map(Result::unwrap)
        .sum();
    assert_eq!(total, (0..100).map(|x| x * x).sum::<u64>());
}

#[test]
fn stress_deadlines_race_completion() {
    let pool = ThreadPool::new(4);
    for round in 0..50u64 {
        let handles: Vec<_> = (0..100u64)
            .map(|i| {
                let timeout = Duration::from_micros((i * 37 + round * 11) % 400);
                pool.submit_with(square, i, TaskOptions::new().timeout(timeout))
                    .unwrap()
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            match handle.result() {
                Ok(value) => assert_eq!(value, (i * i) as u64),
                Err(TaskError::DeadlineExceeded { worker: None }) => {}
                other => panic!("round {round} task {i}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_pool_started_on_demand_adds_threads_only_for_concurrent_work() {
    let pool = ThreadPool::builder()
        .max_workers(10_000)
        .start_on_demand(true)
        .build()
        .unwrap();
    let name = || std::thread::current().name().unwrap_or("").to_owned();
    // One task at a time: one thread serves them all.
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..20 {
        names.insert(pool.spawn(name).unwrap().result().unwrap());
    }
    assert_eq!(names.len(), 1, "{names:?}");
    // Six tasks that can only finish together: six threads, never fewer.
    let together = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let together = together.clone();
            pool.spawn(move || {
                together.wait();
                name()
            })
            .unwrap()
        })
        .collect();
    let names: std::collections::BTreeSet<_> = handles
        .into_iter()
        .map(|handle| {
            handle
                .result_timeout(Duration::from_secs(20))
                .expect("six tasks that wait for each other all ran at once")
        })
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    assert_eq!(pool.max_workers(), 10_000);
}
