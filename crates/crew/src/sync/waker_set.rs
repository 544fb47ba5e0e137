//! The async waiters of a primitive: wakers keyed by the future that left them.
//!
//! A future that must wait registers its waker under an id it keeps. `wake_one` removes the
//! entry it wakes, so a future finding its id gone knows it was notified; if such a future is
//! dropped before it used the notification, it must pass it on (`wake_one` again) so that no
//! wake-up is lost. Wakers are returned, not woken, so callers wake them after unlocking.

#![cfg_attr(not(feature = "async"), allow(dead_code))]

use std::task::Waker;

#[derive(Debug, Default)]
pub(crate) struct WakerSet {
    next_id: u64,
    entries: Vec<(u64, Waker)>,
}

impl WakerSet {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Registers (or refreshes) the waker of the future whose id is in `slot`.
    pub(crate) fn register(&mut self, slot: &mut Option<u64>, waker: &Waker) {
        if let Some(id) = *slot {
            if let Some((_, old)) = self.entries.iter_mut().find(|(key, _)| *key == id) {
                if !old.will_wake(waker) {
                    old.clone_from(waker);
                }
                return;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push((id, waker.clone()));
        *slot = Some(id);
    }

    /// Removes the entry of `id`; returns `false` if it was already taken by a wake-up.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        match self.entries.iter().position(|(key, _)| *key == id) {
            Some(index) => {
                self.entries.remove(index);
                true
            }
            None => false,
        }
    }

    /// Takes the oldest waiter's waker, to be woken after the lock is released.
    pub(crate) fn take_one(&mut self) -> Option<Waker> {
        if self.entries.is_empty() {
            None
        } else {
            Some(self.entries.remove(0).1)
        }
    }

    /// Takes every waker, to be woken after the lock is released.
    pub(crate) fn take_all(&mut self) -> Vec<Waker> {
        self.entries.drain(..).map(|(_, waker)| waker).collect()
    }
}
