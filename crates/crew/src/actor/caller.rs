//! The caller's side of an actor in another process, for both such placements: a worker
//! process of this machine (`process.rs`, over a Unix socket) and a cluster worker
//! (`remote.rs`, over NATS).
//!
//! # Design note
//!
//! Both placements speak the same frames ([`ToActor`] / [`FromActor`]) and keep the mailbox
//! bound at the caller ([`CallerBound`]: a permit per call queued or in flight); they differ
//! only in how a frame travels and how the actor ends. So the caller's mechanics live here
//! once: encoding a call, its reply slot, the permit, the async waits for one, streams with
//! their credits and cancels ([`dyn Transport`](Transport)'s methods), and settling or failing
//! what is in flight from the frames that come back ([`settle_frame`], [`fail_pending`]). A
//! placement implements [`Transport`]: where its bound and calls in flight are, how it queues a
//! frame, and what it says when the actor is gone. An [`ActorRef`](super::ActorRef) holds
//! either a local actor or an `Arc<dyn Transport>`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::actor::process::{FromActor, ToActor};
use crate::actor::room::{CallerBound, Refused};
use crate::actor::stream::RemoteItems;
use crate::actor::{ActorError, ActorStream, Mode};
use crate::error::TaskError;
use crate::executor::Message;
use crate::task::codec;
use crate::task::protocol::Outcome;
use crate::task::{pair, Driver, TaskHandle};

pub(crate) type Finish = Box<dyn FnOnce(Result<Vec<u8>, TaskError>) + Send>;

/// A call or stream waiting for the host's answer.
pub(crate) enum Pending {
    Call(Option<Finish>),
    /// `holds_permit` until its first `Reply` (which gives the permit back; items follow):
    /// a stream failed or cancelled before that gives it back there.
    Stream {
        items: Weak<RemoteItems>,
        holds_permit: bool,
    },
}

/// The calls of one caller waiting for their answers, by id.
pub(crate) type Inflight = Mutex<HashMap<u64, Pending>>;

/// How the caller's frames reach an actor in another process, and what the caller side needs
/// of its placement (see the module's note).
pub(crate) trait Transport: Send + Sync + 'static {
    /// The actor's uid (for errors).
    fn uid(&self) -> &str;

    /// The mailbox bound, kept at the caller.
    fn bound(&self) -> &CallerBound;

    /// The calls and streams waiting for an answer.
    fn inflight(&self) -> &Inflight;

    /// Queues a call's frame, its permit taken: `frame(id)` makes its header and its pending
    /// entry for the id the transport gives it (ids in the order it sends).
    fn send(
        &self,
        frame: &mut dyn FnMut(u64) -> (ToActor, Pending),
        payload: &[u8],
    ) -> Result<(), ActorError>;

    /// Sends a frame that needs no permit (credits, cancels), in order with the calls.
    fn send_control(&self, header: &ToActor);

    /// Why the actor cannot be called any more.
    fn stopped_error(&self) -> ActorError;

    /// What a blocked caller of a call's handle runs before sleeping (see
    /// [`TaskHandle::set_driver`]), if the transport lets callers read their own replies.
    fn driver(&self) -> Option<Driver> {
        None
    }

    /// Stops (gracefully) or kills the actor; the handle settles when it has ended.
    fn stop(&self, kill: bool) -> TaskHandle<()>;

    /// The process id of the worker hosting the actor now, if it is one of this machine's.
    fn pid(&self) -> Option<u32> {
        None
    }

    /// How many times the actor's worker process was restarted after dying.
    /// Whether the actor lives on a cluster (reached through NATS, not this process).
    fn on_cluster(&self) -> bool {
        false
    }

    fn restarts(&self) -> u32 {
        0
    }
}

impl dyn Transport {
    fn refused(&self, refused: Refused) -> ActorError {
        match refused {
            Refused::Closed => self.stopped_error(),
            Refused::Full => ActorError::Full {
                uid: self.uid().to_owned(),
            },
        }
    }

    /// Gives a call's permit back (its reply came, or it failed) and wakes an async waiter.
    pub(crate) fn release_permit(&self) {
        self.bound().release();
    }

