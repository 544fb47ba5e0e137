//! The remote placement: an actor on a cluster worker, registered under an address (a pool or
//! node name) and a uid, found from any process that reaches the NATS server.
//!
//! # Design note: subjects, registry, delivery, failures
//!
//! **Same host, same frames, other wire.** A remote actor is hosted exactly as a process actor
//! is (`process::host_actor` → `start_instances` → `serve_host`, the same method table and
//! the same `ToActor` / `FromActor` frames of the task layer's codec); only the transport
//! differs: NATS messages instead of a Unix socket. The caller keeps the process placement's
//! permit-based bound (a permit per call in flight, returned by its reply; `try_` reports
//! `Full`, `*_async` waits in the `room`) and settles replies with the same `settle_frame`.
//!
//! **Subjects** (deployment prefix `P`; address and uid as subject tokens, escaped so that two
//! names never share one):
//! * `P.actor.<address>.<uid>`: calls, streams' credits, `Stop`; each member of the actor
//!   subscribes in the queue group `members` (one member, or `instances(n)` of a stateless
//!   actor spread over the workers serving the address). Core NATS request/reply, never
//!   JetStream: an actor call is a conversation with a live object, not a stored job.
//! * `P.actor.<address>.<uid>.ctl`: `Kill` and, for a pool, `Stop`: every member hears it.
//! * `P.actors.create.<address>`: creation requests. Every worker answers for the address
//!   `cluster` (a queue group: any worker) and for its own name (a node address).
//!
//! **Registry.** The key-value bucket `P_ACTORS`, key `<address>.<uid>`, value the actor's
//! type, signature, member count and the creating worker. The creator claims the key with
//! `create` (atomic on the server: it fails when the key exists), so a uid taken twice is
//! [`ActorError::DuplicateUid`] before any constructor runs; a start that fails deletes the
//! key. A graceful stop or a kill removes the key (and the subscriptions) *before* the host
//! answers `Stopped`, so a lookup after `stop()` returned is `NotFound`. A worker that died
//! leaves its keys behind: a lookup (or a creation meeting the key) probes the actor's
//! subject, and "no responders" there marks the key stale: it is deleted and the answer is
//! `NotFound` (the creation proceeds).
//!
//! **Members: a thread and a connection each.** A member runs on a thread of the worker
//! process with a NATS connection and a one-thread tokio runtime of its own: that thread reads
//! the member's subscriptions, runs the calls right there (no hand-off to another thread)
//! and publishes the replies, so a call costs the member one thread wake-up (the socket's)
//! instead of three (the worker's I/O thread, the member's thread, the I/O thread again). The
//! replies of the calls run from one batch go out together when the thread next waits for a
//! message (the outboxes' tasks run on its runtime then). The trade-offs: one connection per
//! member (cheap for tens of actors, a cost at thousands), and a method that runs long holds
//! the member's I/O with it (probes and a `Kill` are read after it returns; the probe then
//! takes the silence for "alive", never for "dead"). Isolation from the worker process (a
//! member in the worker's process pool) is not offered: a remote actor shares its worker's
//! fate (see Failures). The member ends when the worker stops serving (it watches a channel
//! whose sender the worker's actor service holds).
//!
//! **Delivery.** A caller has one inbox `_INBOX.<random>.>` per reference and one outbox per
//! actor: frames are appended to a buffer and one task publishes the buffer as one NATS message
//! (a batch of frames) whenever it is not empty, so pipelined calls share messages and flushes
//! while a lone blocking call goes out at once. The reply subject of a batch is
//! `<inbox>.<first id>.<last id>`; a member answers on `<inbox>.r.<member>`, batching its
//! replies the same way. A batch closes at about 64 KiB (the next frames start another
//! message), so a burst of pipelined calls never reaches the server's `max_payload`. NATS
//! keeps the order of one connection's messages to one subscriber, and the host runs a
//! member's calls in order, so calls from one caller run in the order sent.
//!
//! **The caller drives its own connection** ([`Lead`], shared with the cluster's submitter). Each reference has a NATS connection
//! on a one-thread runtime of its own (like a member). A caller blocked on a call lends its
//! thread to that runtime (the handle's driver): the outbox task, the connection's writer and
//! reader and the reply reader all run on the caller's thread, which sleeps in the runtime's
//! poll on the socket, so a blocking call wakes this process once (the reply) instead of three
//! times (the cluster's I/O thread to publish, again for the reply, then the caller). While no
//! caller drives, a keeper thread does (async waiters, tells, probes); a caller that finds the
//! keeper driving asks it to give the runtime up, and the keeper takes it back only after
//! [`LEAD_GRACE`](crate::cluster::lead::LEAD_GRACE) without a caller, so a loop of blocking calls keeps it. A second caller
//! blocked meanwhile waits as before (its reply is settled by whoever drives). While a caller
//! led within the grace, the keeper sleeps out the grace and looks again (callers do not wake
//! it); only after a caller drove longer than that (a long call) does it sleep until the
//! callers stop, and the last one wakes it. A loop of blocking calls thus wakes the keeper
//! once a grace, not once a call (it did: 0.8 to 0.9 wake-ups and ~20 µs of CPU per call;
//! now 0.06 and under 1 µs).
//!
//! **Who wakes the publisher** ([`Deferral`]). A call is queued on the caller's thread, outside
//! the runtime: waking the outbox's task from there writes the runtime's eventfd, and the
//! driver's next poll returns at once for it (two system calls on every blocking call's path,
//! measured with `strace -f`: the caller made 6 a call, the raw floor 2). So while a caller
//! led within the grace and nobody drives, the wake is left to the next driver, which runs a
//! hook as it starts driving, inside the runtime: the caller itself a moment later (it blocks
//! on the call), or the keeper at the grace's end (a `tell` or an awaited call right after a
//! blocking one leaves up to [`LEAD_GRACE`](crate::cluster::lead::LEAD_GRACE) later, as it
//! did before: nobody drives the runtime within the grace but a caller, so the eventfd's wake
//! waited for the keeper too; a burst that fills a 64 KiB batch wakes the task at once). A driver that started between the check
//! and the flag is caught by a second look (`SeqCst` on both sides). The caller now makes 4
//! system calls a call: the write, the read, the poll that sleeps and a zero-timeout poll
//! tokio's `block_on` makes before it polls a main future woken by a task (the member makes
//! the same 4; unavoidable while the reply is read by the connection's task).
//!
//! **What a blocking call costs, measured** (2 cores shared with other builds, load 3 to 10;
//! `cargo run --release -p crew-bench --example remote_wakeups` counts each thread's context
//! switches and CPU per call from `/proc`). Every call crosses the server twice: the caller,
//! the server, the member, the server again each wake once, and on this machine the server is
//! the largest part:
//! * Floor of the server: two blocking clients speaking the NATS text protocol over a std
//!   `TcpStream` (a throwaway program, not crew's transport), same server configuration as
//!   `Cluster::local`: 8,800 to 9,900 calls/s, p50 83 to 93 µs at load 1; 4,800 to 9,200/s, p50
//!   89 to 119 µs at load 6 to 9. Each client: 1.05 switches and 18 to 25 µs of CPU per call;
//!   the server: 2.2 to 3.6 switches and 70 to 120 µs of CPU per call (`GOMAXPROCS=1`). With
//!   `GOMAXPROCS=2` the server switches 5.8 to 7.8 times a call and is no faster (crew: 4,000 to
//!   6,200/s against 7,900 to 8,600/s with 1 in the same minutes), so `Cluster::local` keeps 1.
//! * async-nats, both sides on current-thread runtimes driven in line, a plain subscription
//!   and `publish_with_reply`: 5,000 to 9,400/s, p50 91 to 150 µs; each client 32 to 48 µs of
//!   CPU and 1.1 switches per call (4 syscalls instead of 2: tokio's zero-timeout poll after a
//!   read, and the write). Its `request()` (the shared inbox and a map of waiters) is slower:
//!   2,900 to 5,900/s, p50 156 to 216 µs; crew does not use it. The client sets `TCP_NODELAY`
//!   and writes each command batch at once; the server is started without `-D`/`-V`, and its
//!   `ping_interval` and `write_deadline` do not touch a call.
//! * crew (this design): the caller and the member 1.17 to 1.19 switches per call each, 28 to
//!   34 µs of CPU each (the async-nats floor); the keeper 0.06 switches and under 1 µs; this
//!   process 60 to 64 µs, the server 62 to 63 µs: 7,700 to 8,900 calls/s, p50 98 to 105 µs at
//!   load 3 to 5. The member's replies leave without a wake from outside its runtime (its
//!   outboxes' tasks are woken from inside, before it waits: no eventfd write and no extra
//!   poll per call).
//!
//! * Since the caller leaves its publisher's wake to the next driver (see "Who wakes the
//!   publisher"), measured on 2026-11-26 at load 6 to 10 (builds of five other engineers),
//!   the old and new binaries alternating: the caller's CPU per call 42 to 50 µs against 48 to
//!   57 µs (median of 3 each: 43.6 against 50.5), 4 system calls a call instead of 6;
//!   `crew bench actors --quick --only crew-remote`, 18 runs each at load 3 to 10: median
//!   6,075 blocking calls/s against 5,900 (within the noise). The raw floor (`remote_wakeups`,
//!   same minutes): 8,700 to 9,000 calls/s at load 4.5 (crew 0.62 of it in that run), 4,500
//!   to 10,200 at load 6 to 10. The server's threads make more futex calls and sleeps per
//!   call for crew's clients than for the raw ones (`strace -c -f -p`, 0.5 futex and 1.9
//!   nanosleep a call against 0.15 and 0.9); crew's subject shapes are not why
//!   (`FLOOR_STYLE=crew`).
//!
//! What is left is the server (about half the CPU on the call's path) and the kernel (a
//! wake-up through the loopback socket is most of each client's CPU, `sock_def_readable`); the
//! user-space part of a crew client (tokio, async-nats, framing) is about 20 µs a side.
//!
//! **Failures.**
//! * No actor: the server answers a batch sent where nobody listens with "no responders"
//!   (status 503) at the batch's reply subject: the calls `first..=last` fail with
//!   [`ActorError::NotFound`] at once, never a timeout.
//! * The worker dies: nobody answers the calls it held. When the oldest call in flight (or a
//!   stop) has waited [`PROBE_AFTER`], the caller probes the actor's subject; "no responders"
//!   means every member is gone: the calls in flight fail with [`TaskError::WorkerDied`]
//!   naming the worker, later calls with `Stopped`.
//! * One member of a pool dies (member probes): the others keep answering, so the actor's
//!   subject does not tell. Each member also subscribes to a subject of its own,
//!   `<call subject>.m.<member>` (names from the creation's `Ready` answers, kept in the
//!   registry entry for finders). With the actor probe the caller sends a *round*: a probe to
//!   each live member, asking about the calls handed to its connection before (`sent_before`).
//!   A live member answers with the ids of this caller's calls it has read and not yet
//!   answered (its outbox tracks them: ids in as it reads frames, out as it writes replies,
//!   [`Answers`]); a dead one's subject gives "no responders". Why the answer is exact: NATS
//!   keeps one connection's messages to another in order, so every call routed to a live
//!   member before the probe reaches it first; its thread reads calls before probes (a biased
//!   select on a one-thread runtime), and the answer leaves through the same outbox as its
//!   replies, so every reply written before it reaches the caller first. When every member
//!   asked has answered and one is dead, the calls up to `sent_before` still in flight and
//!   claimed by no one were on the dead member: they fail with `WorkerDied` naming its worker.
//!   Later calls go to the live members (the server drops a dead connection's subscription);
//!   the dead member counts as stopped for `stop()`. A live member busy in a long method
//!   answers late: the round waits for it, probing again who has not answered (a busy member
//!   is never taken for dead).
//! * An actor method that panics fails its call with `Panicked`; the actor lives on (as in
//!   the other placements). A crash of the worker process ends the actor: it is **not
//!   restarted** (decided: its constructor arguments live with the caller that created it,
//!   which may be gone, and a second creator could race a restart for the uid). The calls in
//!   flight fail with `WorkerDied`, later calls with `Stopped`, the registry entry is cleared
//!   by the next lookup; create it again (same address and uid) to have it back.
//!
//! * The connection to the server fails ([`ActorError::ConnectionLost`], whose message says
//!   what became of the call and what to do). Clients reconnect by themselves (async-nats,
//!   with a backoff growing to 2 s, crew's `RECONNECT_BACKOFF_MAX`) and keep their
//!   subscriptions through it; an idle connection pings every 10 s, so one whose server
//!   vanished without closing it is found dead in about half a minute.
//!   - *Closed for good* (a publish fails: the client closed; or the inbox's subscription
//!     ends): the calls in flight and every later call, tell, stop or kill fail at once; the
//!     reference cannot be used again (`find` the actor again; the actor is unharmed). A
//!     publish error used to end the publishing task silently, and every later call hung. A
//!     member whose publish fails says so on stderr; its subscriptions end with its client,
//!     so it ends.
//!   - *Down* (the server killed or unreachable): what is asked while the caller's connection
//!     is down (calls, tells, `stop`, `kill`) is refused at once, **not sent** (it never runs
//!     later). Calls in flight fail once the watchdog has seen the connection down for
//!     [`PROBE_AFTER`]: their outcome is unknown (they may have run); a stream ends with that
//!     error. A stop in flight fails the same way and ends the reference (the stop may not
//!     have reached the actor). When the server is back the same reference works again.
//!   - *A drop shorter than that*: a call or reply lost in it is found by the member probes
//!     (every member answers and none holds the call, sent before the probes): it fails as
//!     lost, outcome unknown, never waits forever.
//!   - *Just back*: for [`RECONNECT_GRACE`] after the caller's connection came back, "no
//!     responders" may mean the actor's worker has not reconnected yet: calls answered so
//!     fail with `ConnectionLost` (retry), not `NotFound`, the actor probe does not end
//!     the reference, a member probe does not mark a member dead, and a stop that reached
//!     nobody fails with `ConnectionLost` (never reported done). Only the caller's own
//!     reconnect opens the grace: when the worker's connection alone drops and comes back,
//!     its actors look gone meanwhile (`NotFound`, and a probe then ends the reference with
//!     `WorkerDied`).
//!   - *The worker's side*: a member's thread waits on its subscriptions, which survive the
//!     reconnect: it neither ends nor spins while the server is down (a test measures the
//!     worker's CPU), and serves again once both sides are back. Replies it wrote meanwhile
//!     leave on reconnect (a caller that failed those calls ignores them). The worker's
//!     creation subscriptions come back too: new creations work after a restart. A member
//!     stopping while the server is down waits [`CLOSE_FLUSH`] at most for its last flush.
//!   - A `tell` in flight when the connection fails has nobody to tell: it may or may not
//!     have run, as any fire-and-forget message; one asked while down is refused (`Err`).
//!   - *The registry across a restart*: the bucket's storage is the cluster's
//!     [`Storage`](crate::cluster::Storage). With `File` the entries survive; with `Memory`
//!     (`Cluster::local`, tests) they are gone while the actors live on and serve the
//!     references that exist. Then `find` says the entry was lost (something answers at the
//!     actor's subject) instead of `NotFound`, and a creation under a live actor's uid is
//!     refused as `DuplicateUid` (a probe after the claim) rather than adding a second
//!     actor to its members' queue group. The bucket is made again by the next creation.
//!
//! **Stopping a pool.** A single member gets `Stop` on the call subject, after the calls. A
//! pool's members get it on the control subject, which the caller publishes through the same
//! outbox as its calls, so the server delivers every call sent before it (to whichever member)
//! ahead of it on that member's connection. A member that reads `Stop` there unsubscribes,
//! then serves the calls already delivered (the subscription's buffer stays readable until
//! empty) before its stop hook runs: a pool's `stop()` never overtakes calls sent before it.
//!
//! **Limits, for now.** A worker serves the address `cluster` and its own name (no other pool
//! names yet). The actor runs on threads of the worker process itself (not in its process
//! pool). A serialized reference to a remote actor deserializes through the process's own
//! registry (`Missing`): use `find` instead. Members do not write their registry entry
//! again after a server restart lost it (see Failures): such an actor is reached through the
//! references that exist, not found anew.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use async_nats::{HeaderMap, StatusCode, Subject};
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::actor::caller::{fail_pending, settle_frame, Inflight, Pending, Transport};
use crate::actor::ending::{Ending, Request};
use crate::actor::process::{
    actor_signature, serve_host, start_instances, ActorEntry, FromActor, HostArgs, HostConn,
    HostTransport, ToActor,
};
use crate::actor::room::CallerBound;
use crate::actor::{Actor, ActorError, ActorOptions, ActorRef, Address, Target};
use crate::cluster::connect::RECONNECT_BACKOFF_MAX;
use crate::cluster::lead::Lead;
use crate::cluster::{Cluster, ClusterError, ClusterOptions};
use crate::error::{TaskError, WorkerId};
use crate::task::codec::{self, split_frame, write_frame};
use crate::task::protocol::Outcome;
use crate::task::{Driver, TaskHandle};

