//! How an actor's end is asked for and awaited, the same for every placement: the first `stop`
//! or `kill` starts it (a `kill` after a `stop` escalates it), and every caller gets a handle
//! that settles once the actor has ended.

use parking_lot::Mutex;

#[cfg(feature = "cluster")]
use crate::error::TaskError;
use crate::task::{pair, Completer, TaskHandle};

/// What a stop or kill request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// The actor had already ended: the handle is settled.
    Ended,
    /// The first request, or a kill after stops only: the placement must act on it.
    First,
    /// The end is under way already as asked: the handle settles with it.
    Again,
}

#[derive(Default)]
struct State {
    started: bool,
    killed: bool,
    done: bool,
    waiters: Vec<Completer<()>>,
}

/// An actor's end: who asked for it and who waits for it.
#[derive(Default)]
pub(crate) struct Ending(Mutex<State>);

impl Ending {
    /// Records a stop (`kill == false`) or kill and returns the handle that settles when the actor
    /// has ended.
    pub(crate) fn request(&self, kill: bool) -> (TaskHandle<()>, Request) {
        let (handle, completer) = pair();
        let mut state = self.0.lock();
        if state.done {
            drop(state);
            completer.complete(Ok(()));
            return (handle, Request::Ended);
        }
        state.waiters.push(completer);
        let first = !state.started || (kill && !state.killed);
        state.started = true;
        state.killed |= kill;
        (
            handle,
            if first {
                Request::First
            } else {
                Request::Again
            },
        )
    }

    /// Whether a stop or kill has been asked for.
    pub(crate) fn requested(&self) -> bool {
        self.0.lock().started
    }

    /// Whether a kill has been asked for.
    pub(crate) fn killed(&self) -> bool {
        self.0.lock().killed
    }

    /// The end could not be seen through (a cluster actor's connection failed: the request
    /// may not have reached it): settles every waiting handle with `error`. Later requests
    /// find it ended; the placement refuses them first with its own error.
    #[cfg(feature = "cluster")]
    pub(crate) fn fail(&self, error: &TaskError) {
        let waiters = {
            let mut state = self.0.lock();
            state.done = true;
            std::mem::take(&mut state.waiters)
        };
        for waiter in waiters {
            waiter.complete(Err(error.clone()));
        }
    }

    /// The actor has ended: settles every waiting handle, and those asked for later at once.
    pub(crate) fn finish(&self) {
        let waiters = {
            let mut state = self.0.lock();
            state.done = true;
            std::mem::take(&mut state.waiters)
        };
        for waiter in waiters {
            waiter.complete(Ok(()));
        }
    }
}