    /// Takes a permit (the bound), then queues `header` + `payload` with `pending`.
    fn send_call(
        &self,
        mode: Mode,
        make: impl FnOnce(u64) -> (ToActor, Pending),
        payload: &[u8],
    ) -> Result<(), ActorError> {
        self.bound()
            .take(mode)
            .map_err(|refused| self.refused(refused))?;
        let mut make = Some(make);
        self.send(
            &mut |id| (make.take().expect("one frame per call"))(id),
            payload,
        )
    }

    pub(crate) fn call<Args: Message, R: Message>(
        &self,
        index: u32,
        args: &Args,
        mode: Mode,
    ) -> Result<Option<TaskHandle<R>>, ActorError> {
        let payload = match codec::encode(args) {
            Ok(payload) => payload,
            Err(message) => {
                if mode.holds_permit() {
                    self.release_permit();
                }
                return Err(ActorError::Encode {
                    uid: self.uid().to_owned(),
                    message,
                });
            }
        };
        let (handle, finish) = reply_slot::<R>(mode);
        if let (Some(handle), Some(driver)) = (&handle, self.driver()) {
            handle.set_driver(driver);
        }
        self.send_call(
            mode,
            |id| (ToActor::Call { id, method: index }, Pending::Call(finish)),
            &payload,
        )?;
        Ok(handle)
    }

    /// Calls method `index`, waiting (asynchronously) for a permit while the mailbox is full.
    pub(crate) async fn call_async<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
    ) -> Result<TaskHandle<R>, ActorError> {
        self.permit_async().await?;
        self.call(index, &args, Mode::Held)
            .map(|handle| handle.expect("a call has a handle"))
    }

    /// Tells method `index`, waiting (asynchronously) for a permit while the mailbox is full.
    pub(crate) async fn tell_async<Args: Message>(
        &self,
        index: u32,
        args: Args,
    ) -> Result<(), ActorError> {
        self.permit_async().await?;
        self.call::<Args, ()>(index, &args, Mode::HeldTell)
            .map(drop)
    }

    /// Takes a mailbox permit, waiting in the `room` (never blocking) while there is none.
    async fn permit_async(&self) -> Result<(), ActorError> {
        self.bound()
            .take_async()
            .await
            .map_err(|refused| self.refused(refused))
    }

    pub(crate) fn stream<Args: Message, T: Message>(
        self: &Arc<Self>,
        index: u32,
        args: &Args,
    ) -> ActorStream<T> {
        let payload = match codec::encode(args) {
            Ok(payload) => payload,
            Err(message) => {
                return ActorStream::failed(
                    ActorError::Encode {
                        uid: self.uid().to_owned(),
                        message,
                    }
                    .into(),
                )
            }
        };
        let id = Arc::new(AtomicU64::new(0));
        let (credit_to, cancel_to) = (Arc::downgrade(self), Arc::downgrade(self));
        let (credit_id, cancel_id) = (id.clone(), id.clone());
        let items = Arc::new(RemoteItems::new(
            Box::new(move |items| {
                if let Some(remote) = credit_to.upgrade() {
                    let id = credit_id.load(Ordering::Acquire);
                    remote.send_control(&ToActor::Credit { id, items });
                }
            }),
            Box::new(move || {
                if let Some(remote) = cancel_to.upgrade() {
                    let id = cancel_id.load(Ordering::Acquire);
                    let cancelled = remote.inflight().lock().remove(&id);
                    if let Some(Pending::Stream {
                        holds_permit: true, ..
                    }) = cancelled
                    {
                        // Its `Reply` will find nothing in flight: the permit is given back
                        // here, or it would be lost.
                        remote.bound().release();
                    }
                    remote.send_control(&ToActor::Cancel { id });
                }
            }),
        ));
        let weak = Arc::downgrade(&items);
        let sent = self.send_call(
            Mode::Blocking,
            |new_id| {
                id.store(new_id, Ordering::Release);
                (
                    ToActor::Stream {
                        id: new_id,
                        method: index,
                    },
                    Pending::Stream {
                        items: weak,
                        holds_permit: true,
                    },
                )
            },
            &payload,
        );
        match sent {
            Ok(()) => ActorStream::remote(items),
            Err(error) => {
                items.end();
                ActorStream::failed(error.into())
            }
        }
    }
}

