//! [`Queue::send`] and [`Queue::recv`]: the queue's operations as futures.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{wake, GetError, PutError, Queue};

impl<T> Queue<T> {
    /// Puts `item`, waiting asynchronously while the queue is full (`asyncio.Queue.put`).
    /// Threads blocked in [`get`](Self::get) and tasks awaiting [`recv`](Self::recv) both see it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let queue = crew::queue::Queue::bounded(1);
    /// let consumer = {
    ///     let queue = queue.clone();
    ///     std::thread::spawn(move || queue.iter().collect::<Vec<_>>()) // a plain thread
    /// };
    /// for item in 0..3 {
    ///     queue.send(item).await.unwrap(); // an async producer
    /// }
    /// queue.close();
    /// assert_eq!(consumer.join().unwrap(), [0, 1, 2]);
    /// # });
    /// ```
    ///
    /// # Errors
    /// The future yields [`PutError`] with the item if the queue is (or becomes) closed.
    pub fn send(&self, item: T) -> SendFuture<'_, T> {
        SendFuture {
            queue: self,
            item: Some(item),
            slot: None,
        }
    }

    /// Takes the next item, waiting asynchronously while the queue is empty and open
    /// (`asyncio.Queue.get`).
    ///
    /// # Errors
    /// The future yields [`GetError`] once the queue is closed and drained.
    pub fn recv(&self) -> RecvFuture<'_, T> {
        RecvFuture {
            queue: self,
            slot: None,
            done: false,
        }
    }
}

/// The future of [`Queue::send`]. Dropping it before it completes gives up the put.
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a, T> {
    queue: &'a Queue<T>,
    item: Option<T>,
    slot: Option<u64>,
}

// The item is never pinned: it is moved out by value, so the future may move freely.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), PutError<T>>;

    /// # Panics
    /// If polled again after it completed.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let item = this
            .item
            .take()
            .expect("SendFuture polled after it completed");
        let mut state = this.queue.shared.state.lock();
        if let Some(id) = this.slot.take() {
            state.putters.remove(id);
        }
        if state.closed {
            return Poll::Ready(Err(PutError(item)));
        }
        if state.is_full() {
            this.item = Some(item);
            state.putters.register(&mut this.slot, cx.waker());
            return Poll::Pending;
        }
        this.queue.push_locked(state, item);
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        let Some(id) = self.slot.take() else {
            return;
        };
        let shared = &*self.queue.shared;
        let mut state = shared.state.lock();
        if state.putters.remove(id) {
            return;
        }
        // Woken for room it will not use: hand the turn to the next putter.
        let waker = state.putters.take_one();
        drop(state);
        shared.not_full.notify_one();
        wake(waker);
    }
}

/// The future of [`Queue::recv`]. Dropping it before it completes takes nothing.
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a, T> {
    queue: &'a Queue<T>,
    slot: Option<u64>,
    done: bool,
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<T, GetError>;

    /// # Panics
    /// If polled again after it completed.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        assert!(!this.done, "RecvFuture polled after it completed");
        let shared = &*this.queue.shared;
        let mut state = shared.state.lock();
        if let Some(id) = this.slot.take() {
            state.getters.remove(id);
        }
        if let Some(item) = state.items.pop() {
            this.done = true;
            Queue::after_pop(shared, state);
            return Poll::Ready(Ok(item));
        }
        if state.closed {
            this.done = true;
            return Poll::Ready(Err(GetError));
        }
        state.getters.register(&mut this.slot, cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        let Some(id) = self.slot.take() else {
            return;
        };
        let shared = &*self.queue.shared;
        let mut state = shared.state.lock();
        if state.getters.remove(id) {
            return;
        }
        // Woken for an item it will not take: hand the turn to the next getter.
        let waker = state.getters.take_one();
        drop(state);
        shared.not_empty.notify_one();
        wake(waker);
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("pending_item", &self.item.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFuture")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
