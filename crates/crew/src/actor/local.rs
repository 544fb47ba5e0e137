//! The thread placement: an actor's mailbox and the threads that serve it.
//!
//! # Design note
//!
//! The mailbox is a bounded crossbeam channel of [`Envelope`]s; its threads (instances ×
//! max_concurrency) take calls from it. Each instance keeps its state in a read-write lock and
//! an *order* mutex: a thread of the instance holds the order mutex from taking a call until it
//! holds the state lock the call needs, so calls take the lock in mailbox order (per-caller
//! order holds; a `&mut self` call waits for the `&self` calls before it). With one thread in
//! all, the order mutex is skipped.
//!
//! **Ending.** `stop` closes the mailbox to new calls and queues `Stop` behind the calls in it;
//! `kill` closes it, marks it killed and fails the queued calls (and refuses the async callers
//! waiting for room) at once, and the threads stop
//! before their next call. Every thread that leaves a closed mailbox fails what is still in it
//! (what the last thread out does for a single thread): a thread of a pool waiting on a
//! self-call queued behind `Stop` must get its answer, or it would never leave. One
//! thread wakes the others: with one thread `Stop`/`Kill` envelopes suffice, with several a
//! *control* channel is dropped, which every idle thread watches. The last thread out fails
//! whatever is still queued with `Stopped`, runs the stop hooks (graceful only), unregisters the
//! actor and settles the `stop()`/`kill()` handles. `stop` never waits for room for `Stop` in a
//! full mailbox (an actor stopping itself could not: only it makes room; another caller should
//! not block either): it sets `stop_when_empty` instead, and each thread, after each call, ends
//! once the mailbox is empty. So `stop` returns its handle at once, and the calls queued before
//! it (and those of callers already blocked on the full mailbox) still run first. No thread can
//! miss the flag by sleeping on an empty mailbox: `stop` stores it (`SeqCst`) and offers `Stop`
//! again; an offer refused as `Full` comes after a `SeqCst` fence that did not see a receive, so
//! a call is still queued, and the thread that takes it (a `SeqCst` compare-and-swap, later in
//! that order) loads the flag (`SeqCst`) after running it.
//!
//! **Async callers.** A `*_async` call offers its envelope with `try_send`; while the mailbox
//! is full it waits in the `room` (see that module), which the thread taking an envelope
//! wakes. The offer takes part in the closing protocol below like any send.
//!
//! **Self-calls.** A thread of the actor that calls the actor and waits needs another thread
//! to serve that call. One is sure to exist only when the actor has several threads and no
//! `&mut self` method (`reentrant`: a stateless pool, or `max_concurrency` above 1 with `&self`
//! methods only; a queued `&mut self` call would wait for the caller's read lock, holding the
//! instance's order mutex, and stall the instance's other threads). Then a self-call takes a
//! *slot*, held until it settles, and at most `threads - 1` slots exist: however many threads
//! wait on (or block sending) self-calls, one thread waits on none and drains the mailbox, so
//! every self-call gets served. Without a free slot (and always on a single thread, or with a
//! `&mut self` method) the call fails at once with `SelfCall`. Counting calls rather than
//! waiting threads is conservative: a thread waiting on two self-calls holds two slots. A
//! self-tell takes no slot: it never waits (`Full` rather than blocking on its own mailbox).
//!
//! **Closing without losing a call.** A caller counts itself in `sending` before checking
//! `closed` and out after its send; the last thread sets `closed` first, then drains until the
//! channel is empty *and* `sending` is zero. Both sides use `SeqCst`, so a call either sees
//! `closed` and is refused, or is counted and drained: none is left in a dead mailbox.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, MutexGuard, RwLock};

use crate::actor::ending::{Ending, Request};
use crate::actor::registry::Reservation;
use crate::actor::room::{Offer, Room};
use crate::actor::{Actor, ActorError, ActorOptions, MethodCall, Mode};
use crate::error::{panic_message, TaskError};
use crate::sys::spin::Spin;
use crate::task::{pair, Completer, TaskHandle};