/// How long calls may wait for a reply before the caller checks the actor is still there.
pub const PROBE_AFTER: Duration = Duration::from_millis(300);
/// How long after its connection came back a caller takes "no responders" for "the actor's
/// worker has not reconnected yet" rather than "gone": every client retries with a backoff
/// that grows to [`RECONNECT_BACKOFF_MAX`], so the worker's connection may come back that much
/// later than the caller's (plus its connect and resubscribe, given 3 s on a loaded machine).
/// It covers the caller's own reconnect only: a worker whose connection alone dropped and
/// came back is not covered (its actors look gone meanwhile: `NotFound`, `WorkerDied`).
const RECONNECT_GRACE: Duration = RECONNECT_BACKOFF_MAX.saturating_add(Duration::from_secs(3));
/// How long a creation may take (the constructor and start hook included).
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// The NATS header marking a liveness probe (answered by the host's I/O task, never queued).
const PROBE_HEADER: &str = "Crew-Probe";
/// The queue group of an actor's members.
const MEMBERS: &str = "members";

/// The address every cluster worker serves: "any worker" ([`Address::cluster`]).
pub(crate) const CLUSTER_ADDRESS: &str = "cluster";

/// A name as one subject token (and key-value key part): letters, digits, `-` and `_` stay,
/// every other byte is `=XX`, so two names never share a token.
fn token(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("={byte:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("=00");
    }
    out
}

fn call_subject(prefix: &str, address: &Address, uid: &str) -> String {
    format!("{prefix}.actor.{}.{}", token(address.as_str()), token(uid))
}

/// A member's own subject, where the callers' member probes reach it alone.
fn member_subject(call_subject: &str, member: &str) -> String {
    format!("{call_subject}.m.{member}")
}

fn create_subject(prefix: &str, address: &str) -> String {
    format!("{prefix}.actors.create.{}", token(address))
}

fn registry_key(address: &Address, uid: &str) -> String {
    format!("{}.{}", token(address.as_str()), token(uid))
}

/// The registry bucket `P_ACTORS`.
async fn registry(
    js: &jetstream::Context,
    options: &ClusterOptions,
) -> Result<kv::Store, ClusterError> {
    let name = format!("{}_ACTORS", options.prefix_name().to_ascii_uppercase());
    if let Ok(store) = js.get_key_value(&name).await {
        return Ok(store);
    }
    js.create_key_value(kv::Config {
        bucket: name.clone(),
        history: 1,
        storage: match options.storage {
            crate::cluster::Storage::Memory => jetstream::stream::StorageType::Memory,
            crate::cluster::Storage::File => jetstream::stream::StorageType::File,
        },
        ..Default::default()
    })
    .await
    .map_err(|e| ClusterError::JetStream {
        message: format!("cannot create the key-value bucket {name}: {e}"),
    })
}

/// A registry entry.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    actor: String,
    signature: u64,
    members: usize,
    /// The members, once they started (empty while the creation runs).
    started: Vec<MemberName>,
}

/// A member of an actor: its name (its subject's last token) and its worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MemberName {
    member: String,
    worker: String,
    pid: u32,
}

/// A creation request to a worker.
#[derive(Debug, Serialize, Deserialize)]
struct CreateRequest {
    address: Address,
    key: String,
    host: HostArgs,
}

#[derive(Debug, Serialize, Deserialize)]
enum CreateReply {
    /// Started: the member's name (see [`member_subject`]) and its worker.
    Ready {
        member: String,
        worker: String,
        pid: u32,
    },
    Failed(String),
}

/// What a [`Cluster`] lends its actors: its connection and I/O runtime.
#[derive(Clone)]
pub(crate) struct Link {
    nats: async_nats::Client,
    js: jetstream::Context,
    runtime: tokio::runtime::Handle,
    options: ClusterOptions,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("prefix", &self.options.prefix_name())
            .finish_non_exhaustive()
    }
}

impl Link {
    pub(crate) fn of(cluster: &Cluster) -> Result<Link, ActorError> {
        let (nats, js, runtime, options) = cluster.actor_link().map_err(|error| {
            ActorError::Invalid(format!("remote actors need a NATS cluster: {error}"))
        })?;
        Ok(Link {
            nats,
            js,
            runtime,
            options,
        })
    }

    /// Runs `future` on the cluster's runtime and waits for it (from any thread).
    fn run<T: Send + 'static>(
        &self,
        future: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, ActorError> {
        futures::executor::block_on(self.runtime.spawn(future))
            .map_err(|error| ActorError::Invalid(format!("the cluster's runtime failed: {error}")))
    }
}

fn cluster_error(error: impl std::fmt::Display) -> ActorError {
    ActorError::Invalid(format!("the cluster failed: {error}"))
}

// ---------------------------------------------------------------------------------------------
// Outboxes: frames appended, published in batches.

/// Where a batch goes.
enum To {
    /// The outbox's subject.
    Main,
    /// `<subject>.ctl`, which every member hears.
    Control,
    /// A subject of its own (a member's answer to a probe, at the probe's reply subject).
    Subject(String),
}

/// One message to publish: its frames, the call ids among them (first, last), where it goes.
struct Batch {
    bytes: Vec<u8>,
    ids: Option<(u64, u64)>,
    to: To,
}

struct OutState {
    messages: Vec<Batch>,
    closed: bool,
    /// A host's outbox: the calls of this caller the member has read and not yet answered
    /// (`true`: a stream, answered by its end), and what follows the frames it writes.
    held: HashMap<u64, bool>,
    answers: Answers,
}

/// What [`Outbox::push_frames`] is given.
enum Pushed {
    /// Whole frames (a caller's).
    WholeFrames,
    /// A host's write: a frame, or a piece of one (see [`Answers`]); `frame_len` is the
    /// length its prefix gives, when it starts with one.
    HostWrite { frame_len: Option<usize> },
}

/// Frames waiting for the publishing task, which sends what is there, one message per batch.
struct Outbox {
    state: Mutex<OutState>,
    ready: Notify,
    /// One call per message (a stateless pool: each call may go to another member).
    one_call_each: bool,
    /// The last call id handed to the connection (a member probe asks about the ids up to it).
    published: AtomicU64,
    /// The most bytes one message may carry (the server's `max_payload`): a caller's batch is
    /// split before it grows past it, since a message the client refuses is never sent.
    limit: usize,
    /// The publishing task (a member awaits it before it closes its connection).
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Who wakes the publishing task for frames pushed from outside its runtime.
    deferral: Deferral,
    deferred: std::sync::atomic::AtomicBool,
    /// A publish failed (the connection closed): the task ended, nothing more is sent.
    failed: std::sync::atomic::AtomicBool,
    /// Told why, once, when a publish fails (a caller fails its calls; a member has none).
    on_failure: std::sync::OnceLock<Box<dyn Fn(String) + Send + Sync>>,
}

/// Who wakes an outbox's publishing task. A wake from outside the runtime writes the
/// runtime's eventfd and costs its next driver an extra poll (two system calls on a blocking
/// call's path); a wake from inside is a push on its run queue. So where a driver comes soon
/// anyway, the wake is left to it.
enum Deferral {
    /// Woken at once.
    Never,
    /// A member running its calls on its own thread (this one): frames it pushes are sent
    /// when it next waits for a message ([`Member::receive`] wakes the task from inside).
    Member(std::thread::ThreadId),
    /// A caller's outbox: while a blocking caller led within [`LEAD_GRACE`] and nobody
    /// drives ([`Lead::defers_wakes`]), the next driver wakes it as it starts (its `on_drive`
    /// hook): the caller itself when it blocks on the call, else the keeper at the grace's
    /// end (a `tell` or an awaited call after a blocking one waits that long at most, as
    /// with a wake from outside: the keeper does not drive within the grace).
    ///
    /// [`LEAD_GRACE`]: crate::cluster::lead::LEAD_GRACE
    Lead(Weak<Lead>),
}

