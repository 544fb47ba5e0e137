//! [`KillSwitch`]: stop every running child of a group of commands at once (Ctrl-C, `--halt now`).
//!
//! Children register their process-group id while they run and unregister *before* they are
//! reaped, so the switch never signals a group id that the kernel could have reused: a group id
//! stays reserved while its leader exists, even as a zombie.
//!
//! "Fired" is a [`crew::sync::Event`](crate::sync::Event), crew's one fire-once primitive; the
//! switch adds only the registry of process groups. `fire` sets the event *before* it reads
//! the registry and `register` inserts *before* it reads the event (each under a lock), so a
//! child registering during `fire` is signalled by one of the two, never by neither.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rustix::process::{kill_process_group, Pid, Signal};

use crate::sync::Event;

#[derive(Default)]
struct Groups {
    groups: HashMap<u64, Pid>,
    next: u64,
    /// Between [`KillSwitch::pause`] and [`KillSwitch::resume`]: a group registered now is
    /// stopped as it registers, so a job forked just before the pause (registered after it)
    /// or started while paused does not run on.
    paused: bool,
}

#[derive(Default)]
struct Inner {
    fired: Event,
    state: Mutex<Groups>,
    emptied: Condvar,
}

/// Stops every registered child and its process group: SIGTERM, then SIGKILL after a grace
/// period. Once fired it stays fired: a child registered later is killed as it starts.
///
/// Clones share the switch. Register children with
/// [`Command::kill_switch`](super::Command::kill_switch); the [`Runner`](super::Runner) has one.
///
/// ```
/// use std::time::Duration;
/// use crew::subprocess::{Command, KillSwitch};
///
/// let switch = KillSwitch::new();
/// let mut child = Command::new("sleep").arg("30").kill_switch(&switch).spawn().unwrap();
/// switch.fire(Duration::from_secs(1));
/// assert_eq!(child.wait().unwrap().signal(), Some(15));
/// ```
#[derive(Clone, Default)]
pub struct KillSwitch {
    inner: Arc<Inner>,
}

impl KillSwitch {
    /// A switch with no children, not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends SIGTERM to every registered process group, waits until they have all been reaped
    /// or `grace` has passed, then sends SIGKILL to the groups still registered. Blocks at most
    /// about `grace`. Later registrations are killed at once.
    ///
    /// A child leaves the switch when it is reaped ([`Child::wait`](super::Child::wait),
    /// `communicate`, a runner job), not merely when it exits: until then processes it started
    /// may still hold its process group, and they must get the SIGKILL too. Children that
    /// nobody waits for keep `fire` waiting the whole grace period.
    pub fn fire(&self, grace: Duration) {
        // A grace too long to be a deadline (`Duration::MAX`) waits until every child is gone.
        let deadline = Instant::now().checked_add(grace);
        self.inner.fired.set();
        let mut state = self.inner.state.lock();
        for pgid in state.groups.values() {
            let _ = kill_process_group(*pgid, Signal::TERM);
        }
        while !state.groups.is_empty() {
            match deadline {
                None => self.inner.emptied.wait(&mut state),
                Some(deadline) => {
                    if self
                        .inner
                        .emptied
                        .wait_until(&mut state, deadline)
                        .timed_out()
                    {
                        break;
                    }
                }
            }
        }
        for pgid in state.groups.values() {
            let _ = kill_process_group(*pgid, Signal::KILL);
        }
    }

    /// Pauses every registered child and its process group (SIGSTOP), for a runner that is
    /// being suspended itself (Ctrl-Z): children lead their own process groups, so the
    /// terminal's SIGTSTP reaches only the runner, not them. Returns how many groups were
    /// signalled. [`resume`](Self::resume) continues them. Until then, children that register
    /// are paused as they start.
    pub fn pause(&self) -> usize {
        self.signal_all(Signal::STOP, true)
    }

    /// Continues every registered child and its process group (SIGCONT) after
    /// [`pause`](Self::pause). Returns how many groups were signalled.
    pub fn resume(&self) -> usize {
        self.signal_all(Signal::CONT, false)
    }

    fn signal_all(&self, signal: Signal, paused: bool) -> usize {
        // Under the lock: a registered group's leader is not reaped yet, so its id is ours; and
        // `register` sees either the new `paused` or this signal, never neither.
        let mut state = self.inner.state.lock();
        state.paused = paused;
        for pgid in state.groups.values() {
            let _ = kill_process_group(*pgid, signal);
        }
        state.groups.len()
    }

    /// Whether [`fire`](Self::fire) was called.
    pub fn is_fired(&self) -> bool {
        self.inner.fired.is_set()
    }

    /// The number of children registered now (running, or exited but not yet reaped).
    pub fn running(&self) -> usize {
        self.inner.state.lock().groups.len()
    }

    /// Registers the process group `pgid`; if the switch has fired, kills it at once; if it is
    /// paused, stops it at once.
    pub(crate) fn register(&self, pgid: Pid) -> Registration {
        let mut state = self.inner.state.lock();
        let id = state.next;
        state.next += 1;
        state.groups.insert(id, pgid);
        if self.inner.fired.is_set() {
            let _ = kill_process_group(pgid, Signal::KILL);
        } else if state.paused {
            let _ = kill_process_group(pgid, Signal::STOP);
        }
        drop(state);
        Registration {
            switch: self.clone(),
            id,
        }
    }

    fn unregister(&self, id: u64) {
        let mut state = self.inner.state.lock();
        state.groups.remove(&id);
        if state.groups.is_empty() {
            self.inner.emptied.notify_all();
        }
    }
}

impl fmt::Debug for KillSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("KillSwitch")
            .field("fired", &self.inner.fired.is_set())
            .field("running", &state.groups.len())
            .field("paused", &state.paused)
            .finish()
    }
}

/// A child's membership in a [`KillSwitch`]; dropping it unregisters (do so before reaping).
pub(crate) struct Registration {
    switch: KillSwitch,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.switch.unregister(self.id);
    }
}