thread_local! {
    /// The actor (its `Local`'s address) whose thread this is, for the deadlock guard.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// One copy of the actor's state.
pub(crate) struct Instance<A> {
    state: RwLock<A>,
    order: Mutex<()>,
}

impl<A> Instance<A> {
    pub(crate) fn new(actor: A) -> Self {
        Self {
            state: RwLock::new(actor),
            order: Mutex::new(()),
        }
    }

    /// The state and its lock.
    pub(crate) fn state(&self) -> &RwLock<A> {
        &self.state
    }

    /// Runs `f` with the state exclusively (the hooks).
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(&mut A) -> R) -> R {
        f(&mut self.state.write())
    }
}

/// A call in the mailbox.
pub(crate) trait Job<A>: Send {
    /// Takes the lock the call needs, releases `order`, runs the call and settles it.
    fn run(self: Box<Self>, instance: &Instance<A>, order: Option<MutexGuard<'_, ()>>);
    /// Settles the call without running it.
    fn fail(self: Box<Self>, error: TaskError);
}

pub(crate) enum Envelope<A> {
    Call(Box<dyn Job<A>>),
    Stop,
    Kill,
}

/// A call of a `&mut self` method (`exclusive`) or a `&self` one, as a closure.
pub(crate) struct LocalJob<A, F, R> {
    f: F,
    completer: Option<Completer<R>>,
    /// A call the actor made to itself holds one of its self-call slots until it settles.
    slot: Option<SelfCallSlot>,
    _actor: PhantomData<fn(A)>,
}

/// One of an actor's self-calls, counted while it has not settled (see the note on
/// self-calls); given back when dropped.
pub(crate) struct SelfCallSlot(Arc<AtomicUsize>);

impl Drop for SelfCallSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The closure of a call: the method with its arguments.
pub(crate) enum Call<M, S> {
    Exclusive(M),
    Shared(S),
}

impl<A, M, S, R> Job<A> for LocalJob<A, Call<M, S>, R>
where
    A: Send + Sync + 'static,
    M: FnOnce(&mut A) -> R + Send,
    S: FnOnce(&A) -> R + Send,
    R: Send + 'static,
{
    fn run(self: Box<Self>, instance: &Instance<A>, order: Option<MutexGuard<'_, ()>>) {
        let LocalJob {
            f, completer, slot, ..
        } = *self;
        if let Some(completer) = &completer {
            if !completer.start() {
                return; // cancelled while queued
            }
        }
        let result = match f {
            Call::Exclusive(f) => {
                let mut state = instance.state.write();
                drop(order);
                catch_unwind(AssertUnwindSafe(|| f(&mut state)))
            }
            Call::Shared(f) => {
                let state = instance.state.read();
                drop(order);
                catch_unwind(AssertUnwindSafe(|| f(&state)))
            }
        };
        // The slot is given back before the caller waiting on this call wakes, so that its
        // next self-call finds it free.
        drop(slot);
        if let Some(completer) = completer {
            completer.complete(result.map_err(|payload| TaskError::Panicked {
                message: panic_message(&*payload),
            }));
        }
    }

    fn fail(self: Box<Self>, error: TaskError) {
        let LocalJob {
            completer, slot, ..
        } = *self;
        drop(slot);
        if let Some(completer) = completer {
            completer.complete(Err(error));
        }
    }
}

/// Makes a job and, unless it is a tell, its handle.
pub(crate) fn job<A, M, S, R>(
    f: Call<M, S>,
    tell: bool,
    slot: Option<SelfCallSlot>,
) -> (Box<dyn Job<A>>, Option<TaskHandle<R>>)
where
    A: Send + Sync + 'static,
    M: FnOnce(&mut A) -> R + Send + 'static,
    S: FnOnce(&A) -> R + Send + 'static,
    R: Send + 'static,
{
    let (handle, completer) = if tell {
        (None, None)
    } else {
        let (handle, completer) = pair();
        (Some(handle), Some(completer))
    };
    (
        Box::new(LocalJob {
            f,
            completer,
            slot,
            _actor: PhantomData,
        }),
        handle,
    )
}

/// An actor on threads of this process.
pub(crate) struct Local<A: Actor> {
    uid: String,
    sender: Sender<Envelope<A>>,
    receiver: Receiver<Envelope<A>>,
    /// Dropped to wake every idle thread when there are several.
    control: Mutex<Option<Sender<()>>>,
    control_rx: Receiver<()>,
    threads: usize,
    alive: AtomicUsize,
    closed: AtomicBool,
    killed: AtomicBool,
    /// The actor stopped itself while its mailbox was full (no room for `Stop`): its threads
    /// end when the mailbox is empty.
    stop_when_empty: AtomicBool,
    sending: AtomicUsize,
    /// The actor's calls to itself not yet settled (see the note on self-calls).
    self_calls: Arc<AtomicUsize>,
    /// Whether a thread of the actor may wait for a call to itself that another thread
    /// serves: several threads, and no `&mut self` method (see the note on self-calls).
    reentrant: bool,
    /// Async callers waiting for room.
    pub(crate) room: Room,
    ending: Ending,
    instances: Vec<Arc<Instance<A>>>,
    reservation: Option<Reservation>,
}

impl<A: Actor> Local<A> {
    /// Builds the instances, runs their start hooks (here, in the caller's thread) and starts
    /// the threads.
    pub(crate) fn start(
        uid: &str,
        args: A::Args,
        options: &ActorOptions<A>,
        reservation: Reservation,
    ) -> Result<Arc<Self>, ActorError> {
        let mut instances = Vec::with_capacity(options.instance_count);
        for _ in 0..options.instance_count {
            instances.push(Arc::new(Instance::new(construct::<A>(uid, args.clone())?)));
        }
        Self::serve(
            uid,
            instances,
            options.mailbox,
            options.max_concurrency,
            Some(reservation),
        )
        .map_err(|message| ActorError::StartFailed {
            uid: uid.to_owned(),
            message,
        })
    }

