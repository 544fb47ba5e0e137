//! The shared deadline timer: one thread for every task of every executor that asks it to
//! settle a handle at its deadline ([`Completer::expire_at_deadline`](super::Completer::expire_at_deadline)).
//!
//! The thread starts at the first deadline and then sleeps until the earliest one. An entry
//! holds only a weak reference to its task, so a task that finished early is freed at once;
//! its small entry stays until its deadline.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

type Action = Box<dyn FnOnce() + Send>;

struct Entry {
    at: Instant,
    seq: u64,
    action: Action,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed: the earliest deadline is the greatest, on top of the max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Default)]
struct Timer {
    queue: Mutex<(BinaryHeap<Entry>, u64)>,
    changed: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    static STARTED: OnceLock<()> = OnceLock::new();
    let timer = TIMER.get_or_init(Timer::default);
    STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("crew-deadlines".to_owned())
            .spawn(|| run(TIMER.get().expect("initialised above")))
            .expect("crew: cannot start the deadline timer thread");
    });
    timer
}

/// Runs `action` at `at` (at once if `at` has passed), on the timer thread.
pub(crate) fn schedule(at: Instant, action: Action) {
    let timer = timer();
    let mut queue = timer.queue.lock();
    let seq = queue.1;
    queue.1 += 1;
    let earliest = queue.0.peek().map_or(true, |top| at < top.at);
    queue.0.push(Entry { at, seq, action });
    drop(queue);
    if earliest {
        timer.changed.notify_one();
    }
}

fn run(timer: &Timer) {
    let mut queue = timer.queue.lock();
    loop {
        let now = Instant::now();
        match queue.0.peek() {
            None => timer.changed.wait(&mut queue),
            Some(top) if top.at <= now => {
                let entry = queue.0.pop().expect("peeked above");
                drop(queue);
                // The action settles a handle, whose callbacks may panic; the handle already
                // contains that, so a panic here would be a crew bug: keep the timer alive.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(entry.action));
                queue = timer.queue.lock();
            }
            Some(top) => {
                let at = top.at;
                timer.changed.wait_until(&mut queue, at);
            }
        }
    }
}
