//! The completion engine: a bounded window of tasks in flight, handed back in input or
//! completion order. It is the one mechanism under [`Map`](crate::Map),
//! [`as_completed`](crate::as_completed), [`wait`](crate::wait) and
//! [`subprocess::Runner`](crate::subprocess::Runner).
//!
//! # Design note
//!
//! A [`Window`] holds the tasks its consumer has started and not yet taken back, each with a tag
//! (the consumer's bookkeeping: a chunk's length, an input index, a job number). The window
//! belongs to one consumer (`&mut self` everywhere); the only thing it shares with other threads
//! is, in completion order, one channel fed by done-callbacks.
//!
//! * **Bounded.** [`Window::refill`] starts tasks only while fewer than `limit` are held, and a
//!   task is held from [`push`](Window::push) until [`next`](Window::next) hands it back. So
//!   everything the window keeps (handles, which hold finished results; tags; slots; queued
//!   messages) is at most `limit` of each, however long the input, and the input is read only
//!   as results are taken.
//! * **Input order** needs no callback: `next` waits on the oldest handle. Tasks that finish
//!   early keep their result in their own handle until their turn, so the handles *are* the
//!   reorder buffer, and it is bounded by the window like everything else.
//! * **Completion order**: each task gets one done-callback that sends its slot number down the
//!   channel. A done-callback runs exactly once: in the thread that completes the task, or at
//!   once inside `push` when the task is already done. Either way the message is queued before
//!   `next` looks, so no completion is missed whichever side comes first; the channel never
//!   holds more messages than tasks held. A slot is reused only after its one message was
//!   received, so a message never names the wrong task.
//! * **Deadlines.** `next` takes an optional deadline; when it passes, `next` reports
//!   [`Next::TimedOut`] and keeps every task. [`Window::into_pending`] hands back, in input
//!   order, the tasks not yet taken.
//!
//! A done-callback runs while its task *settles*, a moment before `done()` is true; `next`
//! therefore waits on the handle it returns, so a handle returned from a message is done.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::error::TaskError;
use crate::task::TaskHandle;

/// In which order a [`Window`] hands its tasks back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// The order they were pushed in.
    Input,
    /// The order they finish in.
    Completion,
}

/// A task handed back by [`Window::next`]. Its handle is done, except in input order without a
/// deadline, where it is the oldest task and may still be running: take its result, which waits.
pub(crate) struct Finished<K, T> {
    pub(crate) tag: K,
    pub(crate) handle: TaskHandle<T>,
    /// Whether the task ended with an error other than cancellation (what `wait`'s
    /// `FirstException` waits for). Known only in completion order, where a callback sees the
    /// result; always `false` in input order.
    pub(crate) failed: bool,
}

/// What [`Window::next`] found.
pub(crate) enum Next<K, T> {
    /// The next task, done.
    Finished(Finished<K, T>),
    /// The window holds no task.
    Empty,
    /// The deadline passed first; every task is still held.
    TimedOut,
}

/// At most `limit` tasks in flight, handed back in input or completion order.
pub(crate) struct Window<K, T> {
    limit: usize,
    next_seq: u64,
    tasks: Tasks<K, T>,
}

enum Tasks<K, T> {
    Input(VecDeque<(K, TaskHandle<T>)>),
    Completion(Slots<K, T>),
}

/// Completion order: tasks in numbered slots, reused through a free list, so the storage stays
/// at the window's high-water mark even when a slow task holds one slot forever.
struct Slots<K, T> {
    slots: Vec<Option<Slot<K, T>>>,
    free: Vec<usize>,
    held: usize,
    sender: Sender<(usize, bool)>,
    receiver: Receiver<(usize, bool)>,
}

struct Slot<K, T> {
    seq: u64,
    tag: K,
    handle: TaskHandle<T>,
}

impl<K, T> Window<K, T> {
    /// An empty window of at most `limit` tasks (`usize::MAX` for no limit, when the caller
    /// already holds every handle).
    ///
    /// # Panics
    /// If `limit` is 0.
    pub(crate) fn new(order: Order, limit: usize) -> Self {
        assert!(limit > 0, "a completion window holds at least one task");
        let tasks = match order {
            Order::Input => Tasks::Input(VecDeque::new()),
            Order::Completion => {
                let (sender, receiver) = crossbeam_channel::unbounded();
                Tasks::Completion(Slots {
                    slots: Vec::new(),
                    free: Vec::new(),
                    held: 0,
                    sender,
                    receiver,
                })
            }
        };
        Self {
            limit,
            next_seq: 0,
            tasks,
        }
    }

