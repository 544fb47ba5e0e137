//! Behaviour of the Executor API seen from outside the crate: async interop, detached handles,
//! callbacks that panic inside a pool, and the auto traits of the public types.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crew::{Executor, MapOptions, TaskError, TaskHandle, ThreadPool};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn public_types_are_send_and_sync() {
    assert_send_sync::<ThreadPool>();
    assert_send_sync::<TaskHandle<String>>();
    assert_send_sync::<TaskError>();
    assert_send_sync::<crew::SubmitError>();
    assert_send_sync::<MapOptions>();
}

fn double(x: u32) -> u32 {
    x * 2
}

#[test]
fn handles_can_be_awaited_from_tokio() {
    let pool = ThreadPool::new(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..100).map(|i| pool.submit(double, i).unwrap()).collect();
    let values = runtime.block_on(async {
        let mut values = Vec::new();
        for handle in handles {
            values.push(handle.await.unwrap());
        }
        values
    });
    assert_eq!(values, (0..100).map(double).collect::<Vec<_>>());
    let joined = runtime.block_on(futures::future::join_all(
        (0..10).map(|i| pool.spawn(move || i + 1).unwrap()),
    ));
    assert_eq!(joined.into_iter().map(Result::unwrap).sum::<i32>(), 55);
}

#[test]
fn dropped_handles_detach_but_tasks_still_run() {
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::new(2);
    for _ in 0..500 {
        let ran = ran.clone();
        drop(
            pool.spawn(move || ran.fetch_add(1, Ordering::SeqCst))
                .unwrap(),
        );
    }
    pool.shutdown(true, false);
    assert_eq!(ran.load(Ordering::SeqCst), 500);
}

#[test]
fn a_panicking_callback_does_not_kill_the_worker() {
    let pool = ThreadPool::new(1);
    for _ in 0..10 {
        let handle = pool
            .spawn(|| {
                std::thread::sleep(Duration::from_millis(1));
                1
            })
            .unwrap();
        handle.add_done_callback(|_| panic!("bad callback"));
        assert_eq!(handle.result(), Ok(1));
    }
    assert_eq!(pool.spawn(|| 2).unwrap().result(), Ok(2));
}

#[test]
fn cancel_races_with_workers_under_load() {
    let pool = ThreadPool::new(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let mut cancelled = 0;
    let mut finished = 0;
    for _ in 0..5_000 {
        let ran = ran.clone();
        let handle = pool
            .spawn(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        if handle.cancel() {
            assert!(handle.cancelled());
            assert_eq!(handle.result(), Err(TaskError::Cancelled));
            cancelled += 1;
        } else {
            assert_eq!(handle.result(), Ok(()));
            finished += 1;
        }
    }
    pool.shutdown(true, false);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        finished,
        "a cancelled task never runs"
    );
    assert_eq!(cancelled + finished, 5_000);
}

#[test]
fn thread_spawn_propagates_panics() {
    let handle = crew::thread::spawn("worker-x", || -> u8 { panic!("bad input") }).unwrap();
    assert_eq!(
        handle.result(),
        Err(TaskError::Panicked {
            message: "bad input".to_owned()
        })
    );
}

#[test]
fn errors_explain_themselves() {
    let messages = [
        TaskError::Cancelled.to_string(),
        TaskError::TimedOut.to_string(),
        TaskError::Shutdown.to_string(),
        crew::SubmitError::Full.to_string(),
        TaskError::WorkerDied {
            worker: crew::WorkerId::local(7),
            exit: Some(crew::ExitStatus::Signal(9)),
        }
        .to_string(),
        TaskError::WorkerDied {
            worker: crew::WorkerId::remote("node-a", 7),
            exit: Some(crew::ExitStatus::Code(3)),
        }
        .to_string(),
        TaskError::DeadlineExceeded { worker: None }.to_string(),
        TaskError::DeadlineExceeded {
            worker: Some(crew::WorkerId::local(9)),
        }
        .to_string(),
    ];
    assert_eq!(
        messages[0],
        "task was cancelled (by cancel() or a shutdown that cancels pending work); resubmit it if \
         it is still wanted"
    );
    assert!(
        messages[1].starts_with("timed out waiting for the task (it goes on running)"),
        "{}",
        messages[1]
    );
    assert_eq!(messages[2], "executor shut down before the task finished");
    assert_eq!(
        messages[3],
        "task queue is full; retry later or use the blocking submit"
    );
    assert_eq!(
        messages[4],
        "worker pid 7 died (killed by SIGKILL) while running the task; the pool replaced it, \
         resubmit the task if it is safe to run again"
    );
    assert!(
        messages[5].starts_with("worker pid 7 on node-a died (exit code 3)"),
        "{}",
        messages[5]
    );
    assert_eq!(
        messages[6],
        "task was stopped at its deadline; raise its timeout or make it faster"
    );
    assert_eq!(
        messages[7],
        "task was stopped at its deadline (worker pid 9 was killed and replaced); raise its \
         timeout or make it faster"
    );
}
