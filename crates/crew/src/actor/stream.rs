//! [`ActorStream`]: the items of a streaming method at the caller, as an iterator and an async
//! stream.
//!
//! # Design note: flow control
//!
//! On a thread here, the method runs in the actor (with its state) and returns an iterator;
//! the caller then pulls the items itself, one per `next()`, so the actor buffers nothing and a
//! slow caller slows only itself. From a worker process, items come over the socket under a
//! credit window: the worker sends at most [`WINDOW`] items beyond what the caller consumed,
//! and the caller grants more as it consumes, so a slow caller bounds the worker's buffer (and
//! its own) to one window.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::actor::{ActorError, EncodedItems};
use crate::error::{panic_message, TaskError};
use crate::task::{codec, TaskHandle};

/// Items a worker sends ahead of the caller at most.
pub(crate) const WINDOW: u32 = 32;

/// The iterator a streaming method returns, boxed.
pub type LocalItems<T> = Box<dyn Iterator<Item = T> + Send>;

/// Encodes the items of a streaming method (what `#[crew::actor]` uses for process dispatch).
pub fn encode_items<T, I>(items: I) -> EncodedItems
where
    T: Serialize,
    I: Iterator<Item = T> + Send + 'static,
{
    Box::new(items.map(|item| codec::encode(&item)))
}

/// The items of one streaming call at the caller: an [`Iterator`] and a
/// [`futures_core::Stream`] of `Result<T, TaskError>`. A failure (the method panicked, the
/// worker died) is the last item.
///
/// Dropping it early stops the stream: a worker drops the method's iterator.
#[must_use = "a stream does nothing unless its items are taken"]
pub struct ActorStream<T> {
    state: State<T>,
}

enum State<T> {
    Pending(TaskHandle<LocalItems<T>>),
    Local(LocalItems<T>),
    Remote(Arc<RemoteItems>),
    Failed(TaskError),
    Done,
}

impl<T> fmt::Debug for ActorStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Pending(_) => "pending",
            State::Local(_) => "local",
            State::Remote(_) => "remote",
            State::Failed(_) => "failed",
            State::Done => "done",
        };
        f.debug_struct("ActorStream")
            .field("state", &state)
            .finish()
    }
}

impl<T: DeserializeOwned + Send + 'static> ActorStream<T> {
    pub(crate) fn from_local(call: Result<Option<TaskHandle<LocalItems<T>>>, ActorError>) -> Self {
        match call {
            Ok(Some(handle)) => Self {
                state: State::Pending(handle),
            },
            Ok(None) => Self::failed(TaskError::Cancelled),
            Err(error) => Self::failed(error.into()),
        }
    }

    pub(crate) fn remote(items: Arc<RemoteItems>) -> Self {
        Self {
            state: State::Remote(items),
        }
    }

    pub(crate) fn failed(error: TaskError) -> Self {
        Self {
            state: State::Failed(error),
        }
    }

    fn step(&mut self, remote: Option<Result<Vec<u8>, TaskError>>) -> Option<Result<T, TaskError>> {
        match remote {
            Some(Ok(bytes)) => {
                Some(codec::decode(&bytes).map_err(|message| TaskError::Transport { message }))
            }
            Some(Err(error)) => {
                self.state = State::Done;
                Some(Err(error))
            }
            None => {
                self.state = State::Done;
                None
            }
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> Iterator for ActorStream<T> {
    type Item = Result<T, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Pending(handle) => match handle.result() {
                    Ok(items) => self.state = State::Local(items),
                    Err(error) => return Some(Err(error)),
                },
                State::Local(mut items) => {
                    // The method's iterator runs here, in the caller's thread: a panic in it
                    // ends the stream with `Panicked`, as from a worker process (the iterator
                    // is dropped, so no state it left half-changed is used again).
                    return match catch_unwind(AssertUnwindSafe(|| items.next())) {
                        Ok(Some(item)) => {
                            self.state = State::Local(items);
                            Some(Ok(item))
                        }
                        Ok(None) => None,
                        Err(payload) => Some(Err(TaskError::Panicked {
                            message: panic_message(&*payload),
                        })),
                    };
                }
                State::Remote(items) => {
                    let next = items.next_blocking();
                    self.state = State::Remote(items);
                    return self.step(next);
                }
                State::Failed(error) => return Some(Err(error)),
                State::Done => return None,
            }
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> futures_core::Stream for ActorStream<T> {
    type Item = Result<T, TaskError>;

    /// Items of an actor on a thread here are produced in this poll, by the method's iterator;
    /// keep such iterators quick in async code (or place the actor in a process).
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let State::Pending(handle) = &mut this.state {
            match Pin::new(handle).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(items)) => this.state = State::Local(items),
                Poll::Ready(Err(error)) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
        if let State::Remote(items) = &this.state {
            let items = items.clone();
            return match items.poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(next) => Poll::Ready(this.step(next)),
            };
        }
        Poll::Ready(this.next())
    }
}

use std::future::Future;

/// One item of a stream from a worker process as it arrived: encoded, or how it failed.
type EncodedItem = Result<Vec<u8>, TaskError>;

