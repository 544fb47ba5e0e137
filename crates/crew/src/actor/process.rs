//! The process placement: an actor in a worker process of its own, restarted from its
//! constructor when the process dies.
//!
//! # Design note: the mailbox protocol
//!
//! **Start.** The parent starts a worker with the process pool's machinery (`Child::start`:
//! this executable again, `crew::init()`, the worker handshake) and sends it one ordinary task
//! call, `crew::actor::host`, whose argument names the actor type, its method-table signature,
//! its constructor arguments and a Linux abstract socket the parent listens on. The host task
//! connects there (the parent accepts only the worker's pid, by `SO_PEERCRED`), builds the
//! actor, runs its start hook and answers `Ready` or `StartFailed`; then it serves the actor on
//! that connection until told to stop. The worker's own socket stays open and silent: the
//! worker's watchdog ends it when the parent goes, as for any pool worker. Nothing in the
//! process pool's protocol changed; the actor's traffic has its own socket and frames.
//!
//! **Frames.** The task layer's codec: a [`ToActor`] / [`FromActor`] header and an opaque
//! payload (the argument tuple, a result, a stream item). Calls carry an id, answered by a
//! `Reply` with the task layer's `Outcome`. The worker runs calls in order on its one thread
//! (several threads for `instances`/`max_concurrency`, through the thread placement's mailbox).
//!
//! **Bound.** The mailbox bound is a semaphore at the caller: a permit per call queued or in
//! flight, returned when its reply arrives, so the worker never holds more than the bound and
//! nothing (`tell` included: it is answered too) bypasses it. An async call takes its permit
//! without blocking (`try_acquire`, else it waits in the `room`, woken when a reply returns a
//! permit). A stream holds its permit until
//! the method returned its iterator; its items then flow under a credit window (see
//! [`stream`](super::stream)).
//!
//! **Reading replies: a waiting caller leads.** A reply read by a reader thread costs a third
//! thread wake-up (worker → reader → caller). So a caller blocked on a call's handle (`result`,
//! `wait`: the handle's driver) reads the socket itself while it waits: it takes the *read
//! side* (the read half and its frame buffer, behind a mutex), reads and dispatches frames
//! (completing other callers' handles on the way) until its own handle is done or its
//! deadline passes, then dispatches whatever is complete in the buffer and hands the read side
//! back. One caller leads at a time (`leading`); the others wait on their handles as before.
//! The reader thread is the fallback for everything nobody blocks on (async waiters,
//! callbacks, streams, tells, a second caller): it waits in an `epoll` set on the socket
//! *without* the read side, then takes it and dispatches what is there now. While a caller
//! leads, it turns the socket's watch down to hang-up only (`epoll_ctl`, which the kernel
//! applies to the sleeping reader without waking it; the process pool's slots do the same):
//! before that change every reply a leader read also woke the reader thread, which then
//! waited for the read side and found nothing, a third thread on the CPU per call. Frames
//! cannot be stranded: the leader drains the buffer before it leaves and then restores the
//! watch, and the set is level-triggered, so bytes still in the socket wake the reader at
//! once. A failed read marks the read side `broken`; only the reader thread handles the death
//! (below), then installs the new read half.
//!
//! **Death.** The parent's reader thread sees the actor socket end. It takes the connection
//! (callers wanting to send now wait), kills and reaps the worker, fails every call in flight
//! with `WorkerDied` (exit status included) and every open stream likewise, and, unless the
//! actor was killed or stopped or used up `max_restarts`, starts a new worker from the same
//! constructor arguments; the callers waiting then send to it. Past `max_restarts` the actor is
//! stopped and unregistered; calls fail with `Stopped`.
//!
//! **Remote placement.** The cluster transport (`remote.rs`) reuses exactly this: the host
//! (`start_instances`, `serve_host`, `HostConn` over another writer), the same frames, the same
//! permit-based bound at the caller (`caller.rs`: `reply_slot`, `settle_frame`, `fail_pending`), with a NATS
//! subject per address + uid instead of a socket and a key-value registry answering `NotFound`
//! / `DuplicateUid` for its addresses.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use rustix::event::PollFlags;
use serde::{Deserialize, Serialize};

use crate::actor::caller::{fail_pending, settle_frame, Inflight, Pending, Transport};
use crate::actor::ending::{Ending, Request};
use crate::actor::local::{construct, Envelope, Instance, Job, Local};
use crate::actor::registry::Reservation;
use crate::actor::room::CallerBound;
use crate::actor::stream::WINDOW;
use crate::actor::{Actor, ActorError, ActorOptions, EncodedItems, MethodCall, Mode};
use crate::error::{panic_message, TaskError, WorkerId};
use crate::process::child::{Child, ChildOptions};
use crate::sys::socket::Poller;
use crate::sys::spin::Spin;
use crate::sys::supervise::Supervised;
use crate::task::codec::{self, write_frame, FrameReader, ReadError};
use crate::task::protocol::{Outcome, ToParent, ToWorker};
use crate::task::{signature_hash, Driver, TaskEntry, TaskHandle, TaskInfo, CREW_VERSION};

/// The task that hosts an actor in a worker.
const HOST_TASK: &str = "crew::actor::host";
/// How long a new worker may take to connect and start the actor.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Parent → actor host.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToActor {
    /// Call method `method` on the payload (the argument tuple); `Reply` with `id`.
    Call { id: u64, method: u32 },
    /// Call streaming method `method`; `Reply` when it returned, then `Item`s and `End`.
    Stream { id: u64, method: u32 },
    /// The caller consumed `items` more items of stream `id`.
    Credit { id: u64, items: u32 },
    /// The caller dropped stream `id`.
    Cancel { id: u64 },
    /// Run the queued calls, the stop hook, answer `Stopped` and end.
    Stop,
    /// End now: no hook, the queued calls are dropped (the remote placement's `kill`; a
    /// process actor is killed with its process instead).
    Kill,
}

