//! The completion engine alone (model-checked against a plain list, and raced against
//! completing threads), then `Map`, `as_completed` and `wait` on it under stress.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::*;
use crate::task::{pair, Completer};
use crate::{as_completed, wait, Executor, MapOptions, ReturnWhen, ThreadPool};

/// A small deterministic generator (xorshift64*): random enough to shuffle completions, and a
/// failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Single-threaded model check: random pushes, completions (successes, failures and
/// cancellations) and takes; the window must hand back exactly the finished tasks, in the
/// promised order, never hold more than its limit, and give back the rest in input order.
fn model_check(order: Order, seed: u64) {
    let mut rng = Rng::new(seed);
    let limit = 1 + rng.below(6);
    let mut window: Window<usize, usize> = Window::new(order, limit);
    // The model: per task, its completer until completed, and whether it was taken.
    let mut completers: Vec<Option<Completer<usize>>> = Vec::new();
    let mut finished: Vec<usize> = Vec::new(); // completion order, not yet taken
    let mut outcome: Vec<u8> = Vec::new(); // 0 ok, 1 failed, 2 cancelled
    let mut taken: Vec<usize> = Vec::new();
    let mut next_in_order = 0;
    for _ in 0..200 {
        match rng.below(3) {
            0 => {
                let mut started = 0;
                let want = rng.below(limit + 1);
                window.refill(|| {
                    if started == want {
                        return None;
                    }
                    started += 1;
                    let (handle, completer) = pair::<usize>();
                    completers.push(Some(completer));
                    outcome.push(0);
                    Some((completers.len() - 1, handle))
                });
                assert!(window.len() <= limit);
            }
            1 => {
                let open: Vec<usize> = (0..completers.len())
                    .filter(|&i| completers[i].is_some())
                    .collect();
                if open.is_empty() {
                    continue;
                }
                let i = open[rng.below(open.len())];
                let completer = completers[i].take().unwrap();
                match rng.below(3) {
                    0 => {
                        assert!(completer.start());
                        completer.complete(Ok(i));
                    }
                    1 => {
                        assert!(completer.start());
                        outcome[i] = 1;
                        completer.complete(Err(TaskError::Shutdown));
                    }
                    _ => {
                        // Dropped before it started: the task settles as cancelled.
                        outcome[i] = 2;
                        drop(completer);
                    }
                }
                finished.push(i);
            }
            _ => {
                // Take only what will not block: the oldest when in input order.
                let expected = match order {
                    Order::Input => {
                        if next_in_order < completers.len() && completers[next_in_order].is_none() {
                            next_in_order
                        } else {
                            continue;
                        }
                    }
                    Order::Completion => match finished.first() {
                        Some(&i) => i,
                        None => continue,
                    },
                };
                let Next::Finished(done) = window.next(Some(Instant::now())) else {
                    panic!("task {expected} is done and held, yet next found nothing");
                };
                assert_eq!(done.tag, expected);
                assert!(done.handle.done());
                if order == Order::Completion {
                    assert_eq!(done.failed, outcome[expected] == 1);
                }
                let value = done.handle.result();
                match outcome[expected] {
                    0 => assert_eq!(value, Ok(expected)),
                    1 => assert_eq!(value, Err(TaskError::Shutdown)),
                    _ => assert_eq!(value, Err(TaskError::Cancelled)),
                }
                finished.retain(|&i| i != expected);
                taken.push(expected);
                next_in_order += 1;
            }
        }
    }
    // Nothing finished is left over unseen; nothing unfinished is handed back.
    if order == Order::Completion && finished.is_empty() && window.len() > 0 {
        assert!(matches!(window.next(Some(Instant::now())), Next::TimedOut));
    }
    let held = window.len();
    let pending: Vec<usize> = window.into_pending().into_iter().map(|(i, _)| i).collect();
    assert_eq!(pending.len(), held);
    assert!(pending.windows(2).all(|w| w[0] < w[1]), "input order");
    let mut all: Vec<usize> = taken.iter().chain(&pending).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..completers.len()).collect::<Vec<_>>());
    if order == Order::Input {
        assert_eq!(taken, (0..taken.len()).collect::<Vec<_>>());
    }
}

#[test]
fn model_input_order() {
    for seed in 0..2_000 {
        model_check(Order::Input, seed);
    }
}

#[test]
fn model_completion_order() {
    for seed in 0..2_000 {
        model_check(Order::Completion, seed);
    }
}