/// A batch grows to about this size, then the next frames start another message (a burst of
/// pipelined calls stays well under the server's `max_payload`).
const BATCH_BYTES: usize = 64 * 1024;

impl Outbox {
    /// An empty outbox, its publishing task not started.
    fn new(limit: usize, one_call_each: bool, deferral: Deferral) -> Outbox {
        Outbox {
            state: Mutex::new(OutState {
                messages: Vec::new(),
                closed: false,
                held: HashMap::new(),
                answers: Answers::default(),
            }),
            ready: Notify::new(),
            one_call_each,
            published: AtomicU64::new(0),
            limit,
            task: Mutex::new(None),
            deferral,
            deferred: std::sync::atomic::AtomicBool::new(false),
            failed: std::sync::atomic::AtomicBool::new(false),
            on_failure: std::sync::OnceLock::new(),
        }
    }

    /// A publish failed with `error`: nothing more leaves (what is queued is dropped), and
    /// whoever owns the outbox hears why (it fails the calls waiting on it).
    fn fail(&self, error: String) {
        self.failed.store(true, Ordering::SeqCst);
        {
            let mut state = self.state.lock();
            state.closed = true;
            state.messages.clear();
        }
        match self.on_failure.get() {
            Some(told) => told(error),
            None => eprintln!(
                "crew: a remote actor's replies could not be sent ({error}): its connection \
                 to the NATS server closed; the actor's member ends"
            ),
        }
    }

    /// Whether a publish failed (see [`fail`](Self::fail)).
    fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// An outbox and its publishing task: to `subject`, with the reply subject
    /// `<inbox>.<first>.<last>` (or `<inbox>.c` without calls) when `inbox` is given.
    fn start(
        nats: &async_nats::Client,
        runtime: &tokio::runtime::Handle,
        subject: String,
        inbox: Option<String>,
        one_call_each: bool,
        deferral: Deferral,
    ) -> Arc<Outbox> {
        let limit = match nats.server_info().max_payload {
            0 => usize::MAX,
            limit => limit,
        };
        let outbox = Arc::new(Outbox::new(limit, one_call_each, deferral));
        let nats = nats.clone();
        let publishing = outbox.clone();
        let subject = Subject::from(subject);
        let control = Subject::from(format!("{subject}.ctl"));
        let task = runtime.spawn(async move {
            loop {
                publishing.ready.notified().await;
                loop {
                    let (messages, closed) = {
                        let mut state = publishing.state.lock();
                        (std::mem::take(&mut state.messages), state.closed)
                    };
                    if messages.is_empty() {
                        if closed {
                            return;
                        }
                        break;
                    }
                    for batch in messages {
                        let bytes = Bytes::from(batch.bytes);
                        let subject = match batch.to {
                            To::Main => subject.clone(),
                            To::Control => control.clone(),
                            To::Subject(other) => Subject::from(other),
                        };
                        let sent = match &inbox {
                            Some(inbox) => {
                                let reply = match batch.ids {
                                    Some((first, last)) => format!("{inbox}.{first}.{last}"),
                                    None => format!("{inbox}.c"),
                                };
                                nats.publish_with_reply(subject, reply, bytes).await
                            }
                            None => nats.publish(subject, bytes).await,
                        };
                        if let Err(error) = sent {
                            // Not only "too large" (a caller's batches stay under the limit, a
                            // member's replies too): the client closed. Said, never silent: the
                            // calls would wait for replies that cannot come.
                            publishing.fail(error.to_string());
                            return;
                        }
                        if let Some((_, last)) = batch.ids {
                            publishing.published.fetch_max(last, Ordering::AcqRel);
                        }
                    }
                }
            }
        });
        *outbox.task.lock() = Some(task);
        outbox
    }

    /// Appends whole frames (`frames` returns the call id among them, if any) and wakes the
    /// publisher. They start a message of their own when the batch would pass [`limit`].
    ///
    /// [`limit`]: Outbox::limit
    fn push(&self, frames: impl FnOnce(&mut Vec<u8>) -> Option<u64>) {
        self.push_frames(|buffer, _| frames(buffer), Pushed::WholeFrames);
    }

    /// [`push`](Self::push), with the host's state of this caller at hand; `pushed` says
    /// where frames start (the batch is split only there).
    fn push_frames(
        &self,
        frames: impl FnOnce(&mut Vec<u8>, &mut OutState) -> Option<u64>,
        pushed: Pushed,
    ) {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let (frame_start, frame_len) = match pushed {
            Pushed::WholeFrames => (true, None),
            Pushed::HostWrite { frame_len } => (state.answers.at_frame_start(), frame_len),
        };
        let was_empty = state.messages.is_empty();
        // A message holds whole frames (the caller splits each one into frames), so a full
        // batch is closed only where a frame starts.
        let full = frame_start
            && state
                .messages
                .last()
                .is_some_and(|batch| batch.bytes.len() >= BATCH_BYTES);
        let split = full
            || state.messages.last().is_some_and(|batch| {
                !matches!(batch.to, To::Main) || (self.one_call_each && batch.ids.is_some())
            });
        if was_empty || split {
            state.messages.push(Batch {
                bytes: Vec::new(),
                ids: None,
                to: To::Main,
            });
        }
        let mut batch = state.messages.pop().expect("a message to fill");
        let before = batch.bytes.len();
        let id = frames(&mut batch.bytes, state);
        let appended = batch.bytes.len() - before;
        let incoming = frame_len.map_or(appended, |whole| whole.max(appended));
        if frame_start && before > 0 && before + incoming > self.limit {
            // The new frames go in a message of their own (one frame alone fits: `send`
            // refuses a bigger call).
            let bytes = batch.bytes.split_off(before);
            state.messages.push(batch);
            batch = Batch {
                bytes,
                ids: None,
                to: To::Main,
            };
        }
        if let Some(id) = id {
            batch.ids = Some(match batch.ids {
                Some((first, _)) => (first, id),
                None => (id, id),
            });
        }
        state.messages.push(batch);
        drop(guard);
        if was_empty {
            self.wake();
        } else if full {
            // A burst: the task sends what is there now, whoever was to wake it.
            self.ready.notify_one();
        }
    }

    /// Queues `bytes` as a message of its own to `to`, in order with the messages before it.
    fn push_message(&self, bytes: Vec<u8>, to: To) {
        let mut state = self.state.lock();
        let was_empty = state.messages.is_empty();
        state.messages.push(Batch {
            bytes,
            ids: None,
            to,
        });
        drop(state);
        if was_empty {
            self.wake();
        }
    }

    /// A host's outbox: the member read call `id` of this caller.
    fn hold(&self, id: u64, stream: bool) {
        self.state.lock().held.insert(id, stream);
    }

    /// A host's outbox: answers a member probe at `reply` with the ids of this caller's calls
    /// the member holds, after every answer it wrote before (see the design note, "Failures").
    fn answer_probe(&self, reply: String) {
        let mut state = self.state.lock();
        let held: Vec<u64> = state.held.keys().copied().collect();
        let was_empty = state.messages.is_empty();
        state.messages.push(Batch {
            bytes: codec::encode(&held).unwrap_or_default(),
            ids: None,
            to: To::Subject(reply),
        });
        drop(state);
        if was_empty {
            self.wake();
        }
    }

    /// Wakes the publishing task, or leaves that to whoever comes soon (see [`Deferral`]).
    fn wake(&self) {
        match &self.deferral {
            Deferral::Member(thread) if *thread == std::thread::current().id() => {
                self.deferred.store(true, Ordering::SeqCst);
                return;
            }
            Deferral::Lead(lead) => {
                if let Some(lead) = lead.upgrade() {
                    if lead.defers_wakes() {
                        self.deferred.store(true, Ordering::SeqCst);
                        if lead.drives_now() {
                            // A driver started meanwhile, perhaps past its hook.
                            self.wake_deferred();
                        }
                        return;
                    }
                }
            }
            _ => {}
        }
        self.ready.notify_one();
    }

    /// Wakes the publishing task if a wake was left to now (called inside the runtime, or by
    /// a caller that lost the race with a driver).
    fn wake_deferred(&self) {
        if self.deferred.swap(false, Ordering::SeqCst) {
            self.ready.notify_one();
        }
    }

    fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_one();
    }
}

/// The length of a frame's prefix (header length `u32`, payload length `u64`), as the task
/// layer's codec writes it (a test checks the two agree).
const FRAME_PREFIX: usize = 12;
/// The most bytes a call's or reply's frame header takes (postcard: an enum tag and varints).
const MAX_CALL_HEADER: usize = 64;

/// Follows the frames a host writes to one caller (a large one arrives in pieces) to see
/// which calls it answered: a call's reply, a stream's end (or its failed reply).
#[derive(Default)]
struct Answers {
    /// The prefix and header of the frame at hand, as far as they came.
    head: Vec<u8>,
    /// Payload bytes of the frame at hand still to pass.
    skip: u64,
    /// The bytes stopped making sense (never from this crate's host): stop following.
    lost: bool,
}

impl Answers {
    /// Whether the next byte starts a frame (and the bytes still make sense).
    fn at_frame_start(&self) -> bool {
        !self.lost && self.skip == 0 && self.head.is_empty()
    }

    fn observe(&mut self, mut bytes: &[u8], held: &mut HashMap<u64, bool>) {
        while !bytes.is_empty() && !self.lost {
            if self.skip > 0 {
                let passed = self.skip.min(bytes.len() as u64) as usize;
                self.skip -= passed as u64;
                bytes = &bytes[passed..];
                continue;
            }
            let need = if self.head.len() < FRAME_PREFIX {
                FRAME_PREFIX
            } else {
                let header_len =
                    u32::from_le_bytes(self.head[..4].try_into().expect("4 bytes")) as usize;
                if header_len == 0 || header_len > 64 * 1024 {
                    self.lost = true;
                    return;
                }
                FRAME_PREFIX + header_len
            };
            let take = (need - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.head.len() < need || need == FRAME_PREFIX {
                continue;
            }
            match codec::decode::<FromActor>(&self.head[FRAME_PREFIX..]) {
                Ok(FromActor::Reply { id, outcome }) => {
                    if !matches!(outcome, Outcome::Ok) || held.get(&id) == Some(&false) {
                        held.remove(&id);
                    }
                }
                Ok(FromActor::End { id, .. }) => {
                    held.remove(&id);
                }
                Ok(_) => {}
                Err(_) => {
                    self.lost = true;
                    return;
                }
            }
            self.skip = u64::from_le_bytes(self.head[4..12].try_into().expect("8 bytes"));
            self.head.clear();
        }
    }
}

/// The host's writer to one caller: frames go to that caller's outbox.
struct OutboxWriter(Arc<Outbox>);

impl Write for OutboxWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // The host writes a frame in one write, or a large one in pieces: a write that starts
        // a frame may begin a new message (the batch is split at the message limit there).
        let frame_len = bytes.get(..FRAME_PREFIX).map(|prefix| {
            let header = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes"));
            let payload = u64::from_le_bytes(prefix[4..].try_into().expect("8 bytes"));
            FRAME_PREFIX
                .saturating_add(header as usize)
                .saturating_add(usize::try_from(payload).unwrap_or(usize::MAX))
        });
        self.0.push_frames(
            |buffer, state| {
                state.answers.observe(bytes, &mut state.held);
                buffer.extend_from_slice(bytes);
                None
            },
            Pushed::HostWrite { frame_len },
        );
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The worker side.

/// What the remote host gets from the worker: the member's own connection and runtime (see
/// the design note, "Members"), its subscriptions, and a way to report readiness and to leave.
/// Not a public API.
#[doc(hidden)]
pub struct NatsHost {
    /// The member's own connection, on its own runtime.
    own: Link,
    runtime: tokio::runtime::Runtime,
    /// The worker's link (the registry's bucket lives on its connection).
    worker_link: Link,
    registry: Option<kv::Store>,
    key: String,
    calls: async_nats::Subscriber,
    control: async_nats::Subscriber,
    /// This member's own subject (`<subject>.m.<member>`): member probes.
    probes: async_nats::Subscriber,
    /// This member's name among the actor's members (a subject token).
    member: String,
    /// Ends (the sender dropped) when the worker stops serving.
    worker_gone: tokio::sync::watch::Receiver<()>,
    /// The worker's name and pid, the answer to a probe.
    whoami: Bytes,
    ready: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
}

impl std::fmt::Debug for NatsHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsHost").finish_non_exhaustive()
    }
}