/// Actor host → parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromActor {
    /// The actor was built and started.
    Ready { pid: u32 },
    /// The constructor or start hook failed (or the worker's actor differs).
    StartFailed { message: String },
    /// Call `id` ended; with `Outcome::Ok` the payload is its result.
    Reply { id: u64, outcome: Outcome },
    /// One item of stream `id` (the payload).
    Item { id: u64 },
    /// Stream `id` ended: `Ok` after its last item, or how it failed.
    End { id: u64, outcome: Outcome },
    /// The stop hook ran; the host ends.
    Stopped,
}

/// What the host task gets (and, in a cluster worker, the remote placement's host).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HostArgs {
    pub(crate) socket: String,
    pub(crate) actor: String,
    pub(crate) signature: u64,
    pub(crate) uid: String,
    pub(crate) args: Vec<u8>,
    pub(crate) instances: usize,
    pub(crate) max_concurrency: usize,
    pub(crate) mailbox: usize,
}

/// Where an actor host gets its calls and sends its answers. Not a public API.
#[doc(hidden)]
#[derive(Debug)]
pub enum HostTransport {
    /// The parent's socket (the process placement).
    Socket(UnixStream),
    /// NATS messages in a cluster worker (the remote placement).
    #[cfg(feature = "cluster")]
    Nats(Box<super::remote::NatsHost>),
}

/// One `#[crew::actor]` type that worker processes can host. Built by the macro.
#[derive(Debug)]
pub struct ActorEntry {
    /// [`Actor::NAME`].
    pub name: &'static str,
    /// Serves the actor on a transport: [`host_actor`] for the type.
    pub host: fn(&[u8], HostTransport) -> Result<(), String>,
}

inventory::collect!(ActorEntry);

struct HostTask;

fn host_task_call(input: &[u8]) -> Result<Vec<u8>, String> {
    let args: HostArgs = codec::decode(input)?;
    let entry = inventory::iter::<ActorEntry>
        .into_iter()
        .find(|entry| entry.name == args.actor)
        .ok_or_else(|| {
            format!(
                "this worker has no actor `{}`: mark its impl block #[crew::actor] in the \
                 worker's program",
                args.actor
            )
        })?;
    let address = SocketAddr::from_abstract_name(args.socket.as_bytes())
        .map_err(|error| format!("bad actor socket name: {error}"))?;
    let stream = UnixStream::connect_addr(&address)
        .map_err(|error| format!("cannot connect to the parent's actor socket: {error}"))?;
    (entry.host)(input, HostTransport::Socket(stream))?;
    codec::encode(&())
}

fn host_type_id() -> std::any::TypeId {
    std::any::TypeId::of::<HostTask>()
}

inventory::submit! {
    TaskEntry {
        name: HOST_TASK,
        type_id: host_type_id,
        argument: std::any::type_name::<Vec<u8>>,
        result: std::any::type_name::<()>,
        call: host_task_call,
        call_chunk: |_| Err("the actor host takes no chunks".to_owned()),
    }
}

/// The signature of an actor type: its name and every method's name and types.
pub(crate) fn actor_signature<A: Actor>() -> u64 {
    let mut arguments = String::new();
    let mut results = String::new();
    for method in A::methods() {
        arguments.push_str(method.name);
        arguments.push('(');
        arguments.push_str((method.argument)());
        arguments.push_str(");");
        results.push_str((method.result)());
        results.push(';');
    }
    signature_hash(A::NAME, &arguments, &results, CREW_VERSION)
}

// ---------------------------------------------------------------------------------------------
// The worker side.

/// The longest panic or failure message a host sends whole. A message is for people, and a
/// frame's header travels whole: a cluster caller's reader follows headers of up to 64 KiB
/// only, and every byte of it counts against the NATS message limit.
const MAX_OUTCOME_MESSAGE: usize = 16 * 1024;

/// `header` with its panic or failure message cut to [`MAX_OUTCOME_MESSAGE`] (at a character
/// boundary, saying how much was cut), if it is longer.
fn bounded_messages(header: &FromActor) -> Option<FromActor> {
    fn cut(message: &str) -> Option<String> {
        if message.len() <= MAX_OUTCOME_MESSAGE {
            return None;
        }
        let mut end = MAX_OUTCOME_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        Some(format!(
            "{}... ({} more bytes cut)",
            &message[..end],
            message.len() - end
        ))
    }
    let outcome = |outcome: &Outcome| match outcome {
        Outcome::Panicked(message) => cut(message).map(Outcome::Panicked),
        Outcome::Failed(message) => cut(message).map(Outcome::Failed),
        _ => None,
    };
    match header {
        FromActor::Reply { id, outcome: o } => {
            outcome(o).map(|outcome| FromActor::Reply { id: *id, outcome })
        }
        FromActor::End { id, outcome: o } => {
            outcome(o).map(|outcome| FromActor::End { id: *id, outcome })
        }
        FromActor::StartFailed { message } => {
            cut(message).map(|message| FromActor::StartFailed { message })
        }
        _ => None,
    }
}

/// The host's connection to one caller, shared by the threads that answer: the parent's
/// socket, or a caller's NATS inbox (each `send` flushes one frame to the writer).
pub(crate) struct HostConn {
    writer: Mutex<BufWriter<Box<dyn Write + Send>>>,
    streams: Mutex<HashMap<u64, HostStream>>,
    /// The largest result or stream item the transport carries (a NATS message's limit for a
    /// cluster actor): a larger one fails its call instead of breaking the connection.
    payload_limit: usize,
}

