//! Behaviour of `crew::queue::Queue`: orders, capacity, timeouts, close, task_done/join.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

use crew::queue::{
    GetError, GetTimeoutError, Order, PutError, PutTimeoutError, Queue, TaskDoneError, TryGetError,
    TryPutError,
};

#[test]
fn fifo_lifo_priority_orders() {
    let fifo = Queue::new();
    let lifo = Queue::lifo(None);
    let priority = Queue::priority(None);
    for item in [3, 1, 2] {
        fifo.put(item).unwrap();
        lifo.put(item).unwrap();
        priority.put(item).unwrap();
    }
    let drain =
        |queue: &Queue<i32>| -> Vec<i32> { std::iter::from_fn(|| queue.try_get().ok()).collect() };
    assert_eq!(drain(&fifo), [3, 1, 2]);
    assert_eq!(drain(&lifo), [2, 1, 3]);
    assert_eq!(drain(&priority), [1, 2, 3]);
    assert_eq!(fifo.order(), Order::Fifo);
    assert_eq!(lifo.order(), Order::Lifo);
    assert_eq!(priority.order(), Order::Priority);

    let largest_first = Queue::priority(Some(4));
    for item in [3, 9, 5] {
        largest_first.put(Reverse(item)).unwrap();
    }
    assert_eq!(largest_first.get().unwrap().0, 9);
}

#[test]
fn capacity_len_and_try_put_hand_the_item_back() {
    let queue = Queue::bounded(2);
    assert_eq!(queue.capacity(), Some(2));
    assert!(queue.is_empty());
    queue.put("a".to_owned()).unwrap();
    queue.try_put("b".to_owned()).unwrap();
    assert!(queue.is_full());
    assert_eq!(queue.len(), 2);
    match queue.try_put("c".to_owned()) {
        Err(TryPutError::Full(item)) => assert_eq!(item, "c"),
        other => panic!("expected Full, got {other:?}"),
    }
    let error = queue
        .put_timeout("d".to_owned(), Duration::from_millis(10))
        .unwrap_err();
    assert!(error.is_timeout());
    assert_eq!(error.into_inner(), "d");
    assert_eq!(queue.get().unwrap(), "a");
    queue
        .put_timeout("e".to_owned(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(queue.peak_len(), 2);
    assert_eq!(Queue::<u8>::new().capacity(), None);
}

#[test]
fn get_timeouts_and_empty() {
    let queue = Queue::<u8>::new();
    assert_eq!(queue.try_get(), Err(TryGetError::Empty));
    assert_eq!(
        queue.get_timeout(Duration::from_millis(10)),
        Err(GetTimeoutError::Timeout)
    );
    queue.put(1).unwrap();
    assert_eq!(queue.get_timeout(Duration::from_secs(10)), Ok(1));
}

#[test]
fn close_drains_then_reports_closed() {
    let queue = Queue::bounded(4);
    for item in 0..3 {
        queue.put(item).unwrap();
    }
    queue.close();
    queue.close(); // idempotent
    assert!(queue.is_closed());
    assert_eq!(queue.put(9), Err(PutError(9)));
    assert_eq!(queue.try_put(9).unwrap_err().into_inner(), 9);
    assert!(queue
        .put_timeout(9, Duration::from_millis(1))
        .unwrap_err()
        .is_closed());
    assert_eq!(queue.iter().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(queue.get(), Err(GetError));
    assert_eq!(queue.try_get(), Err(TryGetError::Closed));
    assert_eq!(
        queue.get_timeout(Duration::from_millis(1)),
        Err(GetTimeoutError::Closed)
    );
    // The iterator marked each item done.
    assert_eq!(queue.unfinished(), 0);
    queue.join();
}

#[test]
fn close_releases_a_blocked_producer_with_its_item() {
    let queue = Queue::bounded(1);
    queue.put(1).unwrap();
    let producer = {
        let queue = queue.clone();
        std::thread::spawn(move || queue.put(2))
    };
    // Whether the producer is already waiting or not yet started, the full queue refuses it.
    queue.close();
    assert_eq!(producer.join().unwrap(), Err(PutError(2)));
    assert_eq!(queue.get(), Ok(1));
}

#[test]
fn close_releases_blocked_consumers() {
    let queue = Queue::<u32>::new();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let queue = queue.clone();
            std::thread::spawn(move || queue.get())
        })
        .collect();
    queue.close();
    for consumer in consumers {
        assert_eq!(consumer.join().unwrap(), Err(GetError));
    }
}

#[test]
fn task_done_and_join() {
    let queue = Queue::new();
    assert_eq!(queue.task_done(), Err(TaskDoneError));
    assert!(TaskDoneError
        .to_string()
        .contains("more times than items were put"));
    queue.join(); // nothing unfinished
    for item in 0..10 {
        queue.put(item).unwrap();
    }
    assert!(!queue.join_timeout(Duration::from_millis(10)));
    let worker = {
        let queue = queue.clone();
        std::thread::spawn(move || {
            let mut sum = 0;
            while let Ok(item) = queue.get_timeout(Duration::from_millis(50)) {
                sum += item;
                queue.task_done().unwrap();
            }
            sum
        })
    };
    queue.join();
    assert_eq!(queue.unfinished(), 0);
    assert!(queue.join_timeout(Duration::from_millis(10)));
    assert_eq!(worker.join().unwrap(), 45);
    assert_eq!(queue.task_done(), Err(TaskDoneError));
}

#[test]
fn join_waits_until_the_iterating_consumer_finished_its_last_item() {
    let queue = Queue::new();
    let processed = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let consumer = {
        let (queue, processed) = (queue.clone(), processed.clone());
        std::thread::spawn(move || {
            for item in &queue {
                processed.lock().push(item);
            }
        })
    };
    for item in 0..100 {
        queue.put(item).unwrap();
    }
    queue.join();
    // join returned: every item was processed, not merely taken.
    assert_eq!(processed.lock().len(), 100);
    queue.close();
    consumer.join().unwrap();
}

#[test]
fn owned_iterator_and_error_messages() {
    let queue = Queue::new();
    queue.put(1).unwrap();
    queue.put(2).unwrap();
    queue.close();
    let items: Vec<i32> = queue.clone().into_iter().collect();
    assert_eq!(items, [1, 2]);
    assert!(PutError(1).to_string().contains("closed queue"));
    assert!(TryPutError::Full(1).to_string().contains("full"));
    assert!(TryGetError::Empty.to_string().contains("empty"));
    assert!(GetError.to_string().contains("closed and drained"));
    assert!(PutTimeoutError::Timeout(1).to_string().contains("timeout"));
    // Errors holding any item can be unwrapped, even without `T: Debug`.
    struct Opaque;
    let _ = format!("{:?}", PutError(Opaque));
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn zero_capacity_is_refused() {
    let _ = Queue::<u8>::bounded(0);
}