/// Completes the tasks it is sent from `threads` threads, after a random spin, so completions
/// race the consumer's `next` (with and without deadlines) in every order.
fn race(order: Order, tasks: usize, limit: usize, deadlines: bool, seed: u64) {
    let (sender, receiver) = crossbeam_channel::unbounded::<Completer<usize>>();
    let workers: Vec<_> = (0..3u64)
        .map(|w| {
            let receiver = receiver.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ (w + 1));
                for completer in receiver {
                    for _ in 0..rng.below(200) {
                        std::hint::spin_loop();
                    }
                    if completer.start() {
                        completer.complete(Ok(0));
                    }
                }
            })
        })
        .collect();
    let mut window: Window<usize, usize> = Window::new(order, limit);
    let mut started = 0;
    let mut seen = vec![false; tasks];
    let mut expected_next = 0;
    let mut taken = 0;
    while taken < tasks {
        window.refill(|| {
            if started == tasks {
                return None;
            }
            let (handle, completer) = pair();
            sender.send(completer).unwrap();
            started += 1;
            Some((started - 1, handle))
        });
        assert!(window.len() <= limit);
        let deadline = deadlines.then(|| Instant::now() + Duration::from_micros(20));
        match window.next(deadline) {
            Next::Finished(done) => {
                assert!(!std::mem::replace(&mut seen[done.tag], true), "twice");
                if order == Order::Input {
                    assert_eq!(done.tag, expected_next);
                    expected_next += 1;
                }
                assert_eq!(done.handle.result(), Ok(0));
                taken += 1;
            }
            Next::TimedOut => assert!(deadlines, "timed out without a deadline"),
            Next::Empty => panic!("empty with {} tasks left", tasks - taken),
        }
    }
    assert_eq!(window.len(), 0);
    drop(sender);
    for worker in workers {
        worker.join().unwrap();
    }
}

#[test]
fn stress_completions_race_the_consumer() {
    for (round, order) in [Order::Input, Order::Completion].into_iter().enumerate() {
        for deadlines in [false, true] {
            race(order, 20_000, 8, deadlines, round as u64);
            race(order, 5_000, 1, deadlines, round as u64 + 7);
        }
    }
}

#[test]
fn dropping_a_window_with_tasks_in_flight_is_quiet() {
    for round in 0..1_000u64 {
        let mut window: Window<usize, usize> = Window::new(Order::Completion, 4);
        let mut completers = Vec::new();
        for i in 0..4 {
            let (handle, completer) = pair();
            window.push(i, handle);
            completers.push(completer);
        }
        // Complete some before the drop and the rest from another thread racing it.
        let late = completers.split_off((round % 5) as usize);
        for completer in completers {
            assert!(completer.start());
            completer.complete(Ok(1));
        }
        let finisher = std::thread::spawn(move || {
            for completer in late {
                assert!(completer.start());
                completer.complete(Ok(2));
            }
        });
        drop(window);
        finisher.join().unwrap();
    }
}

fn square(x: u64) -> u64 {
    x * x
}

