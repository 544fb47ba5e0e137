//! `ThreadPerTask`, an executor built outside crew, driven through the generic `Executor` API
//! only: the same checks run against crew's own `ThreadPool`, so the two behave alike.

use std::time::{Duration, Instant};

use crew::task::TaskOptions;
use crew::{as_completed, Executor, MapOptions, TaskError, ThreadPool};
use crew_conformance::ThreadPerTask;

fn square(x: u64) -> u64 {
    x * x
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn fails_on_three(x: u64) -> u64 {
    assert!(x != 3, "three is not allowed");
    x
}

fn submit_map_and_as_completed<E: Executor>(executor: &E) {
    assert_eq!(executor.submit(square, 7).unwrap().result(), Ok(49));
    assert_eq!(
        executor.submit(fails_on_three, 3).unwrap().result(),
        Err(TaskError::Panicked {
            message: "three is not allowed".to_owned()
        })
    );
    let mapped: Vec<_> = executor
        .map_with(square, 0..20, MapOptions::new().chunksize(3))
        .collect();
    assert_eq!(mapped, (0..20).map(|x| Ok(x * x)).collect::<Vec<_>>());
    let mut unordered: Vec<u64> = executor
        .imap_unordered(square, 0..10, 2)
        .map(Result::unwrap)
        .collect();
    unordered.sort_unstable();
    assert_eq!(unordered, (0..10).map(|x| x * x).collect::<Vec<_>>());
    let handles: Vec<_> = [60, 1, 30]
        .into_iter()
        .map(|ms| executor.submit(sleep_ms, ms).unwrap())
        .collect();
    let order: Vec<u64> = as_completed(handles, Some(Duration::from_secs(30)))
        .map(|handle| handle.unwrap().result().unwrap())
        .collect();
    assert_eq!(order, [1, 30, 60]);
}

/// Starts `sleep_ms(ms)` on every worker and waits until they all run.
fn fill_every_worker<E: Executor>(executor: &E, ms: u64) -> Vec<crew::TaskHandle<u64>> {
    let busy: Vec<_> = (0..executor.max_workers())
        .map(|_| executor.submit(sleep_ms, ms).unwrap())
        .collect();
    for handle in &busy {
        while !handle.running() && !handle.done() {
            std::thread::yield_now();
        }
    }
    busy
}

fn cancel_pending<E: Executor>(executor: &E) {
    let busy = fill_every_worker(executor, 200);
    let pending = executor.submit(square, 5).unwrap();
    assert!(pending.cancel());
    assert!(pending.cancelled());
    assert_eq!(pending.result(), Err(TaskError::Cancelled));
    for handle in busy {
        // A running thread cannot be interrupted: cancel refuses, as in Python.
        assert!(!handle.cancel());
        assert!(!handle.cancelled());
        assert_eq!(handle.result(), Ok(200));
    }
}

fn deadlines<E: Executor>(executor: &E) {
    let short = TaskOptions::new().timeout(Duration::from_millis(50));
    // Overrun: settles at the deadline, long before the task ends.
    let started = Instant::now();
    let slow = executor.submit_with(sleep_ms, 400, short).unwrap();
    assert_eq!(
        slow.result(),
        Err(TaskError::DeadlineExceeded { worker: None })
    );
    assert!(started.elapsed() < Duration::from_millis(350));
    // Not started by its deadline: never runs, settles at the deadline.
    let busy = fill_every_worker(executor, 300);
    let late = executor.submit_with(square, 2, short).unwrap();
    assert_eq!(
        late.result(),
        Err(TaskError::DeadlineExceeded { worker: None })
    );
    for handle in busy {
        assert_eq!(handle.result(), Ok(300));
    }
    // In time: unaffected, in map too.
    let generous = TaskOptions::new().timeout(Duration::from_secs(30));
    assert_eq!(
        executor.submit_with(square, 3, generous).unwrap().result(),
        Ok(9)
    );
    let total: u64 = executor
        .map_with(square, 0..10, MapOptions::new().task_options(generous))
        .map(Result::unwrap)
        .sum();
    assert_eq!(total, 285);
}

fn shutdown_cancels_pending<E: Executor>(executor: &E) {
    let busy = fill_every_worker(executor, 100);
    let queued: Vec<_> = (0..3)
        .map(|i| executor.submit(square, i).unwrap())
        .collect();
    executor.shutdown(true, true);
    for handle in busy {
        assert_eq!(handle.result(), Ok(100));
    }
    for handle in queued {
        assert_eq!(handle.result(), Err(TaskError::Cancelled));
    }
    assert!(executor.submit(square, 1).is_err());
}

#[test]
fn thread_per_task_serves_the_executor_api() {
    // Three workers, so that the three timed tasks finish in the order of their lengths.
    submit_map_and_as_completed(&ThreadPerTask::new(3));
    submit_map_and_as_completed(&ThreadPool::new(3));
}

#[test]
fn thread_per_task_cancels_pending_tasks() {
    cancel_pending(&ThreadPerTask::new(1));
    cancel_pending(&ThreadPool::new(1));
}

#[test]
fn thread_per_task_honours_deadlines() {
    deadlines(&ThreadPerTask::new(1));
    deadlines(&ThreadPool::new(1));
}

#[test]
fn thread_per_task_shuts_down() {
    shutdown_cancels_pending(&ThreadPerTask::new(1));
    shutdown_cancels_pending(&ThreadPool::new(1));
}

/// A progress bar on `map` works on any executor: it counts what `Map` yields.
fn map_with_progress<E: Executor>(executor: &E) {
    let progress = crew::progress::Progress::hidden("squares");
    let results: Vec<_> = executor
        .map_with(fails_on_three, 0..20, MapOptions::new().chunksize(4))
        .progress(progress.clone())
        .collect();
    // Items 0..4 share the chunk that panics on 3.
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 4);
    assert_eq!(progress.total(), Some(20));
    assert_eq!((progress.position(), progress.failed()), (20, 4));
    assert!(progress.is_finished());
}

#[test]
fn thread_per_task_map_shows_progress() {
    map_with_progress(&ThreadPerTask::new(2));
    map_with_progress(&ThreadPool::new(2));
}
