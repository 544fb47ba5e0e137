//! The [`Executor`] on a cluster of machines, over NATS JetStream: [`Cluster`] submits,
//! [`serve_worker`] runs the tasks, anywhere that reaches the server.
//!
//! Moving work from processes to machines is a one-line change: tasks are the same
//! `#[crew::task]` functions a [`ProcessPool`] runs, and the handles, `map`, deadlines and
//! cancellation behave the same way.
//!
//! ```no_run
//! use crew::cluster::{Cluster, ClusterOptions};
//! use crew::Executor;
//!
//! #[crew::task]
//! fn square(n: u64) -> u64 {
//!     n * n
//! }
//!
//! fn main() {
//!     crew::init(); // local workers run tasks in worker processes
//!     // A private nats-server and two workers, stopped on drop (a ProcessPool without nats-server):
//!     let cluster = Cluster::local(2).unwrap();
//!     // Or a deployment: `nats-server -js`, then `crew worker --nats URL` on each machine.
//!     // let cluster = Cluster::connect(ClusterOptions::new("nats://10.0.0.1:4222").token("..")).unwrap();
//!     let squares: Vec<u64> = cluster.map(square, 0..10).map(Result::unwrap).collect();
//!     assert_eq!(squares[9], 81);
//! }
//! ```
//!
//! # Design note: topology and delivery
//!
//! **Streams.** A deployment is a subject prefix `P` (default `crew`), so deployments share a
//! server without meeting. Tasks go to the work-queue stream `P_TASKS` on the subject
//! `P.task.<name>` (one subject per task name: visible in `nats stream subjects`, and
//! routable). The stream has `WorkQueue` retention (a task is removed when acknowledged),
//! `DiscardPolicy::New` and a duplicate window: each task carries `Nats-Msg-Id:
//! <submitter>.<number>`, so a publish re-sent after a lost acknowledgement is stored once.
//! One durable pull consumer, `workers`, is shared by every worker (a work-queue stream allows
//! one consumer for overlapping subjects), with explicit acks and `ack_wait`, `max_deliver` and
//! `max_ack_pending` set by crew from [`ClusterOptions`], never the server's defaults.
//!
//! **Messages.** A task message is `[header length][postcard header][encoded argument]`: the
//! header holds the task's name and signature hash (checked by the worker exactly as a process
//! pool checks them: an unknown task or a different signature is an error for the submitter,
//! never a hang), the submitter's id and the task's number, the deadline, the retry policy. An
//! argument or result above the server's `max_payload` goes through the JetStream object store
//! (`P_PAYLOADS`) and the message carries its key; nothing is silently dropped.
//!
//! **Results: to the submitter's inbox, acknowledged by the submitter, with the results
//! stream behind.** The submitter subscribes to `P.inbox.<submitter>` before its first task.
//! On a task's *first* delivery the worker sends the result there as a plain message carrying
//! the task message's acknowledgement subject, and does nothing more for it: no wait, no
//! acknowledgement of its own. The submitter settles the handle, *then* sends `+ACK` to that
//! subject, so a task is acknowledged only once its result is in the submitter's hands.
//! Results that finish together travel together: the worker queues them per submitter and
//! sends one batch message (`[length][result]...`) once the tasks ready to run have run.
//! If the submitter is away (disconnected by a server restart or a network blip, or gone),
//! the batch finds nobody and its tasks stay unacknowledged: after `ack_wait` the server
//! delivers them again, and any later delivery takes the *confirmed* way: the result goes as a
//! core request to the inbox, the submitter answers once it settled it (duplicates included)
//! and the worker acknowledges on that answer; a request without an answer within 2 s (or
//! with no subscriber at all) stores the result in the stream `P_RESULTS` (subject
//! `P.result.<submitter>`) before the worker acknowledges. The submitter reads that subject
//! with an ordered consumer created before its first task (so no stored result can be missed)
//! that resumes after a reconnect, and purges what it has read every second. A result that
//! arrives twice (a task run twice, an answer or an acknowledgement lost) is dropped by number,
//! and still acknowledged. So the promise is the one a results stream alone gives (a task is
//! acknowledged only once its result is in the submitter's hands or stored on the server),
//! while the common case costs the server one routed message per batch of results and one
//! tiny acknowledgement per task, instead of a stored message, its publish acknowledgement
//! and a consumer delivery (the results stream), or a request, its answer and the worker's
//! acknowledgement (the confirmed way, which was the default until it was measured against
//! this one). The price: a submitter that drops off loses `ack_wait` (and a second run) on
//! the tasks whose results it missed. The worker's acknowledgement, when it gives one, is a
//! plain publish (no `double_ack` round trip).
//! [`ResultPath::Stream`] (every result stored, the first design) remains, so that the choice
//! stays measured: `crew bench cluster` shows it as `crew-cluster-stream` beside the default.
//! Measured (`crew bench cluster --quick --only crew-cluster,crew-cluster-stream,python-managers`,
//! release build, 2 shared cores under load average 10–12 from other builds, medians of 3,
//! the two builds run alternately): one item per task, the confirmed way (the previous
//! default) 8,094 / 8,469 / 8,113 tasks/s, this way 12,578 / 16,888 tasks/s (managers in the
//! same runs 2,252 and 2,774: 5.6× and 6.1×); results stream 7,300–9,700 in every run.
//! `map` (chunks of 4,096) 4.7–8.9 M items/s either way; one task at a time p50 443–577 µs
//! before, 451–498 µs after (managers 348–432 µs): the round trip is the hops (submitter,
//! server, worker, its task process and back), which this does not change. With every peer
//! (`crew bench cluster --quick`, load average 3–5): 12,324 tasks/s, 4.5× managers (2,717),
//! 16.5× Ray (745), 54× Dask (229); p50 517 µs (managers 389, Ray 4,562). An earlier
//! profile (`perf record` over the bench) put 41% of the CPU in `nats-server` (mostly
//! wake-ups: one small message at a time), 25% in the workers' I/O threads, 11% in the
//! submitter's, 7% in the tasks' processes: the cost is the number of messages per task,
//! which is what this reduces: from four messages into the server and four out of it per
//! task (the task, the result request, the confirmation, the acknowledgement; the publish
//! acknowledgement, the delivery, the result, the confirmation) to two and two (the task and
//! its acknowledgement; the publish acknowledgement and the delivery), plus one result
//! message in and out per batch.
//!
//! **Submitting** never waits for the server: `submit` encodes, registers the handle's
//! completer under the task's number and hands the message to the cluster's I/O runtime (one
//! small tokio runtime per `Cluster`, driven by a blocked caller or a keeper thread: see one
//! task at a time, below), which publishes and keeps up to 20,000 publish
//! acknowledgements in flight. A publish that fails (the server restarting) is re-sent with
//! the same id until the duplicate window would no longer protect it; then the task fails with
//! `Transport`. The publishes are pipelined already (no publish waits for the previous one's
//! acknowledgement), and async-nats writes whatever is queued on the connection in one go
//! (it flushes when its queue runs dry, not per message), so there is no Nagle-like wait to
//! remove on either side.
//!
//! **Envelopes: tasks submitted together travel together.** Every message costs the server
//! the same (a stored message, its publish acknowledgement, a delivery, an acknowledgement),
//! whatever it holds; so tasks of one name queued together at the I/O thread (a `submit`
//! loop, `map`) leave in one message, an *envelope* (`[u32::MAX][length][task message]...`,
//! up to 64 tasks and 64 KiB; `Nats-Msg-Id: <submitter>.e<key>`, a key from the tasks'
//! counter). One task at a time still travels alone. Only tasks that may share a fate go
//! in: no retries (a retry is a delayed negative acknowledgement of the task's own message),
//! no deadline (its expiry withdraws it: see cancelling below), no payload in the object
//! store, and only tasks of a name whose last run took at most
//! 500 µs on its worker (workers report each task's run time with its result): an envelope
//! runs on one worker, and longer tasks must spread over all of them; so the first tasks of
//! a name travel alone until one came back. Each task keeps its own promises:
//! * its own result, attempt number (the envelope's delivery count) and cancellation notice;
//!   the worker runs the tasks side by side and sends their results with the envelope's
//!   acknowledgement subject on the last one only, all in one inbox message, so the
//!   submitter acknowledges the envelope once it settled them all, and a lost message loses
//!   the acknowledgement with the results (the envelope is delivered again). Results too big
//!   for one message, and a later delivery, take the confirmed way per task, then the worker
//!   acknowledges;
//! * a task whose process dies (or a drain) hands the whole envelope back (the others' results
//!   unsent: they run again, at least once); on the last delivery such a task goes to the
//!   dead letters alone, as a message of its own (so `requeue` sends just it), and the others
//!   report; a worker lost on the last delivery (the server's advisory) makes one dead letter
//!   per task;
//! * cancelling a task of a stored envelope deletes the envelope and stores its other tasks
//!   again in a new one (a task not yet delivered never runs; if a worker held the envelope
//!   already, the others may run twice, their second results dropped by number); a task
//!   cancelled before its envelope's publish acknowledgement is withdrawn the same way when
//!   the acknowledgement comes.
//!
//! Measured (`crew bench cluster --quick`, release build, 2 shared cores): one item per task
//! 15,238 tasks/s before (managers 2,842 in the same run), 35,055 with envelopes alone (load
//! average 5); with every change of that round, three runs with every peer (load average
//! 2.5–4.5): 55,814 / 68,870 / 75,048 tasks/s, 19–24x managers, 63–88x Ray. `map` unchanged
//! (its chunks are large already: 6.1 M items/s before and after, medians of three
//! alternating runs).
//!
//! **Storage** ([`ClusterOptions::storage`]): [`Storage::File`] by default for a deployment
//! (queued tasks and stored results survive a restart of the server: the server-restart test
//! runs on it), [`Storage::Memory`] for [`Cluster::local`], whose private server lives and
//! dies with the cluster, so file storage would buy nothing there but writes. A deployment
//! that can afford to lose its queue with its server may choose memory too; the tasks stream,
//! the results stream and the dead letters use the same setting.
//!
//! **Workers** pull in batches sized to their free slots (`concurrency` tasks running plus
//! `prefetch` waiting per slot), send progress acknowledgements for every task they hold at a
//! third of `ack_wait`, run each task in a crew [`ProcessPool`] (default: a crashing task never
//! takes the worker down) or in threads, store the result, then acknowledge. The attempt number
//! (the delivery count) is visible to the task as [`attempt()`].
//!
//! **One task at a time: where the time goes.** Timed with `perf record -e
//! sched:sched_wakeup` over `crew bench cluster --latency-tasks 20000` (medians per hop, 2
//! cores shared with other builds, load average 8): the caller's submit to the I/O thread
//! 40 µs, that thread to the server 46, the server from the publish to the worker's delivery
//! 94, the worker to its task process 68, the process and the pool's reader thread back to
//! the worker 79, the worker's result out 43, the server to the submitter 47, the submitter to
//! the caller 38: about 480 µs, eight hand-offs between threads, each mostly a wait for a
//! core. Two hand-offs were removed first: the worker's loop taking deliveries runs on its
//! runtime's thread beside the handlers (it ran on the thread blocked on the runtime, one more
//! wake-up per delivery), and [`Cluster::local`]'s private server runs its goroutines on
//! half the CPUs (`GOMAXPROCS`; on 2 cores the server's publish-to-delivery hop went from
//! 153 to 94 µs and its result hop from 79 to 47). Then three more:
//! * *The blocked caller drives the submitter's runtime* (`lead.rs`, the same `Lead` a remote
//!   actor's caller uses): the runtime is a one-thread runtime; a caller blocked on a handle
//!   (its driver) runs it on its own thread, so its submit is published by that thread and the
//!   result is read and settled by it, with no I/O thread woken on either side (two hand-offs
//!   fewer). A keeper thread drives it while no caller does (async waiters, callbacks,
//!   `map`'s window between waits), and takes it back only 2 ms after the last caller, so a
//!   loop of blocking calls keeps it. Whatever settles a handle elsewhere (a deadline, a
//!   `cancel()` from another thread) goes through the runtime (the cancel hook's revocation),
//!   which wakes the leader. A done-callback now runs on whichever thread drives; the
//!   cluster's blocking methods called from one ([`status`](Cluster::status)...) use a
//!   connection of their own, since that thread cannot wait for its own runtime.
//! * *A settled task's acknowledgement waits for a ride*: it leaves with the next task's
//!   publish (the same write) or within 1 ms, so the leading caller returns as soon as its
//!   task settled instead of after a socket write (on loopback the receiver's side runs inside
//!   the writer's system call: 28 → 7–12 µs from the settle to the caller).
//! * *A worker holding one task alone waits for it on its I/O thread* (for at most 1 ms, in
//!   processes, without a deadline): the pool hands such a call straight to its idle process,
//!   and the blocked waiter reads the reply off the socket itself (the pool's "a waiting
//!   caller leads"), so the pool's slot thread is not woken in between.
//!
//! Left alone, measured: the publish is already not waited for (the submitter reads the result
//! whenever it comes, the publish acknowledgement meanwhile; a lost publish still fails or is
//! re-sent on its acknowledgement's error); the worker's pull keeps a request outstanding
//! (async-nats pulls the next batch when half of one is delivered, and a worker asks for 17 per
//! slot), so no delivery waits for a pull round trip.
//!
//! Timeline of one task after these changes, from a temporary probe (monotonic clock stamps in
//! the submitter, the worker and the task process; `crew bench cluster --latency-tasks 1000`,
//! release build, medians of 962 tasks, load average 9–10 from other builds), in µs since
//! `submit`: the caller leads 6, the task handed to the connection 13, **delivered to the
//! worker 181** (the server stores it, acknowledges the publish at about 200, and delivers it:
//! about 165 µs), handed to the task process 196, the task runs 214–216, its result back on
//! the worker's thread 255, the result message out 270, **at the submitter 357** (the server
//! routes it: about 85 µs), settled 360, the caller returns 368. The thread hand-offs left
//! per task: the caller to the server, the server to the worker's I/O thread, that thread to
//! the task process and back, the worker to the server, the server to the caller: six
//! (eight before), plus the server's own goroutines; on the submitter's side a second wake-up
//! for the publish acknowledgement, off the critical path.
//!
//! **The floors** (`crew bench cluster --only crew-cluster,nats-request,nats-jetstream,...`:
//! `async-nats` alone on a server set up as [`Cluster::local`] sets up its own, the requester
//! driving its own connection as a leading caller does, see `crew-bench`'s `floor.rs`): a core
//! NATS request/reply round trip p50 120 µs (94–165 over six runs); a task's path through JetStream without crew's
//! work (published to the work-queue stream in memory, pulled, answered with a plain publish
//! to the requester, acknowledged) 240 µs (207–309); the same with the stream on disk 374–519 µs (a
//! deployment's default: [`Storage::File`] keeps queued tasks over a server restart; a local
//! cluster uses memory, its server dying with it). `GOMAXPROCS` 1 or 2 made no difference
//! measured there. So the work-queue stream's store-and-deliver alone costs about what the
//! whole round trip may, and crew's own work (the task process's round trip, encoding,
//! settling) adds about 100–180 µs on top (the same runs' `crew-cluster` rows). The 250 µs target for one task at a time is below
//! what JetStream takes on this machine while it is shared. Measured (release builds, `crew
//! bench cluster --quick --only crew-cluster,python-managers --latency-tasks 1000`, the build
//! before and after run alternately, load average 3–10 from other builds): p50 418–533 µs
//! before (median of eight runs 480), 328–477 after (median of eight 418; managers 415–592 in
//! the same runs); p99 0.9–2.8 ms after against 1.0–8.9 ms before. One item per task stays
//! 47–56k tasks/s against 36–53k before (16–22x managers), `map` 2.8–7.1 M items/s either
//! way (both move with the load). With every peer (`crew bench cluster --quick --latency-tasks
//! 1000`, load average 2.8–3.3, Ray's and Dask's daemons up meanwhile): 78.0k tasks/s (30.9x
//! managers, 88x Ray), `map` 6.8 M items/s, p50 472 µs (managers 465, Ray 3,316, Dask
//! 12,447; floors in the same run: `nats-request` 160, `nats-jetstream` 277,
//! `nats-jetstream-file` 429).
//!
//! **Delivery, promised:** at least once, one result per task for the submitter (a duplicate
//! result of a task run twice is dropped by number).
//! * A worker that dies (or is killed) never acknowledges: the server delivers the task again
//!   after `ack_wait`. A task whose *process* dies is negatively acknowledged at once and runs
//!   again.
//! * A task that returns an error or panics is reported, not retried, unless
//!   [`ClusterOptions::retries`] asks: then it is negatively acknowledged with a delay (never
//!   held by the worker while it waits).
//! * The last allowed delivery (`max_deliver`) that does not finish puts the task in the
//!   dead-letter stream `P_DEAD` and fails it for the submitter; a worker killed during that
//!   last delivery is caught by the server's `MAX_DELIVERIES` advisory, which a worker turns
//!   into the same dead letter. [`Cluster::dead_letters`] lists them, [`Cluster::requeue`]
//!   sends one back.
//! * Cancellation: the submitter's handle settles at once (`Cancelled`), the message is
//!   deleted from the stream (a task not yet delivered never runs) and a cancel notice on
//!   `P.cancel` makes the worker running it kill its process. A deadline does the same at the
//!   deadline (`DeadlineExceeded`); workers also refuse to start a task past its deadline.
//!
//! **Observability:** workers put a heartbeat (host, pid, slots, tasks done) in the key-value
//! bucket `P_WORKERS` every few seconds; [`Cluster::status`] reads it with the consumer's
//! counters.

