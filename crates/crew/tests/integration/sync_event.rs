//! Behaviour of `crew::sync::Event`.

use std::sync::Arc;
use std::time::Duration;

use crew::sync::Event;

#[test]
fn starts_clear_and_set_clear_toggle() {
    let event = Event::new();
    assert!(!event.is_set());
    event.set();
    assert!(event.is_set());
    event.set(); // idempotent
    assert!(event.is_set());
    event.clear();
    assert!(!event.is_set());
}

#[test]
fn wait_timeout_reports_whether_set() {
    let event = Event::new();
    assert!(!event.wait_timeout(Duration::from_millis(20)));
    event.set();
    assert!(event.wait_timeout(Duration::from_millis(20)));
    assert!(event.wait_timeout(Duration::MAX));
    event.wait(); // returns at once when set
}

#[test]
fn set_wakes_every_waiting_thread() {
    for _ in 0..200 {
        let event = Arc::new(Event::new());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let event = event.clone();
                std::thread::spawn(move || event.wait())
            })
            .collect();
        event.set();
        for waiter in waiters {
            waiter.join().unwrap();
        }
    }
}

#[cfg(feature = "async")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_waiters_are_woken_by_a_thread() {
    let event = Arc::new(Event::new());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let event = event.clone();
            tokio::spawn(async move {
                event.wait_async().await;
                i
            })
        })
        .collect();
    let setter = {
        let event = event.clone();
        std::thread::spawn(move || event.set())
    };
    let mut sum = 0;
    for task in tasks {
        sum += task.await.unwrap();
    }
    setter.join().unwrap();
    assert_eq!(sum, 28);
}

#[cfg(feature = "async")]
#[tokio::test]
async fn dropped_async_waiter_is_forgotten() {
    let event = Event::new();
    {
        let waiting = event.wait_async();
        let timed_out = tokio::time::timeout(Duration::from_millis(10), waiting).await;
        assert!(timed_out.is_err());
    }
    event.set();
    event.wait_async().await;
}

#[test]
fn is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Event>();
    check::<crew::sync::Semaphore>();
    check::<crew::sync::BoundedSemaphore>();
    check::<crew::queue::Queue<String>>();
}

#[test]
fn every_hook_runs_exactly_once_when_set_races_on_set() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for _ in 0..200 {
        let event = Arc::new(Event::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let adders: Vec<_> = (0..4)
            .map(|_| {
                let (event, runs) = (event.clone(), runs.clone());
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let runs = runs.clone();
                        event.on_set(move || {
                            runs.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                })
            })
            .collect();
        let setters: Vec<_> = (0..2)
            .map(|_| {
                let event = event.clone();
                std::thread::spawn(move || event.set())
            })
            .collect();
        for thread in adders.into_iter().chain(setters) {
            thread.join().unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 100);
        event.set();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            100,
            "a second set runs nothing"
        );
    }
}

#[test]
fn hooks_wait_for_the_next_set_after_clear() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let event = Event::new();
    let runs = Arc::new(AtomicUsize::new(0));
    event.set();
    event.clear();
    let counter = runs.clone();
    event.on_set(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(runs.load(Ordering::SeqCst), 0, "cleared: the hook waits");
    event.set();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