/// The base of a caller's reply subject (`<inbox>.<first>.<last>` or `<inbox>.c` →
/// `<inbox>`).
fn inbox_of(reply: &str) -> &str {
    if let Some(base) = reply.strip_suffix(".c") {
        return base;
    }
    let mut base = reply;
    for _ in 0..2 {
        if let Some(dot) = base.rfind('.') {
            base = &base[..dot];
        }
    }
    base
}

/// The host's connections, by caller inbox.
type Conns = HashMap<String, (Arc<HostConn>, Arc<Outbox>)>;

/// What the member's subscriptions gave.
enum Got {
    /// A batch of frames on the call subject.
    Calls(async_nats::Message),
    /// A frame on the control subject.
    Control(async_nats::Message),
    /// A member probe: which of the caller's calls does this member hold?
    Probe(async_nats::Message),
    /// Nothing more: the subscriptions ended or the worker stops.
    Gone,
}

/// One member being served: its subscriptions, its callers' connections, where it is in the
/// batch at hand.
struct Member {
    host: NatsHost,
    conns: Conns,
    current: Option<(Arc<HostConn>, Arc<Outbox>, Bytes, usize)>,
    /// A pool's `Stop` came on the control subject: serve the calls that were already
    /// delivered, then stop, answering on this connection.
    stopping: Option<Arc<HostConn>>,
    left: bool,
    /// This thread, when it runs the calls itself (one instance, one call at a time): its
    /// outboxes leave their wakes to [`receive`](Self::receive) ([`Deferral::Member`]). `None`
    /// with a mailbox, whose threads write replies, and where this thread may block on a full
    /// mailbox.
    defer_on: Option<std::thread::ThreadId>,
}

impl Member {
    fn conn_for(&mut self, inbox: &str) -> (Arc<HostConn>, Arc<Outbox>) {
        if let Some((conn, outbox)) = self.conns.get(inbox) {
            return (conn.clone(), outbox.clone());
        }
        if self.conns.len() >= 256 {
            // Forget callers without open streams (their outboxes end once sent).
            self.conns.retain(|_, (conn, outbox)| {
                let keep = conn.has_streams();
                if !keep {
                    outbox.close();
                }
                keep
            });
        }
        let outbox = Outbox::start(
            &self.host.own.nats,
            &self.host.own.runtime,
            format!("{inbox}.r.{}", self.host.member),
            None,
            false,
            self.defer_on.map_or(Deferral::Never, Deferral::Member),
        );
        let conn = Arc::new(
            HostConn::new(Box::new(OutboxWriter(outbox.clone())))
                .with_payload_limit(outbox.limit.saturating_sub(FRAME_PREFIX + MAX_CALL_HEADER)),
        );
        self.conns
            .insert(inbox.to_owned(), (conn.clone(), outbox.clone()));
        (conn, outbox)
    }

    /// Leaves: unsubscribes (no new calls are delivered) and clears the registry entry, before
    /// the host answers `Stopped`.
    fn leave(&mut self) {
        if std::mem::replace(&mut self.left, true) {
            return;
        }
        let host = &mut self.host;
        let nats = host.own.nats.clone();
        let (calls, control) = (&mut host.calls, &mut host.control);
        host.runtime.block_on(async move {
            // The member subject stays until the connection closes: a probe meanwhile finds
            // the member alive (it still answers the calls it holds).
            let _ = calls.unsubscribe().await;
            let _ = control.unsubscribe().await;
            // Bounded: a flush waits for the server, which may be down (see Failures).
            let _ = tokio::time::timeout(CLOSE_FLUSH, nats.flush()).await;
        });
        if let Some(kv) = host.registry.clone() {
            let key = host.key.clone();
            let _ = host.worker_link.run(async move {
                let _ = kv.delete(&key).await;
            });
        }
    }

    /// Waits for the next message (the replies queued meanwhile go out while it waits: the
    /// outboxes' tasks run on this runtime), answering probes on the way.
    fn receive(&mut self) -> Got {
        let host = &mut self.host;
        let (calls, control, probes, gone) = (
            &mut host.calls,
            &mut host.control,
            &mut host.probes,
            &mut host.worker_gone,
        );
        let (nats, whoami) = (&host.own.nats, &host.whoami);
        let draining = self.stopping.is_some();
        let conns = &self.conns;
        host.runtime.block_on(async move {
            // Inside the runtime: the replies this thread wrote go out before it waits.
            for (_, outbox) in conns.values() {
                outbox.wake_deferred();
            }
            loop {
                tokio::select! {
                    biased;
                    message = calls.next() => match message {
                        Some(message) if is_probe(&message) => {
                            if let Some(reply) = message.reply {
                                let _ = nats.publish(reply, whoami.clone()).await;
                            }
                        }
                        Some(message) => return Got::Calls(message),
                        None => return Got::Gone,
                    },
                    message = control.next(), if !draining => match message {
                        Some(message) if is_probe(&message) => {}
                        Some(message) => return Got::Control(message),
                        None => return Got::Gone,
                    },
                    // After the calls (biased): every call delivered before a probe has been
                    // read when the probe is (one thread runs this and the connection).
                    message = probes.next() => match message {
                        Some(message) => return Got::Probe(message),
                        None => return Got::Gone,
                    },
                    _ = gone.changed(), if !draining => return Got::Gone,
                }
            }
        })
    }

    /// The next frame for `serve_host`: from the batch at hand, else the next message.
    fn next(&mut self) -> Option<(Arc<HostConn>, ToActor, Vec<u8>)> {
        loop {
            if let Some((conn, outbox, payload, at)) = &mut self.current {
                if *at < payload.len() {
                    match split_frame::<ToActor>(&payload[*at..]) {
                        Ok((header, body, rest)) => {
                            *at = payload.len() - rest.len();
                            let conn = conn.clone();
                            let body = body.to_vec();
                            let leaving = match header {
                                ToActor::Call { id, .. } => {
                                    outbox.hold(id, false);
                                    false
                                }
                                ToActor::Stream { id, .. } => {
                                    outbox.hold(id, true);
                                    false
                                }
                                ToActor::Cancel { id } => {
                                    outbox.state.lock().held.remove(&id);
                                    false
                                }
                                ToActor::Stop | ToActor::Kill => true,
                                ToActor::Credit { .. } => false,
                            };
                            if leaving {
                                self.leave();
                            }
                            return Some((conn, header, body));
                        }
                        Err(message) => {
                            eprintln!("crew: a malformed message for an actor: {message}");
                        }
                    }
                }
                self.current = None;
            }
            match self.receive() {
                Got::Calls(message) => {
                    if let Some(reply) = message.reply {
                        let (conn, outbox) = self.conn_for(inbox_of(&reply));
                        self.current = Some((conn, outbox, message.payload, 0));
                    }
                }
                Got::Probe(message) => {
                    // The reply subject is `<inbox>.p.<round>.<index>`.
                    let Some(reply) = message.reply else { continue };
                    let Some(inbox) = reply.rsplitn(4, '.').nth(3) else {
                        continue;
                    };
                    let (conn, outbox) = self.conn_for(inbox);
                    // Between two frames: a mailbox thread writing a large reply in pieces
                    // holds the connection's writer throughout, and the answer, a message
                    // of its own, must not cut the reply's frame in two messages.
                    conn.between_frames(|| outbox.answer_probe(reply.to_string()));
                }
                Got::Control(message) => {
                    let Some(reply) = message.reply else { continue };
                    let (conn, _) = self.conn_for(inbox_of(&reply));
                    match split_frame::<ToActor>(&message.payload) {
                        Ok((ToActor::Kill, _, _)) => {
                            self.leave();
                            return Some((conn, ToActor::Kill, Vec::new()));
                        }
                        Ok((ToActor::Stop, _, _)) => {
                            // The calls sent before this stop reached this connection before
                            // it: they are in the call subscription's buffer, which stays
                            // readable after the unsubscribe until it is empty.
                            self.leave();
                            self.stopping = Some(conn);
                        }
                        Ok((header, body, _)) => return Some((conn, header, body.to_vec())),
                        Err(message) => {
                            eprintln!("crew: a malformed message for an actor: {message}");
                        }
                    }
                }
                Got::Gone => {
                    if let Some(conn) = self.stopping.take() {
                        return Some((conn, ToActor::Stop, Vec::new()));
                    }
                    self.leave();
                    return None;
                }
            }
        }
    }

    /// Sends what the outboxes still hold, then closes the member's connection.
    fn finish(mut self) {
        let mut tasks = Vec::new();
        for (_, outbox) in self.conns.values() {
            outbox.close();
            tasks.extend(outbox.task.lock().take());
        }
        let nats = self.host.own.nats.clone();
        self.host.runtime.block_on(async move {
            // Bounded: with the server down, what is queued leaves on reconnect or never.
            let _ = tokio::time::timeout(CLOSE_FLUSH, async {
                for task in tasks {
                    let _ = task.await;
                }
                let _ = nats.flush().await;
            })
            .await;
        });
        self.conns.clear();
    }
}

/// Hosts actor `A` on NATS messages (runs on the member's own thread).
pub(crate) fn host<A: Actor>(args: &HostArgs, mut host: NatsHost) {
    let started = start_instances::<A>(args);
    if let Some(ready) = host.ready.take() {
        let _ = ready.send(started.as_ref().map(drop).map_err(Clone::clone));
    }
    // A failed start drops the member's connection, and with it the subscriptions.
    let Ok(instances) = started else { return };
    let mut member = Member {
        host,
        conns: HashMap::new(),
        current: None,
        stopping: None,
        left: false,
        defer_on: (instances.len() * args.max_concurrency <= 1)
            .then(|| std::thread::current().id()),
    };
    serve_host::<A>(args, instances, || member.next());
    member.finish();
}

/// Serves actor creation on a cluster worker named `worker`: requests for the address
/// `cluster` (any worker, a queue group) and for `worker` itself.
pub(crate) async fn serve_actors(
    nats: async_nats::Client,
    js: jetstream::Context,
    options: ClusterOptions,
    worker: String,
) -> Result<tokio::task::JoinHandle<()>, ClusterError> {
    let prefix = options.prefix_name().to_owned();
    let subscribe_error = |e: async_nats::SubscribeError| ClusterError::JetStream {
        message: format!("cannot subscribe to actor creation: {e}"),
    };
    let any = nats
        .queue_subscribe(
            create_subject(&prefix, CLUSTER_ADDRESS),
            format!("{prefix}-actor-hosts"),
        )
        .await
        .map_err(subscribe_error)?;
    let named = nats
        .subscribe(create_subject(&prefix, &worker))
        .await
        .map_err(subscribe_error)?;
    // The server reads one connection's commands in order, so once it has answered a request
    // sent after them it holds both subscriptions: a worker that says it is ready never lets an
    // actor creation find no responder (`Cluster::local` returns when its workers are ready).
    js.query_account()
        .await
        .map_err(|e| ClusterError::JetStream {
            message: format!("cannot reach JetStream after subscribing to actor creation: {e}"),
        })?;
    let link = Link {
        nats: nats.clone(),
        js,
        runtime: tokio::runtime::Handle::current(),
        options,
    };
    let mut requests = futures::stream::select(any, named);
    // The members watch this: when this task ends (the worker stops), the sender goes and
    // they end too (their own connections would outlive the worker's otherwise).
    let (serving, worker_gone) = tokio::sync::watch::channel(());
    Ok(tokio::spawn(async move {
        let _serving = serving;
        while let Some(request) = requests.next().await {
            let link = link.clone();
            let worker = worker.clone();
            let worker_gone = worker_gone.clone();
            tokio::spawn(async move {
                let Some(reply) = request.reply.clone() else {
                    return;
                };
                let answer =
                    match create_member(&link, &worker, &request.payload, worker_gone).await {
                        Ok(member) => CreateReply::Ready {
                            member,
                            worker,
                            pid: std::process::id(),
                        },
                        Err(message) => CreateReply::Failed(message),
                    };
                if let Ok(bytes) = codec::encode(&answer) {
                    let _ = link.nats.publish(reply, bytes.into()).await;
                }
            });
        }
    }))
}