mod cancel;
mod client;
pub(crate) mod connect;
pub(crate) mod lead;
mod options;
mod server;
mod wire;
pub(crate) mod worker;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize, Serializer};

use crate::error::SubmitError;
use crate::executor::{Executor, Message};
use crate::process::ProcessPool;
use crate::task::{TaskFn, TaskHandle, TaskOptions};

pub use cancel::on_cancel;
pub use options::{redact_url, ClusterOptions, ResultPath, Storage};
pub use server::{find_nats_server, ServerConfig, TestServer, NATS_SERVER_ENV};
pub use worker::{attempt, serve_worker, Isolation, WorkerOptions, WorkerReport};

/// Why a cluster operation failed. Every message says what went wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The server could not be reached (or did not answer in time).
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The server URL, without user info ([`redact_url`]).
        url: String,
        /// What happened.
        message: String,
    },
    /// The server refused the credentials.
    #[error("authentication with {url} failed: {message}")]
    Auth {
        /// The server URL, without user info ([`redact_url`]).
        url: String,
        /// What happened.
        message: String,
    },
    /// TLS could not be set up (certificates, or one side without TLS).
    #[error("TLS with {url} failed: {message}")]
    Tls {
        /// The server URL, without user info ([`redact_url`]).
        url: String,
        /// What happened.
        message: String,
    },
    /// A JetStream request failed (JetStream disabled, a stream that cannot be created...).
    #[error("JetStream: {message}")]
    JetStream {
        /// What happened.
        message: String,
    },
    /// No suitable `nats-server` binary was found.
    #[error("{message}")]
    NoServer {
        /// What was found and how to install one.
        message: String,
    },
    /// A private server ([`TestServer`], [`Cluster::local`]) did not start.
    #[error("the private nats-server failed: {message}")]
    Server {
        /// What happened, with the end of its log.
        message: String,
    },
    /// Invalid options.
    #[error("invalid cluster options: {message}")]
    Options {
        /// What is wrong.
        message: String,
    },
    /// The operation needs a NATS cluster, and this one runs on the process-pool fallback.
    #[error("{message}")]
    Unsupported {
        /// What is missing.
        message: String,
    },
    /// No dead letter has that id.
    #[error("no dead letter {id}; list them with Cluster::dead_letters (`crew cluster dlq`)")]
    NotFound {
        /// The id asked for.
        id: DeadLetterId,
    },
    /// A local resource (a thread, the runtime) could not be set up.
    #[error("{message}")]
    Io {
        /// What happened.
        message: String,
    },
}

