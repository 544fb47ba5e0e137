//! [`Queue<T>`]: Python's `queue.Queue` (and `LifoQueue`, `PriorityQueue`, the seed's
//! `ClosableQueue` and `asyncio.Queue`) in one multi-producer multi-consumer type.
//!
//! * Blocking [`put`](Queue::put)/[`get`](Queue::get), with timeouts and non-blocking `try_`
//!   forms; an optional capacity makes producers wait for consumers (backpressure).
//! * [`close`](Queue::close) replaces the sentinel of the seed's `ClosableQueue`: afterwards
//!   `put` fails and hands the item back, consumers drain what is left, then `get` reports
//!   [`GetError`] and iteration ends.
//! * [`task_done`](Queue::task_done)/[`join`](Queue::join) as in Python.
//! * [`send`](Queue::send)/[`recv`](Queue::recv) are futures over the *same* queue, so one
//!   queue links threads and async tasks (tokio or any executor). A waiting future leaves its
//!   waker in the queue's state and is woken by the operation that unblocks it: no polling
//!   loop, no helper thread.
//!
//! A `Queue` is a handle: clone it (it is an `Arc` inside) to give every producer and consumer
//! its own, as with channels. All clones are the same queue.
//!
//! ```
//! use crew::queue::Queue;
//!
//! let queue = Queue::bounded(2);
//! let consumer = {
//!     let queue = queue.clone();
//!     std::thread::spawn(move || queue.iter().sum::<u32>())
//! };
//! for item in 1..=10 {
//!     queue.put(item).unwrap(); // waits while two items are queued
//! }
//! queue.close();
//! assert_eq!(consumer.join().unwrap(), 55);
//! ```
//!
//! # Design note: waiting and waking
//!
//! All state (the items, the capacity, `closed`, the count of unfinished tasks and the async
//! waiters) sits behind one mutex. Blocking callers sleep on one of three condition variables
//! (`not_empty`, `not_full`, `all_done`); async callers leave a waker in one of two
//! wait lists (getters, putters). Every change that can unblock someone signals both kinds:
//! a put wakes one blocked getter *and* one async getter, a get wakes one putter of each kind,
//! `close` wakes everybody. A woken waiter re-checks the state under the lock, so an extra
//! wake-up costs a spurious check and never a wrong result. An async waiter that is woken and
//! then dropped without taking its turn passes the wake-up on, so none is lost.

mod buffer;
pub(crate) mod error;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::task::Waker;
use std::time::{Duration, Instant};

use buffer::Buffer;
pub use buffer::Order;
pub use error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TaskDoneError, TryGetError, TryPutError,
};

use crate::loom::{Arc, Condvar, Mutex, MutexGuard};
use crate::sync::waker_set::WakerSet;

struct State<T> {
    items: Box<dyn Buffer<T>>,
    capacity: Option<usize>,
    closed: bool,
    /// Items put and not yet marked with `task_done`.
    unfinished: usize,
    /// The largest `len()` seen.
    peak: usize,
    getters: WakerSet,
    putters: WakerSet,
}

impl<T> State<T> {
    fn is_full(&self) -> bool {
        self.capacity.is_some_and(|cap| self.items.len() >= cap)
    }
}

struct Shared<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
}

/// A multi-producer multi-consumer queue, blocking or async, FIFO, LIFO or by priority,
/// optionally bounded, closable; see the [module documentation](self).
pub struct Queue<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

/// How long an operation may wait.
#[derive(Clone, Copy)]
enum Wait {
    No,
    Until(Instant),
    Forever,
}

impl Wait {
    fn from_timeout(timeout: Duration) -> Self {
        Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until)
    }
}

/// Why an item could not be put (the item is returned beside it).
enum PutFailure {
    Full,
    Closed,
}

enum GetFailure {
    Empty,
    Closed,
}

/// Why a cancellable wait ([`Queue::get_cancellable`], [`Queue::put_cancellable`]) ended
/// without its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// The deadline passed.
    Timeout,
    /// The queue is closed (and, for a get, drained).
    Closed,
    /// `cancelled()` became true.
    Cancelled,
}

