//! [`on_cancel`]: how a cluster task running on a worker *thread* is stopped.
//!
//! # Design note: a thread cannot be killed, its work can
//!
//! A worker in [`Isolation::Processes`](super::Isolation::Processes) stops a cancelled, late
//! or handed-back task by killing the process that runs it. In
//! [`Isolation::Threads`](super::Isolation::Threads) there is nothing to kill: the thread
//! runs on and its result is dropped. A task that waits on something it can stop (a child
//! program, above all: `crew run --cluster`'s `run_command`) registers a hook with
//! [`on_cancel`]; the worker gives every task it runs on a thread a [`StopSignal`] (beside the
//! task's request, never serialized) and fires it when it stops the task, which runs the hooks.
//! The signal is the running thread's while the task runs ([`Scope`]) and the hooks not yet
//! run are dropped when the task returns. A hook the worker started just before that may
//! still be running afterwards (on the worker's thread, while this thread takes its next
//! task): a hook should stop only what its own task started.

use std::cell::RefCell;
use std::sync::Arc;

use parking_lot::Mutex;

type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    fired: bool,
    hooks: Vec<Hook>,
}

/// Fired by a worker when it stops the task it was given to (cancelled, past its deadline, or
/// handed back by a drain); runs the hooks the task registered with [`on_cancel`].
#[derive(Clone, Default)]
pub(crate) struct StopSignal(Arc<Mutex<State>>);

impl StopSignal {
    /// Runs every hook registered so far, once, in this thread; later ones run as they are
    /// registered.
    pub(crate) fn fire(&self) {
        let hooks = {
            let mut state = self.0.lock();
            state.fired = true;
            std::mem::take(&mut state.hooks)
        };
        hooks.into_iter().for_each(run_hook);
    }

    fn register(&self, hook: Hook) {
        let mut state = self.0.lock();
        if state.fired {
            drop(state);
            run_hook(hook);
        } else {
            state.hooks.push(hook);
        }
    }
}

impl std::fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.0.lock();
        f.debug_struct("StopSignal")
            .field("fired", &state.fired)
            .field("hooks", &state.hooks.len())
            .finish()
    }
}

fn run_hook(hook: Hook) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)) {
        eprintln!(
            "crew: a cluster task's cancel hook panicked (ignored): {}",
            crate::error::panic_message(&*payload)
        );
    }
}

thread_local! {
    static CURRENT: RefCell<Option<StopSignal>> = const { RefCell::new(None) };
}

/// The running task's [`StopSignal`], the thread's while it lives; dropping it drops the
/// hooks not run.
pub(crate) struct Scope(Option<StopSignal>);

impl Scope {
    pub(crate) fn enter(signal: Option<StopSignal>) -> Self {
        CURRENT.with(|current| *current.borrow_mut() = signal.clone());
        Self(signal)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|current| current.borrow_mut().take());
        if let Some(signal) = &self.0 {
            let hooks = std::mem::take(&mut signal.0.lock().hooks);
            drop(hooks);
        }
    }
}

/// Registers how to stop the cluster task running on this thread, for a worker in
/// [`Isolation::Threads`](super::Isolation::Threads), where the thread itself cannot be
/// stopped: `hook` runs (once, on another thread) when the worker stops the task because it
/// was cancelled, ran past its deadline, or is handed back at a drain. Kill the child program
/// the task waits for, close the socket it reads... so that the task returns and frees its
/// thread. A hook not run by the time the task returns is dropped unrun (one started just
/// before may finish after it: stop only what this task started). Returns `false`, dropping
/// `hook`, where it can never run: outside a cluster task, or in
/// [`Isolation::Processes`](super::Isolation::Processes), which stops a task by killing its
/// process (tie a child program to it with
/// [`Command::kill_on_parent_death`](crate::subprocess::Command::kill_on_parent_death)).
///
/// ```
/// // Outside a cluster task nothing could ever run the hook.
/// assert!(!crew::cluster::on_cancel(|| println!("stop")));
/// ```
pub fn on_cancel(hook: impl FnOnce() + Send + 'static) -> bool {
    let Some(signal) = CURRENT.with(|current| current.borrow().clone()) else {
        return false;
    };
    signal.register(Box::new(hook));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn hooks_run_once_when_fired_and_never_after_the_task() {
        let runs = Arc::new(AtomicUsize::new(0));
        let hook = |runs: &Arc<AtomicUsize>| {
            let runs = runs.clone();
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        };
        assert!(!on_cancel(hook(&runs)));
        let signal = StopSignal::default();
        {
            let _scope = Scope::enter(Some(signal.clone()));
            assert!(on_cancel(hook(&runs)));
            signal.fire();
            signal.fire();
            assert_eq!(runs.load(Ordering::SeqCst), 1);
            // Registered after the stop: runs at once.
            assert!(on_cancel(hook(&runs)));
            assert_eq!(runs.load(Ordering::SeqCst), 2);
        }
        let later = StopSignal::default();
        {
            let _scope = Scope::enter(Some(later.clone()));
            assert!(on_cancel(hook(&runs)));
        }
        // The task returned: its hook is gone, and this thread has no task any more.
        later.fire();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(!on_cancel(hook(&runs)));
    }
}