/// What the caller's reader fills and the stream drains, for a stream from a worker process.
pub(crate) struct RemoteItems {
    state: Mutex<Buffer>,
    ready: Condvar,
    /// Grants the worker `n` more items.
    credit: Box<dyn Fn(u32) + Send + Sync>,
    /// Tells the worker the caller is gone.
    cancel: Box<dyn Fn() + Send + Sync>,
}

#[derive(Default)]
struct Buffer {
    items: VecDeque<Result<Vec<u8>, TaskError>>,
    ended: bool,
    consumed: u32,
    waker: Option<Waker>,
}

impl RemoteItems {
    pub(crate) fn new(
        credit: Box<dyn Fn(u32) + Send + Sync>,
        cancel: Box<dyn Fn() + Send + Sync>,
    ) -> Self {
        Self {
            state: Mutex::new(Buffer::default()),
            ready: Condvar::new(),
            credit,
            cancel,
        }
    }

    /// An item from the worker (or the failure that ends the stream).
    pub(crate) fn push(&self, item: Result<Vec<u8>, TaskError>) {
        let mut state = self.state.lock();
        if item.is_err() {
            state.ended = true;
        }
        state.items.push_back(item);
        self.wake(state);
    }

    /// The worker sent the last item.
    pub(crate) fn end(&self) {
        let mut state = self.state.lock();
        state.ended = true;
        self.wake(state);
    }

    fn wake(&self, mut state: parking_lot::MutexGuard<'_, Buffer>) {
        let waker = state.waker.take();
        drop(state);
        self.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The next item, or `Some(None)` at the end, or `None` while there is none yet; and the
    /// credit now due to the worker, which the caller grants with [`grant`](Self::grant)
    /// *after* letting go of the buffer. Granting sends on the connection, and the reader that
    /// fails a dying worker's streams holds the connection while it pushes the failure here:
    /// granting under the buffer's lock deadlocked the two.
    fn take(&self, state: &mut Buffer) -> (Option<Option<EncodedItem>>, u32) {
        if let Some(item) = state.items.pop_front() {
            let mut due = 0;
            if item.is_ok() {
                state.consumed += 1;
                if state.consumed >= WINDOW / 2 {
                    due = std::mem::take(&mut state.consumed);
                }
            }
            return (Some(Some(item)), due);
        }
        (state.ended.then_some(None), 0)
    }

    /// Grants the worker `items` more items (nothing for 0); called without the buffer's lock.
    fn grant(&self, items: u32) {
        if items > 0 {
            (self.credit)(items);
        }
    }

    fn next_blocking(&self) -> Option<Result<Vec<u8>, TaskError>> {
        let mut state = self.state.lock();
        loop {
            if let (Some(next), due) = self.take(&mut state) {
                drop(state);
                self.grant(due);
                return next;
            }
            self.ready.wait(&mut state);
        }
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<u8>, TaskError>>> {
        let mut state = self.state.lock();
        match self.take(&mut state) {
            (Some(next), due) => {
                drop(state);
                self.grant(due);
                Poll::Ready(next)
            }
            (None, _) => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for RemoteItems {
    fn drop(&mut self) {
        if !self.state.get_mut().ended {
            (self.cancel)();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    use parking_lot::Mutex;

    use super::{RemoteItems, WINDOW};
    use crate::error::{TaskError, WorkerId};

    /// A process actor's reader fails a dead worker's streams while it holds the connection,
    /// and a consumer grants credit on that connection: granting under the buffer's lock
    /// deadlocked the two (found by killing a worker mid-stream).
    #[test]
    fn granting_credit_does_not_hold_the_buffer_against_a_failing_reader() {
        let connection = Arc::new(Mutex::new(()));
        let held = connection.clone();
        let items = Arc::new(RemoteItems::new(
            Box::new(move |_| drop(held.lock())),
            Box::new(|| {}),
        ));
        for item in 0..WINDOW / 2 {
            items.push(Ok(vec![item as u8]));
        }
        // The reader has the connection (it is handling the worker's death)...
        let reader_holds = connection.lock();
        // ...while the consumer takes the items whose credit falls due, and waits to send it.
        let consumer = items.clone();
        let (consumed, consumed_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let taken: Vec<_> = (0..WINDOW / 2).map(|_| consumer.next_blocking()).collect();
            let _ = consumed.send(taken.len());
        });
        std::thread::sleep(Duration::from_millis(50));
        // The reader fails the stream, holding the connection all along.
        let failing = items.clone();
        let (failed, failed_rx) = mpsc::channel();
        std::thread::spawn(move || {
            failing.push(Err(TaskError::WorkerDied {
                worker: WorkerId::local(1),
                exit: None,
            }));
            let _ = failed.send(());
        });
        failed_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the reader could not fail the stream: the consumer held its buffer");
        drop(reader_holds);
        assert_eq!(
            consumed_rx.recv_timeout(Duration::from_secs(10)),
            Ok(WINDOW as usize / 2)
        );
        assert!(matches!(
            items.next_blocking(),
            Some(Err(TaskError::WorkerDied { .. }))
        ));
        assert!(items.next_blocking().is_none());
    }
}