impl<T: Send + 'static> Queue<T> {
    /// An unbounded FIFO queue (Python's `Queue()`).
    pub fn new() -> Self {
        Self::with_buffer(Box::new(VecDeque::new()), None)
    }

    /// A FIFO queue holding at most `capacity` items (Python's `Queue(maxsize)`): `put` waits
    /// while it is full.
    ///
    /// # Panics
    /// If `capacity` is 0 (use 1 for a hand-off; Python's `maxsize=0` means unbounded, which is
    /// [`Queue::new`]).
    #[track_caller]
    pub fn bounded(capacity: usize) -> Self {
        Self::with_buffer(Box::new(VecDeque::new()), Some(checked(capacity)))
    }

    /// A last-in first-out queue (Python's `LifoQueue`), bounded if `capacity` is `Some`.
    ///
    /// # Panics
    /// If `capacity` is `Some(0)`.
    #[track_caller]
    pub fn lifo(capacity: Option<usize>) -> Self {
        Self::with_buffer(Box::new(Vec::new()), capacity.map(checked))
    }

    /// A queue that hands out the smallest item first (Python's `PriorityQueue`; wrap items in
    /// [`std::cmp::Reverse`] for largest first). Items of equal priority come out in no
    /// particular order; add a sequence number to the key for FIFO among equals.
    ///
    /// ```
    /// let queue = crew::queue::Queue::priority(None);
    /// for (priority, job) in [(3, "low"), (1, "urgent"), (2, "normal")] {
    ///     queue.put((priority, job)).unwrap();
    /// }
    /// assert_eq!(queue.get().unwrap(), (1, "urgent"));
    /// ```
    ///
    /// # Panics
    /// If `capacity` is `Some(0)`.
    #[track_caller]
    pub fn priority(capacity: Option<usize>) -> Self
    where
        T: Ord + 'static,
    {
        Self::with_buffer(
            Box::new(BinaryHeap::<Reverse<T>>::new()),
            capacity.map(checked),
        )
    }

    fn with_buffer(items: Box<dyn Buffer<T>>, capacity: Option<usize>) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    items,
                    capacity,
                    closed: false,
                    unfinished: 0,
                    peak: 0,
                    getters: WakerSet::new(),
                    putters: WakerSet::new(),
                }),
                not_empty: Condvar::new(),
                not_full: Condvar::new(),
                all_done: Condvar::new(),
            }),
        }
    }
}

impl<T: Send + 'static> Default for Queue<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[track_caller]
fn checked(capacity: usize) -> usize {
    assert!(
        capacity > 0,
        "a queue's capacity must be at least 1 (use Queue::new() for an unbounded queue)"
    );
    capacity
}