/// What a [`Cluster`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Backend {
    /// NATS JetStream, with workers anywhere.
    Nats,
    /// A local [`ProcessPool`]: [`Cluster::local`] found no `nats-server`.
    ProcessPool,
}

/// One worker, as its last heartbeat describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// The worker's name ([`WorkerOptions::name`], default `host-pid`).
    pub name: String,
    /// Its host name.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// How many tasks it runs at once.
    pub slots: usize,
    /// How many tasks it finished (with any outcome).
    pub tasks_done: u64,
    /// When it last reported, in milliseconds since the Unix epoch (a number in JSON).
    #[serde(serialize_with = "serialize_system_time")]
    #[serde(deserialize_with = "deserialize_system_time")]
    pub last_seen: SystemTime,
    /// How often it reports, in milliseconds ([`WorkerOptions::heartbeat`]): a worker whose
    /// `last_seen` stays the same for a few of these is gone.
    pub heartbeat_ms: u64,
}

fn serialize_system_time<S: Serializer>(
    time: &SystemTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let ms = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    serializer.serialize_u64(ms)
}

fn deserialize_system_time<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<SystemTime, D::Error> {
    let ms = u64::deserialize(deserializer)?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

/// The state of a deployment: [`Cluster::status`] (`crew cluster status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ClusterStatus {
    /// The workers that sent a heartbeat in the last two minutes.
    pub workers: Vec<WorkerInfo>,
    /// Tasks waiting to be delivered.
    pub queue_depth: u64,
    /// Tasks delivered and not yet acknowledged (running, or held by a worker).
    pub in_flight: u64,
    /// Tasks delivered more than once right now.
    pub redeliveries: u64,
    /// Tasks in the dead-letter stream.
    pub dead_letters: u64,
}

