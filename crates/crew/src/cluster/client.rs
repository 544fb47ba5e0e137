//! The submitting side of a [`Cluster`](super::Cluster): publishes tasks without waiting,
//! settles handles from the results stream, revokes cancelled tasks. See the design note in
//! the module above.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use tokio::sync::mpsc;

use super::connect;
use super::lead::Lead;
use super::options::{ClusterOptions, ResultPath};
use super::wire::{self, ResultHeader, TaskHeader};
use super::{ClusterError, ClusterStatus, DeadLetter, DeadLetterId, WorkerInfo};
use crate::error::{SubmitError, TaskError};
use crate::executor::Message;
use crate::task::{codec, pair_with, Driver, TaskHandle, TaskInfo, TaskOptions};

/// Headers of a dead letter.
pub(crate) const DEAD_SUBJECT: &str = "Crew-Subject";
pub(crate) const DEAD_TASK: &str = "Crew-Task";
pub(crate) const DEAD_TASK_ID: &str = "Crew-Task-Id";
pub(crate) const DEAD_DELIVERIES: &str = "Crew-Deliveries";
pub(crate) const DEAD_ERROR: &str = "Crew-Error";

/// How long [`Submitter::shutdown_for_drop`] waits without any task finishing before it checks
/// that a worker still serves.
const DROP_PATIENCE: Duration = Duration::from_secs(1);

/// A worker is taken for gone when its heartbeat did not change for this many of its
/// heartbeat intervals (plus [`DROP_PATIENCE`], the time between two looks).
const MISSED_HEARTBEATS: u32 = 3;

/// How long a server that does not answer is given before the pending tasks are given up.
const SERVER_SILENCE: Duration = Duration::from_secs(30);

/// Whether each worker still reports, judged by this process's clock alone (the workers'
/// clocks may differ from ours): a worker is alive until its heartbeat stayed the same for
/// [`MISSED_HEARTBEATS`] of its intervals since we first saw that heartbeat.
#[derive(Default)]
struct Liveness {
    /// By worker name: its last heartbeat seen, and when we first saw it.
    seen: HashMap<String, (SystemTime, Instant)>,
}

impl Liveness {
    /// Looks at the workers' latest heartbeats; true if any of them is alive.
    fn any_alive(&mut self, workers: &[WorkerInfo]) -> bool {
        let now = Instant::now();
        let mut alive = false;
        for worker in workers {
            let (last_seen, since) = self
                .seen
                .entry(worker.name.clone())
                .or_insert((worker.last_seen, now));
            if *last_seen != worker.last_seen {
                (*last_seen, *since) = (worker.last_seen, now);
            }
            let silence =
                Duration::from_millis(worker.heartbeat_ms) * MISSED_HEARTBEATS + DROP_PATIENCE;
            alive |= now.duration_since(*since) < silence;
        }
        alive
    }
}

/// Room left in a message for its header and NATS headers when deciding whether the payload
/// goes through the object store.
pub(crate) const HEADROOM: usize = 8 * 1024;

type Settle = Box<dyn FnOnce(Result<&[u8], TaskError>) + Send>;

struct Pending {
    task: &'static TaskInfo,
    settle: Option<Settle>,
    /// The task's sequence in the tasks stream, once the server acknowledged it.
    sequence: Option<u64>,
    /// Cancelled before its acknowledgement came: delete it when it comes.
    revoked: bool,
    /// The envelope holding it (its key in [`Shared::envelopes`]), once stored in one.
    envelope: Option<u64>,
}

/// Tasks stored together in one message (an envelope): what it takes to withdraw one of them.
struct Envelope {
    sequence: u64,
    subject: String,
    /// Each member's number and task message, to store the others again without it.
    members: Vec<(u64, Bytes)>,
    /// Members not settled yet: the entry goes when none is left.
    live: usize,
}

/// The most tasks in one envelope, and the most bytes of task messages: enough to divide the
/// server's work per task by tens, small enough that two workers share a burst.
const ENVELOPE_TASKS: usize = 64;
const ENVELOPE_BYTES: usize = 64 * 1024;

/// Tasks of a name go in envelopes only once one of them came back having run at most this
/// long (µs) on its worker: an envelope runs on one worker, and longer tasks must spread over
/// all of them (a burst of 64 such tasks keeps one worker busy 64 × this at most).
const ENVELOPE_RUN_LIMIT_US: u64 = 500;

enum Command {
    Publish(Outgoing),
    /// The payload is too large for a message: store it first.
    PublishLarge {
        outgoing: Outgoing,
        header: TaskHeader,
        payload: Vec<u8>,
    },
    Revoke(u64),
}

struct Outgoing {
    /// The task's number, or an envelope's key (from the same counter).
    id: u64,
    subject: String,
    bytes: Bytes,
    first_sent: Instant,
    /// May share an envelope with the tasks queued behind it: a small task on its first
    /// sending, without retries (a retry is a delayed negative acknowledgement of its message).
    batchable: bool,
    /// An envelope's tasks (number and task message); empty for one task.
    members: Vec<(u64, Bytes)>,
}

impl Outgoing {
    /// The `Nats-Msg-Id`: the task's, or the envelope's (whose key is never a task's number).
    fn message_id(&self, submitter: &str) -> String {
        if self.members.is_empty() {
            format!("{submitter}.{}", self.id)
        } else {
            format!("{submitter}.e{}", self.id)
        }
    }
}