    /// Starts threads serving already-started instances.
    ///
    /// # Errors
    /// A thread could not be started (the system's thread or memory limit): the actor is
    /// ended (as by a kill: the threads started stop, no hook runs, the uid is released).
    pub(crate) fn serve(
        uid: &str,
        instances: Vec<Arc<Instance<A>>>,
        mailbox: usize,
        max_concurrency: usize,
        reservation: Option<Reservation>,
    ) -> Result<Arc<Self>, String> {
        let (sender, receiver) = crossbeam_channel::bounded(mailbox);
        let (control, control_rx) = crossbeam_channel::bounded(0);
        let threads = instances.len() * max_concurrency;
        let local = Arc::new(Local {
            uid: uid.to_owned(),
            sender,
            receiver,
            control: Mutex::new(Some(control)),
            control_rx,
            threads,
            alive: AtomicUsize::new(threads),
            closed: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            stop_when_empty: AtomicBool::new(false),
            sending: AtomicUsize::new(0),
            self_calls: Arc::new(AtomicUsize::new(0)),
            reentrant: threads > 1 && shared_methods_only::<A>(),
            room: Room::default(),
            ending: Ending::default(),
            instances,
            reservation,
        });
        let mut started = 0;
        for (index, instance) in local.instances.iter().enumerate() {
            for thread in 0..max_concurrency {
                let serving = local.clone();
                let instance = instance.clone();
                let name = format!("crew-actor-{}-{index}.{thread}", local.uid);
                let spawned = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || serving.run_thread(&instance));
                if let Err(error) = spawned {
                    local.abandon(threads - started);
                    return Err(format!(
                        "cannot start its thread {} of {threads}: {error}; this process is \
                         at its thread or memory limit (stop actors you no longer need, or \
                         raise `ulimit -u`)",
                        started + 1
                    ));
                }
                started += 1;
            }
        }
        Ok(local)
    }