/// The id of a dead letter: its sequence number in the dead-letter stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeadLetterId(pub u64);

impl fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for DeadLetterId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.trim().parse().map(DeadLetterId).map_err(|_| {
            format!("{text:?} is not a dead-letter id (a positive number from `crew cluster dlq`)")
        })
    }
}

/// A task that was delivered `max_deliver` times without finishing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its id, for [`Cluster::requeue`].
    pub id: DeadLetterId,
    /// The task's registered name.
    pub task: String,
    /// The task's id (`Nats-Msg-Id`: submitter and number).
    pub task_id: String,
    /// How many times it was delivered.
    pub deliveries: u64,
    /// What the last attempt said.
    pub error: String,
    /// When it was dead-lettered, in milliseconds since the Unix epoch (a number in JSON).
    #[serde(serialize_with = "serialize_system_time")]
    pub at: SystemTime,
}

/// The [`Executor`] over NATS JetStream (or, from [`Cluster::local`] without `nats-server`, over
/// a local [`ProcessPool`]).
///
/// Tasks are `#[crew::task]` functions; `submit`, `map` (with chunks and the bounded window),
/// `imap_unordered`, `apply_async`, deadlines, `cancel`, `shutdown` and `.await` work as on the
/// pools. Done-callbacks run on the thread that drives the cluster's I/O (a caller blocked on
/// a handle, or the cluster's own I/O thread): keep them short, and do not block on other
/// tasks there; the cluster's own blocking methods ([`status`](Self::status),
/// [`dead_letters`](Self::dead_letters)...) work there too. Dropping the cluster is `shutdown(wait = true, cancel_pending = false)`: it
/// waits for every submitted task while a worker serves the deployment; with no worker alive
/// (its heartbeat unchanged for three of its intervals) it cancels what is left instead of
/// waiting forever.
pub struct Cluster {
    backing: Backing,
}

