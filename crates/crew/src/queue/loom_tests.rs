//! Model tests of [`Queue`]: run with
//! `RUSTFLAGS="--cfg loom" cargo test -p crew --lib --release queue::loom_tests`.
//! Each model is kept to two or three threads and a handful of operations so that loom can
//! explore every interleaving quickly.

use super::*;
use crate::loom::thread;

#[test]
fn close_wakes_waiting_consumers() {
    loom::model(|| {
        let queue = Queue::<u32>::new();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let queue = queue.clone();
                thread::spawn(move || queue.get())
            })
            .collect();
        queue.put(7).unwrap();
        queue.close();
        let mut results: Vec<_> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        results.sort_by_key(Result::is_err);
        // Exactly one consumer gets the item; the other sees the closed, drained queue.
        assert_eq!(results, [Ok(7), Err(GetError)]);
        assert!(queue.put(8).is_err());
    });
}

#[test]
fn consumer_drains_before_closed() {
    loom::model(|| {
        let queue = Queue::<u32>::bounded(1);
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || {
                queue.put(1).unwrap();
                queue.put(2).unwrap();
                queue.close();
            })
        };
        let taken: Vec<u32> = queue.iter().collect();
        producer.join().unwrap();
        assert_eq!(taken, [1, 2]);
    });
}

#[test]
fn bounded_put_waits_for_get() {
    loom::model(|| {
        let queue = Queue::<u32>::bounded(1);
        queue.put(1).unwrap();
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || queue.put(2))
        };
        assert_eq!(queue.get(), Ok(1));
        assert_eq!(queue.get(), Ok(2));
        assert!(producer.join().unwrap().is_ok());
        assert!(queue.len() <= 1);
    });
}

#[test]
fn close_fails_a_waiting_producer() {
    loom::model(|| {
        let queue = Queue::<u32>::bounded(1);
        queue.put(1).unwrap();
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || queue.put(2))
        };
        queue.close();
        // The waiting put fails with its item back; the queued item is still delivered.
        assert_eq!(
            producer.join().unwrap().map_err(PutError::into_inner),
            Err(2)
        );
        assert_eq!(queue.get(), Ok(1));
        assert_eq!(queue.get(), Err(GetError));
    });
}

#[test]
fn join_waits_for_task_done() {
    loom::model(|| {
        let queue = Queue::<u32>::new();
        let processed = Arc::new(crate::loom::AtomicUsize::new(0));
        let worker = {
            let (queue, processed) = (queue.clone(), processed.clone());
            thread::spawn(move || {
                for _ in 0..2 {
                    queue.get().unwrap();
                    processed.fetch_add(1, crate::loom::Ordering::SeqCst);
                    queue.task_done().unwrap();
                }
            })
        };
        queue.put(1).unwrap();
        queue.put(2).unwrap();
        queue.join();
        assert_eq!(processed.load(crate::loom::Ordering::SeqCst), 2);
        assert_eq!(queue.task_done(), Err(TaskDoneError));
        worker.join().unwrap();
    });
}

#[cfg(feature = "async")]
#[test]
fn async_recv_is_woken_by_a_thread_put() {
    loom::model(|| {
        let queue = Queue::<u32>::new();
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || queue.put(4).unwrap())
        };
        assert_eq!(loom::future::block_on(queue.recv()), Ok(4));
        producer.join().unwrap();
    });
}

#[cfg(feature = "async")]
#[test]
fn async_send_is_woken_by_a_thread_get() {
    loom::model(|| {
        let queue = Queue::<u32>::bounded(1);
        queue.put(1).unwrap();
        let consumer = {
            let queue = queue.clone();
            thread::spawn(move || queue.get())
        };
        assert_eq!(loom::future::block_on(queue.send(2)), Ok(()));
        assert_eq!(consumer.join().unwrap(), Ok(1));
        assert_eq!(queue.get(), Ok(2));
    });
}

#[cfg(feature = "async")]
#[test]
fn async_recv_is_woken_by_close() {
    loom::model(|| {
        let queue = Queue::<u32>::new();
        let closer = {
            let queue = queue.clone();
            thread::spawn(move || queue.close())
        };
        assert_eq!(loom::future::block_on(queue.recv()), Err(GetError));
        closer.join().unwrap();
    });
}

/// A waker that records that it was woken.
#[cfg(feature = "async")]
struct Flag(std::sync::atomic::AtomicBool);

#[cfg(feature = "async")]
impl std::task::Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A receiver woken for an item and then dropped must hand the wake-up to the next receiver,
/// whether the put comes before or after the drop.
#[cfg(feature = "async")]
#[test]
fn dropped_woken_receiver_passes_the_wakeup_on() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    loom::model(|| {
        let queue = Queue::<u32>::new();
        let flags: Vec<_> = (0..2)
            .map(|_| std::sync::Arc::new(Flag(std::sync::atomic::AtomicBool::new(false))))
            .collect();
        let wakers: Vec<Waker> = flags.iter().map(|flag| Waker::from(flag.clone())).collect();
        let mut first = Box::pin(queue.recv());
        let mut second = Box::pin(queue.recv());
        let pending = |future: &mut std::pin::Pin<Box<RecvFuture<'_, u32>>>, waker: &Waker| {
            future
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        };
        assert!(pending(&mut first, &wakers[0]));
        assert!(pending(&mut second, &wakers[1]));
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || queue.put(1).unwrap())
        };
        drop(first);
        producer.join().unwrap();
        assert!(flags[1].0.load(std::sync::atomic::Ordering::SeqCst));
        let polled = second.as_mut().poll(&mut Context::from_waker(&wakers[1]));
        assert_eq!(polled, Poll::Ready(Ok(1)));
    });
}

#[test]
fn cancelled_getter_gives_up_and_the_live_one_gets_the_item() {
    // The inter-process broker's wait: a getter for a dead requester returns without taking
    // the item (whichever getter the put wakes), and the live getter gets it.
    loom::model(|| {
        let queue = Queue::<u32>::new();
        let gone = Arc::new(crate::loom::AtomicBool::new(false));
        let cancelled_getter = {
            let (queue, gone) = (queue.clone(), gone.clone());
            thread::spawn(move || {
                queue.get_cancellable(None, &|| gone.load(crate::loom::Ordering::SeqCst))
            })
        };
        let live_getter = {
            let queue = queue.clone();
            thread::spawn(move || queue.get())
        };
        gone.store(true, crate::loom::Ordering::SeqCst);
        queue.wake_all();
        queue.put(7).unwrap();
        assert_eq!(cancelled_getter.join().unwrap(), Err(Stopped::Cancelled));
        assert_eq!(live_getter.join().unwrap(), Ok(7));
    });
}

#[test]
fn cancelled_putter_puts_nothing() {
    loom::model(|| {
        let queue = Queue::<u32>::bounded(1);
        queue.put(1).unwrap();
        let gone = Arc::new(crate::loom::AtomicBool::new(false));
        let putter = {
            let (queue, gone) = (queue.clone(), gone.clone());
            thread::spawn(move || {
                queue.put_cancellable(2, None, &|| gone.load(crate::loom::Ordering::SeqCst))
            })
        };
        gone.store(true, crate::loom::Ordering::SeqCst);
        queue.wake_all();
        assert_eq!(putter.join().unwrap(), Err((2, Stopped::Cancelled)));
        assert_eq!(queue.try_get(), Ok(1));
        assert_eq!(queue.try_get(), Err(TryGetError::Empty));
    });
}
