//! The serving side: [`serve_worker`] pulls tasks for its free slots, runs them in a process
//! pool (or threads), stores each result, then acknowledges. See the design note in the module
//! above.

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::{self, consumer, AckKind};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::client::{
    read_object, write_object, DEAD_DELIVERIES, DEAD_ERROR, DEAD_SUBJECT, DEAD_TASK, DEAD_TASK_ID,
    HEADROOM,
};
use super::connect;
use super::options::ClusterOptions;
use super::wire::{self, Ending, ResultHeader, TaskHeader};
use super::{ClusterError, WorkerInfo};
use crate::error::TaskError;
use crate::executor::Executor;
use crate::process::{Bytes as RawBytes, ProcessPool};
use crate::task::protocol::Outcome;
use crate::task::{run_call, TaskOptions};
use crate::thread_pool::ThreadPool;

thread_local! {
    static ATTEMPT: Cell<u32> = const { Cell::new(0) };
}

/// The delivery number of the cluster task running on this thread: 1 the first time, 2 when
/// the server delivered it again (its worker died, a retry), and so on; 0 outside a cluster
/// task. Use it to make a task idempotent (at-least-once delivery may run it twice).
///
/// ```
/// // Outside a cluster task:
/// assert_eq!(crew::cluster::attempt(), 0);
/// ```
pub fn attempt() -> u32 {
    ATTEMPT.with(Cell::get)
}

/// How a worker runs tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// In a crew [`ProcessPool`] (the default): a task that crashes kills only its process,
    /// and a cancelled or late task is stopped by killing it. The program must call
    /// [`crew::init()`](crate::init) first in `main`.
    #[default]
    Processes,
    /// In a crew [`ThreadPool`](crate::ThreadPool): cheaper, but a crash takes the worker down
    /// and a running task cannot be stopped (its late result is dropped) unless it registered
    /// how with [`on_cancel`](super::on_cancel) (`run_command` kills its command that way).
    Threads,
}

/// How [`serve_worker`] serves.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub(crate) cluster: ClusterOptions,
    pub(crate) concurrency: usize,
    pub(crate) isolation: Isolation,
    pub(crate) name: Option<String>,
    pub(crate) prefetch: usize,
    pub(crate) heartbeat: Duration,
    pub(crate) drain_timeout: Duration,
}

impl WorkerOptions {
    /// Serve the deployment `cluster` with one slot per CPU, in processes, holding 16 more
    /// tasks per slot, a heartbeat every 2 s, and up to 60 s to drain at shutdown.
    pub fn new(cluster: ClusterOptions) -> Self {
        Self {
            cluster,
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            isolation: Isolation::Processes,
            name: None,
            prefetch: 16,
            heartbeat: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(60),
        }
    }

    /// How many tasks run at once (processes or threads).
    ///
    /// # Panics
    /// If `n` is 0.
    #[track_caller]
    pub fn concurrency(mut self, n: usize) -> Self {
        assert!(n > 0, "WorkerOptions::concurrency must be at least 1");
        self.concurrency = n;
        self
    }

    /// Processes (default) or threads.
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// The worker's name in [`Cluster::status`](super::Cluster::status) (default `host-pid`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How many tasks a worker pulls beyond its running ones, per slot (default 16): they
    /// wait in the worker, saving a round trip per task. Use 0 for long tasks, so that a task
    /// waits in the queue where any idle worker can take it.
    pub fn prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// How often the worker reports to [`Cluster::status`](super::Cluster::status) (default 2 s).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval.max(Duration::from_millis(50));
        self
    }

    /// How long a stopping worker waits for the tasks it holds (default 60 s); after that it
    /// stops them and hands them back to the queue.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    fn slots(&self) -> usize {
        self.concurrency * (1 + self.prefetch)
    }
}

/// What a worker did, returned when it stops.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// The worker's name.
    pub name: String,
    /// Tasks finished with a result (a value or an error) for their submitter.
    pub tasks_done: u64,
    /// Tasks handed back to the queue (a crashed process, a retry, the drain).
    pub handed_back: u64,
    /// Whether every task it held finished or was handed back before it stopped.
    pub drained: bool,
}

/// Serves the `#[crew::task]`s of this program to a deployment until `SIGTERM` or `SIGINT`,
/// then drains: stops pulling, finishes (or hands back, after the drain timeout) what it
/// holds, and returns. Call [`crew::init()`](crate::init) first in `main` when tasks run in
/// processes (the default).
///
/// ```no_run
/// use crew::cluster::{serve_worker, ClusterOptions, WorkerOptions};
///
/// #[crew::task]
/// fn square(n: u64) -> u64 {
///     n * n
/// }
///
/// fn main() {
///     crew::init();
///     let options = ClusterOptions::new("nats://10.0.0.1:4222").token("s3cret");
///     let report = serve_worker(WorkerOptions::new(options).concurrency(4)).unwrap();
///     eprintln!("done: {} tasks", report.tasks_done);
/// }
/// ```
///
/// # Errors
/// As [`Cluster::connect`](super::Cluster::connect) when it cannot connect or set up.
pub fn serve_worker(options: WorkerOptions) -> Result<WorkerReport, ClusterError> {
    let runtime = connect::runtime("crew-worker-io")?;
    runtime.block_on(async move {
        let mut terminate = tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        )
        .map_err(|e| ClusterError::Io {
            message: format!("cannot handle SIGTERM: {e}"),
        })?;
        let mut interrupt = tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::interrupt(),
        )
        .map_err(|e| ClusterError::Io {
            message: format!("cannot handle SIGINT: {e}"),
        })?;
        let stop = async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        };
        serve_on_runtime(options, stop, None).await
    })
}