enum Backing {
    Nats {
        client: Arc<client::Submitter>,
        /// `Cluster::local`'s own workers and server, stopped after the client.
        local: Option<Box<Local>>,
    },
    Pool(ProcessPool),
}

/// Tasks each of [`Cluster::local`]'s workers holds beyond the running one.
const LOCAL_PREFETCH: usize = 16;

/// The threads of [`Cluster::local`]'s private server (`GOMAXPROCS`, unless the environment
/// sets it): half the CPUs, at least one. The server passes each message through several
/// goroutines (the client's reader, the stream, the consumer, the writer); with a thread per
/// CPU, each hand-off wakes another thread, which on a small machine competes with the
/// submitter and the workers for the same cores. Measured on 2 cores (one task at a time,
/// hops timed with `perf sched`): publish to delivery 153 → 94 µs, result to submitter
/// 79 → 47 µs.
fn local_server_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

struct Local {
    workers: Vec<worker::LocalWorker>,
    server: TestServer,
}

impl Cluster {
    /// Connects to a deployment.
    ///
    /// # Errors
    /// [`ClusterError::Connect`], [`Auth`](ClusterError::Auth), [`Tls`](ClusterError::Tls) (a
    /// wrong credential or certificate fails here, within the connect timeout) or
    /// [`JetStream`](ClusterError::JetStream) when the streams cannot be set up.
    pub fn connect(options: ClusterOptions) -> Result<Cluster, ClusterError> {
        let client = client::Submitter::connect(options)?;
        Ok(Cluster {
            backing: Backing::Nats {
                client: Arc::new(client),
                local: None,
            },
        })
    }