/// Starts one member of an actor here, on a thread of its own with its own connection (see
/// the design note, "Members"), and waits until it serves.
async fn create_member(
    link: &Link,
    worker: &str,
    payload: &[u8],
    worker_gone: tokio::sync::watch::Receiver<()>,
) -> Result<String, String> {
    static MEMBERS_MADE: AtomicU64 = AtomicU64::new(0);
    let request: CreateRequest = codec::decode(payload)?;
    let member = token(&format!(
        "{worker}-{}-{}",
        std::process::id(),
        MEMBERS_MADE.fetch_add(1, Ordering::Relaxed)
    ));
    let entry = inventory::iter::<ActorEntry>
        .into_iter()
        .find(|entry| entry.name == request.host.actor)
        .ok_or_else(|| {
            format!(
                "worker `{worker}` has no actor `{}`: mark its impl block #[crew::actor] in the \
                 worker's program",
                request.host.actor
            )
        })?;
    let registry = registry(&link.js, &link.options).await.ok();
    let whoami =
        Bytes::from(codec::encode(&(worker.to_owned(), std::process::id())).unwrap_or_default());
    let input = codec::encode(&request.host)?;
    let host_fn = entry.host;
    let uid = request.host.uid.clone();
    let subject = call_subject(link.options.prefix_name(), &request.address, &uid);
    let (ready, started) = tokio::sync::oneshot::channel();
    let worker_link = link.clone();
    let key = request.key;
    let name = member.clone();
    std::thread::Builder::new()
        .name(format!("crew-actor-{uid}"))
        .spawn(move || {
            let host = match member_connection(&worker_link, &subject, &name) {
                Ok((runtime, own, calls, control, probes)) => NatsHost {
                    own,
                    runtime,
                    worker_link,
                    registry,
                    key,
                    calls,
                    control,
                    probes,
                    member: name,
                    worker_gone,
                    whoami,
                    ready: Some(ready),
                },
                Err(message) => {
                    let _ = ready.send(Err(message));
                    return;
                }
            };
            if let Err(message) = host_fn(&input, HostTransport::Nats(Box::new(host))) {
                eprintln!("crew: actor `{uid}` could not be hosted: {message}");
            }
        })
        .map_err(|e| format!("cannot start the actor's thread: {e}"))?;
    match started.await {
        Ok(result) => result.map(|()| member),
        Err(_) => Err("the actor's thread ended before it started".to_owned()),
    }
}

/// The subscriptions of a member: calls, control, its own subject.
type MemberSubscriptions = (
    async_nats::Subscriber,
    async_nats::Subscriber,
    async_nats::Subscriber,
);

/// A member's own runtime (one thread: the member's) and connection, subscribed to the
/// actor's call subject (queue group `members`), control subject and its member subject.
fn member_connection(
    worker_link: &Link,
    subject: &str,
    member: &str,
) -> Result<
    (
        tokio::runtime::Runtime,
        Link,
        async_nats::Subscriber,
        async_nats::Subscriber,
        async_nats::Subscriber,
    ),
    String,
> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the actor's runtime: {e}"))?;
    let options = worker_link.options.clone();
    let (nats, js, (calls, control, probes)) = runtime.block_on(async {
        let nats = crate::cluster::connect::connect(&options)
            .await
            .map_err(|e| format!("the actor cannot connect: {e}"))?;
        let calls = nats
            .queue_subscribe(subject.to_owned(), MEMBERS.to_owned())
            .await
            .map_err(|e| format!("cannot subscribe to {subject}: {e}"))?;
        let control = nats
            .subscribe(format!("{subject}.ctl"))
            .await
            .map_err(|e| format!("cannot subscribe to {subject}.ctl: {e}"))?;
        let own_subject = member_subject(subject, member);
        let probes = nats
            .subscribe(own_subject.clone())
            .await
            .map_err(|e| format!("cannot subscribe to {own_subject}: {e}"))?;
        // The server has the subscriptions before the creator hears `Ready`.
        nats.flush()
            .await
            .map_err(|e| format!("the actor's connection failed: {e}"))?;
        // Built inside the runtime: the context spawns its acker there.
        let js = jetstream::new(nats.clone());
        let subscriptions: MemberSubscriptions = (calls, control, probes);
        Ok::<_, String>((nats, js, subscriptions))
    })?;
    let own = Link {
        js,
        nats,
        runtime: runtime.handle().clone(),
        options,
    };
    Ok((runtime, own, calls, control, probes))
}

fn is_probe(message: &async_nats::Message) -> bool {
    message
        .headers
        .as_ref()
        .is_some_and(|headers| headers.get(PROBE_HEADER).is_some())
}

// ---------------------------------------------------------------------------------------------
// The caller side.

/// How a caller sees one member of the actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Live,
    /// It answered `Stopped`.
    Stopped,
    /// A member probe found nobody at its subject: its worker died.
    Dead,
}

/// A member probe's answer: the ids of this caller's calls the member holds, or `None`
/// (nobody there).
type Held = Option<Vec<u64>>;

/// A round of member probes: each live member says which calls it holds (see the design note,
/// "Failures").
struct Round {
    number: u64,
    /// The calls it asks about: those handed to the connection before its probes.
    sent_before: u64,
    /// Per member: `None` until it answered (or was not asked: not live).
    answers: Vec<Option<Held>>,
}

/// The members as this caller knows them, and the round of probes under way.
struct Members {
    /// Names, workers and states; empty when the creator had not written them yet (a `find`
    /// during the creation): then no member probes, only the actor probe.
    names: Vec<(MemberName, Seen)>,
    round: Option<Round>,
    rounds: u64,
}

/// The caller's side of a remote actor: its outbox, its inbox and the calls in flight.
pub(crate) struct Remote<A: Actor> {
    uid: String,
    subject: String,
    /// The base of this caller's reply subjects.
    inbox: String,
    members: usize,
    /// The worker that created the actor (for `WorkerDied` when every member is gone).
    worker: WorkerId,
    /// The mailbox bound, kept here at the caller.
    bound: CallerBound,
    outbox: Arc<Outbox>,
    /// This caller's connection (flushed when the reference goes).
    nats: async_nats::Client,
    /// This caller's runtime, and the driver it lends blocked callers.
    lead: Arc<Lead>,
    driver: Driver,
    inflight: Inflight,
    next_id: AtomicU64,
    /// `Stopped` answers (or deaths) still expected before the actor is gone.
    stopping_members: AtomicU64,
    known: Mutex<Members>,
    /// The actor ended (as far as this caller knows): nothing more to watch.
    ended: std::sync::atomic::AtomicBool,
    epoch: Instant,
    reason: Mutex<String>,
    /// This reference's connection closed for good (a publish failed, or its inbox's
    /// subscription ended): why. Every later call fails with [`ActorError::ConnectionLost`].
    lost: Mutex<Option<String>>,
    /// When the connection last came back after a disconnect (ms since `epoch`, 0: never):
    /// for [`RECONNECT_GRACE`] after it, "no responders" may mean the actor's worker has not
    /// reconnected yet, not that it died.
    reconnected_ms: AtomicU64,
    /// How many times the connection was made, as last seen (the client counts them).
    connects: AtomicU64,
    ending: Ending,
    tasks: Vec<tokio::task::AbortHandle>,
    _actor: std::marker::PhantomData<fn() -> A>,
}

impl<A: Actor> Drop for Remote<A> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // What the outbox still holds leaves before the connection goes: tells, most often
        // (fire and forget, then drop), whose wake-up a caller's grace may have deferred.
        self.outbox.close();
        let publishing = self.outbox.task.lock().take();
        let nats = self.nats.clone();
        self.lead.close_after(
            async move {
                if nats.connection_state() != async_nats::connection::State::Connected {
                    // The server is away: nothing can leave, and a flush would wait out
                    // CLOSE_FLUSH for a reconnect (a reference dropped after its cluster).
                    return;
                }
                let _ = tokio::time::timeout(CLOSE_FLUSH, async {
                    if let Some(publishing) = publishing {
                        let _ = publishing.await;
                    }
                    let _ = nats.flush().await;
                })
                .await;
            },
            || {},
        );
    }
}

/// How long dropping a caller's last reference waits for its queued messages to leave.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

