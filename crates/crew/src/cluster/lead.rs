//! A NATS connection on a one-thread runtime that a blocked caller drives itself: used by a
//! remote actor's caller (`actor/remote.rs`) and by a [`Cluster`](super::Cluster)'s submitter.
//!
//! # Design note: who drives the runtime
//!
//! The runtime is a tokio `current_thread` runtime: it makes progress only while some thread
//! is inside its `block_on`. Two kinds of thread do that, one at a time (the `driving` lock):
//! * a **caller** blocked on a task handle (the handle's driver, [`Lead::drive`]): its thread
//!   publishes what it queued, then sleeps in the runtime's poll on the socket, reads the
//!   reply and settles it itself, so a blocking round trip wakes this process once (the
//!   socket) instead of three times (an I/O thread to publish, the I/O thread again for the
//!   reply, then the caller);
//! * the **keeper**, a thread of the lead's own, while no caller does (async waiters,
//!   callbacks, fire-and-forget messages, timers). A caller that wants the runtime while the
//!   keeper drives asks it to give the runtime up (`give_up`); the keeper takes it back only
//!   after [`LEAD_GRACE`] without a caller, so a loop of blocking calls keeps it (its next call
//!   comes within microseconds) and the keeper's thread is not woken per call.
//!
//! Whatever settles a handle on the runtime calls [`Lead::wake_leader`], so the leading caller
//! looks whether its own task is done. Anything that settles a handle elsewhere (a deadline
//! expiring on crew's timer thread, a `cancel()` from another thread) must reach the runtime
//! too (the cluster's cancel hook sends a command to it, which wakes the leader), else the
//! leader would sleep until its own wait's deadline.
//!
//! A wake of a task from outside the runtime writes its eventfd (and the driver's next poll
//! returns at once for it). A thread about to drive anyway can leave such a wake to the next
//! driver instead ([`Lead::defers_wakes`]): every driver runs the `on_drive` hook as it starts,
//! inside the runtime, where a wake is a push on the run queue. That driver comes within
//! [`LEAD_GRACE`] at the latest (the keeper, at the grace's end).
//!
//! The keeper owns the lead until it closes, so the runtime is dropped on the keeper's thread,
//! never inside itself (the last reference may go in one of its own tasks).

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// How long the keeper leaves the runtime to its callers after one last led it (they call
/// again within microseconds in a loop of blocking calls; async waiters and other work wait at
/// most this long for the keeper meanwhile).
pub(crate) const LEAD_GRACE: Duration = Duration::from_millis(2);

thread_local! {
    /// The lead whose runtime this thread drives right now (its address), or null.
    static DRIVING: Cell<*const Lead> = const { Cell::new(std::ptr::null()) };
}

/// Marks the current thread as driving `lead` while it lives.
struct Driving<'a> {
    previous: *const Lead,
    _lead: std::marker::PhantomData<&'a Lead>,
}

impl<'a> Driving<'a> {
    fn mark(lead: &'a Lead) -> Self {
        let previous = DRIVING.with(|driving| driving.replace(lead as *const Lead));
        Driving {
            previous,
            _lead: std::marker::PhantomData,
        }
    }
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        DRIVING.with(|driving| driving.set(self.previous));
    }
}

