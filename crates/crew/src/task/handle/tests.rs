use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::task::pair_with;

#[test]
fn complete_then_result() {
    let (handle, completer) = pair::<u32>();
    assert!(!handle.done());
    assert!(completer.start());
    assert!(handle.running());
    completer.complete(Ok(7));
    assert!(handle.done());
    assert!(!handle.cancelled());
    assert_eq!(handle.result(), Ok(7));
}

#[test]
fn cancel_only_while_pending() {
    let (handle, completer) = pair::<u32>();
    assert!(handle.cancel());
    assert!(handle.cancelled());
    assert!(handle.cancel(), "cancelling twice still reports cancelled");
    assert!(!completer.start(), "a cancelled task must not start");
    completer.complete(Ok(1));
    assert_eq!(handle.result(), Err(TaskError::Cancelled));

    let (handle, completer) = pair::<u32>();
    assert!(completer.start());
    assert!(!handle.cancel(), "a running task cannot be cancelled");
    completer.complete(Ok(2));
    assert!(!handle.cancel());
    assert_eq!(handle.result(), Ok(2));
}

#[test]
fn dropped_completer_settles() {
    let (handle, completer) = pair::<u32>();
    drop(completer);
    assert!(handle.cancelled());
    assert_eq!(handle.result(), Err(TaskError::Cancelled));

    let (handle, completer) = pair::<u32>();
    assert!(completer.start());
    drop(completer);
    assert_eq!(handle.result(), Err(TaskError::Shutdown));
}

#[test]
fn result_timeout_and_try_result() {
    let (handle, completer) = pair::<u32>();
    let handle = handle.try_result().unwrap_err();
    assert!(!handle.wait_timeout(Duration::from_millis(10)));
    completer.complete(Ok(3));
    assert_eq!(handle.try_result().unwrap(), Ok(3));

    let (handle, _completer) = pair::<u32>();
    assert_eq!(
        handle.result_timeout(Duration::from_millis(10)),
        Err(TaskError::TimedOut)
    );
}

#[test]
fn callbacks_run_once_before_and_after_completion() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (handle, completer) = pair::<u32>();
    for _ in 0..3 {
        let calls = calls.clone();
        handle.add_done_callback(move |r| {
            assert_eq!(*r, Ok(5));
            calls.fetch_add(1, Ordering::SeqCst);
        });
    }
    completer.complete(Ok(5));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let late = calls.clone();
    handle.add_done_callback(move |_| {
        late.fetch_add(10, Ordering::SeqCst);
    });
    assert_eq!(calls.load(Ordering::SeqCst), 13);
    assert_eq!(handle.result(), Ok(5), "callbacks only borrow the result");
}

#[test]
fn panicking_callback_is_contained() {
    let (handle, completer) = pair::<u32>();
    handle.add_done_callback(|_| panic!("callback bug"));
    let ran = Arc::new(AtomicUsize::new(0));
    let after = ran.clone();
    handle.add_done_callback(move |_| {
        after.fetch_add(1, Ordering::SeqCst);
    });
    completer.complete(Ok(1));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(handle.result(), Ok(1));
}

#[test]
fn callback_on_cancel_sees_cancelled() {
    let (handle, _completer) = pair::<u32>();
    let seen = Arc::new(parking_lot::Mutex::new(None));
    let slot = seen.clone();
    handle.add_done_callback(move |r| *slot.lock() = Some(r.clone()));
    assert!(handle.cancel());
    assert_eq!(*seen.lock(), Some(Err(TaskError::Cancelled)));
}

#[test]
fn cancel_start_race_has_one_winner() {
    for _ in 0..2_000 {
        let (handle, completer) = pair::<u32>();
        let worker = std::thread::spawn(move || {
            if completer.start() {
                completer.complete(Ok(1));
                true
            } else {
                false
            }
        });
        let cancelled = handle.cancel();
        let ran = worker.join().unwrap();
        assert_ne!(cancelled, ran, "exactly one of cancel and start wins");
        let expected = if ran {
            Ok(1)
        } else {
            Err(TaskError::Cancelled)
        };
        assert_eq!(handle.result(), expected);
    }
}