pub(crate) struct Shared {
    options: ClusterOptions,
    handle: tokio::runtime::Handle,
    /// Who drives the runtime ([`Lead`]): woken whenever a task settles here.
    lead: Weak<Lead>,
    nats: async_nats::Client,
    js: jetstream::Context,
    tasks: stream::Stream,
    results: stream::Stream,
    submitter: String,
    results_subject: String,
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    /// Stored envelopes with members not settled yet, by key. Locked after `pending`.
    envelopes: Mutex<HashMap<u64, Envelope>>,
    /// By task name: whether its last run was brief enough for envelopes.
    brief: Mutex<HashMap<&'static str, bool>>,
    drained: Condvar,
    commands: mpsc::UnboundedSender<Command>,
    /// Tasks submitted since the publisher last took a command (a hint): a burst of them while
    /// nobody drives the runtime wakes the keeper.
    queued: std::sync::atomic::AtomicUsize,
    accepting: AtomicBool,
    max_payload: usize,
    bucket: tokio::sync::OnceCell<jetstream::object_store::ObjectStore>,
    /// Acknowledgement subjects of settled tasks, not sent yet: they leave with the next task's
    /// publish (one write) or after [`ACK_DELAY`], see [`Shared::defer_acks`].
    acks: Mutex<Vec<async_nats::Subject>>,
}

/// Tasks submitted while nobody takes them that make the keeper drive at once (see
/// [`Lead::hurry`]); one task at a time never does.
const BURST: usize = 16;

/// The longest a settled task's acknowledgement waits for a publish to travel with.
const ACK_DELAY: Duration = Duration::from_millis(1);

/// The submitter: the shared state and the runtime that drives it, which a caller blocked on
/// a handle drives itself (see "One task at a time" in the module's design note).
pub(crate) struct Submitter {
    shared: Arc<Shared>,
    lead: Arc<Lead>,
    /// Lent to every handle: its blocked waiter drives the runtime.
    driver: Driver,
    closed: AtomicBool,
}