    /// A cluster on this machine: a private `nats-server` with JetStream on a free loopback
    /// port, a random token and a temporary in-memory store, plus `workers` local workers (one
    /// slot each, running tasks in worker processes: call [`crew::init()`](crate::init) first
    /// in `main`). All are stopped when the cluster is dropped.
    ///
    /// Without a `nats-server` ([`find_nats_server`]) it falls back to a [`ProcessPool`] of
    /// `workers` processes behind the same API, says so once on stderr, and
    /// [`backend`](Self::backend) reports [`Backend::ProcessPool`].
    ///
    /// # Errors
    /// When the server or the workers cannot start.
    ///
    /// # Panics
    /// If `workers` is 0.
    pub fn local(workers: usize) -> Result<Cluster, ClusterError> {
        Self::local_with(workers, |options| options)
    }

    /// [`local`](Self::local), with the [`ClusterOptions`] its submitter and workers use
    /// adjusted by `configure` (given the private server's URL, token and in-memory storage).
    ///
    /// ```no_run
    /// use crew::cluster::{Cluster, ResultPath};
    ///
    /// let cluster = Cluster::local_with(2, |options| options.results(ResultPath::Stream)).unwrap();
    /// # drop(cluster);
    /// ```
    ///
    /// # Errors
    /// As [`local`](Self::local).
    ///
    /// # Panics
    /// If `workers` is 0.
    pub fn local_with(
        workers: usize,
        configure: impl FnOnce(ClusterOptions) -> ClusterOptions,
    ) -> Result<Cluster, ClusterError> {
        assert!(workers > 0, "Cluster::local needs at least one worker");
        let mut config = ServerConfig::new().token(server::random_hex(16));
        if std::env::var_os("GOMAXPROCS").is_none() {
            config = config.threads(local_server_threads());
        }
        let server = match TestServer::start(config) {
            Ok(server) => server,
            Err(ClusterError::NoServer { message }) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    eprintln!(
                        "crew: Cluster::local runs on a local ProcessPool of {workers} workers: {message}"
                    );
                });
                let pool = ProcessPool::builder()
                    .max_workers(workers)
                    .build()
                    .map_err(|error| ClusterError::Io {
                        message: format!("cannot start the fallback process pool: {error}"),
                    })?;
                return Ok(Cluster {
                    backing: Backing::Pool(pool),
                });
            }
            Err(error) => return Err(error),
        };
        let options = configure(server.client_options().storage(Storage::Memory));
        Self::local_on(server, options, workers)
    }

    fn local_on(
        server: TestServer,
        options: ClusterOptions,
        workers: usize,
    ) -> Result<Cluster, ClusterError> {
        let client = client::Submitter::connect(options.clone().slots(workers * 64))?;
        let mut local = Local {
            workers: Vec::new(),
            server,
        };
        for index in 0..workers {
            // Short tasks are what a local cluster mostly runs: hold more per slot, so a
            // result's round trip through the server never leaves the process idle.
            let worker_options = WorkerOptions::new(options.clone())
                .concurrency(1)
                .prefetch(LOCAL_PREFETCH)
                .name(format!("local-{}-{index}", std::process::id()));
            local
                .workers
                .push(worker::LocalWorker::start(worker_options)?);
        }
        Ok(Cluster {
            backing: Backing::Nats {
                client: Arc::new(client),
                local: Some(Box::new(local)),
            },
        })
    }

    /// What this cluster runs on.
    pub fn backend(&self) -> Backend {
        match self.backing {
            Backing::Nats { .. } => Backend::Nats,
            Backing::Pool(_) => Backend::ProcessPool,
        }
    }

    fn nats(&self, what: &str) -> Result<&client::Submitter, ClusterError> {
        match &self.backing {
            Backing::Nats { client, .. } => Ok(client),
            Backing::Pool(_) => Err(ClusterError::Unsupported {
                message: format!(
                    "{what} needs a NATS cluster; this one is the local ProcessPool fallback \
                     (install nats-server)"
                ),
            }),
        }
    }

    /// Workers, queue depth, tasks in flight, redeliveries and dead letters.
    ///
    /// # Errors
    /// [`ClusterError::Unsupported`] on the process-pool fallback; a JetStream error.
    pub fn status(&self) -> Result<ClusterStatus, ClusterError> {
        self.nats("status")?.status()
    }

    /// The tasks in the dead-letter stream, oldest first.
    ///
    /// # Errors
    /// As [`status`](Self::status).
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, ClusterError> {
        self.nats("dead_letters")?.dead_letters()
    }

    /// Sends a dead letter back to the task queue (with a fresh delivery count) and removes it
    /// from the dead-letter stream. Its result goes to the submitter that first sent it, if
    /// that one still listens.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] for an unknown id; as [`status`](Self::status).
    pub fn requeue(&self, id: &DeadLetterId) -> Result<(), ClusterError> {
        self.nats("requeue")?.requeue(*id)
    }

    /// What the remote actor placement needs: the connection, JetStream, the I/O runtime.
    pub(crate) fn actor_link(
        &self,
    ) -> Result<
        (
            async_nats::Client,
            async_nats::jetstream::Context,
            tokio::runtime::Handle,
            ClusterOptions,
        ),
        ClusterError,
    > {
        let client = self.nats("remote actors")?;
        let (nats, js, runtime) = client.link();
        Ok((nats, js, runtime, client.options().clone()))
    }

    /// The options this cluster connected with (`None` on the process-pool fallback).
    pub fn options(&self) -> Option<&ClusterOptions> {
        self.nats("options").ok().map(|client| client.options())
    }
}

