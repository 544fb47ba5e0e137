//! Behaviour of `crew::sync::{Semaphore, BoundedSemaphore}`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crew::sync::{BoundedSemaphore, ReleaseError, Semaphore};

#[test]
fn permits_are_counted_and_returned_on_drop() {
    let semaphore = Semaphore::new(2);
    let a = semaphore.acquire();
    assert_eq!(semaphore.available(), 1);
    let b = semaphore.try_acquire().expect("one permit left");
    assert!(semaphore.try_acquire().is_none());
    assert!(semaphore
        .acquire_timeout(Duration::from_millis(10))
        .is_none());
    drop(a);
    assert_eq!(semaphore.available(), 1);
    drop(b);
    assert_eq!(semaphore.available(), 2);
}

#[test]
fn release_may_exceed_the_initial_value() {
    let semaphore = Semaphore::new(0);
    semaphore.release();
    semaphore.add_permits(3);
    assert_eq!(semaphore.available(), 4);
    semaphore.acquire().forget();
    assert_eq!(semaphore.available(), 3);
}

#[test]
fn release_wakes_a_blocked_acquirer() {
    let semaphore = Arc::new(Semaphore::new(0));
    let waiter = {
        let semaphore = semaphore.clone();
        std::thread::spawn(move || {
            semaphore.acquire().forget();
        })
    };
    semaphore.release();
    waiter.join().unwrap();
    assert_eq!(semaphore.available(), 0);
}

#[test]
fn bounded_semaphore_refuses_extra_releases() {
    let semaphore = BoundedSemaphore::new(2);
    assert_eq!(semaphore.bound(), 2);
    let error = semaphore.release().unwrap_err();
    assert_eq!(
        error,
        ReleaseError {
            requested: 1,
            available: 2,
            bound: 2
        }
    );
    assert!(error.to_string().contains("released too many times"));
    semaphore.acquire().forget();
    semaphore.acquire().forget();
    assert!(semaphore.add_permits(3).is_err());
    assert_eq!(semaphore.available(), 0, "a refused release adds nothing");
    semaphore.add_permits(2).unwrap();
    assert_eq!(semaphore.available(), 2);
}

#[test]
fn bounded_guard_never_pushes_past_the_bound() {
    let semaphore = BoundedSemaphore::new(1);
    let permit = semaphore.acquire();
    semaphore.release().unwrap(); // a release too early...
    drop(permit); // ...then the guard: the count stays at the bound
    assert_eq!(semaphore.available(), 1);
}

#[test]
fn stress_at_most_n_holders() {
    const HOLDERS: usize = 3;
    let semaphore = Arc::new(Semaphore::new(HOLDERS));
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (semaphore, inside, most) = (semaphore.clone(), inside.clone(), most.clone());
            std::thread::spawn(move || {
                for _ in 0..2_000 {
                    let _permit = semaphore.acquire();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::hint::spin_loop();
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(most.load(Ordering::SeqCst) <= HOLDERS);
    assert_eq!(semaphore.available(), HOLDERS);
}