impl<A: Actor> Remote<A> {
    /// A caller for the actor at `subject`: subscribes its inbox, starts its tasks.
    fn connect(
        link: &Link,
        address: &Address,
        uid: &str,
        members: usize,
        started: Vec<MemberName>,
        worker: WorkerId,
        mailbox: usize,
    ) -> Result<Arc<Self>, ActorError> {
        let subject = call_subject(link.options.prefix_name(), address, uid);
        let options = link.options.clone();
        let (lead, nats) = Lead::start(
            "crew-actor-caller",
            |_| async move { crate::cluster::connect::connect(&options).await },
            |message| ClusterError::Io { message },
        )
        .map_err(cluster_error)?;
        let runtime = lead.handle().clone();
        let inbox = nats.new_inbox();
        let wildcard = format!("{inbox}.>");
        let subscribing = nats.clone();
        let subscribed = futures::executor::block_on(
            runtime.spawn(async move { subscribing.subscribe(wildcard).await }),
        )
        .map_err(cluster_error)
        .and_then(|subscribed| subscribed.map_err(cluster_error));
        let replies = match subscribed {
            Ok(replies) => replies,
            Err(error) => {
                lead.close(); // else its keeper thread runs on
                return Err(error);
            }
        };
        let outbox = Outbox::start(
            &nats,
            &runtime,
            subject.clone(),
            Some(inbox.clone()),
            members > 1,
            Deferral::Lead(Arc::downgrade(&lead)),
        );
        let kicked = Arc::downgrade(&outbox);
        lead.set_on_drive(Box::new(move || {
            if let Some(outbox) = kicked.upgrade() {
                outbox.wake_deferred();
            }
        }));
        let driven = Arc::downgrade(&lead);
        let driver: Driver = Arc::new(move |done, deadline| {
            if let Some(lead) = driven.upgrade() {
                lead.drive(done, deadline);
            }
        });
        let names = if started.len() == members {
            started.into_iter().map(|name| (name, Seen::Live)).collect()
        } else {
            Vec::new()
        };
        let remote = Arc::new_cyclic(|me: &Weak<Remote<A>>| {
            let told = me.clone();
            let _ = outbox.on_failure.set(Box::new(move |error| {
                if let Some(remote) = told.upgrade() {
                    remote.connection_closed(&format!("a publish failed: {error}"));
                }
            }));
            let reader = runtime.spawn(read_replies(me.clone(), replies));
            // On the cluster's runtime: it runs while nobody drives this caller's.
            let watchdog = link.runtime.spawn(watch(
                me.clone(),
                nats.clone(),
                subject.clone(),
                inbox.clone(),
            ));
            Remote {
                uid: uid.to_owned(),
                subject,
                inbox,
                members,
                worker,
                bound: CallerBound::new(mailbox),
                outbox,
                nats: nats.clone(),
                lead,
                driver,
                inflight: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                stopping_members: AtomicU64::new(members as u64),
                known: Mutex::new(Members {
                    names,
                    round: None,
                    rounds: 0,
                }),
                ended: std::sync::atomic::AtomicBool::new(false),
                epoch: Instant::now(),
                reason: Mutex::new(String::new()),
                lost: Mutex::new(None),
                reconnected_ms: AtomicU64::new(0),
                connects: AtomicU64::new(nats.statistics().connects.load(Ordering::Relaxed)),
                ending: Ending::default(),
                tasks: vec![reader.abort_handle(), watchdog.abort_handle()],
                _actor: std::marker::PhantomData,
            }
        });
        Ok(remote)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn stopped_error(&self) -> ActorError {
        if let Some(lost) = self.lost.lock().clone() {
            return self.connection_lost(lost);
        }
        let reason = self.reason.lock().clone();
        ActorError::Stopped {
            uid: self.uid.clone(),
            reason: if reason.is_empty() {
                "it was stopped or killed".to_owned()
            } else {
                reason
            },
        }
    }

    fn release_permit(&self) {
        self.bound.release();
    }

    fn connection_lost(&self, message: impl Into<String>) -> ActorError {
        ActorError::ConnectionLost {
            uid: self.uid.clone(),
            message: message.into(),
        }
    }

    /// Refuses a `what` (a call, a stop) that cannot leave now: the connection closed for
    /// good, or it is down (the server went away). `None`: connected.
    fn refuse_unconnected(&self, what: &str) -> Option<ActorError> {
        if let Some(lost) = self.lost.lock().clone() {
            return Some(self.connection_lost(lost));
        }
        if self.nats.connection_state() == async_nats::connection::State::Connected {
            return None;
        }
        Some(self.connection_lost(format!(
            "not connected to the server (it is down or unreachable), so the {what} was not \
             sent; the reference reconnects by itself when the server is back: {what} again \
             then"
        )))
    }

    /// Notes when the connection came back (the client counts its connections: one more
    /// than last seen is a reconnect, seen by whoever looks first, the watchdog or a reply).
    fn note_reconnect(&self) {
        let made = self.nats.statistics().connects.load(Ordering::Relaxed);
        if self.connects.swap(made, Ordering::AcqRel) != made {
            self.reconnected_ms
                .store(self.now_ms().max(1), Ordering::Release);
        }
    }

    /// Whether the connection came back less than [`RECONNECT_GRACE`] ago.
    fn in_reconnect_grace(&self) -> bool {
        self.note_reconnect();
        let back = self.reconnected_ms.load(Ordering::Acquire);
        back != 0 && self.now_ms().saturating_sub(back) < RECONNECT_GRACE.as_millis() as u64
    }

    /// The connection closed for good (`what`: how it showed): everything waiting fails, and
    /// so does every later call; the reference is done (the actor may live on).
    fn connection_closed(&self, what: &str) {
        let message = format!(
            "this reference's connection closed ({what}): calls in flight may or may not have \
             run, and this reference cannot be used again; look the actor up again with \
             crew::actor::find"
        );
        {
            let mut lost = self.lost.lock();
            if lost.is_some() {
                return;
            }
            *lost = Some(message.clone());
        }
        self.finish(
            Some(message.clone()),
            Some(self.connection_lost(message).into()),
        );
        self.lead.wake_leader();
    }

    /// The connection has been down for [`PROBE_AFTER`] (the server went away): the calls in
    /// flight fail, their outcome unknown, and a stop under way too. The reference stays: it
    /// reconnects by itself, and calls made once the server is back go through.
    fn connection_down(&self) {
        let error: TaskError = self
            .connection_lost(format!(
                "the connection to the server has been down for more than {PROBE_AFTER:?} with \
                 this call in flight: it may or may not have run; the reference reconnects by \
                 itself when the server is back: call again then if the call is safe to repeat"
            ))
            .into();
        fail_pending(&self.inflight, &error, &[], &|| self.release_permit());
        // Settled off the caller's runtime: a caller blocked driving it looks again.
        self.lead.wake_leader();
        if self.ending.requested() {
            self.stop_not_seen_through(
                "the connection to the server went down while the actor was being stopped: \
                 the stop may not have reached it; look it up again with crew::actor::find \
                 once the server is back and stop it if it is still there",
            );
        }
    }

    /// A stop under way cannot be seen through (`message`: why, and what to do): its handles
    /// fail with [`ActorError::ConnectionLost`] and the reference ends, never reporting a
    /// stop that may not have happened.
    fn stop_not_seen_through(&self, message: &str) {
        *self.lost.lock() = Some(message.to_owned());
        self.finish(
            Some(message.to_owned()),
            Some(self.connection_lost(message).into()),
        );
    }

    /// Sends a frame that needs no permit: on the call subject (in order with the calls), or
    /// on the control subject every member hears.
    fn control(&self, header: &ToActor, to_all: bool) {
        if to_all {
            // Through the outbox: after the calls sent before it (a pool's members serve the
            // calls they were delivered before a `Stop` on the control subject).
            if let Ok(bytes) = frame_bytes(header) {
                self.outbox.push_message(bytes, To::Control);
            }
        } else {
            self.outbox.push(|buffer| {
                let _ = write_frame(buffer, header, &[]);
                None
            });
        }
    }

    /// The actor ended: fail what is in flight, settle the stop handles.
    fn finish(&self, reason: Option<String>, error: Option<TaskError>) {
        self.ended.store(true, Ordering::Release);
        self.bound.close();
        if let Some(reason) = reason {
            let mut current = self.reason.lock();
            if current.is_empty() {
                *current = reason;
            }
        }
        self.bound.end();
        let error = error.unwrap_or_else(|| self.stopped_error().into());
        fail_pending(&self.inflight, &error, &[], &|| self.release_permit());
        if matches!(error, TaskError::Actor(ActorError::ConnectionLost { .. })) {
            // A stop under way may not have reached the actor: its handles say so.
            self.ending.fail(&error);
        } else {
            self.ending.finish();
        }
    }

    /// `gone` members will send no `Stopped`: the actor ends when none is left.
    fn members_gone(&self, gone: u64, died: Option<&WorkerId>) {
        if gone == 0 {
            return;
        }
        let left = self.stopping_members.fetch_sub(gone, Ordering::AcqRel);
        if left > gone {
            return;
        }
        match died {
            Some(worker) if !self.ending.requested() => self.finish(
                Some(format!("its workers died (the last: {worker})")),
                Some(TaskError::WorkerDied {
                    worker: worker.clone(),
                    exit: None,
                }),
            ),
            _ => self.finish(None, None),
        }
    }

    /// Starts a round of member probes, if the members are known: the round's number and the
    /// live members (index, name) to probe. A round still under way is not replaced: its
    /// members that did not answer yet are probed again (one that died since gives "no
    /// responders" now; a busy one answers when it can, and any answer is still exact).
    fn start_round(&self) -> Option<(u64, Vec<(usize, String)>)> {
        let mut known = self.known.lock();
        if known.names.is_empty() {
            return None;
        }
        if let Some(round) = &known.round {
            let silent = round
                .answers
                .iter()
                .enumerate()
                .filter(|(_, answer)| answer.is_none());
            let targets = silent
                .map(|(index, _)| (index, known.names[index].0.member.clone()))
                .collect();
            return Some((round.number, targets));
        }
        known.rounds += 1;
        let number = known.rounds;
        let mut answers = Vec::with_capacity(known.names.len());
        let mut targets = Vec::new();
        for (index, (name, seen)) in known.names.iter().enumerate() {
            if *seen == Seen::Live {
                answers.push(None);
                targets.push((index, name.member.clone()));
            } else {
                answers.push(Some(Some(Vec::new())));
            }
        }
        if targets.is_empty() {
            return None;
        }
        known.round = Some(Round {
            number,
            sent_before: self.outbox.published.load(Ordering::Acquire),
            answers,
        });
        Some((number, targets))
    }

    /// A member's answer to round `number`; when every member asked has answered, the calls
    /// no live member holds (sent before the round) were on a dead one: they fail.
    fn on_probe_answer(&self, number: u64, index: usize, held: Held) {
        let mut known = self.known.lock();
        let Some(round) = known.round.as_mut().filter(|round| round.number == number) else {
            return;
        };
        let Some(slot) = round.answers.get_mut(index) else {
            return;
        };
        if slot.is_none() {
            *slot = Some(held);
        }
        if round.answers.iter().any(Option::is_none) {
            return;
        }
        let round = known.round.take().expect("the round at hand");
        let mut claimed = std::collections::HashSet::new();
        let mut died = None;
        let mut gone = 0;
        for (index, answer) in round.answers.into_iter().enumerate() {
            match answer.flatten() {
                Some(held) => claimed.extend(held),
                None => {
                    let (name, seen) = &mut known.names[index];
                    if *seen == Seen::Live {
                        *seen = Seen::Dead;
                        gone += 1;
                        died = Some(WorkerId::remote(name.worker.clone(), name.pid));
                    }
                }
            }
        }
        drop(known);
        let keep: Vec<u64> = self
            .inflight
            .lock()
            .keys()
            .copied()
            .filter(|id| *id > round.sent_before || claimed.contains(id))
            .collect();
        let Some(worker) = died else {
            // Every member lives, and none holds these calls, sent before the round: the
            // answers left after every reply written before them, so the call or its reply
            // was lost, as when the connection (the caller's or a member's) dropped and came
            // back. Waiting on would wait forever.
            let error: TaskError = self
                .connection_lost(
                    "the call or its reply was lost while a connection to the server dropped \
                     and came back: it may or may not have run; call again if it is safe to \
                     repeat",
                )
                .into();
            fail_pending(&self.inflight, &error, &keep, &|| self.release_permit());
            return;
        };
        let error = TaskError::WorkerDied {
            worker: worker.clone(),
            exit: None,
        };
        fail_pending(&self.inflight, &error, &keep, &|| self.release_permit());
        self.members_gone(gone, Some(&worker));
    }

    /// A member answered `Stopped` (`member`: its name, from the reply subject).
    fn on_stopped(&self, member: &str) {
        let mut known = self.known.lock();
        if let Some((_, seen)) = known
            .names
            .iter_mut()
            .find(|(name, _)| name.member == member)
        {
            if *seen != Seen::Live {
                return;
            }
            *seen = Seen::Stopped;
        }
        drop(known);
        self.members_gone(1, None);
    }

    /// One message at the inbox.
    fn on_message(&self, message: async_nats::Message) {
        let suffix = message
            .subject
            .as_str()
            .strip_prefix(self.inbox.as_str())
            .unwrap_or("")
            .trim_start_matches('.');
        if let Some(round) = suffix.strip_prefix("p.") {
            let mut parts = round.split('.').map(str::parse::<u64>);
            if let (Some(Ok(number)), Some(Ok(index))) = (parts.next(), parts.next()) {
                let held = if message.status == Some(StatusCode::NO_RESPONDERS) {
                    if self.in_reconnect_grace() {
                        // The member's worker may not have reconnected yet: not taken for
                        // dead; the round probes who stays silent again.
                        return;
                    }
                    None
                } else {
                    Some(codec::decode::<Vec<u64>>(&message.payload).unwrap_or_default())
                };
                self.on_probe_answer(number, index as usize, held);
            }
            return;
        }
        if message.status == Some(StatusCode::NO_RESPONDERS) {
            let not_back_yet = self.in_reconnect_grace();
            if suffix == "probe" {
                if not_back_yet {
                    // Its worker may not have reconnected yet: the next probe tells.
                    return;
                }
                self.finish(
                    Some(format!("its worker ({}) died", self.worker)),
                    Some(TaskError::WorkerDied {
                        worker: self.worker.clone(),
                        exit: None,
                    }),
                );
                return;
            }
            let mut ids = suffix.split('.').map(str::parse::<u64>);
            if let (Some(Ok(first)), Some(Ok(last))) = (ids.next(), ids.next()) {
                let error: TaskError = if not_back_yet {
                    self.connection_lost(
                        "no member of the actor answers since the connection to the server \
                         came back: its worker may not have reconnected yet (call again in a \
                         few seconds), or it is gone (crew::actor::find then says NotFound); \
                         the call was not run",
                    )
                } else {
                    ActorError::NotFound {
                        address: Address::new(self.subject.clone()),
                        uid: self.uid.clone(),
                    }
                }
                .into();
                let keep: Vec<u64> = self
                    .inflight
                    .lock()
                    .keys()
                    .copied()
                    .filter(|id| !(first..=last).contains(id))
                    .collect();
                fail_pending(&self.inflight, &error, &keep, &|| self.release_permit());
            }
            if self.ending.requested() {
                if not_back_yet {
                    // Nobody heard the stop, but the actor may be back in a moment.
                    self.stop_not_seen_through(
                        "the stop reached no member of the actor: the connection to the \
                         server came back moments ago and its worker may not have reconnected \
                         yet; look it up again with crew::actor::find in a few seconds and \
                         stop it then (find says NotFound if it is gone)",
                    );
                } else {
                    self.finish(None, None);
                }
            }
            return;
        }
        let Some(member) = suffix.strip_prefix("r.") else {
            return;
        };
        let mut rest: &[u8] = &message.payload;
        while !rest.is_empty() {
            match split_frame::<FromActor>(rest) {
                Ok((header, payload, tail)) => {
                    rest = tail;
                    if let FromActor::Stopped = header {
                        self.on_stopped(member);
                        continue;
                    }
                    settle_frame(&self.inflight, header, payload.to_vec(), &|| {
                        self.release_permit()
                    });
                }
                Err(message) => {
                    eprintln!(
                        "crew: a malformed reply from actor `{}`: {message}",
                        self.uid
                    );
                    break;
                }
            }
        }
    }
}

/// The caller side is [`caller`](super::caller)'s; a remote actor adds its outbox, its
/// control subject and its probes.
impl<A: Actor> Transport for Remote<A> {
    fn on_cluster(&self) -> bool {
        true
    }

    fn uid(&self) -> &str {
        &self.uid
    }

    fn bound(&self) -> &CallerBound {
        &self.bound
    }

    fn inflight(&self) -> &Inflight {
        &self.inflight
    }