impl Submitter {
    pub(crate) fn connect(options: ClusterOptions) -> Result<Submitter, ClusterError> {
        let (commands, receiver) = mpsc::unbounded_channel();
        let setup = move |lead: Weak<Lead>| async move {
            let nats = connect::connect(&options).await?;
            let js = connect::context(nats.clone(), &options);
            let (tasks, _consumer) = connect::setup(&js, &options).await?;
            let results = js.get_stream(options.results_stream()).await.map_err(|e| {
                ClusterError::JetStream {
                    message: format!("cannot open the results stream: {e}"),
                }
            })?;
            let submitter = super::server::random_hex(8);
            let results_subject = format!("{}.result.{submitter}", options.prefix);
            // Created before the first task, so no result can be missed.
            let reader = results
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: results_subject.clone(),
                    deliver_policy: consumer::DeliverPolicy::New,
                    ..Default::default()
                })
                .await
                .map_err(|e| ClusterError::JetStream {
                    message: format!("cannot create the results consumer: {e}"),
                })?
                .messages()
                .await
                .map_err(|e| ClusterError::JetStream {
                    message: format!("cannot read the results stream: {e}"),
                })?;
            // Subscribed before the first task too: a result sent before would find nobody
            // (and go to the results stream: never lost, only slower).
            let inbox = nats
                .subscribe(wire::inbox_subject(&options.prefix, &submitter))
                .await
                .map_err(|e| ClusterError::JetStream {
                    message: format!("cannot subscribe to the results inbox: {e}"),
                })?;
            let max_payload = nats.server_info().max_payload;
            let shared = Arc::new(Shared {
                options,
                handle: tokio::runtime::Handle::current(),
                lead,
                nats,
                js,
                tasks,
                results,
                submitter,
                results_subject,
                next: AtomicU64::new(1),
                pending: Mutex::new(HashMap::new()),
                envelopes: Mutex::new(HashMap::new()),
                brief: Mutex::new(HashMap::new()),
                drained: Condvar::new(),
                commands,
                queued: std::sync::atomic::AtomicUsize::new(0),
                accepting: AtomicBool::new(true),
                max_payload,
                bucket: tokio::sync::OnceCell::new(),
                acks: Mutex::new(Vec::new()),
            });
            tokio::spawn(publisher(shared.clone(), receiver));
            tokio::spawn(read_results(Arc::downgrade(&shared), reader));
            tokio::spawn(read_inbox(Arc::downgrade(&shared), inbox));
            Ok::<_, ClusterError>(shared)
        };
        let (lead, shared) = Lead::start("crew-cluster-io", setup, |message| ClusterError::Io {
            message,
        })?;
        let driven = Arc::downgrade(&lead);
        let driver: Driver = Arc::new(move |done, deadline| {
            if let Some(lead) = driven.upgrade() {
                lead.drive(done, deadline);
            }
        });
        Ok(Submitter {
            shared,
            lead,
            driver,
            closed: AtomicBool::new(false),
        })
    }

    /// The connection, JetStream context and runtime, for the remote actor placement.
    pub(crate) fn link(
        &self,
    ) -> (
        async_nats::Client,
        jetstream::Context,
        tokio::runtime::Handle,
    ) {
        (
            self.shared.nats.clone(),
            self.shared.js.clone(),
            self.lead.handle().clone(),
        )
    }

    pub(crate) fn options(&self) -> &ClusterOptions {
        &self.shared.options
    }

    /// Queues `f(arg)` (or `f` over a chunk of arguments); never waits for the server.
    pub(crate) fn submit<F: 'static, A: Serialize + ?Sized, T: Message>(
        &self,
        f: &F,
        arg: &A,
        chunk: bool,
        options: TaskOptions,
    ) -> Result<TaskHandle<T>, SubmitError> {
        let shared = &self.shared;
        if !shared.accepting.load(Ordering::Acquire) {
            return Err(SubmitError::Shutdown);
        }
        let task = TaskInfo::of(f)?;
        let payload = codec::encode(arg).map_err(|message| SubmitError::Unsupported { message })?;
        let id = shared.next.fetch_add(1, Ordering::Relaxed);
        let (handle, completer) = pair_with::<T>(&options);
        handle.set_driver(self.driver.clone());
        let deadline_ms = completer.deadline().map(|deadline| {
            let left = deadline.saturating_duration_since(Instant::now());
            wire::now_ms() + left.as_millis() as u64
        });
        let header = TaskHeader {
            name: task.name().to_owned(),
            signature: task.signature(),
            chunk,
            submitter: shared.submitter.clone(),
            id,
            deadline_ms,
            retries: shared.options.retries,
            backoff_ms: shared.options.retry_backoff.as_millis() as u64,
            object: None,
            inbox: shared.options.results == ResultPath::Inbox,
        };
        let subject = format!(
            "{}.task.{}",
            shared.options.prefix,
            wire::subject_token(task.name())
        );
        let large = payload.len() + HEADROOM > shared.max_payload;
        let bytes = if large {
            Bytes::new()
        } else {
            Bytes::from(
                wire::frame(&header, &payload)
                    .map_err(|message| SubmitError::Unsupported { message })?,
            )
        };
        let weak = Arc::downgrade(shared);
        completer.on_cancel(move || {
            if let Some(shared) = weak.upgrade() {
                let _ = shared.commands.send(Command::Revoke(id));
            }
        });
        completer.expire_at_deadline();
        let settle: Settle = Box::new(move |result: Result<&[u8], TaskError>| {
            completer.complete(result.and_then(|bytes| {
                codec::decode::<T>(bytes).map_err(|message| TaskError::Transport { message })
            }));
        });
        shared.pending.lock().insert(
            id,
            Pending {
                task,
                settle: Some(settle),
                sequence: None,
                revoked: false,
                envelope: None,
            },
        );
        let outgoing = Outgoing {
            id,
            subject,
            bytes,
            first_sent: Instant::now(),
            // A task with a deadline travels alone: its expiry withdraws it, and withdrawing
            // an envelope's member stores the others again (and may run them twice).
            batchable: !large
                && header.retries == 0
                && header.deadline_ms.is_none()
                && payload.len() + HEADROOM <= ENVELOPE_BYTES
                && shared.brief.lock().get(task.name()) == Some(&true),
            members: Vec::new(),
        };
        let command = if large {
            Command::PublishLarge {
                outgoing,
                header,
                payload,
            }
        } else {
            Command::Publish(outgoing)
        };
        if shared.commands.send(command).is_err() {
            shared.fail(id, TaskError::Shutdown);
        } else if shared.queued.fetch_add(1, Ordering::AcqRel) + 1 == BURST {
            // Nobody may drive the runtime now (a caller that just stopped leading keeps the
            // keeper away for a while): a burst is published beside this thread, not after it.
            self.lead.hurry();
        }
        Ok(handle)
    }

    /// Stops accepting tasks; see [`Executor::shutdown`](crate::Executor::shutdown).
    pub(crate) fn shutdown(&self, wait: bool, cancel_pending: bool) {
        let shared = &self.shared;
        shared.accepting.store(false, Ordering::Release);
        if cancel_pending {
            let ids: Vec<u64> = shared.pending.lock().keys().copied().collect();
            for id in ids {
                let _ = shared.commands.send(Command::Revoke(id));
            }
        }
        // Waiting on the cluster's own I/O thread (a done-callback) would wait forever.
        if wait && tokio::runtime::Handle::try_current().is_err() {
            let mut pending = shared.pending.lock();
            while !pending.is_empty() {
                shared.drained.wait(&mut pending);
            }
        }
    }

    /// Flushes and stops the runtime. Tasks still pending settle as `Shutdown`/`Cancelled`.
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.shared.clone();
        let nats = self.shared.nats.clone();
        let results = self.shared.results.clone();
        let subject = self.shared.results_subject.clone();
        let flush = async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                shared.send_acks().await;
                let _ = results.purge().filter(subject).await;
                // Again: a result that came during the purge had its acknowledgement deferred.
                shared.send_acks().await;
                let _ = nats.flush().await;
            })
            .await;
        };
        // The acknowledgements deferred in `Shared::defer_acks` must leave before the runtime
        // stops, or their tasks run again after `ack_wait` (`Lead::close_after`: also where
        // the last handle of a cluster is dropped in a done-callback or another runtime's
        // task). Tasks still pending then settle: their completers go with them.
        let pending = self.shared.clone();
        self.lead.close_after(flush, move || {
            let orphans: Vec<Pending> = pending.pending.lock().drain().map(|(_, p)| p).collect();
            drop(orphans);
        });
    }

    /// Runs the JetStream request that `make` makes and waits for it, from any thread: a
    /// plain thread, another runtime's task, or a done-callback running on a thread that
    /// drives this cluster's runtime (which cannot wait for its own runtime: the request goes
    /// over a connection of its own, on a thread of its own).
    fn block_on<T, F>(
        &self,
        make: impl FnOnce(jetstream::Context, ClusterOptions) -> F + Send,
    ) -> Result<T, ClusterError>
    where
        T: Send,
        F: std::future::Future<Output = Result<T, ClusterError>> + Send,
    {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let handle = &self.shared.handle;
        let (js, options) = (self.shared.js.clone(), self.shared.options.clone());
        if self.lead.driven_here() {
            return std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| ClusterError::Io {
                                message: format!("cannot start a runtime for the request: {e}"),
                            })?;
                        runtime.block_on(async {
                            let nats = connect::connect(&options).await?;
                            let js = connect::context(nats, &options);
                            make(js, options).await
                        })
                    })
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            });
        }
        let future = make(js, options);
        match Handle::try_current() {
            // The keeper (or a blocked caller) drives the runtime's I/O meanwhile.
            Err(_) => handle.block_on(future),
            // Another runtime's thread: it may not block without saying so.
            Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(future))
            }
            // A single-threaded runtime cannot lend its thread: wait on a thread of our own.
            Ok(_) => std::thread::scope(|scope| {
                scope
                    .spawn(|| handle.block_on(future))
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }),
        }
    }

    /// What dropping the cluster waits for: every pending task, as `shutdown(wait = true)`,
    /// but only while some worker serves the deployment. When no task finished for
    /// [`DROP_PATIENCE`] and no worker is alive (no new heartbeat for [`MISSED_HEARTBEATS`]
    /// of its intervals), waiting could last forever: the pending tasks are
    /// cancelled instead (removed from the queue, their handles settle as `Cancelled`), and
    /// that is said on stderr.
    pub(crate) fn shutdown_for_drop(&self) {
        let shared = &self.shared;
        shared.accepting.store(false, Ordering::Release);
        if tokio::runtime::Handle::try_current().is_ok() {
            return; // on the cluster's own I/O thread: waiting would wait forever
        }
        let mut unreachable_since: Option<Instant> = None;
        let mut liveness = Liveness::default();
        let mut pending = shared.pending.lock();
        let mut left = pending.len();
        while !pending.is_empty() {
            shared.drained.wait_for(&mut pending, DROP_PATIENCE);
            if pending.is_empty() || pending.len() < left {
                left = pending.len();
                continue;
            }
            drop(pending);
            let serving = match self.status() {
                Ok(status) => {
                    unreachable_since = None;
                    // Not `in_flight`: a task held by a killed worker stays counted there
                    // until some worker pulls again, which would make this wait forever.
                    liveness.any_alive(&status.workers)
                }
                // The server is away (restarting?): give it time to come back.
                Err(_) => {
                    unreachable_since.get_or_insert_with(Instant::now).elapsed() < SERVER_SILENCE
                }
            };
            pending = shared.pending.lock();
            if serving {
                continue;
            }
            let ids: Vec<u64> = pending.keys().copied().collect();
            drop(pending);
            eprintln!(
                "crew: dropping a Cluster with {} pending task(s) and no worker serving {}: \
                 they are cancelled",
                ids.len(),
                shared.options.url_for_display()
            );
            for id in ids {
                let _ = shared.commands.send(Command::Revoke(id));
            }
            // Let the revocations reach the server (each removes its task from the queue).
            let deadline = Instant::now() + Duration::from_secs(2);
            pending = shared.pending.lock();
            while !pending.is_empty() && Instant::now() < deadline {
                shared.drained.wait_until(&mut pending, deadline);
            }
            return;
        }
    }

    pub(crate) fn status(&self) -> Result<ClusterStatus, ClusterError> {
        self.block_on(|js, options| async move { status(&js, &options).await })
    }

    pub(crate) fn dead_letters(&self) -> Result<Vec<DeadLetter>, ClusterError> {
        self.block_on(|js, options| async move { dead_letters(&js, &options).await })
    }

    pub(crate) fn requeue(&self, id: DeadLetterId) -> Result<(), ClusterError> {
        self.block_on(|js, options| async move { requeue(&js, &options, id).await })
    }
}