struct HostStream {
    items: EncodedItems,
    credit: u32,
}

impl HostConn {
    pub(crate) fn new(writer: Box<dyn Write + Send>) -> Self {
        Self {
            writer: Mutex::new(BufWriter::with_capacity(64 * 1024, writer)),
            streams: Mutex::new(HashMap::new()),
            payload_limit: usize::MAX,
        }
    }

    /// Fails results and items above `bytes` (see `payload_limit`).
    #[cfg(feature = "cluster")]
    pub(crate) fn with_payload_limit(mut self, bytes: usize) -> Self {
        self.payload_limit = bytes;
        self
    }

    /// Why a result or item of `bytes` cannot be sent, if it cannot.
    fn too_large(&self, bytes: usize) -> Option<String> {
        (bytes > self.payload_limit).then(|| {
            format!(
                "the result is {bytes} bytes, more than the {} bytes one message of the \
                 cluster's NATS server holds (its max_payload, less crew's framing); return a \
                 reference to the data instead (a path, an object-store key), or raise the \
                 server's max_payload",
                self.payload_limit
            )
        })
    }

    /// Whether a stream of this caller is open (its connection must stay).
    #[cfg(feature = "cluster")]
    pub(crate) fn has_streams(&self) -> bool {
        !self.streams.lock().is_empty()
    }

    /// Runs `f` while no frame is half written to this connection (each `send` writes and
    /// flushes its frame under the writer's lock).
    #[cfg(feature = "cluster")]
    pub(crate) fn between_frames<R>(&self, f: impl FnOnce() -> R) -> R {
        let _writer = self.writer.lock();
        f()
    }

    pub(crate) fn send(&self, header: &FromActor, payload: &[u8]) {
        let bounded = bounded_messages(header);
        let header = bounded.as_ref().unwrap_or(header);
        let mut writer = self.writer.lock();
        // A write error means the parent is gone; the reader sees it and the host ends.
        let _ = write_frame(&mut *writer, header, payload).and_then(|()| writer.flush());
    }

    /// Sends stream `id`'s items while it has credit.
    fn pump(&self, id: u64) {
        let mut streams = self.streams.lock();
        let Some(stream) = streams.get_mut(&id) else {
            return;
        };
        while stream.credit > 0 {
            let outcome = match catch_unwind(AssertUnwindSafe(|| stream.items.next())) {
                Ok(Some(Ok(item))) => match self.too_large(item.len()) {
                    None => {
                        stream.credit -= 1;
                        self.send(&FromActor::Item { id }, &item);
                        continue;
                    }
                    Some(message) => Outcome::Failed(message),
                },
                Ok(Some(Err(message))) => Outcome::Failed(message),
                Ok(None) => Outcome::Ok,
                Err(payload) => Outcome::Panicked(panic_message(&*payload)),
            };
            // The stream ended: after its last item, or how it failed.
            streams.remove(&id);
            self.send(&FromActor::End { id, outcome }, &[]);
            return;
        }
    }
}

/// Runs call `id` of method `method` on `instance` and answers it.
fn execute<A: Actor>(
    conn: &HostConn,
    instance: &Instance<A>,
    order: Option<MutexGuard<'_, ()>>,
    id: u64,
    method: u32,
    payload: &[u8],
) {
    let Some(method) = A::methods().get(method as usize) else {
        let outcome = Outcome::Failed(format!("{} has no method number {method}", A::NAME));
        conn.send(&FromActor::Reply { id, outcome }, &[]);
        return;
    };
    enum Done {
        Value(Vec<u8>),
        Items(EncodedItems),
    }
    let state = instance.state();
    let result = catch_unwind(AssertUnwindSafe(|| match &method.call {
        MethodCall::Exclusive(call) => {
            let mut state = state.write();
            drop(order);
            call(&mut state, payload).map(Done::Value)
        }
        MethodCall::Shared(call) => {
            let state = state.read();
            drop(order);
            call(&state, payload).map(Done::Value)
        }
        MethodCall::ExclusiveStream(call) => {
            let mut state = state.write();
            drop(order);
            call(&mut state, payload).map(Done::Items)
        }
        MethodCall::SharedStream(call) => {
            let state = state.read();
            drop(order);
            call(&state, payload).map(Done::Items)
        }
    }));
    match result {
        Ok(Ok(Done::Value(bytes))) if conn.too_large(bytes.len()).is_some() => {
            let message = conn.too_large(bytes.len()).unwrap_or_default();
            conn.send(
                &FromActor::Reply {
                    id,
                    outcome: Outcome::Failed(message),
                },
                &[],
            );
        }
        Ok(Ok(Done::Value(bytes))) => {
            conn.send(
                &FromActor::Reply {
                    id,
                    outcome: Outcome::Ok,
                },
                &bytes,
            );
        }
        Ok(Ok(Done::Items(items))) => {
            conn.streams.lock().insert(
                id,
                HostStream {
                    items,
                    credit: WINDOW,
                },
            );
            conn.send(
                &FromActor::Reply {
                    id,
                    outcome: Outcome::Ok,
                },
                &[],
            );
            conn.pump(id);
        }
        Ok(Err(message)) => {
            conn.send(
                &FromActor::Reply {
                    id,
                    outcome: Outcome::Failed(message),
                },
                &[],
            );
        }
        Err(panic) => {
            let outcome = Outcome::Panicked(panic_message(&*panic));
            conn.send(&FromActor::Reply { id, outcome }, &[]);
        }
    }
}