#[test]
fn await_a_handle() {
    let (handle, completer) = pair::<String>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let worker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        completer.complete(Ok("hi".to_owned()));
    });
    assert_eq!(runtime.block_on(handle), Ok("hi".to_owned()));
    worker.join().unwrap();
}

#[test]
fn cancel_hook_lets_a_running_task_be_cancelled() {
    let hooked = Arc::new(AtomicUsize::new(0));
    let (handle, completer) = pair::<u32>();
    assert!(completer.start());
    assert!(
        !handle.cancel(),
        "without a hook a running task cannot be cancelled"
    );
    let counter = hooked.clone();
    completer.on_cancel(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    assert!(!completer.is_cancelled());
    assert!(handle.cancel());
    assert!(handle.cancelled());
    assert!(completer.is_cancelled() && completer.is_settled());
    assert_eq!(hooked.load(Ordering::SeqCst), 1);
    completer.complete(Ok(9)); // late: dropped
    assert_eq!(handle.result(), Err(TaskError::Cancelled));
    assert_eq!(hooked.load(Ordering::SeqCst), 1);
}

#[test]
fn hook_is_dropped_unrun_when_the_task_completes() {
    let hooked = Arc::new(AtomicUsize::new(0));
    let (handle, completer) = pair::<u32>();
    let counter = hooked.clone();
    completer.on_cancel(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(Arc::strong_count(&hooked), 2);
    completer.complete(Ok(1));
    assert_eq!(
        Arc::strong_count(&hooked),
        1,
        "the hook was dropped at completion"
    );
    assert!(!handle.cancel());
    assert_eq!(hooked.load(Ordering::SeqCst), 0);
    assert_eq!(handle.result(), Ok(1));
}

#[test]
fn hook_registered_after_cancel_runs_at_once() {
    let hooked = Arc::new(AtomicUsize::new(0));
    let (handle, completer) = pair::<u32>();
    assert!(handle.cancel());
    let counter = hooked.clone();
    completer.on_cancel(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(hooked.load(Ordering::SeqCst), 1);
}

#[test]
fn shared_timer_settles_at_the_deadline() {
    use crate::task::TaskOptions;
    let (handle, completer) =
        pair_with::<u32>(&TaskOptions::new().timeout(Duration::from_millis(30)));
    let hooked = Arc::new(AtomicUsize::new(0));
    let counter = hooked.clone();
    completer.on_cancel(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    completer.expire_at_deadline();
    assert!(completer.start());
    assert_eq!(
        handle.result(),
        Err(TaskError::DeadlineExceeded { worker: None })
    );
    assert!(completer.is_settled() && !completer.is_cancelled());
    // The timer thread runs the hook right after settling the handle.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hooked.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the backend is told to stop"
        );
        std::thread::yield_now();
    }
    assert_eq!(hooked.load(Ordering::SeqCst), 1);
    completer.complete(Ok(1)); // late: dropped

    // Many deadlines, out of order, on the one timer thread.
    let handles: Vec<_> = (0..200u64)
        .rev()
        .map(|i| {
            let (handle, completer) = pair_with::<u32>(
                &TaskOptions::new().timeout(Duration::from_micros(i * 97 % 20_000)),
            );
            completer.expire_at_deadline();
            (handle, completer)
        })
        .collect();
    for (handle, _completer) in handles {
        assert_eq!(
            handle.result(),
            Err(TaskError::DeadlineExceeded { worker: None })
        );
    }
}

#[test]
fn a_cell_keeps_no_room_for_a_rare_error() {
    // Every live handle keeps its cell: a program holding 1,000,000 handles of `u64` pays this
    // per task (an inline `TaskError` made it 32 bytes bigger, in memory the kernel had to zero).
    let size = std::mem::size_of::<Shared<u64>>();
    eprintln!("cell of u64: {size} bytes");
    assert!(size <= 56, "a task cell of u64 is {size} bytes");
}