impl Drop for Submitter {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// Acknowledges these settled tasks soon, not now: a caller driving the runtime returns
    /// as soon as its task settled, before the connection writes anything more (a write to a
    /// loopback socket costs tens of µs: the receiver's side runs in it), and the
    /// acknowledgements leave with the next task's publish, in the same write, or after
    /// [`ACK_DELAY`] when no publish comes (the keeper drives then; a keeper sleeping out its
    /// grace may make that a few ms). A task acknowledged a few milliseconds later loses
    /// nothing: unacknowledged, it is delivered again only after `ack_wait`, and a result
    /// that arrives twice is dropped by number. [`Submitter::close`] sends the ones still
    /// waiting before the runtime stops, wherever the last handle is dropped.
    fn defer_acks(self: &Arc<Self>, acks: Vec<String>) {
        if acks.is_empty() {
            return;
        }
        let first = {
            let mut waiting = self.acks.lock();
            let first = waiting.is_empty();
            waiting.extend(acks.into_iter().map(async_nats::Subject::from));
            first
        };
        if first {
            let shared = self.clone();
            self.handle.spawn(async move {
                tokio::time::sleep(ACK_DELAY).await;
                shared.send_acks().await;
            });
        }
    }

    /// Sends the deferred acknowledgements (see [`defer_acks`](Self::defer_acks)).
    async fn send_acks(&self) {
        const ACK: Bytes = Bytes::from_static(b"+ACK");
        let acks = std::mem::take(&mut *self.acks.lock());
        for ack in acks {
            let _ = self.nats.publish(ack, ACK).await;
        }
    }

    /// Tells a caller driving the runtime that a task settled (perhaps its own).
    fn wake_leader(&self) {
        if let Some(lead) = self.lead.upgrade() {
            lead.wake_leader();
        }
    }

    /// Removes a pending task, waking `shutdown(wait)` when none is left.
    fn take(&self, id: u64) -> Option<Pending> {
        let mut pending = self.pending.lock();
        self.remove_locked(&mut pending, id)
    }