    /// Ends an actor some of whose threads could not start (`missing` of them), as a kill.
    fn abandon(&self, missing: usize) {
        self.killed.store(true, Ordering::Release);
        self.closed.store(true, Ordering::SeqCst);
        // The threads that did start watch the control channel (several threads) and end.
        self.control.lock().take();
        if self.alive.fetch_sub(missing, Ordering::AcqRel) == missing {
            self.finish();
        }
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// Whether the calling thread is one of this actor's.
    pub(crate) fn is_current(&self) -> bool {
        CURRENT.with(Cell::get) == self.id()
    }

    fn run_thread(self: Arc<Self>, instance: &Instance<A>) {
        CURRENT.with(|current| current.set(self.id()));
        let mut spin = Spin::default();
        if self.threads == 1 {
            while let Ok(envelope) = self.receive(&mut spin) {
                match envelope {
                    Envelope::Call(job) if !self.killed.load(Ordering::Acquire) => {
                        job.run(instance, None);
                        if self.stopping_when_empty() {
                            break;
                        }
                    }
                    Envelope::Call(job) => {
                        job.fail(self.stopped_error().into());
                        break;
                    }
                    Envelope::Stop | Envelope::Kill => break,
                }
            }
        } else {
            loop {
                let order = instance.order.lock();
                // The control channel is looked at only once the spin is over: an end is
                // noticed at most one (bounded) spin late.
                let missed = spin.spin_until(|| !self.receiver.is_empty()).err();
                let envelope = crossbeam_channel::select! {
                    recv(self.receiver) -> envelope => envelope,
                    recv(self.control_rx) -> _ => break,
                };
                if let Some(missed) = missed {
                    spin.woken(missed);
                }
                self.room.freed();
                match envelope {
                    Ok(Envelope::Call(job)) if !self.killed.load(Ordering::Acquire) => {
                        job.run(instance, Some(order));
                        if self.stopping_when_empty() {
                            self.control.lock().take();
                            break;
                        }
                    }
                    Ok(Envelope::Call(job)) => {
                        job.fail(self.stopped_error().into());
                        break;
                    }
                    Ok(Envelope::Stop | Envelope::Kill) | Err(_) => {
                        self.control.lock().take();
                        break;
                    }
                }
            }
        }
        CURRENT.with(|current| current.set(0));
        if self.threads > 1 {
            // The mailbox is closed: what is in it now runs no more. Failed here, not only by
            // the last thread out, since that thread may be waiting on one of these calls (a
            // self-call of a pool) and would never get out.
            self.fail_queued();
        }
        if self.alive.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish();
        }
    }

    /// The next envelope, for the one thread of an actor (a place in the mailbox freed). An
    /// empty mailbox is first watched for a (bounded, adaptive) spin: a caller blocked on its
    /// last call sends the next within microseconds, and catching it here saves this thread
    /// a park and the caller a wake-up to pay for (see [`Spin`]).
    fn receive(&self, spin: &mut Spin) -> Result<Envelope<A>, crossbeam_channel::RecvError> {
        let envelope = match spin.spin_until(|| !self.receiver.is_empty()) {
            Ok(()) => self.receiver.recv(),
            Err(missed) => {
                let envelope = self.receiver.recv();
                spin.woken(missed);
                envelope
            }
        };
        self.room.freed();
        envelope
    }

    /// Whether a self-stop (see `stop_when_empty`) is due: only a call can ask for one, so
    /// every thread checks after each call it ran.
    fn stopping_when_empty(&self) -> bool {
        self.stop_when_empty.load(Ordering::SeqCst) && self.receiver.is_empty()
    }

    /// The last thread out: fail what is left, run the stop hooks, unregister, settle.
    fn finish(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.fail_queued();
        if !self.killed.load(Ordering::Acquire) {
            for instance in &self.instances {
                if let Err(payload) =
                    catch_unwind(AssertUnwindSafe(|| instance.with_mut(A::on_stop)))
                {
                    eprintln!(
                        "crew: the stop hook of actor `{}` panicked: {}",
                        self.uid,
                        panic_message(&*payload)
                    );
                }
            }
        }
        self.room.close();
        if let Some(reservation) = &self.reservation {
            reservation.release();
        }
        self.ending.finish();
    }

    /// Fails every call in the closed mailbox, and those still being sent (see the note on
    /// closing): none is left behind.
    fn fail_queued(&self) {
        debug_assert!(self.closed.load(Ordering::SeqCst));
        loop {
            while let Ok(envelope) = self.receiver.try_recv() {
                if let Envelope::Call(job) = envelope {
                    job.fail(self.stopped_error().into());
                }
            }
            if self.sending.load(Ordering::SeqCst) == 0 && self.receiver.is_empty() {
                break;
            }
            std::thread::yield_now();
        }
    }