/// [`serve`] as a task of the current runtime rather than on the thread that blocks on it:
/// the loop that takes deliveries then runs on the same thread as the tasks it spawns for
/// them, so a delivery reaches its handler without waking a second thread (a hop of tens of
/// µs, measured on one task at a time).
async fn serve_on_runtime(
    options: WorkerOptions,
    stop: impl Future<Output = ()> + Send + 'static,
    ready: Option<std::sync::mpsc::Sender<Result<(), ClusterError>>>,
) -> Result<WorkerReport, ClusterError> {
    tokio::spawn(serve(options, stop, ready))
        .await
        .map_err(|error| ClusterError::Io {
            message: format!("the worker's serving task ended abnormally: {error}"),
        })?
}

/// A worker inside this process ([`Cluster::local`](super::Cluster::local)).
pub(crate) struct LocalWorker {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LocalWorker {
    /// Starts a worker on a thread of its own; returns once it serves.
    pub(crate) fn start(options: WorkerOptions) -> Result<LocalWorker, ClusterError> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, started) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("crew-cluster-worker".to_owned())
            .spawn(move || {
                let runtime = match connect::runtime("crew-worker-io") {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                let report = runtime.block_on(serve_on_runtime(
                    options,
                    async move {
                        let _ = stopped.await;
                    },
                    Some(ready.clone()),
                ));
                if let Err(error) = report {
                    let _ = ready.send(Err(error));
                }
            })
            .map_err(|e| ClusterError::Io {
                message: format!("cannot start a worker thread: {e}"),
            })?;
        match started.recv() {
            Ok(Ok(())) => Ok(LocalWorker {
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => {
                let _ = thread.join();
                Err(ClusterError::Io {
                    message: "the local worker thread ended before it served".to_owned(),
                })
            }
        }
    }

    /// Drains and stops the worker.
    pub(crate) fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LocalWorker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for LocalWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalWorker").finish_non_exhaustive()
    }
}

/// What the hidden task `crew::cluster::run` receives: one cluster task and its attempt.
#[derive(Serialize, Deserialize)]
struct RunRequest {
    attempt: u32,
    name: String,
    signature: u64,
    chunk: bool,
    payload: RawBytes,
    /// Thread isolation only (never serialized): fired when this worker stops the task.
    #[serde(skip)]
    stop: Option<super::cancel::StopSignal>,
}

#[derive(Serialize, Deserialize)]
struct RunReply {
    outcome: Outcome,
    payload: RawBytes,
    /// How long the task itself ran, in µs (what decides whether its submitter may send
    /// tasks of its name in envelopes).
    micros: u64,
}

/// Runs a cluster task inside a pool worker (process or thread) with its attempt number
/// visible to it ([`attempt`]), checking name and signature as every worker does.
fn run_attempt(mut request: RunRequest) -> RunReply {
    let _stop = super::cancel::Scope::enter(request.stop.take());
    ATTEMPT.with(|attempt| attempt.set(request.attempt));
    let started = Instant::now();
    let (outcome, payload) = run_call(
        &request.name,
        request.signature,
        request.chunk,
        &request.payload,
    );
    ATTEMPT.with(|attempt| attempt.set(0));
    RunReply {
        outcome,
        payload: RawBytes(payload),
        micros: started.elapsed().as_micros() as u64,
    }
}

// `#[crew::task]` by hand: the macro's paths start with `::crew`, which crew itself cannot name.
fn run_attempt_call(input: &[u8]) -> Result<Vec<u8>, String> {
    crate::task::call_one::<RunRequest, RunReply>(run_attempt, input)
}
fn run_attempt_chunk(input: &[u8]) -> Result<Vec<u8>, String> {
    crate::task::call_chunk::<RunRequest, RunReply>(run_attempt, input)
}
fn run_attempt_type_id() -> std::any::TypeId {
    crate::task::type_id_of(&run_attempt)
}
inventory::submit! {
    crate::task::TaskEntry {
        name: "crew::cluster::run",
        type_id: run_attempt_type_id,
        argument: std::any::type_name::<RunRequest>,
        result: std::any::type_name::<RunReply>,
        call: run_attempt_call,
        call_chunk: run_attempt_chunk,
    }
}

enum Runner {
    Processes(ProcessPool),
    Threads(ThreadPool),
}

/// How one run of a task ended in this worker.
enum Ran {
    /// Its outcome, its result, how long it ran (µs).
    Finished(Outcome, Vec<u8>, u64),
    Died(Option<(bool, i32)>),
    Deadline,
    /// The submitter cancelled it: no result.
    Cancelled,
    /// The worker is stopping: hand it back.
    Abandoned,
    Transport(String),
}

/// What a worker does with a task after its run.
enum Step {
    /// Nothing to report: not a crew task, or cancelled.
    Drop,
    /// Report this ending (and result, and how long the task ran in µs) to the submitter.
    Report(Ending, Vec<u8>, u64),
    /// Hand it back for another delivery after the delay (a retry, the drain).
    Retry(Option<Duration>),
    /// Another delivery after the delay, unless this was the last: then a dead letter, and
    /// this ending is what the dead letter says.
    Again(Ending, Option<Duration>),
}

/// Why a running task is being stopped.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Cancel,
    Drain,
}