/// A one-thread runtime driven by a blocked caller or, when none, by a keeper thread. See the
/// module's design note.
pub(crate) struct Lead {
    /// Always `Some` until the lead is dropped, which shuts it down in the background (a
    /// plain drop would panic on a thread inside another runtime).
    runtime: Option<tokio::runtime::Runtime>,
    /// Held by whoever drives the runtime: the keeper or one caller.
    driving: Mutex<()>,
    keeper_drives: AtomicBool,
    /// The keeper sleeps until the callers stop driving: the last one to stop unparks it.
    waits_for_callers: AtomicBool,
    /// Work piles up while nobody drives: the keeper takes the runtime without its grace.
    urgent: AtomicBool,
    /// Callers waiting to drive: the keeper gives the runtime up.
    wanted: AtomicUsize,
    /// A caller found another one leading and waits on its handle instead: when the leader
    /// stops, the keeper takes the runtime at once (not after its grace), or that caller's
    /// result would sit unread meanwhile.
    lead_missed: AtomicBool,
    give_up: Notify,
    /// A handle was settled: the leading caller looks whether its task is done.
    replied: Notify,
    /// When a caller last stopped leading (ms since `epoch`).
    last_lead: AtomicU64,
    epoch: Instant,
    closed: AtomicBool,
    keeper: Mutex<Option<std::thread::Thread>>,
    /// Someone (the keeper or a caller) is inside the runtime's `block_on` as its driver.
    in_drive: AtomicBool,
    /// Run by every driver as it starts driving (inside the runtime): wakes the tasks whose
    /// wakes were left to it ([`defers_wakes`](Lead::defers_wakes)).
    on_drive: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Lead {
    /// Starts the runtime and its keeper thread (named `thread_name`), runs the future that
    /// `setup` makes on it (a connection, the tasks that read it; given the lead, to wake its
    /// leader from those tasks) and returns its output once it finished. When it fails, the
    /// lead is closed and its keeper ends.
    ///
    /// # Errors
    /// `setup`'s error, or `failed(message)` when the runtime or the thread cannot start.
    pub(crate) fn start<T, E, S, F>(
        thread_name: &str,
        setup: S,
        failed: impl Fn(String) -> E,
    ) -> Result<(Arc<Lead>, T), E>
    where
        T: Send + 'static,
        E: Send + 'static,
        S: FnOnce(Weak<Lead>) -> F + Send + 'static,
        F: Future<Output = Result<T, E>>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed(format!("cannot start the connection's runtime: {e}")))?;
        let lead = Arc::new(Lead {
            runtime: Some(runtime),
            driving: Mutex::new(()),
            keeper_drives: AtomicBool::new(false),
            waits_for_callers: AtomicBool::new(false),
            urgent: AtomicBool::new(false),
            wanted: AtomicUsize::new(0),
            give_up: Notify::new(),
            replied: Notify::new(),
            last_lead: AtomicU64::new(0),
            epoch: Instant::now(),
            closed: AtomicBool::new(false),
            keeper: Mutex::new(None),
            lead_missed: AtomicBool::new(false),
            in_drive: AtomicBool::new(false),
            on_drive: std::sync::OnceLock::new(),
        });
        let (sender, started) = std::sync::mpsc::channel();
        let keeper = lead.clone();
        let thread = std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || {
                let output = {
                    let _driving = keeper.driving.lock();
                    let _mark = Driving::mark(&keeper);
                    keeper.runtime().block_on(setup(Arc::downgrade(&keeper)))
                };
                let ok = output.is_ok();
                let _ = sender.send(output);
                if ok {
                    keeper.keep();
                }
            })
            .map_err(|e| failed(format!("cannot start the connection's thread: {e}")))?;
        *lead.keeper.lock() = Some(thread.thread().clone());
        let output = started
            .recv()
            .map_err(|_| failed("the connection's thread ended before it connected".to_owned()))?;
        match output {
            Ok(output) => Ok((lead, output)),
            Err(error) => {
                lead.close();
                Err(error)
            }
        }
    }

    /// The runtime's handle, to spawn tasks on it.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime().handle()
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as its lead")
    }

    /// Whether the current thread drives this lead's runtime right now (a task or a callback
    /// running on it): it must not block on the runtime.
    pub(crate) fn driven_here(&self) -> bool {
        DRIVING.with(|driving| std::ptr::eq(driving.get(), self))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The keeper: drives the runtime while no caller does, until the lead closes.
    fn keep(&self) {
        let grace = LEAD_GRACE.as_millis() as u64;
        while !self.closed.load(Ordering::Acquire) {
            let since = self
                .now_ms()
                .saturating_sub(self.last_lead.load(Ordering::Acquire));
            let wanted = self.wanted.load(Ordering::SeqCst) > 0;
            let urgent = !wanted && self.urgent.swap(false, Ordering::AcqRel);
            if since < grace && !urgent {
                // A caller led a moment ago (a loop of blocking calls): look again when the
                // grace is over, whether or not one drives now. Callers do not wake us then,
                // so such a loop wakes this thread once a grace, not once a call (it did:
                // 0.8 to 0.9 wake-ups and ~20 µs of CPU per remote actor call).
                std::thread::park_timeout(Duration::from_millis(grace - since));
                continue;
            }
            if wanted {
                // A caller has driven for longer than the grace (a long call): sleep until
                // the callers stop; the last one unparks us (see `drive`). Said before looking
                // again, so that caller cannot miss it.
                self.waits_for_callers.store(true, Ordering::SeqCst);
                if self.wanted.load(Ordering::SeqCst) > 0 {
                    std::thread::park();
                }
                self.waits_for_callers.store(false, Ordering::SeqCst);
                continue;
            }
            let driving = self.driving.lock();
            self.keeper_drives.store(true, Ordering::Release);
            self.in_drive.store(true, Ordering::SeqCst);
            let mark = Driving::mark(self);
            let this = self;
            self.runtime().block_on(async move {
                this.started_driving();
                loop {
                    let asked = this.give_up.notified();
                    tokio::pin!(asked);
                    asked.as_mut().enable();
                    if this.wanted.load(Ordering::Acquire) > 0
                        || this.closed.load(Ordering::Acquire)
                    {
                        return;
                    }
                    asked.await;
                }
            });
            drop(mark);
            self.in_drive.store(false, Ordering::SeqCst);
            self.keeper_drives.store(false, Ordering::Release);
            drop(driving);
        }
    }

    /// A blocked caller drives the runtime until `done()` or the deadline (or returns at once
    /// when another caller drives it, or inside an async runtime, where it must not block).
    pub(crate) fn drive(&self, done: &dyn Fn() -> bool, deadline: Option<Instant>) {
        if tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        self.wanted.fetch_add(1, Ordering::SeqCst);
        let driving = match self.driving.try_lock() {
            Some(driving) => Some(driving),
            None if self.keeper_drives.load(Ordering::Acquire) => {
                self.give_up.notify_one();
                Some(self.driving.lock())
            }
            None => {
                self.lead_missed.store(true, Ordering::SeqCst);
                None
            }
        };
        let leads = driving.is_some();
        if let Some(driving) = driving {
            let replied = &self.replied;
            self.in_drive.store(true, Ordering::SeqCst);
            let mark = Driving::mark(self);
            self.runtime().block_on(async move {
                self.started_driving();
                let deadline = deadline.map(tokio::time::Instant::from_std);
                loop {
                    let settled = replied.notified();
                    tokio::pin!(settled);
                    settled.as_mut().enable();
                    // Closed: the connection is gone, its tasks fail without a reply.
                    if done() || self.closed.load(Ordering::Acquire) {
                        return;
                    }
                    match deadline {
                        None => settled.await,
                        Some(deadline) => {
                            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            drop(mark);
            self.in_drive.store(false, Ordering::SeqCst);
            self.last_lead.store(self.now_ms(), Ordering::Release);
            drop(driving);
        }
        self.wanted.fetch_sub(1, Ordering::SeqCst);
        if leads && self.lead_missed.swap(false, Ordering::SeqCst) {
            // Others wait on their handles for results this runtime must read.
            self.urgent.store(true, Ordering::SeqCst);
            self.waits_for_callers.store(false, Ordering::SeqCst);
            self.unpark_keeper();
        } else if self.waits_for_callers.swap(false, Ordering::SeqCst) {
            // Only a keeper waiting for the callers to stop needs waking: one in its grace
            // wakes by itself.
            self.unpark_keeper();
        }
    }

    /// Sets what every driver runs as it starts driving, inside the runtime (once per lead).
    pub(crate) fn set_on_drive(&self, hook: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_drive.set(hook);
    }

    fn started_driving(&self) {
        if let Some(hook) = self.on_drive.get() {
            hook();
        }
    }

    /// Whether a task's wake from the current thread may be left to the next driver (its
    /// `on_drive` hook), which comes soon: a caller led within [`LEAD_GRACE`] (a loop of
    /// blocking calls: this thread drives next, within microseconds, and the keeper takes the
    /// runtime at the grace's end at the latest) and nobody drives now. A wake from outside the
    /// runtime writes its eventfd and costs the next driver an extra poll; one from inside is a
    /// push on its run queue.
    ///
    /// The caller of this stores its deferred flag (`SeqCst`), then looks at
    /// [`drives_now`](Lead::drives_now) again: when someone drives by then, it wakes the task
    /// itself (that driver may have run its hook before the flag was set).
    pub(crate) fn defers_wakes(&self) -> bool {
        if self.closed.load(Ordering::Acquire) || self.drives_now() || self.driven_here() {
            return false;
        }
        let since = self
            .now_ms()
            .saturating_sub(self.last_lead.load(Ordering::Acquire));
        // As the keeper sees it: it sleeps out the grace since `last_lead` (a new lead's
        // keeper, since its start) before it drives.
        since < LEAD_GRACE.as_millis() as u64
    }

    /// Whether a thread drives the runtime right now (see [`defers_wakes`](Lead::defers_wakes)).
    pub(crate) fn drives_now(&self) -> bool {
        self.in_drive.load(Ordering::SeqCst)
    }

    /// Work is piling up for the runtime (a burst of submissions) while perhaps nobody drives
    /// it: the keeper takes it now, without waiting out [`LEAD_GRACE`], so the work proceeds
    /// beside the thread that queues it. No effect while a caller drives.
    pub(crate) fn hurry(&self) {
        if self.keeper_drives.load(Ordering::Acquire) || self.wanted.load(Ordering::Acquire) > 0 {
            return;
        }
        self.urgent.store(true, Ordering::Release);
        self.unpark_keeper();
    }

    /// Something was settled: the leading caller (if any) looks whether its task is done.
    pub(crate) fn wake_leader(&self) {
        self.replied.notify_waiters();
    }

    fn unpark_keeper(&self) {
        if let Some(keeper) = self.keeper.lock().as_ref() {
            keeper.unpark();
        }
    }

    /// Runs `flush` (what must leave before the connection goes: deferred acknowledgements,
    /// queued messages) on this runtime, then `then` on this thread, then closes. From a plain
    /// thread it waits for the flush, which the keeper drives. On the thread that drives this
    /// runtime (a done-callback) it cannot wait: the flush is left to the runtime, which
    /// closes the lead after it. Inside another runtime's task the flush runs on a thread of
    /// its own, which this one waits for (a drop there blocks, as any blocking drop).
    pub(crate) fn close_after(
        self: &Arc<Self>,
        flush: impl Future<Output = ()> + Send + 'static,
        then: impl FnOnce(),
    ) {
        if self.driven_here() {
            let lead = self.clone();
            self.handle().spawn(async move {
                flush.await;
                lead.close();
            });
            self.hurry();
            then();
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            self.hurry();
            self.handle().block_on(flush);
        } else {
            let handle = self.handle().clone();
            let lead = self.clone();
            let flushing = std::thread::Builder::new()
                .name("crew-lead-close".into())
                .spawn(move || {
                    lead.hurry();
                    handle.block_on(flush);
                });
            if let Ok(flushing) = flushing {
                let _ = flushing.join();
            }
        }
        then();
        self.close();
    }

    /// Stops the keeper (which then drops the runtime, once the last reference goes) and
    /// releases a caller driving the runtime.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.give_up.notify_one();
        // A caller driving the runtime for a task of the closing connection stops.
        self.replied.notify_waiters();
        self.unpark_keeper();
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Arc<Lead> {
        let (lead, ()) = Lead::start(
            "crew-lead-test",
            |_| async { Ok::<(), String>(()) },
            |message| message,
        )
        .unwrap();
        lead
    }

    #[test]
    fn the_keeper_drives_while_no_caller_does() {
        let lead = started();
        let (sender, ran) = std::sync::mpsc::channel();
        let me = Arc::downgrade(&lead);
        lead.handle().spawn(async move {
            let here = me.upgrade().is_some_and(|lead| lead.driven_here());
            let _ = sender.send((std::thread::current().id(), here));
        });
        let (thread, here) = ran.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_ne!(thread, std::thread::current().id(), "run by the keeper");
        assert!(here, "its thread knows it drives the runtime");
        assert!(!lead.driven_here());
        lead.close();
    }

    #[test]
    fn a_blocked_caller_runs_the_runtime_on_its_own_thread() {
        let lead = started();
        let done = Arc::new(AtomicBool::new(false));
        let ran_on = Arc::new(Mutex::new(None));
        let (task_done, task_ran_on, me) = (done.clone(), ran_on.clone(), Arc::downgrade(&lead));
        lead.handle().spawn(async move {
            // Late enough for the caller below to have taken the runtime from the keeper.
            tokio::time::sleep(Duration::from_millis(50)).await;
            *task_ran_on.lock() = Some(std::thread::current().id());
            task_done.store(true, Ordering::Release);
            if let Some(lead) = me.upgrade() {
                lead.wake_leader();
            }
        });
        let started = Instant::now();
        lead.drive(&|| done.load(Ordering::Acquire), None);
        assert!(done.load(Ordering::Acquire), "drive returns when done");
        assert_eq!(*ran_on.lock(), Some(std::thread::current().id()));
        assert!(started.elapsed() < Duration::from_secs(5));
        // A caller gives up at its deadline when nothing settles.
        let started = Instant::now();
        lead.drive(&|| false, Some(Instant::now() + Duration::from_millis(20)));
        assert!(started.elapsed() >= Duration::from_millis(20));
        lead.close();
    }

    #[test]
    fn a_wake_left_to_the_next_driver_is_done_by_the_keeper_when_no_caller_comes() {
        let lead = started();
        let (pending, woken) = (Arc::new(AtomicBool::new(false)), Arc::new(Notify::new()));
        let (hook_pending, hook_woken) = (pending.clone(), woken.clone());
        lead.set_on_drive(Box::new(move || {
            if hook_pending.swap(false, Ordering::SeqCst) {
                hook_woken.notify_one();
            }
        }));
        std::thread::sleep(LEAD_GRACE * 3);
        assert!(
            !lead.defers_wakes(),
            "no caller led within the grace: wakes are not deferred"
        );
        let (sender, ran) = std::sync::mpsc::channel();
        let waiting = woken.clone();
        lead.handle().spawn(async move {
            waiting.notified().await;
            let _ = sender.send(std::thread::current().id());
        });
        // A caller led a moment ago (tried again: on a loaded machine more than the grace may
        // pass between its drive and the look).
        let deferred = (0..100).any(|_| {
            lead.drive(&|| true, None);
            lead.defers_wakes()
        });
        assert!(
            deferred,
            "a caller led within the grace: wakes are deferred"
        );
        pending.store(true, Ordering::SeqCst);
        if lead.drives_now() && pending.swap(false, Ordering::SeqCst) {
            // The keeper took the runtime meanwhile (perhaps past its hook): wake the task
            // from here, as the outboxes do.
            woken.notify_one();
        }
        // No caller comes: the keeper takes the runtime at the grace's end and runs the hook.
        let thread = ran
            .recv_timeout(Duration::from_secs(5))
            .expect("the deferred wake was done");
        assert_ne!(thread, std::thread::current().id(), "by the keeper");
        lead.close();
    }

    #[test]
    fn closing_releases_a_leading_caller() {
        let lead = started();
        let closer = lead.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            closer.close();
        });
        let started = Instant::now();
        lead.drive(&|| false, None);
        assert!(started.elapsed() < Duration::from_secs(5));
        thread.join().unwrap();
    }
}