/// Spins a pseudo-random while (so completion order is shuffled) and fails one item in 397.
fn jittery(x: u64) -> u64 {
    let spins = (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize;
    for _ in 0..spins {
        std::hint::spin_loop();
    }
    assert!(x % 397 != 396, "unlucky item");
    x * 2
}

fn panics_on_multiples_of_three(x: u64) -> u64 {
    assert!(x % 3 != 0, "multiple of three");
    x
}

/// Regression: after a failed chunk, an empty window ended the iterator although input
/// remained (3 results of 9 here).
#[test]
fn map_goes_on_after_a_failed_chunk_with_a_window_of_one() {
    let pool = ThreadPool::new(2);
    for chunksize in [1, 2] {
        let options = MapOptions::new().window(1).chunksize(chunksize);
        let ordered: Vec<_> = pool
            .map_with(panics_on_multiples_of_three, 1..=9, options)
            .collect();
        assert_eq!(ordered.len(), 9, "ordered, chunks of {chunksize}");
        for (item, result) in (1..=9u64).zip(&ordered) {
            let chunk = (item - 1) / chunksize as u64;
            let first = chunk * chunksize as u64 + 1;
            let chunk_fails = (first..first + chunksize as u64).any(|y| y % 3 == 0 && y <= 9);
            match result {
                Ok(value) => assert!(*value == item && !chunk_fails, "item {item}"),
                Err(error) => {
                    assert!(chunk_fails, "item {item} failed: {error}");
                    assert!(error.to_string().contains("multiple of three"), "{error}");
                }
            }
        }
        let unordered: Vec<_> = pool
            .map_with(panics_on_multiples_of_three, 1..=9, options.unordered())
            .collect();
        assert_eq!(unordered.len(), 9, "unordered, chunks of {chunksize}");
        let mut values: Vec<u64> = unordered.iter().filter_map(|r| r.clone().ok()).collect();
        values.sort_unstable();
        let expected: Vec<u64> = ordered.iter().filter_map(|r| r.clone().ok()).collect();
        assert_eq!(values, expected);
    }
}

#[test]
fn a_refused_map_yields_the_refusal_first_then_what_was_in_flight() {
    let pool = ThreadPool::new(1);
    let mut results = pool.map_with(square, 0..100, MapOptions::new().window(3));
    assert_eq!(results.next(), Some(Ok(0)));
    pool.shutdown(true, false);
    // Two chunks were in flight; the third submission is refused.
    assert!(matches!(
        results.next(),
        Some(Err(TaskError::Rejected(crate::SubmitError::Shutdown)))
    ));
    assert_eq!(results.collect::<Vec<_>>(), [Ok(1), Ok(4)]);
}

#[test]
fn stress_map_random_windows_orders_and_drops() {
    let pool = ThreadPool::new(3);
    let mut rng = Rng::new(42);
    for round in 0..300 {
        let n = 1 + rng.below(2_000) as u64;
        let chunksize = 1 + rng.below(9);
        let window = 1 + rng.below(8);
        let ordered = rng.below(2) == 0;
        let mut options = MapOptions::new().chunksize(chunksize).window(window);
        if !ordered {
            options = options.unordered();
        }
        let stop_after = if rng.below(4) == 0 {
            rng.below(n as usize)
        } else {
            usize::MAX
        };
        let results: Vec<_> = pool
            .map_with(jittery, 0..n, options)
            .take(stop_after)
            .collect();
        let context = format!("round {round}: n {n}, chunks of {chunksize}, window {window}");
        assert_eq!(results.len(), stop_after.min(n as usize), "{context}");
        if stop_after < n as usize {
            continue; // dropped mid-iteration: the next round must not be disturbed
        }
        if ordered {
            for (x, result) in (0..n).zip(&results) {
                let chunk = x / chunksize as u64;
                let chunk_fails = (chunk * chunksize as u64
                    ..((chunk + 1) * chunksize as u64).min(n))
                    .any(|y| y % 397 == 396);
                match result {
                    Ok(value) => assert!(*value == x * 2 && !chunk_fails, "{context}: item {x}"),
                    Err(_) => assert!(chunk_fails, "{context}: item {x}"),
                }
            }
        } else {
            let mut values: Vec<u64> = results.iter().filter_map(|r| r.clone().ok()).collect();
            values.sort_unstable();
            assert!(
                values.windows(2).all(|w| w[0] < w[1]),
                "{context}: a duplicate"
            );
            let errors = results.iter().filter(|r| r.is_err()).count();
            assert_eq!(values.len() + errors, n as usize, "{context}");
        }
    }
}

#[test]
fn stress_as_completed_with_deadlines() {
    let pool = ThreadPool::new(3);
    let mut rng = Rng::new(7);
    for round in 0..300 {
        let n = 1 + rng.below(200) as u64;
        let handles: Vec<_> = (0..n)
            .map(|i| pool.submit(jittery, i * 397).unwrap())
            .collect();
        let timeout = Duration::from_micros(rng.below(300) as u64);
        let mut iter = as_completed(handles, Some(timeout));
        let mut seen = HashSet::new();
        let mut timed_out = false;
        for item in iter.by_ref() {
            match item {
                Ok(handle) => {
                    assert!(handle.done());
                    assert!(
                        seen.insert(handle.result().unwrap()),
                        "round {round}: twice"
                    );
                }
                Err(error) => {
                    assert_eq!(error, TaskError::TimedOut);
                    timed_out = true;
                }
            }
        }
        let pending = iter.into_pending();
        assert!(timed_out || pending.is_empty(), "round {round}");
        for handle in pending {
            assert!(
                seen.insert(handle.result().unwrap()),
                "round {round}: twice"
            );
        }
        assert_eq!(seen.len(), n as usize, "round {round}: lost a handle");
    }
}

#[test]
fn stress_wait_with_deadlines() {
    let pool = ThreadPool::new(3);
    let mut rng = Rng::new(9);
    let modes = [
        ReturnWhen::FirstCompleted,
        ReturnWhen::FirstException,
        ReturnWhen::AllCompleted,
    ];
    for round in 0..300 {
        let n = 1 + rng.below(100) as u64;
        let handles: Vec<_> = (0..n).map(|i| pool.submit(jittery, i).unwrap()).collect();
        let mode = modes[rng.below(3)];
        let timeout = (rng.below(2) == 0).then(|| Duration::from_micros(rng.below(300) as u64));
        let (done, not_done) = wait(handles, mode, timeout);
        assert_eq!(done.len() + not_done.len(), n as usize, "round {round}");
        assert!(done.iter().all(TaskHandle::done));
        if timeout.is_none() && mode != ReturnWhen::FirstCompleted {
            // Without a deadline only a failure stops FirstException early; item 396 fails.
            assert!(not_done.is_empty() || (mode == ReturnWhen::FirstException && n > 396));
        }
        if timeout.is_none() {
            assert!(
                !done.is_empty(),
                "round {round}: returned with nothing done"
            );
        }
        for part in [done, not_done] {
            let values: Vec<u64> = part.into_iter().map(|h| h.result().unwrap()).collect();
            assert!(
                values.windows(2).all(|w| w[0] < w[1]),
                "round {round}: input order"
            );
        }
    }
}