struct Worker {
    options: WorkerOptions,
    nats: async_nats::Client,
    js: jetstream::Context,
    tasks: jetstream::stream::Stream,
    runner: Runner,
    name: String,
    host: String,
    pid: u32,
    max_payload: usize,
    done: AtomicU64,
    handed_back: AtomicU64,
    /// Tasks running here, by (submitter, number): how to stop each.
    running: Mutex<HashMap<(String, u64), oneshot::Sender<Stop>>>,
    /// Tasks cancelled before they reached us (bounded memory).
    cancelled: Mutex<Remembered>,
    /// Reply subjects of the messages we hold, for progress acknowledgements.
    held: Mutex<HashMap<u64, async_nats::Subject>>,
    /// Results waiting to go to their submitters' inboxes unconfirmed, by submitter: sent
    /// together, one message per submitter, by [`Worker::send_results`]. Each group (one
    /// task's result, or every result of an envelope) travels in one message: the
    /// acknowledgement rides on a group's last result, so a lost message must lose it too.
    outbox: Mutex<HashMap<String, Vec<Vec<Bytes>>>>,
    bucket: tokio::sync::OnceCell<jetstream::object_store::ObjectStore>,
}

const CANCELLED_MEMORY: usize = 100_000;

/// How long a worker holding one task alone waits for it on its I/O thread (see
/// [`Worker::leads`]) before it awaits it as usual.
const LEAD_LIMIT: Duration = Duration::from_millis(1);
/// The most a stopping worker waits for the server to take its last results, remove its
/// heartbeat and flush.
const FAREWELL: Duration = Duration::from_secs(5);

/// How long a worker waits for a submitter to confirm a result sent to its inbox before it
/// stores the result in the results stream instead.
const INBOX_CONFIRMATION: Duration = Duration::from_secs(2);

/// Task keys (submitter, number), with their arrival order to forget the oldest.
type Remembered = (HashSet<(String, u64)>, VecDeque<(String, u64)>);

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A key-value key: letters, digits, `-`, `_`, `=` only.
fn kv_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

async fn serve(
    options: WorkerOptions,
    stop: impl Future<Output = ()>,
    ready: Option<std::sync::mpsc::Sender<Result<(), ClusterError>>>,
) -> Result<WorkerReport, ClusterError> {
    let nats = connect::connect(&options.cluster).await?;
    let js = connect::context(nats.clone(), &options.cluster);
    let (tasks, consumer) = connect::setup(&js, &options.cluster).await?;
    let heartbeats = connect::workers_bucket(&js, &options.cluster).await?;
    let runner = match options.isolation {
        Isolation::Processes => Runner::Processes(
            ProcessPool::builder()
                .max_workers(options.concurrency)
                .build()
                .map_err(|e| ClusterError::Io {
                    message: format!("cannot start the worker's process pool: {e}"),
                })?,
        ),
        Isolation::Threads => Runner::Threads(
            ThreadPool::builder()
                .max_workers(options.concurrency)
                .thread_name_prefix("crew-cluster-task")
                .build()
                .map_err(|e| ClusterError::Io {
                    message: format!("cannot start the worker's threads: {e}"),
                })?,
        ),
    };
    let host = host_name();
    let pid = std::process::id();
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| format!("{host}-{pid}"));
    let prefix = options.cluster.prefix.clone();
    let cancels = nats
        .subscribe(format!("{prefix}.cancel"))
        .await
        .map_err(|e| ClusterError::JetStream {
            message: format!("cannot subscribe to cancel notices: {e}"),
        })?;
    let advisories = nats
        .queue_subscribe(
            format!(
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
                options.cluster.tasks_stream(),
                options.cluster.consumer()
            ),
            format!("{prefix}-dead-letters"),
        )
        .await
        .map_err(|e| ClusterError::JetStream {
            message: format!("cannot subscribe to delivery advisories: {e}"),
        })?;
    let max_payload = nats.server_info().max_payload;
    let worker = Arc::new(Worker {
        nats,
        js,
        tasks,
        runner,
        name: name.clone(),
        host,
        pid,
        max_payload,
        done: AtomicU64::new(0),
        handed_back: AtomicU64::new(0),
        running: Mutex::new(HashMap::new()),
        cancelled: Mutex::new((HashSet::new(), VecDeque::new())),
        held: Mutex::new(HashMap::new()),
        outbox: Mutex::new(HashMap::new()),
        bucket: tokio::sync::OnceCell::new(),
        options,
    });
    // Actors placed on this worker (`ActorOptions::on_cluster`): created and served here.
    let actors = crate::actor::serve_cluster_actors(
        worker.nats.clone(),
        worker.js.clone(),
        worker.options.cluster.clone(),
        name.clone(),
    )
    .await?;
    let background = vec![
        actors,
        tokio::spawn(listen_cancels(worker.clone(), cancels)),
        tokio::spawn(listen_advisories(worker.clone(), advisories)),
        tokio::spawn(progress(worker.clone())),
        tokio::spawn(heartbeat(worker.clone(), heartbeats.clone())),
    ];
    let slots = worker.options.slots();
    let free = Arc::new(Semaphore::new(slots));
    let mut messages = pull(&consumer, slots).await?;
    if let Some(ready) = ready {
        let _ = ready.send(Ok(()));
    }
    let stop = stop.fuse();
    futures::pin_mut!(stop);
    'serve: loop {
        let permit = tokio::select! {
            permit = free.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut stop => break 'serve,
        };
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                () = &mut stop => break 'serve,
            };
            match next {
                Some(Ok(message)) => {
                    tokio::spawn(handle(worker.clone(), message, permit));
                    break;
                }
                // Missed heartbeats and the like: the stream goes on (it re-pulls itself).
                Some(Err(_)) => continue,
                // The consumer was deleted or the pull refused: set up again.
                None => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if let Ok((_, consumer)) =
                        connect::setup(&worker.js, &worker.options.cluster).await
                    {
                        if let Ok(stream) = pull(&consumer, slots).await {
                            messages = stream;
                        }
                    }
                }
            }
        }
    }
    // Drain: what was delivered but not taken goes back at once; what runs may finish.
    while let Some(Some(next)) = messages.next().now_or_never() {
        if let Ok(message) = next {
            let _ = message.ack_with(AckKind::Nak(None)).await;
            worker.handed_back.fetch_add(1, Ordering::Relaxed);
        }
    }
    drop(messages);
    let drain = free.clone().acquire_many_owned(slots as u32);
    let drained = match tokio::time::timeout(worker.options.drain_timeout, drain).await {
        Ok(_) => true,
        Err(_) => {
            let stops: Vec<_> = worker
                .running
                .lock()
                .drain()
                .map(|(_, stop)| stop)
                .collect();
            for stop in stops {
                let _ = stop.send(Stop::Drain);
            }
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                free.clone().acquire_many_owned(slots as u32),
            )
            .await;
            false
        }
    };
    for task in background {
        task.abort();
    }
    // Bounded: with the server gone (or unreachable) these would wait for a reconnection
    // forever, and a SIGTERM would never end the worker. Results not sent are not lost: their
    // tasks were not acknowledged, so they are delivered again.
    let farewell = async {
        worker.send_results().await;
        let _ = heartbeats.delete(kv_key(&worker.name)).await;
        let _ = worker.nats.flush().await;
    };
    let _ = tokio::time::timeout(FAREWELL, farewell).await;
    match &worker.runner {
        Runner::Processes(pool) => pool.shutdown(false, true),
        Runner::Threads(pool) => pool.shutdown(false, true),
    }
    Ok(WorkerReport {
        name,
        tasks_done: worker.done.load(Ordering::Relaxed),
        handed_back: worker.handed_back.load(Ordering::Relaxed),
        drained,
    })
}