    fn stopped_error(&self) -> ActorError {
        let reason = if self.killed.load(Ordering::Acquire) {
            "it was killed"
        } else {
            "it was stopped"
        };
        ActorError::Stopped {
            uid: self.uid.clone(),
            reason: reason.to_owned(),
        }
    }

    /// Queues a call.
    pub(crate) fn call<R, M, S>(
        &self,
        method: &str,
        f: Call<M, S>,
        mode: Mode,
    ) -> Result<Option<TaskHandle<R>>, ActorError>
    where
        M: FnOnce(&mut A) -> R + Send + 'static,
        S: FnOnce(&A) -> R + Send + 'static,
        R: Send + 'static,
    {
        let mut mode = mode;
        let mut slot = None;
        if self.is_current() {
            if mode == Mode::Tell {
                // A tell to oneself must not wait for room only this thread can make.
                mode = Mode::Try;
            } else {
                slot = Some(self.self_call_slot(method)?);
            }
        }
        let (job, handle) = job(f, mode == Mode::Tell, slot);
        self.send(Envelope::Call(job), mode)?;
        Ok(handle)
    }

    /// A slot for a call from one of this actor's threads to the actor, if a thread that is
    /// not waiting for such a call remains to serve it; else why it would wait forever.
    fn self_call_slot(&self, method: &str) -> Result<SelfCallSlot, ActorError> {
        let most = if self.reentrant { self.threads - 1 } else { 0 };
        self.self_calls
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |calls| {
                (calls < most).then_some(calls + 1)
            })
            .map(|_| SelfCallSlot(self.self_calls.clone()))
            .map_err(|_| ActorError::SelfCall {
                uid: self.uid.clone(),
                method: method.to_owned(),
            })
    }

    /// Puts a call in the mailbox (see the note on closing).
    pub(crate) fn send(&self, envelope: Envelope<A>, mode: Mode) -> Result<(), ActorError> {
        self.sending.fetch_add(1, Ordering::SeqCst);
        let result = if self.closed.load(Ordering::SeqCst) {
            Err(self.stopped_error())
        } else if mode == Mode::Try {
            self.sender.try_send(envelope).map_err(|error| match error {
                TrySendError::Full(_) => ActorError::Full {
                    uid: self.uid.clone(),
                },
                TrySendError::Disconnected(_) => self.stopped_error(),
            })
        } else {
            self.sender.send(envelope).map_err(|_| self.stopped_error())
        };
        self.sending.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Offers a call to the mailbox without blocking: `Err` hands it back when full.
    fn offer(&self, envelope: Envelope<A>) -> Result<Result<(), ActorError>, Envelope<A>> {
        self.sending.fetch_add(1, Ordering::SeqCst);
        let offer = if self.closed.load(Ordering::SeqCst) {
            Ok(Err(self.stopped_error()))
        } else {
            match self.sender.try_send(envelope) {
                Ok(()) => Ok(Ok(())),
                Err(TrySendError::Full(envelope)) => Err(envelope),
                Err(TrySendError::Disconnected(_)) => Ok(Err(self.stopped_error())),
            }
        };
        self.sending.fetch_sub(1, Ordering::SeqCst);
        offer
    }

    /// Queues a call, waiting (asynchronously) for room in a full mailbox.
    pub(crate) async fn call_async<R, M, S>(
        &self,
        method: &str,
        f: Call<M, S>,
    ) -> Result<TaskHandle<R>, ActorError>
    where
        M: FnOnce(&mut A) -> R + Send + 'static,
        S: FnOnce(&A) -> R + Send + 'static,
        R: Send + 'static,
    {
        let slot = if self.is_current() {
            Some(self.self_call_slot(method)?)
        } else {
            None
        };
        let (job, handle) = job(f, false, slot);
        self.offer_async(Envelope::Call(job)).await?;
        Ok(handle.expect("a call has a handle"))
    }

    /// Queues a call whose result nobody wants, waiting (asynchronously) for room in a full
    /// mailbox; a tell to oneself does not wait (see [`call`](Self::call)).
    pub(crate) async fn tell_async<R, M, S>(
        &self,
        method: &str,
        f: Call<M, S>,
    ) -> Result<(), ActorError>
    where
        M: FnOnce(&mut A) -> R + Send + 'static,
        S: FnOnce(&A) -> R + Send + 'static,
        R: Send + 'static,
    {
        if self.is_current() {
            return self.call::<R, M, S>(method, f, Mode::Tell).map(drop);
        }
        let (job, _) = job::<A, M, S, R>(f, true, None);
        self.offer_async(Envelope::Call(job)).await
    }

    /// Offers `envelope` until the mailbox takes it (or refuses it for good).
    async fn offer_async(&self, envelope: Envelope<A>) -> Result<(), ActorError> {
        let mut envelope = Some(envelope);
        self.room
            .offer(
                || match self.offer(envelope.take().expect("offered until queued")) {
                    Err(back) => {
                        envelope = Some(back);
                        Offer::Full
                    }
                    Ok(result) => Offer::Done(result),
                },
            )
            .await
    }

    /// Stops (gracefully) or kills the actor; the handle settles when it has ended.
    pub(crate) fn stop(&self, kill: bool) -> TaskHandle<()> {
        let (handle, request) = self.ending.request(kill);
        if request != Request::First {
            return handle;
        }
        if kill {
            self.killed.store(true, Ordering::Release);
            self.closed.store(true, Ordering::SeqCst);
            // Async callers waiting for room are refused now: no thread frees room for them
            // any more (one may be a thread of this pool, which would never leave).
            self.room.close();
            // The queued calls fail now, not when a thread gets to them: with every thread
            // busy, one may be waiting on a queued call (a pool's self-call).
            self.fail_queued();
            if self.threads == 1 {
                // A full mailbox means the thread will take a call and see `killed`.
                let _ = self.sender.try_send(Envelope::Kill);
            } else {
                self.control.lock().take();
            }
        } else {
            self.closed.store(true, Ordering::SeqCst);
            // Closed to new calls: async callers waiting for room are refused now rather
            // than one by one as the threads drain the mailbox.
            self.room.close();
            // Behind every call already queued. In a full mailbox nobody waits for room (only
            // the actor's threads make it, and the caller may be one of them): the threads end
            // once the mailbox is empty instead (see the note on ending).
            if let Err(TrySendError::Full(stop)) = self.sender.try_send(Envelope::Stop) {
                self.stop_when_empty.store(true, Ordering::SeqCst);
                // The mailbox may have emptied before the flag was set (a thread checks it only
                // after a call): offer `Stop` once more. Still full, it holds a call that some
                // thread takes after this `Full` was seen, and checks the flag after running it.
                let _ = self.sender.try_send(stop);
            }
        }
        handle
    }
}

/// Whether every method of `A` takes `&self` (a stateless actor's are): then no call waits
/// for a thread of the actor to let go of its state.
fn shared_methods_only<A: Actor>() -> bool {
    let methods = A::methods();
    !methods.is_empty()
        && methods.iter().all(|method| {
            matches!(
                method.call,
                MethodCall::Shared(_) | MethodCall::SharedStream(_)
            )
        })
}

/// Builds one instance and runs its start hook.
pub(crate) fn construct<A: Actor>(uid: &str, args: A::Args) -> Result<A, ActorError> {
    let failed = |message| ActorError::StartFailed {
        uid: uid.to_owned(),
        message,
    };
    let mut actor = catch_unwind(AssertUnwindSafe(|| A::new(args))).map_err(|payload| {
        failed(format!(
            "its constructor (`new`) panicked: {}",
            panic_message(&*payload)
        ))
    })?;
    match catch_unwind(AssertUnwindSafe(|| actor.on_start())) {
        Ok(Ok(())) => Ok(actor),
        Ok(Err(message)) => Err(failed(message)),
        Err(payload) => Err(failed(format!(
            "its start hook (`on_start`) panicked: {}",
            panic_message(&*payload)
        ))),
    }
}