    /// Queues `header` + `payload` with `pending` (the permit is taken).
    fn send(
        &self,
        make: &mut dyn FnMut(u64) -> (ToActor, Pending),
        payload: &[u8],
    ) -> Result<(), ActorError> {
        // A message above the server's max_payload is refused by the client and never sent:
        // the call would wait forever. Refused here, with the permit the caller took.
        let limit = self
            .outbox
            .limit
            .saturating_sub(FRAME_PREFIX + MAX_CALL_HEADER);
        if payload.len() > limit {
            self.bound.release();
            return Err(ActorError::TooLarge {
                uid: self.uid.clone(),
                bytes: payload.len(),
                limit,
            });
        }
        if let Some(refused) = self.refuse_unconnected("call") {
            self.bound.release();
            return Err(refused);
        }
        let mut result = Ok(());
        // Ids are taken inside the outbox's lock, so a batch holds the ids `first..=last`.
        self.outbox.push(|buffer| {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (header, pending) = make(id);
            self.inflight.lock().insert(id, pending);
            let before = buffer.len();
            match write_frame(buffer, &header, payload) {
                Ok(()) => Some(id),
                Err(error) => {
                    // Nothing of the call is sent, nor waited for.
                    buffer.truncate(before);
                    self.inflight.lock().remove(&id);
                    result = Err(error);
                    None
                }
            }
        });
        if self.outbox.has_failed() {
            // The publisher failed while this call was queued (its failure already failed
            // the calls in flight before it): this one fails too, never waits.
            // Its own error, not `stopped_error()`: the failure may not have recorded why yet.
            let lost = self.connection_lost(
                "this reference's connection closed (a publish failed): the call was not sent; \
                 look the actor up again with crew::actor::find",
            );
            fail_pending(&self.inflight, &lost.into(), &[], &|| self.release_permit());
        }
        result.map_err(|error| {
            self.bound.release();
            ActorError::Invalid(format!("cannot encode a call: {error}"))
        })
    }

    fn send_control(&self, header: &ToActor) {
        self.control(header, false);
    }

    fn stopped_error(&self) -> ActorError {
        Remote::stopped_error(self)
    }

    fn driver(&self) -> Option<Driver> {
        Some(self.driver.clone())
    }

    fn stop(&self, kill: bool) -> TaskHandle<()> {
        // Refused when it cannot leave (the actor's fate unknown: it is not "ended"), except
        // for an actor known to have ended, whose stop settles at once.
        let lost = self.lost.lock().is_some();
        if lost || !self.ended.load(Ordering::Acquire) {
            if let Some(refused) = self.refuse_unconnected(if kill { "kill" } else { "stop" }) {
                return super::failed(refused.into());
            }
        }
        let (handle, request) = self.ending.request(kill);
        if request == Request::Ended {
            return handle;
        }
        self.bound.close();
        if kill {
            self.control(&ToActor::Kill, true);
        } else {
            self.control(&ToActor::Stop, self.members > 1);
        }
        handle
    }
}

fn frame_bytes(header: &ToActor) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    write_frame(&mut bytes, header, &[])?;
    Ok(bytes)
}

async fn read_replies<A: Actor>(remote: Weak<Remote<A>>, mut replies: async_nats::Subscriber) {
    while let Some(message) = replies.next().await {
        let Some(remote) = remote.upgrade() else {
            return;
        };
        remote.on_message(message);
        remote.lead.wake_leader();
    }
    // The subscription ends only when the client closes (not while it reconnects): no reply
    // can come any more.
    if let Some(remote) = remote.upgrade() {
        remote.connection_closed("its reply subscription ended");
    }
}

