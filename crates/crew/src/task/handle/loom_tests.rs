//! Model tests of the handle's state machine: run with
//! `RUSTFLAGS="--cfg loom" cargo test -p crew --lib --release loom_tests`.

use super::*;
use crate::loom::thread;

#[test]
fn cancel_races_start_and_complete() {
    loom::model(|| {
        let (handle, completer) = pair::<u32>();
        let worker = thread::spawn(move || {
            if completer.start() {
                completer.complete(Ok(1));
            }
        });
        let cancelled = handle.cancel();
        worker.join().unwrap();
        let result = handle.result();
        if cancelled {
            assert_eq!(result, Err(TaskError::Cancelled));
        } else {
            assert_eq!(result, Ok(1));
        }
    });
}

#[test]
fn callback_added_while_completing_runs_exactly_once() {
    loom::model(|| {
        let calls = Arc::new(crate::loom::AtomicUsize::new(0));
        let (handle, completer) = pair::<u32>();
        let worker = thread::spawn(move || {
            assert!(completer.start());
            completer.complete(Ok(2));
        });
        let counter = calls.clone();
        handle.add_done_callback(move |result| {
            assert_eq!(*result, Ok(2));
            counter.fetch_add(1, crate::loom::Ordering::SeqCst);
        });
        worker.join().unwrap();
        assert_eq!(calls.load(crate::loom::Ordering::SeqCst), 1);
        assert_eq!(handle.result(), Ok(2));
    });
}

#[test]
fn waiter_wakes_after_completion() {
    loom::model(|| {
        let (handle, completer) = pair::<u32>();
        let worker = thread::spawn(move || {
            if completer.start() {
                completer.complete(Ok(3));
            }
        });
        assert_eq!(handle.result(), Ok(3));
        worker.join().unwrap();
    });
}

#[test]
fn dropped_completer_wakes_waiter() {
    loom::model(|| {
        let (handle, completer) = pair::<u32>();
        let worker = thread::spawn(move || drop(completer));
        assert_eq!(handle.result(), Err(TaskError::Cancelled));
        worker.join().unwrap();
    });
}
