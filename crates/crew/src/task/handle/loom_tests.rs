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

/// A backend's cancel hook against the task completing: exactly one wins; the hook runs iff
/// the cancel won, and the handle's outcome says which.
#[test]
fn cancel_with_hook_races_complete() {
    loom::model(|| {
        let hooked = Arc::new(crate::loom::AtomicUsize::new(0));
        let (handle, completer) = pair::<u32>();
        let counter = hooked.clone();
        completer.on_cancel(move || {
            counter.fetch_add(1, crate::loom::Ordering::SeqCst);
        });
        let worker = thread::spawn(move || {
            if completer.start() {
                completer.complete(Ok(1));
            }
        });
        let cancelled = handle.cancel();
        worker.join().unwrap();
        let result = handle.result();
        let hook_runs = hooked.load(crate::loom::Ordering::SeqCst);
        if cancelled {
            assert_eq!(result, Err(TaskError::Cancelled));
            assert_eq!(hook_runs, 1);
        } else {
            assert_eq!(result, Ok(1));
            assert_eq!(hook_runs, 0);
        }
    });
}

/// Registering the hook races the caller's cancel: if the cancel wins first, registering runs
/// the hook at once; otherwise cancel runs it. Either way it runs exactly once.
#[test]
fn hook_registration_races_cancel() {
    loom::model(|| {
        let hooked = Arc::new(crate::loom::AtomicUsize::new(0));
        let (handle, completer) = pair::<u32>();
        let counter = hooked.clone();
        let backend = thread::spawn(move || {
            let started = completer.start();
            completer.on_cancel(move || {
                counter.fetch_add(1, crate::loom::Ordering::SeqCst);
            });
            (completer, started)
        });
        let cancelled = handle.cancel();
        let (completer, started) = backend.join().unwrap();
        assert!(started || cancelled, "only a cancel stops the start");
        if cancelled {
            // Cancelled while pending or running with the hook: settled, hook ran once.
            assert_eq!(hooked.load(crate::loom::Ordering::SeqCst), 1);
            assert!(completer.is_cancelled());
            drop(completer);
            assert_eq!(handle.result(), Err(TaskError::Cancelled));
        } else {
            // Running without a hook yet: not cancellable, and the hook never runs.
            completer.complete(Ok(5));
            assert_eq!(hooked.load(crate::loom::Ordering::SeqCst), 0);
            assert_eq!(handle.result(), Ok(5));
        }
    });
}

/// The deadline (the timer's `expire`) races completion: one outcome, and the hook runs only
/// if the deadline won.
#[test]
fn expire_races_complete() {
    loom::model(|| {
        let hooked = Arc::new(crate::loom::AtomicUsize::new(0));
        let (handle, completer) = pair::<u32>();
        let counter = hooked.clone();
        completer.on_cancel(move || {
            counter.fetch_add(1, crate::loom::Ordering::SeqCst);
        });
        let cell = completer.shared.clone().unwrap();
        let worker = thread::spawn(move || {
            if completer.start() {
                completer.complete(Ok(1));
            }
        });
        cell.expire();
        worker.join().unwrap();
        match handle.result() {
            Ok(1) => assert_eq!(hooked.load(crate::loom::Ordering::SeqCst), 0),
            Err(TaskError::DeadlineExceeded { worker: None }) => {
                assert_eq!(hooked.load(crate::loom::Ordering::SeqCst), 1)
            }
            other => panic!("unexpected {other:?}"),
        }
    });
}