/// A call queued in the worker's thread mailbox (several threads).
struct EncodedJob {
    conn: Arc<HostConn>,
    id: u64,
    method: u32,
    payload: Vec<u8>,
}

impl<A: Actor> Job<A> for EncodedJob {
    fn run(self: Box<Self>, instance: &Instance<A>, order: Option<MutexGuard<'_, ()>>) {
        execute(
            &self.conn,
            instance,
            order,
            self.id,
            self.method,
            &self.payload,
        );
    }

    fn fail(self: Box<Self>, error: TaskError) {
        let outcome = Outcome::Failed(error.to_string());
        self.conn.send(
            &FromActor::Reply {
                id: self.id,
                outcome,
            },
            &[],
        );
    }
}

/// Serves actor `A` on `transport` in this worker (what the host task runs). Not a public API.
#[doc(hidden)]
pub fn host_actor<A: Actor>(input: &[u8], transport: HostTransport) -> Result<(), String> {
    let args: HostArgs = codec::decode(input)?;
    match transport {
        HostTransport::Socket(stream) => {
            let mut reader_stream = stream
                .try_clone()
                .map_err(|error| format!("cannot clone the actor socket: {error}"))?;
            let conn = Arc::new(HostConn::new(Box::new(stream)));
            let instances = match start_instances::<A>(&args) {
                Ok(instances) => instances,
                Err(message) => {
                    conn.send(&FromActor::StartFailed { message }, &[]);
                    return Ok(());
                }
            };
            conn.send(
                &FromActor::Ready {
                    pid: std::process::id(),
                },
                &[],
            );
            let mut reader = FrameReader::new();
            let mut spin = Spin::default();
            serve_host(&args, instances, || {
                // An error: the parent is gone (or killing us): nothing more to answer.
                let frame = reader
                    .read_spinning::<_, ToActor>(&mut reader_stream, None, &mut spin)
                    .ok()?;
                Some((conn.clone(), frame.header, frame.payload))
            });
            Ok(())
        }
        #[cfg(feature = "cluster")]
        HostTransport::Nats(host) => {
            super::remote::host::<A>(&args, *host);
            Ok(())
        }
    }
}

/// Builds the instances `args` asks for (constructor and start hook), after checking the
/// caller's method table is this one.
pub(crate) fn start_instances<A: Actor>(args: &HostArgs) -> Result<Vec<Arc<Instance<A>>>, String> {
    if args.signature != actor_signature::<A>() {
        return Err(format!(
            "the worker's `{}` has other methods or types than this process's: run the same \
             code on both sides",
            A::NAME
        ));
    }
    let ctor = codec::decode::<A::Args>(&args.args)?;
    let mut instances = Vec::with_capacity(args.instances);
    for _ in 0..args.instances {
        let actor = construct::<A>(&args.uid, ctor.clone()).map_err(|error| match error {
            ActorError::StartFailed { message, .. } => message,
            other => other.to_string(),
        })?;
        instances.push(Arc::new(Instance::new(actor)));
    }
    Ok(instances)
}