    /// Removes a pending task under the caller's lock, counting it out of its envelope and
    /// waking `shutdown(wait)` when none is left.
    fn remove_locked(&self, pending: &mut HashMap<u64, Pending>, id: u64) -> Option<Pending> {
        let taken = pending.remove(&id);
        if let Some(key) = taken.as_ref().and_then(|entry| entry.envelope) {
            let mut envelopes = self.envelopes.lock();
            if let Some(envelope) = envelopes.get_mut(&key) {
                envelope.live = envelope.live.saturating_sub(1);
                if envelope.live == 0 {
                    envelopes.remove(&key);
                }
            }
        }
        if pending.is_empty() {
            self.drained.notify_all();
        }
        taken
    }

    fn fail(&self, id: u64, error: TaskError) {
        if let Some(mut pending) = self.take(id) {
            if let Some(settle) = pending.settle.take() {
                settle(Err(error));
            }
        }
    }

    async fn bucket(&self) -> Result<&jetstream::object_store::ObjectStore, ClusterError> {
        self.bucket
            .get_or_try_init(|| connect::bucket(&self.js, &self.options))
            .await
    }

    /// Settles the task of a result message; returns the task's acknowledgement subject when
    /// the submitter is the one to acknowledge it (also for a duplicate or a cancelled task:
    /// unacknowledged, it would be delivered again).
    async fn settle(self: &Arc<Self>, payload: &[u8]) -> Option<String> {
        let Ok((mut header, start)) = wire::unframe::<ResultHeader>(payload) else {
            return None; // not ours to judge: a result for nobody
        };
        let ack = header.ack.take();
        let Some(mut pending) = self.take(header.id) else {
            return ack; // a duplicate result of a task run twice, or a cancelled task
        };
        let Some(settle) = pending.settle.take() else {
            return ack;
        };
        if let wire::Ending::Ran(_) = header.ending {
            self.brief
                .lock()
                .insert(pending.task.name(), header.micros <= ENVELOPE_RUN_LIMIT_US);
        }
        if !matches!(
            header.ending,
            wire::Ending::Ran(crate::task::protocol::Outcome::Ok)
        ) {
            settle(Err(header.error(Some(pending.task), pending.task.name())));
            return ack;
        }
        match &header.object {
            None => settle(Ok(&payload[start..])),
            Some(key) => match self.fetch(key).await {
                Ok(bytes) => settle(Ok(&bytes)),
                Err(message) => settle(Err(TaskError::Transport { message })),
            },
        }
        ack
    }

    async fn fetch(&self, key: &str) -> Result<Vec<u8>, String> {
        let bucket = self.bucket().await.map_err(|e| e.to_string())?;
        let bytes = read_object(bucket, key).await?;
        let _ = bucket.delete(key).await;
        Ok(bytes)
    }
}

/// Reads a whole object from the store.
pub(crate) async fn read_object(
    bucket: &jetstream::object_store::ObjectStore,
    key: &str,
) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt;
    let mut object = bucket
        .get(key)
        .await
        .map_err(|e| format!("cannot fetch the payload {key} from the object store: {e}"))?;
    let mut bytes = Vec::with_capacity(object.info().size);
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| format!("cannot read the payload {key} from the object store: {e}"))?;
    Ok(bytes)
}

/// Stores `bytes` in the object store under `key`.
pub(crate) async fn write_object(
    bucket: &jetstream::object_store::ObjectStore,
    key: &str,
    bytes: &[u8],
) -> Result<(), String> {
    let mut reader = bytes;
    bucket.put(key, &mut reader).await.map(|_| ()).map_err(|e| {
        format!(
            "cannot store a payload of {} bytes in the object store: {e}",
            bytes.len()
        )
    })
}

type AckFuture = BoxFuture<'static, (Outgoing, Result<u64, String>)>;

/// Publishes tasks, keeping their acknowledgements in flight; re-sends what failed; revokes.
/// Tasks queued together for one subject leave together, in an envelope.
async fn publisher(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut acks: FuturesUnordered<AckFuture> = FuturesUnordered::new();
    // A command taken from the queue while gathering an envelope, not part of it.
    let mut next: Option<Command> = None;
    loop {
        let command = match next.take() {
            Some(command) => command,
            None => tokio::select! {
                biased;
                Some((outgoing, result)) = acks.next(), if !acks.is_empty() => {
                    acknowledged(&shared, outgoing, result);
                    shared.wake_leader();
                    continue;
                }
                command = commands.recv() => match command {
                    Some(command) => command,
                    None => break,
                },
            },
        };
        // The runtime runs: the submissions since it last did are being taken.
        shared.queued.store(0, Ordering::Release);
        match command {
            Command::Publish(outgoing) => {
                let outgoing = if outgoing.batchable {
                    gather(&shared, outgoing, &mut commands, &mut next)
                } else {
                    outgoing
                };
                if let Some(ack) = publish(&shared, outgoing).await {
                    acks.push(ack);
                }
            }
            Command::PublishLarge {
                outgoing,
                header,
                payload,
            } => {
                let shared = shared.clone();
                tokio::spawn(async move { publish_large(shared, outgoing, header, payload).await });
            }
            Command::Revoke(id) => revoke(&shared, id).await,
        }
        // A cancel or a deadline settled a handle on another thread (its hook sent the
        // revocation), or a publish failed for good: its leader, if any, looks again.
        shared.wake_leader();
    }
}

