//! Model tests of [`Event`] and the semaphores: run with
//! `RUSTFLAGS="--cfg loom" cargo test -p crew --lib --release sync::loom_tests`.

use super::*;
use crate::loom::{thread, Arc};

#[test]
fn event_set_wakes_every_waiter() {
    loom::model(|| {
        let event = Arc::new(Event::new());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let event = event.clone();
                thread::spawn(move || event.wait())
            })
            .collect();
        event.set();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert!(event.is_set());
    });
}

#[test]
fn event_waiter_wakes_even_if_cleared_at_once() {
    loom::model(|| {
        let event = Arc::new(Event::new());
        let waiter = {
            let event = event.clone();
            thread::spawn(move || event.wait())
        };
        // Python's guarantee is for a thread already waiting when `set` runs.
        while event.waiting() == 0 {
            thread::yield_now();
        }
        event.set();
        event.clear();
        waiter.join().unwrap();
        assert!(!event.is_set());
    });
}

#[test]
fn semaphore_permits_are_exclusive() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let inside = Arc::new(crate::loom::AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (semaphore, inside) = (semaphore.clone(), inside.clone());
                thread::spawn(move || {
                    let _permit = semaphore.acquire();
                    let before = inside.fetch_add(1, crate::loom::Ordering::SeqCst);
                    assert_eq!(before, 0, "two threads hold the only permit");
                    inside.fetch_sub(1, crate::loom::Ordering::SeqCst);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(semaphore.available(), 1);
    });
}

#[test]
fn bounded_semaphore_release_races_acquire() {
    loom::model(|| {
        let semaphore = Arc::new(BoundedSemaphore::new(1));
        semaphore.acquire().forget();
        let releaser = {
            let semaphore = semaphore.clone();
            thread::spawn(move || semaphore.release())
        };
        let permit = semaphore.acquire();
        assert_eq!(releaser.join().unwrap(), Ok(()));
        drop(permit);
        assert_eq!(semaphore.available(), 1);
        assert!(semaphore.release().is_err());
    });
}

#[test]
fn event_hook_runs_once_when_set_races_on_set() {
    loom::model(|| {
        let event = Arc::new(Event::new());
        let runs = Arc::new(crate::loom::AtomicUsize::new(0));
        let setter = {
            let event = event.clone();
            thread::spawn(move || event.set())
        };
        let counter = runs.clone();
        event.on_set(move || {
            counter.fetch_add(1, crate::loom::Ordering::SeqCst);
        });
        setter.join().unwrap();
        // Set and joined: the hook ran, whichever of `set` and `on_set` came first.
        assert_eq!(runs.load(crate::loom::Ordering::SeqCst), 1);
        event.set();
        assert_eq!(runs.load(crate::loom::Ordering::SeqCst), 1);
    });
}

#[test]
fn event_hooks_run_once_under_two_setters() {
    loom::model(|| {
        let event = Arc::new(Event::new());
        let runs = Arc::new(crate::loom::AtomicUsize::new(0));
        for _ in 0..2 {
            let counter = runs.clone();
            event.on_set(move || {
                counter.fetch_add(1, crate::loom::Ordering::SeqCst);
            });
        }
        let setters: Vec<_> = (0..2)
            .map(|_| {
                let event = event.clone();
                thread::spawn(move || event.set())
            })
            .collect();
        for setter in setters {
            setter.join().unwrap();
        }
        assert_eq!(runs.load(crate::loom::Ordering::SeqCst), 2);
    });
}

#[test]
fn event_hook_may_use_the_event_and_waiter_still_wakes() {
    loom::model(|| {
        let event = Arc::new(Event::new());
        let seen_set = Arc::new(crate::loom::AtomicUsize::new(0));
        let (inner, seen) = (event.clone(), seen_set.clone());
        event.on_set(move || {
            // Runs outside the event's lock: reading the event here must not deadlock.
            if inner.is_set() {
                seen.fetch_add(1, crate::loom::Ordering::SeqCst);
            }
        });
        let waiter = {
            let event = event.clone();
            thread::spawn(move || event.wait())
        };
        event.set();
        waiter.join().unwrap();
        assert_eq!(seen_set.load(crate::loom::Ordering::SeqCst), 1);
    });
}