impl TestServer {
    /// [`ClusterOptions`] for this server with its token (if it has one) and a short connect
    /// timeout.
    pub fn client_options(&self) -> ClusterOptions {
        let mut options = ClusterOptions::new(self.url()).connect_timeout(Duration::from_secs(5));
        if let Some(token) = self.token() {
            options = options.token(token);
        }
        options
    }
}

impl Executor for Cluster {
    fn submit_with<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
        options: TaskOptions,
    ) -> Result<TaskHandle<R>, SubmitError> {
        match &self.backing {
            Backing::Nats { client, .. } => client.submit(&f, &arg, false, options),
            Backing::Pool(pool) => pool.submit_with(f, arg, options),
        }
    }

    fn try_submit<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
    ) -> Result<TaskHandle<R>, SubmitError> {
        match &self.backing {
            Backing::Nats { client, .. } => client.submit(&f, &arg, false, TaskOptions::new()),
            Backing::Pool(pool) => pool.try_submit(f, arg),
        }
    }

    fn submit_chunk<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        args: Vec<A>,
        options: TaskOptions,
    ) -> Result<TaskHandle<Vec<R>>, SubmitError> {
        match &self.backing {
            Backing::Nats { client, .. } => client.submit(&f, &args, true, options),
            Backing::Pool(pool) => pool.submit_chunk(f, args, options),
        }
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        match &self.backing {
            Backing::Nats { client, .. } => client.shutdown(wait, cancel_pending),
            Backing::Pool(pool) => pool.shutdown(wait, cancel_pending),
        }
    }

    fn max_workers(&self) -> usize {
        match &self.backing {
            Backing::Nats { client, .. } => client.options().slots,
            Backing::Pool(pool) => Executor::max_workers(pool),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Backing::Nats { client, local } = &mut self.backing {
            client.shutdown_for_drop();
            client.close();
            if let Some(local) = local.take() {
                for worker in local.workers {
                    worker.stop();
                }
                drop(local.server);
            }
        }
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backing {
            Backing::Nats { client, local } => f
                .debug_struct("Cluster")
                .field("backend", &Backend::Nats)
                .field("options", client.options())
                .field("local_workers", &local.as_ref().map(|l| l.workers.len()))
                .finish(),
            Backing::Pool(pool) => f
                .debug_struct("Cluster")
                .field("backend", &Backend::ProcessPool)
                .field("pool", pool)
                .finish(),
        }
    }
}