/// A call's handle and what settles it from the host's encoded answer (none for a `tell`).
pub(crate) fn reply_slot<R: Message>(mode: Mode) -> (Option<TaskHandle<R>>, Option<Finish>) {
    if matches!(mode, Mode::Tell | Mode::HeldTell) {
        return (None, None);
    }
    let (handle, completer) = pair::<R>();
    let finish: Finish = Box::new(move |result: Result<Vec<u8>, TaskError>| {
        if completer.start() {
            completer.complete(result.and_then(|bytes| {
                codec::decode::<R>(&bytes).map_err(|message| TaskError::Transport { message })
            }));
        }
    });
    (Some(handle), Some(finish))
}

/// Settles what a `Reply`, `Item` or `End` frame answers; `release` gives a call's permit back.
pub(crate) fn settle_frame(
    inflight: &Inflight,
    header: FromActor,
    payload: Vec<u8>,
    release: &dyn Fn(),
) {
    match header {
        FromActor::Reply { id, outcome } => {
            let pending = inflight.lock().remove(&id);
            match pending {
                Some(Pending::Call(finish)) => {
                    release();
                    if let Some(finish) = finish {
                        finish(outcome_result(outcome, payload));
                    }
                }
                Some(Pending::Stream {
                    items,
                    holds_permit,
                }) => {
                    if holds_permit {
                        release();
                    }
                    if let Err(error) = outcome_result(outcome, Vec::new()) {
                        if let Some(items) = items.upgrade() {
                            items.push(Err(error));
                        }
                    } else {
                        // Items and the end follow; keep the stream in flight.
                        inflight.lock().insert(
                            id,
                            Pending::Stream {
                                items,
                                holds_permit: false,
                            },
                        );
                    }
                }
                None => {}
            }
        }
        // The lock is released before the stream is upgraded: if its consumer lets go
        // meanwhile, this upgrade holds the last strong reference, and dropping it runs the
        // stream's cancel, which takes the same lock.
        FromActor::Item { id } => {
            let stream = match inflight.lock().get(&id) {
                Some(Pending::Stream { items, .. }) => Some(items.clone()),
                _ => None,
            };
            if let Some(items) = stream.and_then(|items| items.upgrade()) {
                items.push(Ok(payload));
            }
        }
        FromActor::End { id, outcome } => {
            let pending = inflight.lock().remove(&id);
            if let Some(Pending::Stream {
                items,
                holds_permit,
            }) = pending
            {
                if holds_permit {
                    release();
                }
                if let Some(items) = items.upgrade() {
                    match outcome_result(outcome, Vec::new()) {
                        Ok(_) => items.end(),
                        Err(error) => items.push(Err(error)),
                    }
                }
            }
        }
        FromActor::Stopped | FromActor::Ready { .. } | FromActor::StartFailed { .. } => {}
    }
}

/// Fails every call and stream in `inflight` with `error`, except the `keep` ids.
pub(crate) fn fail_pending(
    inflight: &Inflight,
    error: &TaskError,
    keep: &[u64],
    release: &dyn Fn(),
) {
    let failed: Vec<Pending> = {
        let mut inflight = inflight.lock();
        let ids: Vec<u64> = inflight
            .keys()
            .copied()
            .filter(|id| !keep.contains(id))
            .collect();
        ids.iter().filter_map(|id| inflight.remove(id)).collect()
    };
    for pending in failed {
        match pending {
            Pending::Call(finish) => {
                release();
                if let Some(finish) = finish {
                    finish(Err(error.clone()));
                }
            }
            Pending::Stream {
                items,
                holds_permit,
            } => {
                if holds_permit {
                    release();
                }
                if let Some(items) = items.upgrade() {
                    items.push(Err(error.clone()));
                }
            }
        }
    }
}

pub(crate) fn outcome_result(outcome: Outcome, payload: Vec<u8>) -> Result<Vec<u8>, TaskError> {
    match outcome {
        Outcome::Ok => Ok(payload),
        Outcome::Panicked(message) => Err(TaskError::Panicked { message }),
        Outcome::Failed(message) => Err(TaskError::Transport { message }),
        Outcome::UnknownTask | Outcome::Mismatch { .. } => Err(TaskError::Transport {
            message: "the actor host refused the call".to_owned(),
        }),
    }
}