/// Serves started `instances` on the frames `next` returns (each with the connection of the
/// caller that sent it) until a `Stop` or `Kill`, or until `next` has no more.
pub(crate) fn serve_host<A: Actor>(
    args: &HostArgs,
    instances: Vec<Arc<Instance<A>>>,
    mut next: impl FnMut() -> Option<(Arc<HostConn>, ToActor, Vec<u8>)>,
) {
    // One thread: run calls right here, in order. Several: the thread placement's mailbox.
    let local = if instances.len() * args.max_concurrency > 1 {
        match Local::serve(
            &args.uid,
            instances.clone(),
            args.mailbox.max(1),
            args.max_concurrency,
            None,
        ) {
            Ok(local) => Some(local),
            Err(message) => {
                // Ending the host ends the connection: the caller sees the worker gone.
                eprintln!("crew: actor `{}` cannot serve: {message}", args.uid);
                return;
            }
        }
    } else {
        None
    };
    while let Some((conn, header, payload)) = next() {
        match header {
            ToActor::Call { id, method } | ToActor::Stream { id, method } => match &local {
                None => execute(&conn, &instances[0], None, id, method, &payload),
                Some(local) => {
                    let job: Box<dyn Job<A>> = Box::new(EncodedJob {
                        conn: conn.clone(),
                        id,
                        method,
                        payload,
                    });
                    // The callers' permits keep this mailbox from filling.
                    let _ = local.send(Envelope::Call(job), Mode::Blocking);
                }
            },
            ToActor::Credit { id, items } => {
                if let Some(stream) = conn.streams.lock().get_mut(&id) {
                    stream.credit += items;
                }
                conn.pump(id);
            }
            ToActor::Cancel { id } => {
                conn.streams.lock().remove(&id);
            }
            ToActor::Stop => {
                match &local {
                    None => {
                        let stopped = catch_unwind(AssertUnwindSafe(|| {
                            instances[0].with_mut(A::on_stop);
                        }));
                        if let Err(payload) = stopped {
                            eprintln!(
                                "crew: the stop hook of actor `{}` panicked: {}",
                                args.uid,
                                panic_message(&*payload)
                            );
                        }
                    }
                    Some(local) => {
                        let _ = local.stop(false).result();
                    }
                }
                conn.send(&FromActor::Stopped, &[]);
                return;
            }
            ToActor::Kill => {
                if let Some(local) = &local {
                    drop(local.stop(true));
                }
                conn.send(&FromActor::Stopped, &[]);
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The parent side.

/// Settings of the process placement.
#[derive(Debug, Clone)]
pub(crate) struct ProcessOptions {
    pub(crate) max_restarts: u32,
    pub(crate) program: Option<PathBuf>,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            max_restarts: 3,
            program: None,
        }
    }
}

/// A live connection to the host.
struct Conn {
    writer: BufWriter<UnixStream>,
    /// Keeps the worker (its watchdog ends it when this closes).
    child: Child,
}

/// The parent's side of an actor in a worker process.
pub(crate) struct Remote<A: Actor> {
    uid: String,
    options: ProcessOptions,
    host_args: HostArgs,
    /// The mailbox bound, kept here at the caller.
    bound: CallerBound,
    conn: Mutex<Option<Conn>>,
    /// The read half: whoever holds it reads replies (the reader thread, or a caller leading).
    read: Mutex<ReadSide>,
    /// What the reader thread waits in: the read half, watched for replies and hang-up, or
    /// for hang-up only while a caller leads (so a reply does not wake the reader for
    /// nothing). Changed only under `read`'s lock.
    watch: Arc<Poller>,
    /// A caller is leading (reading the socket for its own reply).
    leading: AtomicBool,
    process: Mutex<Option<Arc<Supervised>>>,
    inflight: Inflight,
    /// Calls whose write failed (the worker had died): sent again to the replacement.
    unsent: Mutex<Vec<(u64, ToActor, Vec<u8>)>>,
    next_id: AtomicU64,
    pid: AtomicU32,
    restarts: AtomicU32,
    /// Why the actor ended when no stop or kill asked for it (its worker died past
    /// `max_restarts`, or could not be restarted): what later calls are told.
    died: Mutex<Option<String>>,
    ending: Ending,
    reservation: Reservation,
    /// This actor, weakly: what a call's handle leads with.
    me: Weak<Remote<A>>,
    _actor: std::marker::PhantomData<fn() -> A>,
}

/// The read half of the connection and its frame buffer.
struct ReadSide {
    /// Shared with the reader thread, which polls it without holding the read side.
    stream: Option<Arc<UnixStream>>,
    frames: FrameReader,
    /// A read failed: the worker died; the reader thread handles it.
    broken: bool,
    /// The actor ended (stopped or out of restarts): nothing more to read.
    ended: bool,
    /// The leading callers' spin before they block on the socket (one per socket and side).
    spin: Spin,
}

impl ReadSide {
    /// Reads and dispatches frames until `done`, `deadline` (`Some(now)`: what is there now)
    /// or a failed read.
    fn pump<A: Actor>(
        &mut self,
        remote: &Remote<A>,
        done: &dyn Fn() -> bool,
        deadline: Option<Instant>,
    ) {
        while !self.broken && !self.ended && !done() {
            let Some(stream) = &self.stream else {
                return;
            };
            // A drain (`deadline` now) takes what is there; a wait for a reply spins first.
            let drain = deadline.is_some_and(|deadline| deadline <= Instant::now());
            let read = if drain {
                self.frames.read::<_, FromActor>(&mut &**stream, deadline)
            } else {
                self.frames
                    .read_spinning::<_, FromActor>(&mut &**stream, deadline, &mut self.spin)
            };
            match read {
                Ok(frame) => {
                    if !remote.on_frame(frame.header, frame.payload) {
                        self.ended = true;
                    }
                }
                Err(ReadError::Timeout) => return,
                Err(_) => self.broken = true,
            }
        }
    }
}

impl ReadSide {
    /// Dispatches the frames already whole in the buffer, without reading the socket.
    fn dispatch_buffered<A: Actor>(&mut self, remote: &Remote<A>) {
        while !self.broken && !self.ended {
            let Some(frame) = self.frames.take_buffered::<FromActor>() else {
                return;
            };
            match frame {
                Ok(frame) => {
                    if !remote.on_frame(frame.header, frame.payload) {
                        self.ended = true;
                    }
                }
                Err(_) => self.broken = true,
            }
        }
    }
}

/// A started host: the connection to write to and the stream to read from.
struct Started {
    conn: Conn,
    reader: UnixStream,
    pid: u32,
}

fn next_socket_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!(
        "crew-actor-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl<A: Actor> Remote<A> {
    pub(crate) fn start(
        uid: &str,
        args: A::Args,
        options: &ActorOptions<A>,
        process: ProcessOptions,
        reservation: Reservation,
    ) -> Result<Arc<Self>, ActorError> {
        let start_failed = |message: String| ActorError::StartFailed {
            uid: uid.to_owned(),
            message,
        };
        let host_args = HostArgs {
            socket: String::new(),
            actor: A::NAME.to_owned(),
            signature: actor_signature::<A>(),
            uid: uid.to_owned(),
            args: codec::encode(&args).map_err(start_failed)?,
            instances: options.instance_count,
            max_concurrency: options.max_concurrency,
            mailbox: options.mailbox,
        };
        let watch = Poller::new().map_err(|error| {
            start_failed(format!("cannot create its reader's epoll set: {error}"))
        })?;
        let remote = Arc::new_cyclic(|me| Remote {
            uid: uid.to_owned(),
            options: process,
            host_args,
            bound: CallerBound::new(options.mailbox),
            conn: Mutex::new(None),
            read: Mutex::new(ReadSide {
                stream: None,
                frames: FrameReader::new(),
                broken: false,
                ended: false,
                spin: Spin::default(),
            }),
            leading: AtomicBool::new(false),
            watch: Arc::new(watch),
            process: Mutex::new(None),
            inflight: Mutex::new(HashMap::new()),
            unsent: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            pid: AtomicU32::new(0),
            restarts: AtomicU32::new(0),
            died: Mutex::new(None),
            ending: Ending::default(),
            reservation,
            me: me.clone(),
            _actor: std::marker::PhantomData,
        });
        let started = remote.start_host().map_err(start_failed)?;
        let reader = remote.install(started).map_err(start_failed)?;
        let weak = Arc::downgrade(&remote);
        let watch = remote.watch.clone();
        std::thread::Builder::new()
            .name(format!("crew-actor-{uid}"))
            .spawn(move || read_replies(&weak, &watch, reader))
            .map_err(|error| ActorError::StartFailed {
                uid: uid.to_owned(),
                message: format!("cannot start its reader thread: {error}"),
            })?;
        Ok(remote)
    }

    /// Makes `started` the live connection and its read half the one the reader watches;
    /// returns that read half (see [`set_reader`](Self::set_reader)).
    fn install(&self, started: Started) -> Result<Arc<UnixStream>, String> {
        self.pid.store(started.pid, Ordering::Release);
        *self.process.lock() = Some(started.conn.child.process());
        *self.conn.lock() = Some(started.conn);
        self.set_reader(started.reader)
    }

    /// Makes `stream` the read half, with an empty frame buffer, watched by the reader thread
    /// instead of the last one. Returns it for the reader thread to keep open: a socket
    /// leaves an `epoll` set when its last descriptor closes, and the reader must still see
    /// the worker hang up after the actor itself is dropped.
    fn set_reader(&self, stream: UnixStream) -> Result<Arc<UnixStream>, String> {
        let stream = Arc::new(stream);
        let mut side = self.read.lock();
        if let Some(old) = side.stream.take() {
            let _ = self.watch.delete(&*old);
        }
        self.watch
            .add(&*stream, READ_SIDE, REPLY_OR_HANG_UP)
            .map_err(|error| format!("cannot watch the actor socket: {error}"))?;
        side.stream = Some(stream.clone());
        side.frames = FrameReader::new();
        side.broken = false;
        Ok(stream)
    }

    /// A caller waiting for a call's reply reads the socket itself, unless another caller
    /// already does (see the note on reading). While it leads, the reader thread watches the
    /// socket for hang-up only, so the replies the leader reads do not wake it.
    fn lead(&self, done: &dyn Fn() -> bool, deadline: Option<Instant>) {
        if self.leading.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut side = self.read.lock();
        let stream = side.stream.clone();
        if let Some(stream) = &stream {
            let _ = self.watch.modify(&**stream, READ_SIDE, HANG_UP);
        }
        side.pump(self, done, deadline);
        // Frames read past our reply sit in the buffer, where the reader thread's poll cannot
        // see them: dispatch whatever is complete there before handing the socket back (bytes
        // still in the socket wake the reader once the watch is restored).
        side.dispatch_buffered(self);
        if let Some(stream) = &stream {
            // Level-triggered: bytes that came after the drain wake the reader at once.
            let _ = self.watch.modify(&**stream, READ_SIDE, REPLY_OR_HANG_UP);
        }
        drop(side);
        self.leading.store(false, Ordering::Release);
    }

    /// Starts a worker, hands it the actor and waits until it is ready.
    fn start_host(&self) -> Result<Started, String> {
        let name = next_socket_name();
        let address = SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|error| format!("cannot name the actor socket: {error}"))?;
        let listener = UnixListener::bind_addr(&address)
            .map_err(|error| format!("cannot listen on the actor socket: {error}"))?;
        let mut child = Child::start(&ChildOptions {
            program: self.options.program.clone(),
            memory_limit: None,
            death_signal: false,
        })
        .map_err(|error| error.message)?;
        let task = TaskInfo::by_name(HOST_TASK).expect("crew registers its actor host");
        let host_args = HostArgs {
            socket: name,
            ..self.host_args_clone()
        };
        let payload = codec::encode(&host_args)?;
        let header = ToWorker::Call {
            id: 0,
            name: HOST_TASK.to_owned(),
            signature: task.signature(),
            chunk: false,
        };
        child
            .send(&header, &payload)
            .and_then(|()| child.flush())
            .map_err(|error| format!("cannot reach the worker: {error}"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        let stream = loop {
            if Instant::now() >= deadline {
                child.kill_and_reap();
                return Err("the worker did not connect in time".to_owned());
            }
            let slice = Instant::now() + Duration::from_millis(20);
            if crate::sys::socket::wait_readable(&listener, Some(slice)).unwrap_or(false) {
                let (stream, _) = listener
                    .accept()
                    .map_err(|error| format!("cannot accept the worker: {error}"))?;
                match rustix::net::sockopt::socket_peercred(&stream) {
                    Ok(credentials)
                        if credentials.pid.as_raw_nonzero().get() as u32 == child.pid() =>
                    {
                        break stream
                    }
                    // Not our worker: ignore the stranger and keep waiting.
                    _ => continue,
                }
            }
            // The host task may have failed before connecting: it answered its call.
            match child.read(Some(Instant::now() + Duration::from_millis(1))) {
                Err(ReadError::Timeout) => {}
                Ok(frame) => {
                    child.kill_and_reap();
                    return Err(match frame.header {
                        ToParent::Done {
                            outcome: Outcome::Failed(message),
                            ..
                        } => message,
                        ToParent::Done {
                            outcome: Outcome::UnknownTask | Outcome::Mismatch { .. },
                            ..
                        } => "the worker program is another crew version or program; run \
                              the same build"
                            .to_owned(),
                        other => format!("unexpected {other:?} from the worker"),
                    });
                }
                Err(_) => {
                    let exit = child.kill_and_reap();
                    return Err(format!(
                        "the worker died before hosting the actor ({})",
                        exit.map_or_else(|| "exit unknown".to_owned(), |exit| exit.to_string())
                    ));
                }
            }
        };
        let pid = child.pid();
        let mut reader = stream
            .try_clone()
            .map_err(|error| format!("cannot clone the actor socket: {error}"))?;
        let mut frames = FrameReader::new();
        match frames.read::<_, FromActor>(&mut reader, Some(deadline)) {
            Ok(frame) => match frame.header {
                FromActor::Ready { .. } => {}
                FromActor::StartFailed { message } => {
                    child.kill_and_reap();
                    return Err(message);
                }
                other => {
                    child.kill_and_reap();
                    return Err(format!("unexpected {other:?} from the actor host"));
                }
            },
            Err(error) => {
                let exit = child.kill_and_reap();
                return Err(format!(
                    "the worker died while starting the actor ({error:?}, {})",
                    exit.map_or_else(|| "exit unknown".to_owned(), |exit| exit.to_string())
                ));
            }
        }
        Ok(Started {
            conn: Conn {
                writer: BufWriter::with_capacity(64 * 1024, stream),
                child,
            },
            reader,
            pid,
        })
    }

    fn host_args_clone(&self) -> HostArgs {
        HostArgs {
            socket: self.host_args.socket.clone(),
            actor: self.host_args.actor.clone(),
            signature: self.host_args.signature,
            uid: self.host_args.uid.clone(),
            args: self.host_args.args.clone(),
            instances: self.host_args.instances,
            max_concurrency: self.host_args.max_concurrency,
            mailbox: self.host_args.mailbox,
        }
    }

    fn stopped_error(&self) -> ActorError {
        let reason = if let Some(died) = self.died.lock().clone() {
            died
        } else if self.ending.killed() {
            "it was killed".to_owned()
        } else if self.ending.requested() {
            "it was stopped".to_owned()
        } else {
            "its worker ended".to_owned()
        };
        ActorError::Stopped {
            uid: self.uid.clone(),
            reason,
        }
    }

    /// Sends a frame that needs no permit (credits, cancels, stop).
    fn control(&self, header: &ToActor) {
        if let Some(live) = self.conn.lock().as_mut() {
            let _ = write_frame(&mut live.writer, header, &[]).and_then(|()| live.writer.flush());
        }
    }

    /// Gives a call's permit back (its reply came, or it failed) and wakes an async waiter.
    fn release_permit(&self) {
        self.bound.release();
    }

    /// Fails every call and stream in flight with `error`, except the `keep` ids.
    fn fail_inflight(&self, error: &TaskError, keep: &[u64]) {
        fail_pending(&self.inflight, error, keep, &|| self.release_permit());
    }

    /// The actor ended for good: unregister, settle the stop handles.
    fn finish(&self) {
        self.bound.end();
        if let Some(mut conn) = self.conn.lock().take() {
            conn.child.kill_and_reap();
        }
        self.unsent.lock().clear();
        self.fail_inflight(&self.stopped_error().into(), &[]);
        self.reservation.release();
        self.ending.finish();
    }

    /// One frame from the host.
    fn on_frame(&self, header: FromActor, payload: Vec<u8>) -> bool {
        if let FromActor::Stopped = header {
            self.finish();
            return false;
        }
        settle_frame(&self.inflight, header, payload, &|| self.release_permit());
        true
    }

    /// The worker died: fail what was in flight, then restart it or end the actor. Returns the
    /// new read half when restarted.
    fn on_death(&self) -> Option<UnixStream> {
        // Holding the connection's lock: callers wanting to send wait for the new worker.
        let mut conn = self.conn.lock();
        let pid = self.pid.load(Ordering::Acquire);
        let exit = conn.as_mut().and_then(|conn| conn.child.kill_and_reap());
        *conn = None;
        let unsent = std::mem::take(&mut *self.unsent.lock());
        let keep: Vec<u64> = unsent.iter().map(|(id, _, _)| *id).collect();
        self.fail_inflight(
            &TaskError::WorkerDied {
                worker: WorkerId::local(pid),
                exit,
            },
            &keep,
        );
        let stopping = self.ending.requested();
        let restarts = self.restarts.load(Ordering::Acquire);
        if stopping || restarts >= self.options.max_restarts {
            if !stopping {
                let how = exit.map_or_else(|| "how is unknown".to_owned(), |exit| exit.to_string());
                *self.died.lock() = Some(format!(
                    "its worker (pid {pid}) died ({how}) after {restarts} restart(s), the \
                     most max_restarts allows (a higher max_restarts restarts it more often)"
                ));
            }
            drop(conn);
            self.finish();
            return None;
        }
        self.restarts.fetch_add(1, Ordering::AcqRel);
        match self.start_host() {
            Ok(mut started) => {
                self.pid.store(started.pid, Ordering::Release);
                *self.process.lock() = Some(started.conn.child.process());
                for (_, header, payload) in &unsent {
                    let _ = write_frame(&mut started.conn.writer, header, payload);
                }
                let _ = started.conn.writer.flush();
                *conn = Some(started.conn);
                Some(started.reader)
            }
            Err(message) => {
                drop(conn);
                eprintln!(
                    "crew: actor `{}` could not be restarted: {message}",
                    self.uid
                );
                *self.died.lock() = Some(format!(
                    "its worker died and could not be restarted: {message}"
                ));
                self.finish();
                None
            }
        }
    }
}

/// The caller side is [`caller`](super::caller)'s; a process actor adds its socket, a
/// blocked caller's lead on it, and its worker's pid and restarts.
impl<A: Actor> Transport for Remote<A> {
    fn uid(&self) -> &str {
        &self.uid
    }

    fn bound(&self) -> &CallerBound {
        &self.bound
    }

    fn inflight(&self) -> &Inflight {
        &self.inflight
    }

    /// Sends `header` + `payload` with `pending` (the permit is taken).
    fn send(
        &self,
        make: &mut dyn FnMut(u64) -> (ToActor, Pending),
        payload: &[u8],
    ) -> Result<(), ActorError> {
        let mut conn = self.conn.lock();
        let Some(live) = conn.as_mut() else {
            drop(conn);
            self.release_permit();
            return Err(self.stopped_error());
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (header, pending) = make(id);
        self.inflight.lock().insert(id, pending);
        // A failed write means the worker is dead and did not get the call: it goes to the
        // replacement (see `on_death`). A call written before the death is in flight.
        if write_frame(&mut live.writer, &header, payload)
            .and_then(|()| live.writer.flush())
            .is_err()
        {
            self.unsent.lock().push((id, header, payload.to_vec()));
        }
        Ok(())
    }

    fn send_control(&self, header: &ToActor) {
        self.control(header);
    }

    fn stopped_error(&self) -> ActorError {
        Remote::stopped_error(self)
    }

    fn driver(&self) -> Option<Driver> {
        let remote = self.me.clone();
        Some(Arc::new(move |done, deadline| {
            if let Some(remote) = remote.upgrade() {
                remote.lead(done, deadline);
            }
        }))
    }

    fn stop(&self, kill: bool) -> TaskHandle<()> {
        let (handle, request) = self.ending.request(kill);
        if request == Request::Ended {
            return handle;
        }
        self.bound.close();
        if kill {
            if let Some(process) = self.process.lock().as_ref() {
                let _ = process.signal(rustix::process::Signal::KILL);
            }
        } else {
            self.control(&ToActor::Stop);
        }
        handle
    }

    fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::Acquire)).filter(|&pid| pid != 0)
    }

    fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Acquire)
    }
}