async fn pull(
    consumer: &consumer::PullConsumer,
    slots: usize,
) -> Result<consumer::pull::Stream, ClusterError> {
    consumer
        .stream()
        .max_messages_per_batch(slots)
        .expires(Duration::from_secs(10))
        .heartbeat(Duration::from_secs(3))
        .messages()
        .await
        .map_err(|e| ClusterError::JetStream {
            message: format!("cannot pull tasks: {e}"),
        })
}

async fn listen_cancels(worker: Arc<Worker>, mut cancels: async_nats::Subscriber) {
    while let Some(message) = cancels.next().await {
        let Ok(key) = postcard::from_bytes::<(String, u64)>(&message.payload) else {
            continue;
        };
        if let Some(stop) = worker.running.lock().remove(&key) {
            let _ = stop.send(Stop::Cancel);
            continue;
        }
        let mut cancelled = worker.cancelled.lock();
        let (set, order) = &mut *cancelled;
        if set.insert(key.clone()) {
            order.push_back(key);
            if order.len() > CANCELLED_MEMORY {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }
}

/// Progress acknowledgements for every message held, at a third of `ack_wait`.
async fn progress(worker: Arc<Worker>) {
    let period = worker.options.cluster.ack_wait / 3;
    loop {
        tokio::time::sleep(period).await;
        let replies: Vec<async_nats::Subject> = worker.held.lock().values().cloned().collect();
        for reply in replies {
            let _ = worker
                .nats
                .publish(reply, Bytes::from_static(b"+WPI"))
                .await;
        }
    }
}

async fn heartbeat(worker: Arc<Worker>, bucket: jetstream::kv::Store) {
    let key = kv_key(&worker.name);
    loop {
        let info = WorkerInfo {
            name: worker.name.clone(),
            host: worker.host.clone(),
            pid: worker.pid,
            slots: worker.options.concurrency,
            tasks_done: worker.done.load(Ordering::Relaxed),
            last_seen: SystemTime::now(),
            heartbeat_ms: worker.options.heartbeat.as_millis() as u64,
        };
        if let Ok(bytes) = postcard::to_stdvec(&info) {
            let _ = bucket.put(&key, Bytes::from(bytes)).await;
        }
        tokio::time::sleep(worker.options.heartbeat).await;
    }
}

/// The server gave up on a task (`max_deliver` deliveries without an acknowledgement: its
/// workers died): dead-letter it and tell its submitter.
async fn listen_advisories(worker: Arc<Worker>, mut advisories: async_nats::Subscriber) {
    #[derive(Deserialize)]
    struct Advisory {
        stream_seq: u64,
        deliveries: u64,
    }
    while let Some(message) = advisories.next().await {
        let Ok(advisory) = serde_json::from_slice::<Advisory>(&message.payload) else {
            continue;
        };
        let Ok(task) = worker.tasks.get_raw_message(advisory.stream_seq).await else {
            continue; // acknowledged meanwhile, or already dead-lettered
        };
        // One task, or each task of an envelope: a dead letter of its own.
        let frames: Vec<Bytes> = match wire::envelope_items(&task.payload) {
            Some(items) => items.map(|item| task.payload.slice_ref(item)).collect(),
            None => vec![task.payload.clone()],
        };
        let last = "its worker was lost (no acknowledgement within ack_wait) on the last delivery"
            .to_owned();
        let mut stored = true;
        for frame in frames {
            let Ok((header, _)) = wire::unframe::<TaskHeader>(&frame) else {
                continue; // not a crew task: nobody waits for it
            };
            if worker
                .dead_letter(
                    task.subject.as_str(),
                    &header,
                    frame.clone(),
                    (advisory.stream_seq, advisory.deliveries),
                    &last,
                )
                .await
                .is_err()
            {
                stored = false;
                continue;
            }
            let ending = Ending::DeadLetter {
                deliveries: advisory.deliveries,
                last: last.clone(),
            };
            let _ = worker
                .publish_result(&header, advisory.deliveries as u32, ending, Vec::new())
                .await;
        }
        if stored {
            let _ = worker.tasks.delete_message(advisory.stream_seq).await;
        }
    }
}

async fn handle(worker: Arc<Worker>, message: jetstream::Message, permit: OwnedSemaphorePermit) {
    let (attempt, sequence) = match message.info() {
        Ok(info) => (info.delivered.max(1) as u32, info.stream_sequence),
        Err(_) => (1, 0),
    };
    if let Some(reply) = message.reply.clone() {
        worker.held.lock().insert(sequence, reply);
    }
    match wire::envelope_items(&message.payload) {
        Some(items) => {
            let frames = items.map(|item| message.payload.slice_ref(item)).collect();
            worker.handle_envelope(&message, attempt, frames).await;
        }
        None => worker.handle(&message, attempt).await,
    }
    worker.held.lock().remove(&sequence);
    drop(permit);
}

impl Worker {
    async fn bucket(&self) -> Result<&jetstream::object_store::ObjectStore, ClusterError> {
        self.bucket
            .get_or_try_init(|| connect::bucket(&self.js, &self.options.cluster))
            .await
    }

    /// Runs the task of a message holding one, then settles the message by the run's [`Step`].
    async fn handle(self: &Arc<Self>, message: &jetstream::Message, attempt: u32) {
        let (header, step) = self.run_task(&message.payload, attempt, true).await;
        let Some(header) = header else {
            // Not a crew task (nobody can run it, nobody waits for it), or cancelled.
            let _ = message.ack_with(AckKind::Term).await;
            return;
        };
        match step {
            Step::Drop => {
                let _ = message.ack_with(AckKind::Term).await;
            }
            Step::Report(ending, result, micros) => {
                self.finish(message, &header, attempt, (ending, micros), result)
                    .await;
            }
            Step::Retry(delay) => {
                let _ = message.ack_with(AckKind::Nak(delay)).await;
                self.handed_back.fetch_add(1, Ordering::Relaxed);
            }
            Step::Again(ending, delay) => {
                self.retry_or_fail(message, &header, attempt, ending, delay)
                    .await;
            }
        }
    }

    /// Runs one task message (alone or from an envelope) and says what should happen next;
    /// the header is `None` for a message that is not a crew task.
    async fn run_task(
        self: &Arc<Self>,
        frame: &[u8],
        attempt: u32,
        alone: bool,
    ) -> (Option<TaskHeader>, Step) {
        let Ok((header, start)) = wire::unframe::<TaskHeader>(frame) else {
            return (None, Step::Drop);
        };
        let key = (header.submitter.clone(), header.id);
        if self.cancelled.lock().0.contains(&key) {
            return (Some(header), Step::Drop);
        }
        if header
            .deadline_ms
            .is_some_and(|deadline| wire::now_ms() >= deadline)
        {
            return (
                Some(header),
                Step::Report(Ending::DeadlineExceeded, Vec::new(), 0),
            );
        }
        let payload = match &header.object {
            None => frame[start..].to_vec(),
            Some(key) => {
                let fetched = match self.bucket().await {
                    Ok(bucket) => read_object(bucket, key).await,
                    Err(error) => Err(error.to_string()),
                };
                match fetched {
                    Ok(bytes) => bytes,
                    // Perhaps a passing failure: let it run again, up to max_deliver.
                    Err(text) => return (Some(header), Step::Again(Ending::Transport(text), None)),
                }
            }
        };
        let (stop, stopped) = oneshot::channel();
        self.running.lock().insert(key.clone(), stop);
        let ran = self.run(&header, attempt, payload, stopped, alone).await;
        self.running.lock().remove(&key);
        let max_deliver = self.options.cluster.max_deliver;
        let step = match ran {
            Ran::Finished(Outcome::Ok, result, micros) => {
                Step::Report(Ending::Ran(Outcome::Ok), result, micros)
            }
            Ran::Finished(Outcome::Panicked(_) | Outcome::Failed(_), ..)
                if attempt <= header.retries && attempt < max_deliver =>
            {
                let delay =
                    Duration::from_millis(header.backoff_ms.saturating_mul(u64::from(attempt)));
                Step::Retry(Some(delay))
            }
            Ran::Finished(outcome, _, micros) => {
                Step::Report(Ending::Ran(outcome), Vec::new(), micros)
            }
            Ran::Died(exit) => Step::Again(
                Ending::Died {
                    exit,
                    deliveries: u64::from(attempt),
                },
                Some(Duration::from_millis(50)),
            ),
            Ran::Deadline => Step::Report(Ending::DeadlineExceeded, Vec::new(), 0),
            Ran::Cancelled => Step::Drop,
            Ran::Abandoned => Step::Retry(None),
            Ran::Transport(text) => Step::Report(Ending::Transport(text), Vec::new(), 0),
        };
        (Some(header), step)
    }

    /// Runs the tasks of an envelope side by side, then settles the message for all of them
    /// (see the design note): if one needs another delivery (its process died, the worker
    /// drains, a retry) and this is not the last, the whole envelope is handed back and runs
    /// again, the others' results unsent (their next run sends them); on the last delivery
    /// such a task goes to the dead letters alone. Otherwise every result goes to the
    /// submitter, the message's acknowledgement subject with the last one (the submitter
    /// acknowledges the envelope once it settled them all), or the confirmed way on a later
    /// delivery, and then the worker acknowledges.
    async fn handle_envelope(
        self: &Arc<Self>,
        message: &jetstream::Message,
        attempt: u32,
        frames: Vec<Bytes>,
    ) {
        let steps = futures::future::join_all(
            frames
                .iter()
                .map(|frame| self.run_task(frame, attempt, false)),
        )
        .await;
        let last_delivery = attempt >= self.options.cluster.max_deliver;
        let sequence = message.info().map_or(0, |info| info.stream_sequence);
        let mut reports = Vec::new();
        let mut again: Option<Option<Duration>> = None;
        for (frame, (header, step)) in frames.iter().zip(steps) {
            let Some(header) = header else { continue };
            match step {
                Step::Drop => {}
                Step::Report(ending, result, micros) => {
                    reports.push((header, (ending, micros), result));
                }
                Step::Retry(delay) => again = Some(again.flatten().max(delay)),
                Step::Again(_, delay) if !last_delivery => {
                    again = Some(again.flatten().max(delay));
                }
                Step::Again(ending, delay) => {
                    let last = self.last_error(&header, attempt, ending);
                    let dead = self
                        .dead_letter(
                            message.subject.as_str(),
                            &header,
                            frame.clone(),
                            (sequence, u64::from(attempt)),
                            &last,
                        )
                        .await;
                    match dead {
                        Ok(()) => {
                            let ending = Ending::DeadLetter {
                                deliveries: u64::from(attempt),
                                last,
                            };
                            reports.push((header, (ending, 0), Vec::new()));
                        }
                        Err(_) => again = Some(again.flatten().max(delay)),
                    }
                }
            }
        }
        if let Some(delay) = again {
            let _ = message.ack_with(AckKind::Nak(delay)).await;
            self.handed_back.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if reports.is_empty() {
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
        let reply = message
            .reply
            .as_ref()
            .filter(|_| attempt == 1 && reports.iter().all(|(header, ..)| header.inbox));
        // Every result encoded (large ones stored) before any leaves: the acknowledgement
        // rides on the last, so none may be missing.
        let count = reports.len();
        let mut encoded = Vec::with_capacity(count);
        for (index, (header, ending, result)) in reports.into_iter().enumerate() {
            let ack = reply
                .filter(|_| index + 1 == count)
                .map(|subject| subject.to_string());
            match self
                .encode_result(&header, attempt, ending, result, ack)
                .await
            {
                Ok(bytes) => encoded.push((header, bytes)),
                Err(_) => {
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                        .await;
                    self.handed_back.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        // Unconfirmed only if the whole envelope fits in one message (see `outbox`); else
        // each result is confirmed (the submitter ignores an acknowledgement subject in those).
        let group_bytes: usize = encoded.iter().map(|(_, bytes)| 4 + bytes.len()).sum();
        if reply.is_some() && group_bytes <= self.batch_limit() {
            let submitter = encoded[0].0.submitter.clone();
            let group = encoded.into_iter().map(|(_, bytes)| bytes).collect();
            self.queue_results(&submitter, group);
        } else {
            for (header, bytes) in encoded {
                if self.deliver_result(&header, bytes).await.is_err() {
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                        .await;
                    self.handed_back.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            let _ = message.ack().await;
        }
        self.done.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// A failure that deserves another delivery: nak it, unless this was the last one, which
    /// makes it a dead letter and an error for the submitter.
    async fn retry_or_fail(
        self: &Arc<Self>,
        message: &jetstream::Message,
        header: &TaskHeader,
        attempt: u32,
        ending: Ending,
        delay: Option<Duration>,
    ) {
        if attempt < self.options.cluster.max_deliver {
            let _ = message.ack_with(AckKind::Nak(delay)).await;
            self.handed_back.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let sequence = message.info().map_or(0, |info| info.stream_sequence);
        let last = self.last_error(header, attempt, ending);
        if self
            .dead_letter(
                message.subject.as_str(),
                header,
                message.payload.clone(),
                (sequence, u64::from(attempt)),
                &last,
            )
            .await
            .is_err()
        {
            let _ = message.ack_with(AckKind::Nak(delay)).await;
            return;
        }
        let ending = Ending::DeadLetter {
            deliveries: u64::from(attempt),
            last,
        };
        self.finish(message, header, attempt, (ending, 0), Vec::new())
            .await;
    }

    async fn dead_letter(
        &self,
        subject: &str,
        header: &TaskHeader,
        payload: Bytes,
        (sequence, deliveries): (u64, u64),
        error: &str,
    ) -> Result<(), String> {
        let task_id = format!("{}.{}", header.submitter, header.id);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(DEAD_SUBJECT, subject);
        headers.insert(DEAD_TASK, header.name.as_str());
        headers.insert(DEAD_TASK_ID, task_id.as_str());
        headers.insert(DEAD_DELIVERIES, deliveries.to_string().as_str());
        // Header values are one line.
        headers.insert(DEAD_ERROR, error.replace(['\r', '\n'], " ").as_str());
        let publish = jetstream::message::PublishMessage::build()
            .payload(payload)
            .headers(headers)
            // Once per stored task (a requeued task is stored anew, under another sequence).
            .message_id(format!("dead.{task_id}.{sequence}"));
        let subject = format!(
            "{}.dead.{}",
            self.options.cluster.prefix,
            wire::subject_token(&header.name)
        );
        self.js
            .send_publish(subject, publish)
            .await
            .map_err(|e| e.to_string())?
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Whether this task's run is waited for on the worker's I/O thread itself, blocking it
    /// for at most [`LEAD_LIMIT`]: when the worker holds nothing else (one task at a time: one
    /// message, not an envelope, whose tasks must reach the pool together), in
    /// processes, without a deadline (such a call is the only kind the pool hands straight to
    /// an idle process, whose reply a blocked waiter then reads off the socket itself, the
    /// pool's "a waiting caller leads"). The reply then wakes this thread only, instead of the
    /// pool's slot thread and then this one: one thread hand-off fewer per task. Nothing waits
    /// behind it meanwhile but control messages (cancel notices, heartbeats), late by at most
    /// that long.
    fn leads(&self, header: &TaskHeader, alone: bool) -> bool {
        alone
            && matches!(self.runner, Runner::Processes(_))
            && header.deadline_ms.is_none()
            && self.held.lock().len() <= 1
            && self.running.lock().len() <= 1
    }

    async fn run(
        &self,
        header: &TaskHeader,
        attempt: u32,
        payload: Vec<u8>,
        stopped: oneshot::Receiver<Stop>,
        alone: bool,
    ) -> Ran {
        // A thread cannot be killed: the task's `on_cancel` hooks stop its work instead.
        let stop =
            matches!(self.runner, Runner::Threads(_)).then(super::cancel::StopSignal::default);
        let fire = |stop: &Option<super::cancel::StopSignal>| {
            if let Some(stop) = stop.clone() {
                tokio::task::spawn_blocking(move || stop.fire());
            }
        };
        let request = RunRequest {
            attempt,
            name: header.name.clone(),
            signature: header.signature,
            chunk: header.chunk,
            payload: RawBytes(payload),
            stop: stop.clone(),
        };
        let options = match header.deadline_ms {
            Some(deadline) => TaskOptions::new().timeout(Duration::from_millis(
                deadline.saturating_sub(wire::now_ms()),
            )),
            None => TaskOptions::new(),
        };
        let submitted = match &self.runner {
            Runner::Processes(pool) => pool.submit_with(run_attempt, request, options),
            Runner::Threads(pool) => pool.submit_with(run_attempt, request, options),
        };
        let mut handle = match submitted {
            Ok(handle) => handle,
            Err(error) => {
                return Ran::Transport(format!("the worker could not run the task: {error}"))
            }
        };
        // Only when the pool handed the call to an idle process (the handle has a driver):
        // otherwise the wait would only block this runtime's one thread for nothing.
        if self.leads(header, alone) && handle.has_driver() {
            // Bounded: a longer task is awaited below, as any other.
            handle.wait_timeout(LEAD_LIMIT);
        }
        let result = tokio::select! {
            result = &mut handle => result,
            stop_reason = stopped => {
                handle.cancel();
                fire(&stop);
                return match stop_reason {
                    Ok(Stop::Drain) => Ran::Abandoned,
                    _ => Ran::Cancelled,
                };
            }
        };
        match result {
            Ok(reply) => Ran::Finished(reply.outcome, reply.payload.0, reply.micros),
            Err(TaskError::WorkerDied { exit, .. }) => Ran::Died(exit.map(|exit| match exit {
                crate::ExitStatus::Signal(n) => (true, n),
                crate::ExitStatus::Code(n) => (false, n),
            })),
            Err(TaskError::DeadlineExceeded { .. }) => {
                fire(&stop);
                Ran::Deadline
            }
            Err(TaskError::Cancelled) => Ran::Cancelled,
            Err(TaskError::Panicked { message }) => {
                Ran::Finished(Outcome::Panicked(message), Vec::new(), 0)
            }
            Err(error) => Ran::Transport(error.to_string()),
        }
    }

    /// Hands the result to its submitter and has the task acknowledged. The first delivery of
    /// a task whose submitter reads its inbox sends the result there unconfirmed, with the
    /// task's acknowledgement subject: the submitter acknowledges the task once it holds the
    /// result, and this worker neither waits nor acknowledges. Any other delivery (a
    /// redelivery: perhaps the submitter was away) goes the confirmed way
    /// ([`publish_result`](Self::publish_result)), then is acknowledged here. If the result
    /// cannot be delivered or stored, the task is handed back (it runs again: at least once,
    /// never lost).
    async fn finish(
        self: &Arc<Self>,
        message: &jetstream::Message,
        header: &TaskHeader,
        attempt: u32,
        ending: (Ending, u64),
        result: Vec<u8>,
    ) {
        let ack = message
            .reply
            .as_ref()
            .filter(|_| header.inbox && attempt == 1)
            .map(|subject| subject.to_string());
        let unconfirmed = ack.is_some();
        let sent = match self
            .encode_result(header, attempt, ending, result, ack)
            .await
        {
            Ok(bytes) if unconfirmed => {
                self.queue_results(&header.submitter, vec![bytes]);
                Ok(())
            }
            Ok(bytes) => match self.deliver_result(header, bytes).await {
                Ok(()) => {
                    let _ = message.ack().await;
                    Ok(())
                }
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        match sent {
            Ok(()) => {
                self.done.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                    .await;
                self.handed_back.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues a result for its submitter's inbox; the first result queued schedules
    /// [`send_results`](Self::send_results) behind the tasks that are ready to run now, so
    /// that the results finishing together leave in one message.
    fn queue_results(self: &Arc<Self>, submitter: &str, group: Vec<Bytes>) {
        let first = {
            let mut outbox = self.outbox.lock();
            let first = outbox.is_empty();
            outbox.entry(submitter.to_owned()).or_default().push(group);
            first
        };
        if first {
            let worker = self.clone();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                worker.send_results().await;
            });
        }
    }

    /// Sends the queued results, one batch message per submitter (split below the server's
    /// payload limit). A batch that finds no submitter is lost on the way: its tasks, never
    /// acknowledged, are delivered again after `ack_wait` and take the confirmed way.
    async fn send_results(&self) {
        let outbox = std::mem::take(&mut *self.outbox.lock());
        let limit = self.batch_limit();
        for (submitter, groups) in outbox {
            let inbox = wire::inbox_subject(&self.options.cluster.prefix, &submitter);
            let mut batch = Vec::new();
            for group in groups {
                let size: usize = group.iter().map(|result| 4 + result.len()).sum();
                if !batch.is_empty() && batch.len() + size > limit {
                    let full = std::mem::take(&mut batch);
                    let _ = self.nats.publish(inbox.clone(), Bytes::from(full)).await;
                }
                for result in group {
                    wire::batch_push(&mut batch, &result);
                }
            }
            if !batch.is_empty() {
                let _ = self.nats.publish(inbox, Bytes::from(batch)).await;
            }
        }
    }

    /// The most bytes of results in one message to a submitter's inbox.
    fn batch_limit(&self) -> usize {
        self.max_payload.saturating_sub(1024).max(1)
    }

    /// Sends a result the confirmed way (to the inbox as a request, else stored in the
    /// results stream); the caller acknowledges the task once it returns `Ok`.
    async fn publish_result(
        &self,
        header: &TaskHeader,
        attempt: u32,
        ending: Ending,
        result: Vec<u8>,
    ) -> Result<(), String> {
        let bytes = self
            .encode_result(header, attempt, (ending, 0), result, None)
            .await?;
        self.deliver_result(header, bytes).await
    }

    /// This worker's result header for task `id`'s `attempt`, ended by `ending` (nothing in
    /// the object store, no acknowledgement subject, no run time).
    fn result_header(&self, id: u64, attempt: u32, ending: Ending) -> ResultHeader {
        ResultHeader {
            id,
            attempt,
            host: self.host.clone(),
            pid: self.pid,
            ending,
            object: None,
            ack: None,
            micros: 0,
        }
    }

    /// The error a dead letter keeps for `header`'s task that ended this way here.
    fn last_error(&self, header: &TaskHeader, attempt: u32, ending: Ending) -> String {
        self.result_header(header.id, attempt, ending)
            .error(None, &header.name)
            .to_string()
    }

    /// The result message: its header and the result, or the key of the result put in the
    /// object store when it is too large for a message.
    async fn encode_result(
        &self,
        header: &TaskHeader,
        attempt: u32,
        (ending, micros): (Ending, u64),
        result: Vec<u8>,
        ack: Option<String>,
    ) -> Result<Bytes, String> {
        let mut reply = ResultHeader {
            ack,
            micros,
            ..self.result_header(header.id, attempt, ending)
        };
        let bytes = if result.len() + HEADROOM > self.max_payload {
            let key = format!("r.{}.{}", header.submitter, header.id);
            let bucket = self.bucket().await.map_err(|e| e.to_string())?;
            write_object(bucket, &key, &result).await?;
            reply.object = Some(key);
            wire::frame(&reply, &[])?
        } else {
            wire::frame(&reply, &result)?
        };
        Ok(Bytes::from(bytes))
    }

    /// The confirmed way: to the submitter's inbox as a request it answers once it holds the
    /// result; without an answer in time (or with the results stream chosen), stored in the
    /// results stream.
    async fn deliver_result(&self, header: &TaskHeader, bytes: Bytes) -> Result<(), String> {
        if header.inbox {
            let inbox = wire::inbox_subject(&self.options.cluster.prefix, &header.submitter);
            let confirmed =
                tokio::time::timeout(INBOX_CONFIRMATION, self.nats.request(inbox, bytes.clone()))
                    .await;
            if matches!(confirmed, Ok(Ok(_))) {
                return Ok(());
            }
            // No submitter there (disconnected, restarting, gone) or no answer in time: the
            // results stream keeps it (a result that arrives twice is dropped by number).
        }
        let subject = format!(
            "{}.result.{}",
            self.options.cluster.prefix, header.submitter
        );
        let mut last = String::new();
        let started = Instant::now();
        while started.elapsed() < self.options.cluster.request_timeout * 3 {
            match self.js.publish(subject.clone(), bytes.clone()).await {
                Ok(ack) => match ack.await {
                    Ok(_) => return Ok(()),
                    Err(error) => last = error.to_string(),
                },
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("cannot store the result: {last}"))
    }
}