/// `first` and the tasks queued right behind it for the same subject, as one envelope (or
/// `first` alone when nothing else waits: one task at a time travels as it always did).
fn gather(
    shared: &Shared,
    first: Outgoing,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    next: &mut Option<Command>,
) -> Outgoing {
    let limit = ENVELOPE_BYTES.min(shared.max_payload.saturating_sub(HEADROOM));
    let mut size = 4 + first.bytes.len();
    let mut members = vec![first];
    while members.len() < ENVELOPE_TASKS {
        match commands.try_recv() {
            Ok(Command::Publish(outgoing))
                if outgoing.batchable
                    && outgoing.subject == members[0].subject
                    && size + 4 + outgoing.bytes.len() <= limit =>
            {
                size += 4 + outgoing.bytes.len();
                members.push(outgoing);
            }
            Ok(other) => {
                *next = Some(other);
                break;
            }
            Err(_) => break,
        }
    }
    if members.len() == 1 {
        return members.pop().expect("one member");
    }
    let subject = members[0].subject.clone();
    let members = members
        .into_iter()
        .map(|outgoing| (outgoing.id, outgoing.bytes))
        .collect();
    envelope_of(shared, subject, members)
}

/// A new envelope of these tasks, under a fresh key (so a set of tasks stored again after a
/// withdrawal is never taken for a duplicate of the envelope it left).
fn envelope_of(shared: &Shared, subject: String, members: Vec<(u64, Bytes)>) -> Outgoing {
    let bytes = wire::envelope(members.iter().map(|(_, frame)| &frame[..]));
    Outgoing {
        id: shared.next.fetch_add(1, Ordering::Relaxed),
        subject,
        bytes: Bytes::from(bytes),
        first_sent: Instant::now(),
        batchable: false,
        members,
    }
}

async fn publish(shared: &Arc<Shared>, outgoing: Outgoing) -> Option<AckFuture> {
    // Acknowledgements waiting for a ride: queued first, they share the task's write.
    shared.send_acks().await;
    let message = jetstream::message::PublishMessage::build()
        .payload(outgoing.bytes.clone())
        .message_id(outgoing.message_id(&shared.submitter));
    match shared
        .js
        .send_publish(outgoing.subject.clone(), message)
        .await
    {
        Ok(ack) => Some(
            async move {
                let result = ack.await.map(|ack| ack.sequence).map_err(|e| e.to_string());
                (outgoing, result)
            }
            .boxed(),
        ),
        Err(error) => {
            acknowledged(shared, outgoing, Err(error.to_string()));
            None
        }
    }
}

async fn publish_large(
    shared: Arc<Shared>,
    mut outgoing: Outgoing,
    mut header: TaskHeader,
    payload: Vec<u8>,
) {
    let key = format!("t.{}.{}", shared.submitter, outgoing.id);
    let stored = match shared.bucket().await {
        Ok(bucket) => write_object(bucket, &key, &payload).await,
        Err(error) => Err(error.to_string()),
    };
    if let Err(message) = stored {
        shared.fail(outgoing.id, TaskError::Transport { message });
        shared.wake_leader();
        return;
    }
    header.object = Some(key);
    match wire::frame(&header, &[]) {
        Ok(bytes) => {
            outgoing.bytes = Bytes::from(bytes);
            let _ = shared.commands.send(Command::Publish(outgoing));
        }
        Err(message) => {
            shared.fail(outgoing.id, TaskError::Transport { message });
            shared.wake_leader();
        }
    }
}

/// A publish acknowledgement (or its failure) arrived.
fn acknowledged(shared: &Arc<Shared>, outgoing: Outgoing, result: Result<u64, String>) {
    match result {
        Ok(sequence) if !outgoing.members.is_empty() => stored_envelope(shared, outgoing, sequence),
        Ok(sequence) => {
            let mut pending = shared.pending.lock();
            let Some(entry) = pending.get_mut(&outgoing.id) else {
                return;
            };
            if entry.revoked {
                shared.remove_locked(&mut pending, outgoing.id);
                drop(pending);
                delete_task(shared, sequence);
            } else {
                entry.sequence = Some(sequence);
            }
        }
        Err(error) => {
            let ids: Vec<u64> = if outgoing.members.is_empty() {
                vec![outgoing.id]
            } else {
                outgoing.members.iter().map(|(id, _)| *id).collect()
            };
            let revoked = {
                let pending = shared.pending.lock();
                ids.iter()
                    .all(|id| pending.get(id).is_none_or(|entry| entry.revoked))
            };
            if revoked {
                for id in ids {
                    shared.take(id);
                }
                return;
            }
            // Re-sent with the same id, the server stores it once, within the duplicate window.
            let window = shared
                .options
                .duplicate_window
                .saturating_sub(Duration::from_secs(5));
            if outgoing.first_sent.elapsed() > window {
                for id in ids {
                    shared.fail(
                        id,
                        TaskError::Transport {
                            message: format!(
                                "the server did not accept the task for {:?} (last error: {error})",
                                outgoing.first_sent.elapsed()
                            ),
                        },
                    );
                }
                return;
            }
            let commands = shared.commands.clone();
            shared.handle.spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = commands.send(Command::Publish(outgoing));
            });
        }
    }
}

