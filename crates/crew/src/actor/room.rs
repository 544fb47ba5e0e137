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
//! * a process actor's permits (a mutex): the offer's `try_acquire` either follows the
//!   release (and takes the permit) or precedes it, and then the waiter's RMW happens before
//!   `freed`'s read.
//!
//! A waiter woken but gone (its future dropped before its offer succeeded) passes the wake-up
//! on.

use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use parking_lot::Mutex;

use crate::sync::waker_set::WakerSet;

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
