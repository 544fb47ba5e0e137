//! Many producers and consumers, many iterations: nothing lost, nothing duplicated, bounded.

use std::collections::HashSet;
use std::time::Duration;

use crew::queue::{Queue, TryGetError, TryPutError};

fn run(queue: Queue<u64>, producers: u64, per_producer: u64, consumers: usize) {
    let capacity = queue.capacity();
    let consumer_threads: Vec<_> = (0..consumers)
        .map(|_| {
            let queue = queue.clone();
            std::thread::spawn(move || queue.iter().collect::<Vec<_>>())
        })
        .collect();
    let producer_threads: Vec<_> = (0..producers)
        .map(|p| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for i in 0..per_producer {
                    let item = p * per_producer + i;
                    match i % 3 {
                        0 => queue.put(item).unwrap(),
                        1 => queue.put_timeout(item, Duration::from_secs(60)).unwrap(),
                        _ => {
                            let mut item = item;
                            loop {
                                match queue.try_put(item) {
                                    Ok(()) => break,
                                    Err(TryPutError::Full(back)) => {
                                        item = back;
                                        std::thread::yield_now();
                                    }
                                    Err(TryPutError::Closed(_)) => panic!("closed early"),
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for producer in producer_threads {
        producer.join().unwrap();
    }
    queue.join();
    queue.close();
    let mut seen = HashSet::new();
    for consumer in consumer_threads {
        for item in consumer.join().unwrap() {
            assert!(seen.insert(item), "item {item} delivered twice");
        }
    }
    assert_eq!(seen.len() as u64, producers * per_producer);
    if let Some(capacity) = capacity {
        assert!(queue.peak_len() <= capacity);
    }
    assert_eq!(queue.try_get(), Err(TryGetError::Closed));
}

#[test]
fn stress_bounded_fifo() {
    for _ in 0..20 {
        run(Queue::bounded(4), 4, 2_000, 3);
    }
}

#[test]
fn stress_unbounded_lifo_and_priority() {
    for _ in 0..10 {
        run(Queue::lifo(None), 3, 2_000, 3);
        run(Queue::priority(Some(8)), 3, 2_000, 3);
    }
}

#[test]
fn stress_capacity_one_handoff() {
    for _ in 0..20 {
        run(Queue::bounded(1), 2, 1_000, 2);
    }
}

#[test]
fn stress_close_while_consumers_wait() {
    for round in 0..300 {
        let queue = Queue::<u32>::new();
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let queue = queue.clone();
                std::thread::spawn(move || queue.iter().count())
            })
            .collect();
        for item in 0..round % 5 {
            queue.put(item).unwrap();
        }
        queue.close();
        let total: usize = consumers.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(total as u32, round % 5);
    }
}