/// Probes the actor while a call waits too long for its reply, or a stop for its end (see the
/// design note, "Failures").
async fn watch<A: Actor>(
    remote: Weak<Remote<A>>,
    nats: async_nats::Client,
    subject: String,
    inbox: String,
) {
    let mut tick = tokio::time::interval(PROBE_AFTER / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let after = PROBE_AFTER.as_millis() as u64;
    let mut last_probe = 0;
    // The oldest call in flight (or 0: a stop under way) and since when it was.
    let mut oldest: Option<(u64, u64)> = None;
    // Since when the connection is down, and when it last came back (a drop and a reconnect
    // between two ticks shows there).
    let mut down_since: Option<u64> = None;
    let mut back = 0;
    loop {
        tick.tick().await;
        let Some(remote) = remote.upgrade() else {
            return;
        };
        if remote.ended.load(Ordering::Acquire)
            || (remote.bound.is_closed() && !remote.ending.requested())
        {
            return;
        }
        let now = remote.now_ms();
        if nats.connection_state() != async_nats::connection::State::Connected {
            // The server went away: no probe can be answered. The client reconnects by
            // itself; the calls in flight wait PROBE_AFTER for it, then fail.
            let since = *down_since.get_or_insert(now);
            if now.saturating_sub(since) >= after {
                remote.connection_down();
            }
            oldest = None;
            continue;
        }
        remote.note_reconnect();
        let came_back = remote.reconnected_ms.load(Ordering::Acquire);
        if down_since.take().is_some() || came_back != back {
            // Back: the calls in flight are probed as usual, PROBE_AFTER from now, and for a
            // while "no responders" may mean the worker is not back yet (see on_message).
            back = came_back;
            oldest = None;
            last_probe = now;
        }
        let waiting = remote.inflight.lock().keys().min().copied().or_else(|| {
            // A stop waits for its members' answers.
            remote.ending.requested().then_some(0)
        });
        let Some(waiting) = waiting else {
            oldest = None;
            continue;
        };
        let since = match oldest {
            Some((id, since)) if id == waiting => since,
            _ => {
                oldest = Some((waiting, now));
                now
            }
        };
        if now.saturating_sub(since) < after || now.saturating_sub(last_probe) < after {
            continue;
        }
        last_probe = now;
        let round = remote.start_round();
        drop(remote);
        let mut headers = HeaderMap::new();
        headers.insert(PROBE_HEADER, "1");
        let _ = nats
            .publish_with_reply_and_headers(
                subject.clone(),
                format!("{inbox}.probe"),
                headers,
                Bytes::new(),
            )
            .await;
        if let Some((number, members)) = round {
            for (index, member) in members {
                let _ = nats
                    .publish_with_reply(
                        member_subject(&subject, &member),
                        format!("{inbox}.p.{number}.{index}"),
                        Bytes::new(),
                    )
                    .await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Creating and finding.

/// Creates the actor on the cluster's workers serving `options`' address.
pub(crate) fn spawn<A: Actor>(
    link: &Link,
    options: &ActorOptions<A>,
    args: A::Args,
) -> Result<ActorRef<A>, ActorError> {
    let address = options.address.clone().unwrap_or_else(Address::cluster);
    let uid = options
        .uid
        .clone()
        .unwrap_or_else(super::registry::new_uid::<A>);
    let members = options.instance_count;
    let start_failed = |message: String| ActorError::StartFailed {
        uid: uid.clone(),
        message,
    };
    let host = HostArgs {
        socket: String::new(),
        actor: A::NAME.to_owned(),
        signature: actor_signature::<A>(),
        uid: uid.clone(),
        args: codec::encode(&args).map_err(start_failed)?,
        instances: 1,
        max_concurrency: options.max_concurrency,
        mailbox: options.mailbox,
    };
    let key = registry_key(&address, &uid);
    let entry_of = move |started: Vec<MemberName>| {
        codec::encode(&Entry {
            actor: A::NAME.to_owned(),
            signature: actor_signature::<A>(),
            members,
            started,
        })
    };
    let entry = entry_of(Vec::new()).map_err(start_failed)?;
    let request = codec::encode(&CreateRequest {
        address: address.clone(),
        key: key.clone(),
        host,
    })
    .map_err(start_failed)?;
    let task_link = link.clone();
    let (task_address, task_uid) = (address.clone(), uid.clone());
    let created = link.run(async move {
        let link = task_link;
        let kv = registry(&link.js, &link.options)
            .await
            .map_err(cluster_error)?;
        claim(&link, &kv, &task_address, &task_uid, &key, entry).await?;
        let subject = create_subject(link.options.prefix_name(), task_address.as_str());
        let mut workers = Vec::new();
        let mut failure = None;
        for _ in 0..members {
            let answer = tokio::time::timeout(
                CREATE_TIMEOUT,
                link.nats.request(subject.clone(), request.clone().into()),
            )
            .await;
            let outcome = match answer {
                Err(_) => Err(format!(
                    "no worker serving `{task_address}` answered within {CREATE_TIMEOUT:?}"
                )),
                Ok(Err(error)) if error.kind() == async_nats::RequestErrorKind::NoResponders => {
                    Err(format!(
                        "no cluster worker serves the address `{task_address}`: start one \
                         (`crew worker`, serve_worker) named so, or use Address::cluster()"
                    ))
                }
                Ok(Err(error)) => Err(format!("the creation request failed: {error}")),
                Ok(Ok(message)) => match codec::decode::<CreateReply>(&message.payload) {
                    Ok(CreateReply::Ready {
                        member,
                        worker,
                        pid,
                    }) => Ok(MemberName {
                        member,
                        worker,
                        pid,
                    }),
                    Ok(CreateReply::Failed(message)) => Err(message),
                    Err(message) => Err(message),
                },
            };
            match outcome {
                Ok(worker) => workers.push(worker),
                Err(message) => {
                    failure = Some(message);
                    break;
                }
            }
        }
        if let Some(message) = failure {
            if !workers.is_empty() {
                // Kill the members already started; they clear the key as they go.
                if let Ok(bytes) = frame_bytes(&ToActor::Kill) {
                    let subject = format!(
                        "{}.ctl",
                        call_subject(link.options.prefix_name(), &task_address, &task_uid)
                    );
                    // With a reply subject: a host answers a kill on the connection it names.
                    let reply = link.nats.new_inbox();
                    let _ = link
                        .nats
                        .publish_with_reply(subject, reply, bytes.into())
                        .await;
                }
            }
            let _ = kv.delete(&key).await;
            return Err(ActorError::StartFailed {
                uid: task_uid,
                message,
            });
        }
        // Finders learn the members (for member probes) from the entry.
        if let Ok(entry) = entry_of(workers.clone()) {
            let _ = kv.put(&key, entry.into()).await;
        }
        Ok(workers)
    })??;
    let worker = WorkerId::remote(created[0].worker.clone(), created[0].pid);
    let remote = Remote::<A>::connect(
        link,
        &address,
        &uid,
        members,
        created,
        worker,
        options.mailbox,
    )?;
    Ok(ActorRef::new(address, uid, Target::Remote(remote)))
}

/// Claims the registry key, deleting it first when it names an actor nobody serves.
async fn claim(
    link: &Link,
    kv: &kv::Store,
    address: &Address,
    uid: &str,
    key: &str,
    entry: Vec<u8>,
) -> Result<(), ActorError> {
    for _ in 0..2 {
        match kv.create(key, entry.clone().into()).await {
            Ok(_) => {
                // The registry may have lost a live actor's entry (a server restarted with
                // memory storage): a second actor under its uid would share its members'
                // queue group. Something answering at the subject says so (or staying
                // silent there: a member busy in a long method reads no probe).
                if alive(link, address, uid).await.is_ok() {
                    let _ = kv.delete(key).await;
                    return Err(ActorError::DuplicateUid {
                        address: address.clone(),
                        uid: uid.to_owned(),
                    });
                }
                return Ok(());
            }
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                if alive(link, address, uid).await.is_ok() {
                    return Err(ActorError::DuplicateUid {
                        address: address.clone(),
                        uid: uid.to_owned(),
                    });
                }
                let _ = kv.delete(key).await;
            }
            Err(error) => return Err(cluster_error(error)),
        }
    }
    Err(ActorError::DuplicateUid {
        address: address.clone(),
        uid: uid.to_owned(),
    })
}

/// Whether anything serves the actor's subject (a probe the host's I/O task answers with
/// its worker's name and pid): `Err(())` when nobody does.
async fn alive(link: &Link, address: &Address, uid: &str) -> Result<Option<WorkerId>, ()> {
    let subject = call_subject(link.options.prefix_name(), address, uid);
    let mut headers = HeaderMap::new();
    headers.insert(PROBE_HEADER, "1");
    let request = async_nats::Request::new()
        .headers(headers)
        .timeout(Some(Duration::from_secs(5)));
    match link.nats.send_request(subject, request).await {
        Ok(message) => Ok(codec::decode::<(String, u32)>(&message.payload)
            .ok()
            .map(|(worker, pid)| WorkerId::remote(worker, pid))),
        Err(error) if error.kind() == async_nats::RequestErrorKind::NoResponders => Err(()),
        // A busy server or a slow answer: take it for alive rather than clear a live entry.
        Err(_) => Ok(None),
    }
}

/// Finds the actor `uid` at `address` on `cluster`; see [`find`](super::find).
pub(crate) fn find<A: Actor>(
    link: &Link,
    address: &Address,
    uid: &str,
    mailbox: usize,
) -> Result<ActorRef<A>, ActorError> {
    let task_link = link.clone();
    let (task_address, task_uid) = (address.clone(), uid.to_owned());
    let entry = link.run(async move {
        let link = task_link;
        let kv = registry(&link.js, &link.options)
            .await
            .map_err(cluster_error)?;
        let key = registry_key(&task_address, &task_uid);
        let not_found = || ActorError::NotFound {
            address: task_address.clone(),
            uid: task_uid.clone(),
        };
        let Some(bytes) = kv.get(&key).await.map_err(cluster_error)? else {
            if let Ok(Some(worker)) = alive(&link, &task_address, &task_uid).await {
                return Err(ActorError::Invalid(format!(
                    "actor `{task_uid}` at `{task_address}` still runs (on {worker}) but the \
                     registry lost its entry (the NATS server restarted, and the cluster keeps \
                     its registry in memory): use the references you hold, or stop it through \
                     one and create it again; with Storage::File the registry survives a \
                     restart"
                )));
            }
            return Err(not_found());
        };
        let entry: Entry = codec::decode(&bytes).map_err(ActorError::Invalid)?;
        let Ok(worker) = alive(&link, &task_address, &task_uid).await else {
            // Its worker died: the entry is stale.
            let _ = kv.delete(&key).await;
            return Err(not_found());
        };
        Ok((entry, worker))
    })??;
    let (entry, worker) = entry;
    if entry.actor != A::NAME {
        return Err(ActorError::WrongType {
            address: address.clone(),
            uid: uid.to_owned(),
            found: entry.actor,
            wanted: A::NAME.to_owned(),
        });
    }
    if entry.signature != actor_signature::<A>() {
        return Err(ActorError::Invalid(format!(
            "actor `{uid}` at `{address}` is a `{}` with other methods or types than this \
             process's: run the same code on both sides",
            A::NAME
        )));
    }
    let worker = worker.unwrap_or_else(|| WorkerId::remote(address.as_str(), 0));
    let remote = Remote::<A>::connect(
        link,
        address,
        uid,
        entry.members,
        entry.started,
        worker,
        mailbox,
    )?;
    Ok(ActorRef::new(
        address.clone(),
        uid.to_owned(),
        Target::Remote(remote),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An actor for the connection tests, hosted by a local cluster's workers.
    struct Held(u64);

    #[crew::actor]
    impl Held {
        fn new(value: u64) -> Self {
            Held(value)
        }

        fn get(&self) -> u64 {
            self.0
        }

        fn sleep(&self, ms: u64) -> u64 {
            std::thread::sleep(Duration::from_millis(ms));
            ms
        }
    }

    /// A reference whose connection closed under it: the call in flight fails at once with
    /// `ConnectionLost`, and so does every later call, tell and stop (a failed publish ended
    /// the publishing task silently, and every later call hung); the actor itself is unharmed.
    /// A publish that fails is said to the outbox's owner, never dropped silently.
    #[test]
    fn a_reference_whose_connection_closed_fails_its_calls() {
        use crate::cluster::{Isolation, ServerConfig, Storage, TestServer, WorkerOptions};
        let server = TestServer::start(ServerConfig::new().token("remote-unit-test"))
            .expect("this test needs nats-server (CREW_NATS_SERVER)");
        let options = server.client_options().storage(Storage::Memory);
        // A worker on threads (`Cluster::local`'s would start a process pool, which runs this
        // test binary: the whole unit-test suite again).
        let worker = crate::cluster::worker::LocalWorker::start(
            WorkerOptions::new(options.clone())
                .name("unit")
                .concurrency(1)
                .isolation(Isolation::Threads),
        )
        .unwrap();
        let cluster = Cluster::connect(options).unwrap();
        let held = crate::actor::ActorOptions::<Held>::new()
            .on_cluster(&cluster)
            .spawn(7)
            .unwrap();
        let link = Link::of(&cluster).unwrap();
        let remote = Remote::<Held>::connect(
            &link,
            held.address(),
            held.uid(),
            1,
            Vec::new(),
            WorkerId::remote("local", 0),
            16,
        )
        .unwrap();
        let reference = HeldRef::from(ActorRef::new(
            held.address().clone(),
            held.uid().to_owned(),
            Target::Remote(remote.clone()),
        ));
        assert_eq!(
            reference.get().result_timeout(Duration::from_secs(10)),
            Ok(7)
        );
        let in_flight = reference.sleep(3_000);
        std::thread::sleep(Duration::from_millis(100));
        // The client closes under the reference (drained: its subscriptions end, then it).
        let nats = remote.nats.clone();
        futures::executor::block_on(
            remote
                .lead
                .handle()
                .spawn(async move { nats.drain().await }),
        )
        .unwrap()
        .unwrap();
        let started = Instant::now();
        let lost = |result: Result<u64, TaskError>| match result {
            Err(TaskError::Actor(ActorError::ConnectionLost { message, .. })) => message,
            other => panic!("expected ConnectionLost, got {other:?}"),
        };
        let message = lost(in_flight.result_timeout(Duration::from_secs(10)));
        assert!(message.contains("cannot be used again"), "{message}");
        assert!(message.contains("find"), "{message}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        lost(reference.get().result_timeout(Duration::from_secs(5)));
        assert!(matches!(
            reference.tell_sleep(0),
            Err(ActorError::ConnectionLost { .. })
        ));
        assert!(matches!(
            reference.stop().result_timeout(Duration::from_secs(5)),
            Err(TaskError::Actor(ActorError::ConnectionLost { .. }))
        ));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            held.get().result_timeout(Duration::from_secs(10)),
            Ok(7),
            "the actor is unharmed"
        );

        // A publish on the closed client fails, and the outbox says so.
        let (told, failure) = std::sync::mpsc::channel();
        let outbox = Outbox::start(
            &remote.nats,
            remote.lead.handle(),
            "crew-test.nowhere".to_owned(),
            None,
            false,
            Deferral::Never,
        );
        let _ = outbox.on_failure.set(Box::new(move |error| {
            let _ = told.send(error);
        }));
        let deadline = Instant::now() + Duration::from_secs(5);
        let error = loop {
            outbox.push(|buffer| {
                buffer.extend_from_slice(b"frame");
                None
            });
            match failure.recv_timeout(Duration::from_millis(50)) {
                Ok(error) => break error,
                Err(_) if Instant::now() < deadline => {}
                Err(_) => panic!("the failed publish was not reported"),
            }
        };
        assert!(!error.is_empty());
        assert!(outbox.has_failed());
        assert!(outbox.state.lock().messages.is_empty(), "nothing piles up");
        held.stop().result_timeout(Duration::from_secs(10)).unwrap();
        drop((reference, remote, outbox, held, cluster));
        drop(worker);
    }

    /// Frames as the host writes them: one write each, or in pieces (a large payload).
    fn frame(header: &FromActor, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, header, payload).unwrap();
        bytes
    }

    /// An outbox without a connection or publishing task: what `push` makes of frames.
    fn outbox_of(limit: usize) -> Outbox {
        Outbox::new(limit, false, Deferral::Never)
    }

    /// The sizes of the messages `outbox` would publish.
    fn message_sizes(outbox: &Outbox) -> Vec<usize> {
        let state = outbox.state.lock();
        state
            .messages
            .iter()
            .map(|batch| batch.bytes.len())
            .collect()
    }

    /// Writes `frame` as `write_frame` writes a large one: its prefix and header, then its
    /// `payload_len` payload bytes in pieces of `piece`.
    fn write_in_pieces(writer: &mut OutboxWriter, frame: &[u8], payload_len: usize, piece: usize) {
        let (head, payload) = frame.split_at(frame.len() - payload_len);
        writer.write_all(head).unwrap();
        for piece in payload.chunks(piece) {
            writer.write_all(piece).unwrap();
        }
    }

    /// A host's `Ok` reply to call `id`, with `payload`.
    fn ok_reply(id: u64, payload: &[u8]) -> Vec<u8> {
        frame(
            &FromActor::Reply {
                id,
                outcome: Outcome::Ok,
            },
            payload,
        )
    }

    /// A caller's batches stay within the server's max_payload: a batch grown past it was
    /// refused by the client, never sent, and its calls (and every later one: the publishing
    /// task ended) waited forever.
    #[test]
    fn a_callers_batches_are_split_at_the_message_limit() {
        let outbox = outbox_of(100);
        for id in 1..=5 {
            outbox.push(|buffer| {
                buffer.extend_from_slice(&[id as u8; 40]);
                Some(id)
            });
        }
        let state = outbox.state.lock();
        let batches: Vec<_> = state
            .messages
            .iter()
            .map(|batch| (batch.bytes.len(), batch.ids))
            .collect();
        assert_eq!(
            batches,
            [(80, Some((1, 2))), (80, Some((3, 4))), (40, Some((5, 5)))]
        );
        assert!(state.messages[1].bytes[..40].iter().all(|byte| *byte == 3));
    }

    /// A member's replies to one caller are split at the limit too, only where a frame starts
    /// (the host writes a large frame in pieces).
    #[test]
    fn a_members_replies_are_split_at_frame_starts() {
        let outbox = Arc::new(outbox_of(150));
        let mut writer = OutboxWriter(outbox.clone());
        let reply = |id| ok_reply(id, &[9; 40]);
        let one = reply(1).len();
        writer.write_all(&reply(1)).unwrap();
        writer.write_all(&reply(2)).unwrap();
        // Its prefix says how long it is, and the pieces after the first stay with it.
        write_in_pieces(&mut writer, &reply(3), 40, 10);
        writer.write_all(&reply(4)).unwrap();
        let sizes = message_sizes(&outbox);
        assert_eq!(sizes, [2 * one, 2 * one], "{one}-byte frames");
    }

    /// A batch full past [`BATCH_BYTES`] is closed only where a frame starts: a large reply
    /// written in pieces stays in one message (the caller reads whole frames per message).
    #[test]
    fn a_full_batch_is_closed_only_at_a_frame_start() {
        let outbox = Arc::new(outbox_of(usize::MAX));
        let mut writer = OutboxWriter(outbox.clone());
        let big = ok_reply(1, &vec![5; 3 * BATCH_BYTES]);
        write_in_pieces(&mut writer, &big, 3 * BATCH_BYTES, BATCH_BYTES / 2);
        let small = ok_reply(2, &[6; 10]);
        writer.write_all(&small).unwrap();
        let sizes = message_sizes(&outbox);
        assert_eq!(sizes, [big.len(), small.len()]);
    }

    #[test]
    fn the_frame_prefix_is_the_codecs() {
        let header = codec::encode(&ToActor::Stop).unwrap();
        assert_eq!(
            frame_bytes(&ToActor::Stop).unwrap().len(),
            FRAME_PREFIX + header.len()
        );
    }

    #[test]
    fn answers_follow_frames_in_pieces() {
        let mut held: HashMap<u64, bool> = [(1, false), (2, true), (3, false), (4, true)].into();
        let mut answers = Answers::default();
        let mut bytes = frame(
            &FromActor::Reply {
                id: 1,
                outcome: Outcome::Ok,
            },
            &[7; 100_000],
        );
        // A stream's `Ok` reply: it is held until its end.
        bytes.extend(frame(
            &FromActor::Reply {
                id: 2,
                outcome: Outcome::Ok,
            },
            &[],
        ));
        bytes.extend(frame(&FromActor::Item { id: 2 }, &[1, 2, 3]));
        for piece in bytes.chunks(5) {
            answers.observe(piece, &mut held);
        }
        assert_eq!(held.keys().copied().collect::<Vec<_>>().len(), 3);
        assert!(!held.contains_key(&1) && held.contains_key(&2));
        answers.observe(
            &frame(
                &FromActor::End {
                    id: 2,
                    outcome: Outcome::Ok,
                },
                &[],
            ),
            &mut held,
        );
        answers.observe(
            &frame(
                &FromActor::Reply {
                    id: 4,
                    outcome: Outcome::Panicked("no".to_owned()),
                },
                &[],
            ),
            &mut held,
        );
        assert_eq!(held.into_keys().collect::<Vec<_>>(), vec![3]);
    }
}
