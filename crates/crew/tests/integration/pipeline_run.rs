//! Behaviour of `crew::pipeline::Pipeline`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crew::pipeline::{Pipeline, PipelineError};

#[derive(Debug)]
struct Refused(u32);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// A tiny, uneven delay so items overtake each other between stages.
fn jitter(n: u32) {
    if n % 7 == 0 {
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn ordered_results_and_stats() {
    let mut run = Pipeline::from_iter(0..500u32)
        .map("download", 4, |n| {
            jitter(n);
            n * 2
        })
        .map("resize", 2, |n: u32| n + 1)
        .map("upload", 3, |n: u32| {
            jitter(n);
            u64::from(n)
        })
        .capacity(3)
        .run()
        .unwrap();
    let results: Vec<u64> = run.by_ref().map(Result::unwrap).collect();
    assert_eq!(results, (0..500u64).map(|n| n * 2 + 1).collect::<Vec<_>>());
    assert!(run.is_finished());
    let stats = run.stats();
    let names: Vec<&str> = stats.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["download", "resize", "upload"]);
    for stage in &stats {
        assert_eq!(stage.items, 500);
        assert_eq!(stage.errors, 0);
        assert!(stage.max_queue_depth <= 3, "queues are bounded");
    }
    assert_eq!(stats[0].workers, 4);
}

#[test]
fn unordered_yields_every_item_once() {
    let run = Pipeline::from_iter(0..1_000u32)
        .map("a", 3, |n| {
            jitter(n);
            n
        })
        .map("b", 2, |n: u32| n)
        .unordered()
        .run()
        .unwrap();
    let mut results: Vec<u32> = run.map(Result::unwrap).collect();
    results.sort_unstable();
    assert_eq!(results, (0..1_000).collect::<Vec<_>>());
}

#[test]
fn first_error_stops_the_run() {
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let mut run = Pipeline::from_iter(0..100_000u32)
        .stage("check", 2, move |n| {
            counter.fetch_add(1, Ordering::SeqCst);
            if n == 50 {
                Err(Refused(n))
            } else {
                Ok(n)
            }
        })
        .map("after", 2, |n: u32| n)
        .run()
        .unwrap();
    let results: Vec<_> = run.by_ref().collect();
    let (last, oks) = results.split_last().unwrap();
    // The results ahead of the error, exactly, as `iter.map(f)` would give them.
    let oks: Vec<u32> = oks.iter().map(|r| *r.as_ref().unwrap()).collect();
    assert_eq!(oks, (0..50).collect::<Vec<_>>());
    match last {
        Err(PipelineError::Failed {
            stage,
            item,
            source,
        }) => {
            assert_eq!(stage, "check");
            assert_eq!(*item, 50);
            assert_eq!(source.to_string(), "refused 50");
        }
        other => panic!("expected the stage error, got {other:?}"),
    }
    assert!(run.next().is_none());
    // Stopped early: the source did not read all 100 000 items.
    assert!(started.load(Ordering::SeqCst) < 10_000);
    assert_eq!(run.stats()[0].errors, 1);
}

/// Waits (bounded) until stage 0 of `stats` counted an error, then a little more so that the
/// failing worker has handed it on.
fn wait_for_error(errors: &AtomicUsize) {
    for _ in 0..5_000 {
        if errors.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(30));
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("the stage never failed");
}

#[test]
fn results_ahead_of_the_error_are_delivered_first_in_input_order() {
    // Item 5 fails at once while items 0..5 are still held up in a later stage: they come
    // first, then the error. Before the fix the error came first and 0..5 were lost.
    let failed = Arc::new(AtomicUsize::new(0));
    let (check_failed, slow_failed) = (failed.clone(), failed.clone());
    let mut run = Pipeline::from_iter(0..1_000u32)
        .stage("check", 2, move |n| {
            if n == 5 {
                check_failed.fetch_add(1, Ordering::SeqCst);
                Err(Refused(n))
            } else {
                Ok(n)
            }
        })
        .map("slow", 1, move |n: u32| {
            if n == 0 {
                wait_for_error(&slow_failed);
            }
            n * 10
        })
        .run()
        .unwrap();
    let results: Vec<_> = run.by_ref().collect();
    let (last, oks) = results.split_last().unwrap();
    let oks: Vec<u32> = oks.iter().map(|r| *r.as_ref().unwrap()).collect();
    assert_eq!(oks, [0, 10, 20, 30, 40]);
    assert_eq!(last.as_ref().unwrap_err().item(), Some(5));
    assert!(run.next().is_none());
    // The first failure in input order wins, even when a later item failed first.
    let mut run = Pipeline::from_iter(0..100u32)
        .stage("two-failures", 2, |n| {
            if n == 3 {
                std::thread::sleep(Duration::from_millis(30));
            }
            if n == 3 || n == 4 {
                Err(Refused(n))
            } else {
                Ok(n)
            }
        })
        .run()
        .unwrap();
    let results: Vec<_> = run.by_ref().collect();
    assert_eq!(results.len(), 4, "{results:?}");
    assert_eq!(results[3].as_ref().unwrap_err().item(), Some(3));
}

#[test]
fn unordered_yields_what_finished_before_the_error_then_the_error() {
    let failed = Arc::new(AtomicUsize::new(0));
    let counter = failed.clone();
    let mut run = Pipeline::from_iter(0..1_000u32)
        .stage("check", 1, move |n| {
            if n == 4 {
                counter.fetch_add(1, Ordering::SeqCst);
                Err(Refused(n))
            } else {
                Ok(n)
            }
        })
        .unordered()
        .run()
        .unwrap();
    // Items 0..4 were finished (waiting on the last queue) when item 4 failed.
    wait_for_error(&failed);
    let results: Vec<_> = run.by_ref().collect();
    let (last, oks) = results.split_last().unwrap();
    let mut oks: Vec<u32> = oks.iter().map(|r| *r.as_ref().unwrap()).collect();
    oks.sort_unstable();
    assert_eq!(oks, [0, 1, 2, 3]);
    assert_eq!(last.as_ref().unwrap_err().item(), Some(4));
    assert!(run.next().is_none());
}

#[test]
fn panics_are_errors_with_the_message() {
    let results: Vec<_> = Pipeline::from_iter(0..10u32)
        .map("explode", 1, |n| {
            assert!(n != 3, "cannot handle {n}");
            n
        })
        .collect_errors()
        .run()
        .unwrap()
        .collect();
    assert_eq!(results.len(), 10);
    for (n, result) in results.iter().enumerate() {
        match result {
            Ok(value) => assert_eq!(*value as usize, n),
            Err(PipelineError::Panicked {
                stage,
                item,
                message,
            }) => {
                assert_eq!((stage.as_str(), *item), ("explode", 3));
                assert_eq!(message, "cannot handle 3");
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(results[3].is_err());
}

#[test]
fn collected_errors_pass_through_later_stages() {
    let run = Pipeline::from_iter(0..200u32)
        .stage("odd-only", 3, |n| {
            if n % 2 == 1 {
                Ok(n)
            } else {
                Err(Refused(n))
            }
        })
        .map("square", 2, |n: u32| n * n)
        .collect_errors()
        .run()
        .unwrap();
    let results: Vec<_> = run.collect();
    assert_eq!(results.len(), 200);
    for (n, result) in (0u32..).zip(&results) {
        if n % 2 == 1 {
            assert_eq!(*result.as_ref().unwrap(), n * n);
        } else {
            let error = result.as_ref().unwrap_err();
            assert_eq!(error.stage(), Some("odd-only"));
            assert_eq!(error.item(), Some(u64::from(n)));
        }
    }
}

#[test]
fn source_panic_stops_the_run() {
    let items = (0..10u32).inspect(|n| assert!(*n < 5, "input broke at {n}"));
    let results: Vec<_> = Pipeline::from_iter(items)
        .map("id", 1, |n| n)
        .run()
        .unwrap()
        .collect();
    match results.last() {
        Some(Err(PipelineError::SourcePanicked { message })) => {
            assert_eq!(message, "input broke at 5");
        }
        other => panic!("expected the source's panic, got {other:?}"),
    }
    // Every item read before the panic is delivered first.
    let oks: Vec<u32> = results[..results.len() - 1]
        .iter()
        .map(|r| *r.as_ref().unwrap())
        .collect();
    assert_eq!(oks, [0, 1, 2, 3, 4]);
}

/// A slow last stage holds the others back: nothing runs more than the window ahead.
#[test]
fn backpressure_bounds_items_in_flight() {
    let produced = Arc::new(AtomicUsize::new(0));
    let consumed = Arc::new(AtomicUsize::new(0));
    let most_ahead = Arc::new(AtomicUsize::new(0));
    let (p, c, m) = (produced.clone(), consumed.clone(), most_ahead.clone());
    let source = (0..300u32).inspect(move |_| {
        let ahead = p.fetch_add(1, Ordering::SeqCst) + 1 - c.load(Ordering::SeqCst);
        m.fetch_max(ahead, Ordering::SeqCst);
    });
    let run = Pipeline::from_iter(source)
        .map("fast", 2, |n| n)
        .map("slow", 1, |n: u32| {
            if n % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            n
        })
        .capacity(2)
        .max_in_flight(6)
        .run()
        .unwrap();
    for result in run {
        result.unwrap();
        consumed.fetch_add(1, Ordering::SeqCst);
    }
    // The source reads an item only after taking one of the 6 permits.
    assert!(most_ahead.load(Ordering::SeqCst) <= 7);
}

#[test]
fn dropping_the_run_early_stops_everything() {
    let applied = Arc::new(AtomicUsize::new(0));
    let counter = applied.clone();
    let mut run = Pipeline::from_iter(0..)
        .map("count", 2, move |n: u64| {
            counter.fetch_add(1, Ordering::SeqCst);
            n
        })
        .run()
        .unwrap();
    assert_eq!(run.next().unwrap().unwrap(), 0);
    drop(run); // joins the threads of an endless input
    let after_drop = applied.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        applied.load(Ordering::SeqCst),
        after_drop,
        "threads still running"
    );
}

#[test]
fn stress_many_small_runs() {
    for round in 0..100u32 {
        let n = round * 3;
        let ordered = round % 2 == 0;
        let mut pipeline = Pipeline::from_iter(0..n)
            .map("a", 1 + (round as usize % 3), |x| x + 1)
            .map("b", 1 + (round as usize % 2), |x: u32| x * 2)
            .capacity(1 + round as usize % 4);
        if !ordered {
            pipeline = pipeline.unordered();
        }
        let mut results: Vec<u32> = pipeline.run().unwrap().map(Result::unwrap).collect();
        if !ordered {
            results.sort_unstable();
        }
        assert_eq!(results, (0..n).map(|x| (x + 1) * 2).collect::<Vec<_>>());
    }
}

#[test]
fn stress_errors_anywhere_end_every_run_as_a_plain_loop_would() {
    // Many shapes, failures in any stage at any items: an ordered run yields exactly the
    // results before the first failing item, then its error; an unordered one some of those
    // results, then an error; none hangs.
    for round in 0..120u64 {
        let fails_at =
            move |stage: u64, n: u64| (n * 7 + stage * 3 + round) % 23 == 0 && n >= round % 5;
        let first = (0..200u64)
            .find(|&n| (0..3).any(|stage| fails_at(stage, n)))
            .unwrap();
        let stage = move |index: u64| {
            move |n: u64| {
                if n % 5 == round % 5 {
                    std::thread::yield_now();
                }
                if fails_at(index, n) {
                    Err(Refused(n as u32))
                } else {
                    Ok(n)
                }
            }
        };
        let ordered = round % 2 == 0;
        let mut pipeline = Pipeline::from_iter(0..200u64)
            .stage("a", 1 + round as usize % 3, stage(0))
            .stage("b", 1 + round as usize % 2, stage(1))
            .stage("c", 2, stage(2))
            .capacity(1 + round as usize % 3);
        if !ordered {
            pipeline = pipeline.unordered();
        }
        let results: Vec<_> = pipeline.run().unwrap().collect();
        let (last, oks) = results.split_last().unwrap();
        let mut oks: Vec<u64> = oks.iter().map(|r| *r.as_ref().unwrap()).collect();
        let failed = last.as_ref().unwrap_err().item().unwrap();
        if ordered {
            assert_eq!(failed, first, "round {round}");
            assert_eq!(oks, (0..first).collect::<Vec<_>>(), "round {round}");
        } else {
            oks.sort_unstable();
            oks.dedup();
            assert_eq!(
                oks.len(),
                results.len() - 1,
                "round {round}: a result twice"
            );
            assert!((0..3).any(|stage| fails_at(stage, failed)), "round {round}");
        }
    }
}
