//! `Queue::send`/`recv`: one queue between threads and async tasks.

#![cfg(feature = "async")]

use std::time::Duration;

use crew::queue::{GetError, PutError, Queue};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_produce_tasks_consume() {
    let queue = Queue::bounded(4);
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for i in 0..1_000 {
                    queue.put(p * 1_000 + i).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut sum = 0u64;
                let mut count = 0u64;
                while let Ok(item) = queue.recv().await {
                    sum += item;
                    count += 1;
                }
                (sum, count)
            })
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        for producer in producers {
            producer.join().unwrap();
        }
    })
    .await
    .unwrap();
    queue.close();
    let (mut sum, mut count) = (0, 0);
    for consumer in consumers {
        let (s, c) = consumer.await.unwrap();
        sum += s;
        count += c;
    }
    assert_eq!(count, 3_000);
    assert_eq!(sum, (0..3_000u64).sum::<u64>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_produce_threads_consume_with_backpressure() {
    let queue = Queue::bounded(2);
    let consumer = {
        let queue = queue.clone();
        std::thread::spawn(move || queue.iter().collect::<Vec<u32>>())
    };
    let producers: Vec<_> = (0..4u32)
        .map(|p| {
            let queue = queue.clone();
            tokio::spawn(async move {
                for i in 0..500 {
                    queue.send(p * 500 + i).await.unwrap();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
    queue.close();
    let mut items = consumer.join().unwrap();
    items.sort_unstable();
    assert_eq!(items, (0..2_000).collect::<Vec<_>>());
    assert!(queue.peak_len() <= 2);
}

#[tokio::test]
async fn send_and_recv_after_close() {
    let queue = Queue::new();
    queue.send(1).await.unwrap();
    queue.close();
    assert_eq!(queue.send(2).await, Err(PutError(2)));
    assert_eq!(queue.recv().await, Ok(1));
    assert_eq!(queue.recv().await, Err(GetError));
}

#[tokio::test]
async fn close_wakes_pending_futures() {
    let queue = Queue::<u8>::bounded(1);
    let getter = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.recv().await })
    };
    tokio::task::yield_now().await;
    let full = Queue::bounded(1);
    full.put(0).unwrap();
    let putter = {
        let full = full.clone();
        tokio::spawn(async move { full.send(1).await })
    };
    tokio::task::yield_now().await;
    queue.close();
    full.close();
    assert_eq!(getter.await.unwrap(), Err(GetError));
    assert_eq!(putter.await.unwrap(), Err(PutError(1)));
}

/// A `recv` cancelled after it was woken must pass the wake-up on, or the other waiter would
/// sleep forever next to an item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_receivers_do_not_lose_wakeups() {
    for _ in 0..200 {
        let queue = Queue::<u32>::new();
        let patient = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.recv().await })
        };
        let impatient = {
            let queue = queue.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_micros(50), queue.recv()).await;
            })
        };
        impatient.await.unwrap();
        queue.put(5).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(30), patient)
            .await
            .expect("the remaining receiver was not woken")
            .unwrap();
        assert_eq!(got, Ok(5));
    }
}

#[test]
fn futures_work_on_another_executor() {
    let queue = Queue::bounded(1);
    let consumer = {
        let queue = queue.clone();
        std::thread::spawn(move || {
            futures::executor::block_on(async {
                let mut items = Vec::new();
                while let Ok(item) = queue.recv().await {
                    items.push(item);
                }
                items
            })
        })
    };
    futures::executor::block_on(async {
        for item in 0..100 {
            queue.send(item).await.unwrap();
        }
    });
    queue.close();
    assert_eq!(consumer.join().unwrap(), (0..100).collect::<Vec<_>>());
}