/// The token of the read half in the reader's epoll set.
const READ_SIDE: u64 = 0;
/// What the reader thread watches the read half for while nobody leads.
const REPLY_OR_HANG_UP: PollFlags = PollFlags::IN.union(PollFlags::RDHUP);
/// ... and while a caller leads: the worker's end only (hang-up and error are always reported).
const HANG_UP: PollFlags = PollFlags::RDHUP;

/// The reader thread: replies in when no caller leads, deaths handled. Holds the actor weakly,
/// so an actor nobody references (not even the registry) lets it end.
fn read_replies<A: Actor>(remote: &Weak<Remote<A>>, watch: &Poller, watched: Arc<UnixStream>) {
    let mut _watched = watched;
    loop {
        // Wait for data without holding the read side, so a caller may lead meanwhile.
        if watch.wait(|_| {}).is_err() {
            // Cannot wait (out of resources?): look again rather than spin on an error.
            std::thread::sleep(Duration::from_millis(1));
        }
        let Some(actor) = remote.upgrade() else {
            return;
        };
        // A caller leading holds the read side: leave the socket to it rather than wait for
        // the lock (a reply that came just before the leader changed the watch woke this
        // thread; a preempted waiter here then held the leader off its own next call for a
        // time slice). The leader restores the watch when it is done, and the set is
        // level-triggered: whatever it leaves in the socket wakes this thread again.
        let Some(mut side) = actor.read.try_lock() else {
            std::thread::yield_now();
            continue;
        };
        side.pump(&actor, &|| false, Some(Instant::now()));
        if side.ended {
            return;
        }
        if !side.broken {
            continue;
        }
        drop(side);
        let restarted = actor.on_death().map(|next| actor.set_reader(next));
        match restarted {
            Some(Ok(next)) => _watched = next,
            Some(Err(message)) => {
                eprintln!(
                    "crew: actor `{}` cannot read its new worker: {message}",
                    actor.uid
                );
                actor.finish();
                actor.read.lock().ended = true;
                return;
            }
            None => {
                actor.read.lock().ended = true;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::codec::split_frame;

    /// A writer whose bytes the test reads afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A huge panic message is sent cut (its header would break a cluster caller's reader
    /// and could pass the NATS message limit), at a character boundary, saying so; short
    /// ones and other frames pass unchanged.
    #[test]
    fn long_outcome_messages_are_cut() {
        let written = Shared::default();
        let conn = HostConn::new(Box::new(written.clone()));
        // 'é' is two bytes: the limit falls inside one.
        let huge = format!("x{}", "é".repeat(MAX_OUTCOME_MESSAGE));
        conn.send(
            &FromActor::Reply {
                id: 7,
                outcome: Outcome::Panicked(huge.clone()),
            },
            &[],
        );
        conn.send(
            &FromActor::End {
                id: 8,
                outcome: Outcome::Failed("short".to_owned()),
            },
            &[],
        );
        let bytes = written.0.lock().clone();
        let (first, _, rest) = split_frame::<FromActor>(&bytes).unwrap();
        match first {
            FromActor::Reply {
                id: 7,
                outcome: Outcome::Panicked(message),
            } => {
                let kept = message.split("... (").next().unwrap();
                assert!(huge.starts_with(kept));
                assert_eq!(kept.len(), MAX_OUTCOME_MESSAGE - 1);
                assert!(
                    message.ends_with(&format!("({} more bytes cut)", huge.len() - kept.len())),
                    "{}",
                    &message[kept.len()..]
                );
            }
            other => panic!("expected the cut panic, got {other:?}"),
        }
        let (second, _, rest) = split_frame::<FromActor>(rest).unwrap();
        assert!(matches!(
            second,
            FromActor::End { id: 8, outcome: Outcome::Failed(message) } if message == "short"
        ));
        assert!(rest.is_empty());
    }
}