/// An envelope is stored: its members learn where. Members cancelled before this moment are
/// withdrawn now (the envelope deleted, the others stored again without them).
fn stored_envelope(shared: &Arc<Shared>, outgoing: Outgoing, sequence: u64) {
    let mut pending = shared.pending.lock();
    let mut live = Vec::with_capacity(outgoing.members.len());
    let mut withdrawn = false;
    for (id, frame) in outgoing.members {
        match pending.get_mut(&id) {
            None => {} // settled already: its result came before this acknowledgement
            Some(entry) if entry.revoked => {
                shared.remove_locked(&mut pending, id);
                withdrawn = true;
            }
            Some(entry) => {
                entry.sequence = Some(sequence);
                entry.envelope = Some(outgoing.id);
                live.push((id, frame));
            }
        }
    }
    if withdrawn {
        for (id, _) in &live {
            if let Some(entry) = pending.get_mut(id) {
                (entry.sequence, entry.envelope) = (None, None);
            }
        }
        drop(pending);
        replace_envelope(shared, sequence, outgoing.subject, live);
        return;
    }
    if !live.is_empty() {
        let count = live.len();
        shared.envelopes.lock().insert(
            outgoing.id,
            Envelope {
                sequence,
                subject: outgoing.subject,
                members: live,
                live: count,
            },
        );
    }
}

/// Deletes a stored envelope and stores `others` (its members still wanted) again in a new
/// one. A worker that holds the deleted envelope already may run them too: at least once,
/// and the duplicate results are dropped by number.
fn replace_envelope(
    shared: &Arc<Shared>,
    sequence: u64,
    subject: String,
    others: Vec<(u64, Bytes)>,
) -> tokio::task::JoinHandle<()> {
    let shared = shared.clone();
    shared.handle.clone().spawn(async move {
        // Deleted first: a member withdrawn before its delivery never runs.
        let _ = shared.tasks.delete_message(sequence).await;
        if !others.is_empty() {
            let outgoing = envelope_of(&shared, subject, others);
            let _ = shared.commands.send(Command::Publish(outgoing));
        }
    })
}

/// Withdraws task `id` from the stored envelope `key`: the envelope is deleted and its other
/// members still wanted are stored again (see [`replace_envelope`]).
fn withdraw(shared: &Arc<Shared>, key: u64, id: u64) -> Option<tokio::task::JoinHandle<()>> {
    let (sequence, subject, others) = {
        let mut pending = shared.pending.lock();
        let envelope = shared.envelopes.lock().remove(&key)?;
        let mut others = Vec::with_capacity(envelope.members.len());
        for (member, frame) in envelope.members {
            if member == id {
                continue;
            }
            if let Some(entry) = pending.get_mut(&member) {
                if entry.settle.is_some() && !entry.revoked {
                    (entry.sequence, entry.envelope) = (None, None);
                    others.push((member, frame));
                } else {
                    entry.envelope = None;
                }
            }
        }
        if let Some(entry) = pending.get_mut(&id) {
            entry.envelope = None;
        }
        (envelope.sequence, envelope.subject, others)
    };
    Some(replace_envelope(shared, sequence, subject, others))
}

/// A cancelled (or expired) task: drop it from the stream, tell a worker running it to stop.
async fn revoke(shared: &Arc<Shared>, id: u64) {
    let (settle, sequence, envelope) = {
        let mut pending = shared.pending.lock();
        let Some(entry) = pending.get_mut(&id) else {
            return;
        };
        let settle = entry.settle.take();
        let sequence = entry.sequence;
        let envelope = entry.envelope;
        if sequence.is_none() {
            entry.revoked = true; // deleted when its acknowledgement comes
        } else if settle.is_none() && envelope.is_none() {
            shared.remove_locked(&mut pending, id);
        }
        (settle, sequence, envelope)
    };
    // A member of a stored envelope leaves it (the envelope is stored again without it).
    let withdrawn = envelope.and_then(|key| withdraw(shared, key, id));
    if envelope.is_some() && settle.is_none() {
        shared.take(id);
    }
    let notice = postcard::to_stdvec(&(&shared.submitter, id)).ok();
    let subject = format!("{}.cancel", shared.options.prefix);
    let Some(settle) = settle else {
        // Settled already by cancel() or the deadline.
        if let (Some(sequence), None) = (sequence, envelope) {
            delete_task(shared, sequence);
        }
        if let Some(notice) = notice {
            let _ = shared.nats.publish(subject, Bytes::from(notice)).await;
        }
        return;
    };
    // shutdown(cancel_pending), or a drop that gives up: the handle settles only once the
    // server was told, so a program that exits as soon as its handles settle (`crew run`
    // after Ctrl-C) leaves no task queued or running behind it.
    let shared = shared.clone();
    shared.handle.clone().spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            match (withdrawn, sequence) {
                (Some(withdrawn), _) => {
                    let _ = withdrawn.await;
                }
                (None, Some(sequence)) if envelope.is_none() => {
                    let _ = shared.tasks.delete_message(sequence).await;
                }
                _ => {}
            }
            if let Some(notice) = notice {
                let _ = shared.nats.publish(subject, Bytes::from(notice)).await;
            }
            let _ = shared.nats.flush().await;
        })
        .await;
        if sequence.is_some() {
            shared.take(id);
        }
        settle(Err(TaskError::Cancelled));
        shared.wake_leader();
    });
}

fn delete_task(shared: &Arc<Shared>, sequence: u64) {
    let tasks = shared.tasks.clone();
    shared.handle.spawn(async move {
        // Not found: already delivered and acknowledged, or deleted.
        let _ = tasks.delete_message(sequence).await;
    });
}

