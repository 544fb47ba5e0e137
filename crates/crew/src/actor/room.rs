//! Async callers waiting for room in a bounded mailbox (the awaitable `*_async` calls).
//!
//! # Design note
//!
//! A blocking call waits for room inside the mailbox itself (the channel's `send`, the
//! permits' `acquire`); an async call must not block its runtime's thread, so it *offers* its
//! call (`try`), and while the mailbox is full leaves its waker here and offers again when
//! woken. Whatever frees a place (the actor taking a call, a process actor's reply returning
//! its permit) calls [`Room::freed`], which wakes one waiter. `waiting` counts the wakers so
//! that `freed` costs one load when nobody waits (every call pays it: a fence there cost the
//! thread actor a fifth of its pipelined calls/s).
//!
//! **No lost wake-up.** A waiter registers (counting itself in `waiting`, a `SeqCst` RMW)
//! *before* offering again; `freed` runs after the place was freed and reads `waiting`
//! (`SeqCst`). Either the second offer sees the room, or `freed` sees the waiter, because the
//! freeing is itself ordered before that read:
//! * a thread actor's mailbox (crossbeam's bounded channel, the array flavor): a receive moves
//!   `head` with a `SeqCst` compare-and-swap, and a send reports `Full` only after a `SeqCst`
//!   fence and a load of `head`. If `freed`'s read misses the waiter's RMW it precedes it in
//!   the single `SeqCst` order, so the CAS precedes the offer's fence, and the offer sees the
//!   moved `head` (crossbeam then retries instead of reporting `Full`);
//! * the permits of an actor in another process ([`CallerBound`], a mutex): the offer's
//!   `try_acquire` either follows the release (and takes the permit) or precedes it, and then
//!   the waiter's RMW happens before `freed`'s read.
//!
//! A waiter woken but gone (its future dropped before its offer succeeded) passes the wake-up
//! on.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;

use parking_lot::Mutex;

use crate::actor::Mode;
use crate::sync::waker_set::WakerSet;
use crate::sync::Semaphore;

/// The async waiters of one mailbox.
#[derive(Debug, Default)]
pub(crate) struct Room {
    waiting: AtomicUsize,
    wakers: Mutex<WakerSet>,
}

/// What one offer of a call to the mailbox did.
pub(crate) enum Offer<T, E> {
    /// Queued (or refused for good): the wait ends with this.
    Done(Result<T, E>),
    /// The mailbox is full: wait for room and offer again.
    Full,
}

impl Room {
    /// A place in the mailbox was freed: wake one async waiter, if any.
    pub(crate) fn freed(&self) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let waker = {
            let mut wakers = self.wakers.lock();
            let waker = wakers.take_one();
            if waker.is_some() {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
            }
            waker
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The mailbox closed: wake every waiter (its next offer is refused).
    pub(crate) fn close(&self) {
        let wakers = {
            let mut wakers = self.wakers.lock();
            let all = wakers.take_all();
            self.waiting.fetch_sub(all.len(), Ordering::SeqCst);
            all
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Offers with `offer` until it is done, waiting for room (never blocking a thread) while
    /// the mailbox is full.
    pub(crate) async fn offer<T, E>(&self, mut offer: impl FnMut() -> Offer<T, E>) -> Result<T, E> {
        let mut waiter = Waiter {
            room: self,
            id: None,
        };
        poll_fn(move |cx| {
            let mut registered = false;
            loop {
                match offer() {
                    Offer::Done(result) => {
                        waiter.leave(false);
                        return Poll::Ready(result);
                    }
                    Offer::Full if registered => return Poll::Pending,
                    Offer::Full => {
                        let mut wakers = self.wakers.lock();
                        let before = waiter.id;
                        // A new id: a new entry (the first wait, or the old one was woken).
                        wakers.register(&mut waiter.id, cx.waker());
                        if waiter.id != before {
                            self.waiting.fetch_add(1, Ordering::SeqCst);
                        }
                        registered = true;
                    }
                }
            }
        })
        .await
    }
}

/// An async caller's place among the waiters; passes a wake-up it did not use on.
struct Waiter<'a> {
    room: &'a Room,
    id: Option<u64>,
}

impl Waiter<'_> {
    /// Leaves the waiters; `pass_on`: a wake-up received but not used goes to another.
    fn leave(&mut self, pass_on: bool) {
        let Some(id) = self.id.take() else {
            return;
        };
        let removed = {
            let mut wakers = self.room.wakers.lock();
            let removed = wakers.remove(id);
            if removed {
                self.room.waiting.fetch_sub(1, Ordering::SeqCst);
            }
            removed
        };
        if !removed && pass_on {
            // Woken for a place it did not use: let another waiter try.
            self.room.freed();
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.leave(true);
    }
}

/// Why [`CallerBound::take`] refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The actor is closed (stopping, stopped, killed): no call goes in any more.
    Closed,
    /// The mailbox is full and the call would not wait (`try_`).
    Full,
}

/// The mailbox bound of an actor in another process (a worker process or a cluster worker),
/// kept at the caller: a permit per call queued or in flight, given back when its reply
/// arrives (or it fails), so the actor never holds more than the bound and nothing bypasses
/// it. Blocking calls wait for a permit; async ones wait in the [`Room`]; `try_` calls are
/// refused with [`Refused::Full`].
#[derive(Debug)]
pub(crate) struct CallerBound {
    permits: Semaphore,
    room: Room,
    closed: AtomicBool,
}

impl CallerBound {
    pub(crate) fn new(bound: usize) -> Self {
        CallerBound {
            permits: Semaphore::new(bound),
            room: Room::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// Takes the permit a call in `mode` needs (none when it holds one already). A closed
    /// actor refuses every call, and a permit held is given back.
    pub(crate) fn take(&self, mode: Mode) -> Result<(), Refused> {
        if self.is_closed() {
            if mode.holds_permit() {
                self.release();
            }
            return Err(Refused::Closed);
        }
        match mode {
            Mode::Try => match self.permits.try_acquire() {
                Some(permit) => permit.forget(),
                None => return Err(Refused::Full),
            },
            Mode::Blocking | Mode::Tell => self.permits.acquire().forget(),
            Mode::Held | Mode::HeldTell => {}
        }
        Ok(())
    }

    /// Takes a permit for an async call, waiting in the room (never blocking) while there is
    /// none; the call then goes in as [`Mode::Held`] or [`Mode::HeldTell`].
    pub(crate) async fn take_async(&self) -> Result<(), Refused> {
        self.room
            .offer(|| {
                if self.is_closed() {
                    return Offer::Done(Err(Refused::Closed));
                }
                match self.permits.try_acquire() {
                    Some(permit) => {
                        permit.forget();
                        Offer::Done(Ok(()))
                    }
                    None => Offer::Full,
                }
            })
            .await
    }

    /// Gives a call's permit back (its reply came, or it failed) and wakes an async waiter.
    pub(crate) fn release(&self) {
        self.permits.release();
        self.room.freed();
    }

    /// Refuses every call from now on; async waiters are not woken yet (see [`end`](Self::end)).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// The actor ended for good: refuse every call and wake the async waiters (refused).
    pub(crate) fn end(&self) {
        self.close();
        self.room.close();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