    /// The number of tasks held: started and not yet handed back.
    pub(crate) fn len(&self) -> usize {
        match &self.tasks {
            Tasks::Input(queue) => queue.len(),
            Tasks::Completion(slots) => slots.held,
        }
    }

    /// The most tasks the window holds.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Calls `start` for new tasks while the window has room, until it returns `None`.
    pub(crate) fn refill(&mut self, mut start: impl FnMut() -> Option<(K, TaskHandle<T>)>)
    where
        T: 'static,
    {
        while self.len() < self.limit {
            let Some((tag, handle)) = start() else {
                break;
            };
            self.push(tag, handle);
        }
    }

    /// Holds one more task.
    ///
    /// # Panics
    /// If the window is full.
    pub(crate) fn push(&mut self, tag: K, handle: TaskHandle<T>)
    where
        T: 'static,
    {
        assert!(
            self.len() < self.limit,
            "push into a full completion window"
        );
        let seq = self.next_seq;
        self.next_seq += 1;
        match &mut self.tasks {
            Tasks::Input(queue) => queue.push_back((tag, handle)),
            Tasks::Completion(slots) => slots.push(seq, tag, handle),
        }
    }

    /// The next task, done: the oldest in input order, the first to finish in completion order.
    /// Waits for it, until `deadline` if one is given.
    pub(crate) fn next(&mut self, deadline: Option<Instant>) -> Next<K, T> {
        match &mut self.tasks {
            Tasks::Input(queue) => {
                let Some((_, oldest)) = queue.front() else {
                    return Next::Empty;
                };
                // Without a deadline the caller's `result()` does the waiting: one lock per
                // task instead of two on `map`'s hot path.
                if let Some(deadline) = deadline {
                    if !oldest.wait_deadline(deadline) {
                        return Next::TimedOut;
                    }
                }
                let (tag, handle) = queue.pop_front().expect("the oldest task is there");
                Next::Finished(Finished {
                    tag,
                    handle,
                    failed: false,
                })
            }
            Tasks::Completion(slots) => slots.next(deadline),
        }
    }

    /// The tasks not handed back, in input order, with their tags.
    pub(crate) fn into_pending(self) -> Vec<(K, TaskHandle<T>)> {
        match self.tasks {
            Tasks::Input(queue) => queue.into(),
            Tasks::Completion(slots) => {
                let mut held: Vec<Slot<K, T>> = slots.slots.into_iter().flatten().collect();
                held.sort_unstable_by_key(|slot| slot.seq);
                held.into_iter()
                    .map(|slot| (slot.tag, slot.handle))
                    .collect()
            }
        }
    }
}

impl<K, T> Slots<K, T> {
    fn push(&mut self, seq: u64, tag: K, handle: TaskHandle<T>)
    where
        T: 'static,
    {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let sender = self.sender.clone();
        // May run at once, here, if the task is already done: the message waits in the channel.
        handle.add_done_callback(move |result| {
            let failed = matches!(result, Err(error) if *error != TaskError::Cancelled);
            // The receiver is gone only when the window was dropped: nobody wants the news.
            let _ = sender.send((index, failed));
        });
        self.slots[index] = Some(Slot { seq, tag, handle });
        self.held += 1;
    }

    fn next(&mut self, deadline: Option<Instant>) -> Next<K, T> {
        if self.held == 0 {
            return Next::Empty;
        }
        debug_assert!(self.receiver.len() <= self.held);
        let received = match deadline {
            None => self
                .receiver
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => self.receiver.recv_deadline(deadline),
        };
        let (index, failed) = match received {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => return Next::TimedOut,
            Err(RecvTimeoutError::Disconnected) => {
                unreachable!("the window keeps a sender of its own channel")
            }
        };
        let slot = self.slots[index]
            .take()
            .expect("one message per held task, and its slot is still held");
        self.free.push(index);
        self.held -= 1;
        slot.handle.wait();
        Next::Finished(Finished {
            tag: slot.tag,
            handle: slot.handle,
            failed,
        })
    }
}

impl<K, T> fmt::Debug for Window<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (order, held) = match &self.tasks {
            Tasks::Input(queue) => (Order::Input, queue.len()),
            Tasks::Completion(slots) => (Order::Completion, slots.held),
        };
        f.debug_struct("Window")
            .field("order", &order)
            .field("limit", &self.limit)
            .field("held", &held)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