impl<T> Queue<T> {
    /// Puts `item`, waiting while the queue is full.
    ///
    /// # Errors
    /// [`PutError`] with the item if the queue is closed (also if it is closed while waiting).
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_waiting(item, Wait::Forever)
            .map_err(|(item, _)| PutError(item))
    }

    /// Puts `item` if there is room now.
    ///
    /// # Errors
    /// [`TryPutError::Full`] or [`TryPutError::Closed`], with the item.
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        self.put_waiting(item, Wait::No)
            .map_err(|(item, failure)| match failure {
                PutFailure::Full => TryPutError::Full(item),
                PutFailure::Closed => TryPutError::Closed(item),
            })
    }

    /// Puts `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] or [`PutTimeoutError::Closed`], with the item.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.put_waiting(item, Wait::from_timeout(timeout))
            .map_err(|(item, failure)| match failure {
                PutFailure::Full => PutTimeoutError::Timeout(item),
                PutFailure::Closed => PutTimeoutError::Closed(item),
            })
    }

    /// Takes the next item, waiting while the queue is empty and open.
    ///
    /// # Errors
    /// [`GetError`] once the queue is closed and drained.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_waiting(Wait::Forever).map_err(|_| GetError)
    }

    /// Takes the next item if there is one now.
    ///
    /// # Errors
    /// [`TryGetError::Empty`], or [`TryGetError::Closed`] once the queue is closed and drained.
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.get_waiting(Wait::No).map_err(|failure| match failure {
            GetFailure::Empty => TryGetError::Empty,
            GetFailure::Closed => TryGetError::Closed,
        })
    }

    /// Takes the next item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`], or [`GetTimeoutError::Closed`] once the queue is closed and
    /// drained.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_waiting(Wait::from_timeout(timeout))
            .map_err(|failure| match failure {
                GetFailure::Empty => GetTimeoutError::Timeout,
                GetFailure::Closed => GetTimeoutError::Closed,
            })
    }

    fn put_waiting(&self, item: T, wait: Wait) -> Result<(), (T, PutFailure)> {
        let shared = &*self.shared;
        let mut state = shared.state.lock();
        loop {
            if state.closed {
                return Err((item, PutFailure::Closed));
            }
            if !state.is_full() {
                break;
            }
            match wait {
                Wait::No => return Err((item, PutFailure::Full)),
                Wait::Forever => shared.not_full.wait(&mut state),
                Wait::Until(deadline) => {
                    if shared.not_full.wait_until(&mut state, deadline)
                        && state.is_full()
                        && !state.closed
                    {
                        return Err((item, PutFailure::Full));
                    }
                }
            }
        }
        self.push_locked(state, item);
        Ok(())
    }

    /// Pushes into a queue known to have room, then wakes one getter of each kind.
    fn push_locked(&self, mut state: MutexGuard<'_, State<T>>, item: T) {
        state.items.push(item);
        state.unfinished += 1;
        let len = state.items.len();
        state.peak = state.peak.max(len);
        let waker = state.getters.take_one();
        drop(state);
        self.shared.not_empty.notify_one();
        wake(waker);
    }

    fn get_waiting(&self, wait: Wait) -> Result<T, GetFailure> {
        let shared = &*self.shared;
        let mut state = shared.state.lock();
        loop {
            if let Some(item) = state.items.pop() {
                Self::after_pop(shared, state);
                return Ok(item);
            }
            if state.closed {
                return Err(GetFailure::Closed);
            }
            match wait {
                Wait::No => return Err(GetFailure::Empty),
                Wait::Forever => shared.not_empty.wait(&mut state),
                Wait::Until(deadline) => {
                    if shared.not_empty.wait_until(&mut state, deadline)
                        && state.items.len() == 0
                        && !state.closed
                    {
                        return Err(GetFailure::Empty);
                    }
                }
            }
        }
    }

    /// After an item left a bounded queue, wakes one putter of each kind.
    fn after_pop(shared: &Shared<T>, mut state: MutexGuard<'_, State<T>>) {
        if state.capacity.is_none() {
            return;
        }
        let waker = state.putters.take_one();
        drop(state);
        shared.not_full.notify_one();
        wake(waker);
    }

    /// [`get`](Self::get) with an optional deadline that also gives up as soon as
    /// `cancelled()` is true. Whoever makes it true then calls [`wake_all`](Self::wake_all), so
    /// that a sleeping waiter checks again. For the inter-process queue's broker, which waits
    /// on behalf of a process that may die meanwhile: nothing is taken for a dead requester.
    pub(crate) fn get_cancellable(
        &self,
        deadline: Option<Instant>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<T, Stopped> {
        let shared = &*self.shared;
        let mut state = shared.state.lock();
        loop {
            if cancelled() {
                // This waiter may have consumed the one wake-up meant for an item: pass it on.
                let pass_on = state.items.len() > 0;
                drop(state);
                if pass_on {
                    shared.not_empty.notify_one();
                }
                return Err(Stopped::Cancelled);
            }
            if let Some(item) = state.items.pop() {
                Self::after_pop(shared, state);
                return Ok(item);
            }
            if state.closed {
                return Err(Stopped::Closed);
            }
            match deadline {
                None => shared.not_empty.wait(&mut state),
                Some(deadline) => {
                    if shared.not_empty.wait_until(&mut state, deadline)
                        && state.items.len() == 0
                        && !state.closed
                        && !cancelled()
                    {
                        return Err(Stopped::Timeout);
                    }
                }
            }
        }
    }

    /// [`put`](Self::put) with an optional deadline that also gives up (handing the item back)
    /// as soon as `cancelled()` is true; see [`get_cancellable`](Self::get_cancellable).
    pub(crate) fn put_cancellable(
        &self,
        item: T,
        deadline: Option<Instant>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), (T, Stopped)> {
        let shared = &*self.shared;
        let mut state = shared.state.lock();
        loop {
            if cancelled() {
                // This waiter may have consumed the one wake-up meant for free room: pass it on.
                let pass_on = !state.is_full();
                drop(state);
                if pass_on {
                    shared.not_full.notify_one();
                }
                return Err((item, Stopped::Cancelled));
            }
            if state.closed {
                return Err((item, Stopped::Closed));
            }
            if !state.is_full() {
                break;
            }
            match deadline {
                None => shared.not_full.wait(&mut state),
                Some(deadline) => {
                    if shared.not_full.wait_until(&mut state, deadline)
                        && state.is_full()
                        && !state.closed
                        && !cancelled()
                    {
                        return Err((item, Stopped::Timeout));
                    }
                }
            }
        }
        self.push_locked(state, item);
        Ok(())
    }

    /// Wakes every blocked waiter to re-check its condition (a spurious wake-up for all but
    /// the cancelled ones). Taking the lock first orders this after a waiter's last check.
    pub(crate) fn wake_all(&self) {
        drop(self.shared.state.lock());
        self.shared.not_empty.notify_all();
        self.shared.not_full.notify_all();
    }

    /// Closes the queue: `put` fails from now on (waiting producers get their item back),
    /// consumers take what is left and then get [`GetError`]; iteration ends. Idempotent.
    pub fn close(&self) {
        let shared = &*self.shared;
        let mut state = shared.state.lock();
        if state.closed {
            return;
        }
        state.closed = true;
        let mut wakers = state.getters.take_all();
        wakers.extend(state.putters.take_all());
        drop(state);
        shared.not_empty.notify_all();
        shared.not_full.notify_all();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.state.lock().closed
    }

    /// Marks one item taken from the queue as processed (Python's `task_done`): when every item
    /// put has been marked, [`join`](Self::join) returns. The iterators call it for you.
    ///
    /// # Errors
    /// [`TaskDoneError`] if every item put was already marked.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut state = self.shared.state.lock();
        if state.unfinished == 0 {
            return Err(TaskDoneError);
        }
        state.unfinished -= 1;
        let finished = state.unfinished == 0;
        drop(state);
        if finished {
            self.shared.all_done.notify_all();
        }
        Ok(())
    }

    /// Blocks until every item ever put has been marked with [`task_done`](Self::task_done)
    /// (Python's `join`). Returns at once if nothing is unfinished.
    pub fn join(&self) {
        let mut state = self.shared.state.lock();
        while state.unfinished > 0 {
            self.shared.all_done.wait(&mut state);
        }
    }

    /// Like [`join`](Self::join), waiting at most `timeout`; returns whether all items were done.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        let Wait::Until(deadline) = Wait::from_timeout(timeout) else {
            self.join();
            return true;
        };
        let mut state = self.shared.state.lock();
        while state.unfinished > 0 {
            if self.shared.all_done.wait_until(&mut state, deadline) {
                return state.unfinished == 0;
            }
        }
        true
    }

    /// The number of items put and not yet marked with [`task_done`](Self::task_done).
    pub fn unfinished(&self) -> usize {
        self.shared.state.lock().unfinished
    }

    /// The number of items in the queue now (Python's `qsize()`).
    pub fn len(&self) -> usize {
        self.shared.state.lock().items.len()
    }

    /// Whether the queue holds no item now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is at its capacity now (never for an unbounded queue).
    pub fn is_full(&self) -> bool {
        self.shared.state.lock().is_full()
    }

    /// The capacity, `None` if unbounded (Python's `maxsize`).
    pub fn capacity(&self) -> Option<usize> {
        self.shared.state.lock().capacity
    }

    /// The largest number of items the queue has held at once: how far producers ran ahead.
    pub fn peak_len(&self) -> usize {
        self.shared.state.lock().peak
    }

    /// The order items come out in.
    pub fn order(&self) -> Order {
        self.shared.state.lock().items.order()
    }

    /// An iterator that takes items until the queue is closed and drained (the seed's
    /// `for item in closable_queue`). As in the seed, each item is marked with
    /// [`task_done`](Self::task_done) when the next one is requested (or the iterator is
    /// dropped), so [`join`](Self::join) waits for the consumer to finish its last item; do not
    /// also call `task_done` for items taken through an iterator.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            queue: self,
            taken: false,
        }
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("Queue")
            .field("order", &state.items.order())
            .field("len", &state.items.len())
            .field("capacity", &state.capacity)
            .field("closed", &state.closed)
            .field("unfinished", &state.unfinished)
            .finish()
    }
}