/// Settles the results sent to this submitter's inbox. A batch of unconfirmed results (a
/// message without a reply subject) carries each task's acknowledgement subject: the task is
/// acknowledged here, once settled. A result sent as a request (a redelivered task) is
/// confirmed to its worker once settled, and the worker acknowledges it.
async fn read_inbox(shared: Weak<Shared>, mut inbox: async_nats::Subscriber) {
    while let Some(message) = inbox.next().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match message.reply {
            Some(reply) => {
                shared.settle(&message.payload).await;
                let _ = shared.nats.publish(reply, Bytes::new()).await;
            }
            None => {
                let mut acks = Vec::new();
                for result in wire::batch_items(&message.payload) {
                    if let Some(ack) = shared.settle(result).await {
                        acks.push(ack);
                    }
                }
                shared.defer_acks(acks);
            }
        }
        shared.wake_leader();
    }
}

/// Reads this submitter's results and purges what it read, about once a second.
async fn read_results(shared: Weak<Shared>, mut reader: consumer::pull::Ordered) {
    let mut last = 0u64;
    let mut purged = 0u64;
    let mut last_purge = Instant::now();
    while let Some(message) = reader.next().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Ok(message) = message else {
            continue; // the ordered consumer recreates itself
        };
        if let Ok(info) = message.info() {
            last = last.max(info.stream_sequence);
        }
        shared.settle(&message.payload).await;
        shared.wake_leader();
        if last > purged && last_purge.elapsed() > Duration::from_secs(1) {
            purged = last;
            last_purge = Instant::now();
            let results = shared.results.clone();
            let subject = shared.results_subject.clone();
            tokio::spawn(async move {
                let _ = results.purge().filter(subject).sequence(last + 1).await;
            });
        }
    }
}

fn js_error(what: &str, error: impl std::fmt::Display) -> ClusterError {
    ClusterError::JetStream {
        message: format!("{what}: {error}"),
    }
}

pub(crate) async fn status(
    js: &jetstream::Context,
    options: &ClusterOptions,
) -> Result<ClusterStatus, ClusterError> {
    let tasks = js.get_stream(options.tasks_stream()).await.map_err(|e| {
        js_error(
            "cannot open the tasks stream (has any worker or submitter connected?)",
            e,
        )
    })?;
    let info = tasks
        .consumer_info(options.consumer())
        .await
        .map_err(|e| js_error("cannot read the workers' consumer", e))?;
    let mut dead = js
        .get_stream(options.dead_stream())
        .await
        .map_err(|e| js_error("cannot open the dead-letter stream", e))?;
    let dead_letters = dead
        .info()
        .await
        .map_err(|e| js_error("cannot read the dead-letter stream", e))?
        .state
        .messages;
    let mut workers = Vec::new();
    if let Ok(bucket) = connect::workers_bucket(js, options).await {
        if let Ok(mut keys) = bucket.keys().await {
            while let Some(Ok(key)) = keys.next().await {
                if let Ok(Some(value)) = bucket.get(&key).await {
                    if let Ok(worker) = postcard::from_bytes::<WorkerInfo>(&value) {
                        workers.push(worker);
                    }
                }
            }
        }
    }
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ClusterStatus {
        workers,
        queue_depth: info.num_pending,
        in_flight: info.num_ack_pending as u64,
        redeliveries: info.num_redelivered as u64,
        dead_letters,
    })
}

fn header_text(headers: &async_nats::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|value| value.as_str().to_owned())
        .unwrap_or_default()
}

pub(crate) async fn dead_letters(
    js: &jetstream::Context,
    options: &ClusterOptions,
) -> Result<Vec<DeadLetter>, ClusterError> {
    let mut dead = js
        .get_stream(options.dead_stream())
        .await
        .map_err(|e| js_error("cannot open the dead-letter stream", e))?;
    let state = dead
        .info()
        .await
        .map_err(|e| js_error("cannot read the dead-letter stream", e))?
        .state
        .clone();
    let mut letters = Vec::new();
    if state.messages == 0 {
        return Ok(letters);
    }
    for sequence in state.first_sequence..=state.last_sequence {
        let Ok(message) = dead.get_raw_message(sequence).await else {
            continue; // deleted (requeued)
        };
        let nanos = message.time.unix_timestamp_nanos().max(0) as u64;
        letters.push(DeadLetter {
            id: DeadLetterId(sequence),
            task: header_text(&message.headers, DEAD_TASK),
            task_id: header_text(&message.headers, DEAD_TASK_ID),
            deliveries: header_text(&message.headers, DEAD_DELIVERIES)
                .parse()
                .unwrap_or(0),
            error: header_text(&message.headers, DEAD_ERROR),
            at: SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos),
        });
    }
    Ok(letters)
}

pub(crate) async fn requeue(
    js: &jetstream::Context,
    options: &ClusterOptions,
    id: DeadLetterId,
) -> Result<(), ClusterError> {
    let dead = js
        .get_stream(options.dead_stream())
        .await
        .map_err(|e| js_error("cannot open the dead-letter stream", e))?;
    let message = dead
        .get_raw_message(id.0)
        .await
        .map_err(|_| ClusterError::NotFound { id })?;
    let subject = header_text(&message.headers, DEAD_SUBJECT);
    if subject.is_empty() {
        return Err(ClusterError::NotFound { id });
    }
    let task_id = header_text(&message.headers, DEAD_TASK_ID);
    let publish = jetstream::message::PublishMessage::build()
        .payload(message.payload.clone())
        .message_id(format!("{task_id}.requeue.{}", id.0));
    js.send_publish(subject, publish)
        .await
        .map_err(|e| js_error("cannot requeue the task", e))?
        .await
        .map_err(|e| js_error("the server did not accept the requeued task", e))?;
    dead.delete_message(id.0)
        .await
        .map_err(|e| js_error("requeued, but cannot remove the dead letter", e))?;
    Ok(())
}