/// Takes one item for an iterator, first marking the previous one done.
fn next_marking<T>(queue: &Queue<T>, taken: &mut bool) -> Option<T> {
    if std::mem::take(taken) {
        // Only fails if the caller also called `task_done` for this item; nothing to add.
        let _ = queue.task_done();
    }
    let item = queue.get().ok()?;
    *taken = true;
    Some(item)
}

/// The iterator of [`Queue::iter`]: items until the queue is closed and drained.
#[derive(Debug)]
pub struct Iter<'a, T> {
    queue: &'a Queue<T>,
    taken: bool,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        next_marking(self.queue, &mut self.taken)
    }
}

impl<T> Drop for Iter<'_, T> {
    fn drop(&mut self) {
        if self.taken {
            let _ = self.queue.task_done();
        }
    }
}

impl<'a, T> IntoIterator for &'a Queue<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// The owning iterator of a [`Queue`]: as [`Queue::iter`], holding a handle.
#[derive(Debug)]
pub struct IntoIter<T> {
    queue: Queue<T>,
    taken: bool,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        next_marking(&self.queue, &mut self.taken)
    }
}

impl<T> Drop for IntoIter<T> {
    fn drop(&mut self) {
        if self.taken {
            let _ = self.queue.task_done();
        }
    }
}

impl<T> IntoIterator for Queue<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter {
            queue: self,
            taken: false,
        }
    }
}

#[cfg(feature = "async")]
mod future;
#[cfg(feature = "async")]
pub use future::{RecvFuture, SendFuture};

#[cfg(all(test, loom))]
mod loom_tests;
