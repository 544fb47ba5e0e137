//! [`ProcessPool`]: Python's `ProcessPoolExecutor` / `multiprocessing.Pool`, as an
//! [`Executor`]: the same API as the [`ThreadPool`](crate::ThreadPool).
//!
//! Each worker process has a slot thread in the parent that takes jobs from the shared queue,
//! writes them to its worker and reads the replies (see the [protocol note](super::protocol)).
//! A slot sends one call at a time, and pipelines more (up to a few dozen) only while the queue
//! holds more than every worker's share of them, so short tasks are batched into few system
//! calls and long ones still spread over every worker. A worker that dies fails the one call it was running;
//! the calls pipelined behind it are sent to its replacement.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use parking_lot::{Mutex, RwLock};

use crate::error::{SubmitError, TaskError};
use crate::executor::{Executor, Message};
use crate::handle::{task, Completer, TaskHandle};
use crate::process::child::{Child, ChildOptions};
use crate::process::codec::{self, ReadError};
use crate::process::protocol::{Outcome, ToParent, ToWorker};
use crate::process::registry;

/// Calls pipelined to one worker at most (only while the queue has a backlog).
const PIPELINE: usize = 32;

/// The typed end of a job: decodes the result into the task's handle.
pub(crate) trait Reply: Send {
    fn start(&self) -> bool;
    fn finish(self: Box<Self>, result: Result<Vec<u8>, TaskError>);
}

struct TypedReply<R> {
    completer: Completer<R>,
}

impl<R: Message> Reply for TypedReply<R> {
    fn start(&self) -> bool {
        self.completer.start()
    }

    fn finish(self: Box<Self>, result: Result<Vec<u8>, TaskError>) {
        let result = result.and_then(|bytes| {
            codec::decode::<R>(&bytes).map_err(|message| TaskError::Transport { message })
        });
        self.completer.complete(result);
    }
}

/// A queued call.
pub(crate) struct Job {
    name: &'static str,
    chunk: bool,
    payload: Vec<u8>,
    timeout: Option<Duration>,
    reply: Box<dyn Reply>,
}

impl Job {
    fn new<R: Message>(
        name: &'static str,
        chunk: bool,
        payload: Vec<u8>,
        timeout: Option<Duration>,
    ) -> (Job, TaskHandle<R>) {
        let (handle, completer) = task();
        let job = Job {
            name,
            chunk,
            payload,
            timeout,
            reply: Box::new(TypedReply { completer }),
        };
        (job, handle)
    }
}

/// Configures a [`ProcessPool`].
///
/// ```no_run
/// use std::time::Duration;
///
/// #[crew::task]
/// fn open_connections(_: ()) {
///     // the seed's advice: reopen connections and files in each child
/// }
///
/// # fn main() {
/// crew::init();
/// let pool = crew::ProcessPool::builder()
///     .max_workers(4)
///     .initializer(open_connections, ())
///     .max_tasks_per_child(1000)
///     .task_timeout(Duration::from_secs(30))
///     .memory_limit(512 << 20)
///     .build()
///     .unwrap();
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProcessPoolBuilder {
    max_workers: Option<usize>,
    max_tasks_per_child: Option<usize>,
    initializer: Option<(&'static str, Vec<u8>)>,
    initializer_error: Option<String>,
    task_timeout: Option<Duration>,
    memory_limit: Option<u64>,
}

impl ProcessPoolBuilder {
    /// Defaults: one worker per CPU, workers live forever, no initializer, no timeout, no limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of worker processes (Python's `max_workers` / `processes`).
    ///
    /// # Panics
    /// If `n` is 0.
    #[track_caller]
    pub fn max_workers(mut self, n: usize) -> Self {
        assert!(n > 0, "ProcessPoolBuilder::max_workers must be at least 1");
        self.max_workers = Some(n);
        self
    }

    /// Replace each worker after it has run `n` tasks (a chunk of `map` counts as one), as
    /// Python's `maxtasksperchild`: bounds what a leaky task can accumulate.
    ///
    /// # Panics
    /// If `n` is 0.
    #[track_caller]
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        assert!(
            n > 0,
            "ProcessPoolBuilder::max_tasks_per_child must be at least 1"
        );
        self.max_tasks_per_child = Some(n);
        self
    }

    /// Runs `init(arg)` once in every worker before its first task (Python's `initializer` and
    /// `initargs`). `init` must be a `#[crew::task]`. If it panics the pool is broken: tasks fail
    /// with [`TaskError::InitializerFailed`] and `submit` returns [`SubmitError::Broken`].
    pub fn initializer<A: Message>(mut self, init: fn(A), arg: A) -> Self {
        match registry::name_of(init).and_then(|name| {
            codec::encode(&arg)
                .map(|payload| (name, payload))
                .map_err(|message| SubmitError::Unsupported { message })
        }) {
            Ok(initializer) => self.initializer = Some(initializer),
            Err(error) => self.initializer_error = Some(error.to_string()),
        }
        self
    }

    /// Kill a worker whose task runs longer than `timeout`: the task fails with
    /// [`TaskError::TimedOut`] and a replacement starts. Applies to every task; see also
    /// [`ProcessPool::submit_timeout`].
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Limits each worker's address space to `bytes` (`RLIMIT_AS`): a task that allocates more
    /// fails to allocate, its worker dies ([`TaskError::WorkerDied`]) and is replaced.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// Starts the pool. Workers start in the background; the first task waits for its worker.
    ///
    /// # Errors
    /// An `InvalidInput` error if the initializer is not a `#[crew::task]`; the operating
    /// system's error if a slot thread cannot start.
    pub fn build(self) -> io::Result<ProcessPool> {
        if let Some(message) = self.initializer_error {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        let workers = self
            .max_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let (sender, receiver) = crossbeam_channel::unbounded();
        let inner = Arc::new(Inner {
            sender: RwLock::new(Some(sender)),
            receiver,
            broken: OnceLock::new(),
            threads: Mutex::new(Vec::with_capacity(workers)),
            pids: Mutex::new(vec![None; workers]),
            workers,
            config: Config {
                child: ChildOptions {
                    memory_limit: self.memory_limit,
                    death_signal: true,
                },
                max_tasks_per_child: self.max_tasks_per_child,
                initializer: self.initializer,
                task_timeout: self.task_timeout,
            },
        });
        let pool = ProcessPool { inner };
        for index in 0..workers {
            let inner = pool.inner.clone();
            let thread = std::thread::Builder::new()
                .name(format!("crew-process-slot-{index}"))
                .spawn(move || Slot::new(inner, index).run())?;
            pool.inner.threads.lock().push(thread);
        }
        Ok(pool)
    }
}

#[derive(Debug)]
struct Config {
    child: ChildOptions,
    max_tasks_per_child: Option<usize>,
    initializer: Option<(&'static str, Vec<u8>)>,
    task_timeout: Option<Duration>,
}

struct Inner {
    sender: RwLock<Option<Sender<Job>>>,
    receiver: Receiver<Job>,
    broken: OnceLock<String>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    pids: Mutex<Vec<Option<u32>>>,
    workers: usize,
    config: Config,
}

struct InFlight {
    id: u64,
    job: Job,
    deadline: Option<Instant>,
}

/// One worker slot: its thread owns the worker process.
struct Slot {
    inner: Arc<Inner>,
    index: usize,
    worker: Option<Child>,
    /// Calls sent to the current worker.
    sent: usize,
    in_flight: VecDeque<InFlight>,
    /// Started jobs waiting to be (re)sent: pipelined behind a call whose worker died, or held
    /// back because they need the worker alone (a timeout).
    retry: VecDeque<Job>,
    next_id: u64,
}

impl Slot {
    fn new(inner: Arc<Inner>, index: usize) -> Self {
        Self {
            inner,
            index,
            worker: None,
            sent: 0,
            in_flight: VecDeque::new(),
            retry: VecDeque::new(),
            next_id: 0,
        }
    }

    fn run(mut self) {
        if self.inner.broken.get().is_none() {
            let _ = self.start_worker();
        }
        loop {
            if self.in_flight.is_empty() && self.exhausted() {
                self.retire();
            }
            if !self.fill() {
                break;
            }
            if !self.in_flight.is_empty() {
                self.receive();
            }
        }
        self.retire();
    }

    /// Whether the current worker has run its `max_tasks_per_child`.
    fn exhausted(&self) -> bool {
        self.worker.is_some()
            && self
                .inner
                .config
                .max_tasks_per_child
                .is_some_and(|max| self.sent >= max)
    }

    /// Sends jobs to the worker. Returns `false` when the pool is shut down and drained.
    fn fill(&mut self) -> bool {
        loop {
            if self.exhausted()
                || self.in_flight.len() >= PIPELINE
                || self.in_flight.front().is_some_and(|f| f.deadline.is_some())
            {
                break;
            }
            let job = if let Some(job) = self.retry.pop_front() {
                job
            } else {
                let job = if self.in_flight.is_empty() {
                    match self.inner.receiver.recv() {
                        Ok(job) => job,
                        Err(_) => return false,
                    }
                } else if self.inner.receiver.len()
                    > self.inner.workers * (self.in_flight.len() + 1)
                {
                    // A backlog big enough that every other worker still finds as much waiting
                    // as this one holds: pipeline (short tasks batch into few system calls).
                    match self.inner.receiver.try_recv() {
                        Ok(job) => job,
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                } else {
                    break;
                };
                if !job.reply.start() {
                    continue; // cancelled while queued
                }
                job
            };
            let timeout = job.timeout.or(self.inner.config.task_timeout);
            if timeout.is_some() && !self.in_flight.is_empty() {
                self.retry.push_front(job);
                break;
            }
            if let Some(message) = self.inner.broken.get() {
                job.reply.finish(Err(TaskError::InitializerFailed {
                    message: message.clone(),
                }));
                continue;
            }
            if self.in_flight.is_empty() && self.worker.as_ref().is_some_and(Child::hung_up) {
                // It died while idle (killed from outside): no task of ours was with it.
                if let Some(mut dead) = self.worker.take() {
                    dead.kill_and_reap();
                }
            }
            if self.worker.is_none() {
                if let Err(error) = self.start_worker() {
                    job.reply.finish(Err(error));
                    continue;
                }
            }
            let worker = self.worker.as_mut().expect("started above");
            let id = self.next_id;
            self.next_id += 1;
            let header = ToWorker::Call {
                id,
                name: job.name.to_owned(),
                chunk: job.chunk,
            };
            // A failed write means the worker is gone: the read below reports how it ended.
            let _ = worker.send(&header, &job.payload);
            self.sent += 1;
            let deadline = timeout.map(|t| Instant::now() + t);
            self.in_flight.push_back(InFlight { id, job, deadline });
            if deadline.is_some() {
                break;
            }
        }
        if let Some(worker) = self.worker.as_mut() {
            let _ = worker.flush();
        }
        true
    }

    /// Reads replies: at least one (waiting for it), then every one already buffered.
    fn receive(&mut self) {
        let Some(worker) = self.worker.as_mut() else {
            return;
        };
        let deadline = self.in_flight.front().and_then(|f| f.deadline);
        let mut first = true;
        while first || (worker.has_frame() && !self.in_flight.is_empty()) {
            first = false;
            match worker.read(deadline) {
                Ok(frame) => match frame.header {
                    ToParent::Done { id, outcome }
                        if Some(id) == self.in_flight.front().map(|f| f.id) =>
                    {
                        let done = self.in_flight.pop_front().expect("checked above");
                        let result = match outcome {
                            Outcome::Ok => Ok(frame.payload),
                            Outcome::Panicked(message) => Err(TaskError::Panicked { message }),
                            Outcome::Failed(message) => Err(TaskError::Transport { message }),
                        };
                        done.job.reply.finish(result);
                    }
                    other => {
                        let error = ReadError::Malformed(format!(
                            "malformed frame: unexpected {other:?} while waiting for a reply"
                        ));
                        let failure = worker.failure(&error);
                        self.lose_worker(failure);
                        return;
                    }
                },
                Err(ReadError::Timeout) => {
                    worker.kill_and_reap();
                    self.lose_worker(TaskError::TimedOut);
                    return;
                }
                Err(error) => {
                    let failure = worker.failure(&error);
                    self.lose_worker(failure);
                    return;
                }
            }
        }
    }

    /// The worker is dead (and reaped): its running call fails with `error`, the calls behind
    /// it go to the replacement, which starts now.
    fn lose_worker(&mut self, error: TaskError) {
        self.worker = None;
        self.inner.pids.lock()[self.index] = None;
        let mut in_flight = std::mem::take(&mut self.in_flight).into_iter();
        if let Some(running) = in_flight.next() {
            running.job.reply.finish(Err(error));
        }
        for (offset, waiting) in in_flight.enumerate() {
            self.retry.insert(offset, waiting.job);
        }
        if self.inner.sender.read().is_some() || !self.retry.is_empty() {
            let _ = self.start_worker();
        }
    }

    /// Starts a worker and runs the initializer in it.
    fn start_worker(&mut self) -> Result<(), TaskError> {
        let mut worker = Child::start(self.inner.config.child)
            .map_err(|message| TaskError::Transport { message })?;
        if let Some((name, payload)) = &self.inner.config.initializer {
            let header = ToWorker::Init {
                name: (*name).to_owned(),
            };
            let result = worker
                .send(&header, payload)
                .and_then(|()| worker.flush())
                .map_err(|error| ReadError::Broken(error.to_string()))
                .and_then(|()| worker.read(None));
            match result {
                Ok(frame) => match frame.header {
                    ToParent::InitDone {
                        outcome: Outcome::Ok,
                    } => {}
                    ToParent::InitDone {
                        outcome: Outcome::Panicked(message) | Outcome::Failed(message),
                    } => {
                        let _ = self.inner.broken.set(message.clone());
                        worker.retire();
                        return Err(TaskError::InitializerFailed { message });
                    }
                    other => {
                        worker.kill_and_reap();
                        return Err(TaskError::Transport {
                            message: format!("worker answered the initializer with {other:?}"),
                        });
                    }
                },
                Err(error) => {
                    let failure = worker.failure(&error);
                    let message = format!("the worker died in the initializer: {failure}");
                    let _ = self.inner.broken.set(message.clone());
                    return Err(TaskError::InitializerFailed { message });
                }
            }
        }
        self.inner.pids.lock()[self.index] = Some(worker.pid());
        self.worker = Some(worker);
        self.sent = 0;
        Ok(())
    }

    fn retire(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.inner.pids.lock()[self.index] = None;
            worker.retire();
        }
    }
}

/// A pool of worker processes: the [`ThreadPool`](crate::ThreadPool)'s API for work that needs
/// isolation (crashes, hangs, leaks, non-thread-safe native code) or more than one core's worth
/// of a single-threaded runtime.
///
/// Tasks are `#[crew::task]` functions; switching from threads is a one-line change:
///
/// ```no_run
/// use crew::{Executor, ProcessPool};
///
/// #[crew::task]
/// fn gcd((mut a, mut b): (u64, u64)) -> u64 {
///     while b != 0 {
///         (a, b) = (b, a % b);
///     }
///     a
/// }
///
/// fn main() {
///     crew::init(); // workers enter here
///     let numbers = vec![(1963309, 2265973), (2030677, 3814172)];
///     let pool = ProcessPool::new(2); // was: ThreadPool::new(2)
///     let results: Vec<u64> = pool.map(gcd, numbers).map(Result::unwrap).collect();
///     assert_eq!(results, [1, 1]);
/// }
/// ```
///
/// A task that panics fails with [`TaskError::Panicked`]; a worker that dies (abort, segfault,
/// `SIGKILL`, out of memory, `exit`) fails only the task it was running with
/// [`TaskError::WorkerDied`] and is replaced. Dropping the pool is
/// `shutdown(wait = true, cancel_pending = false)`; every worker is reaped.
pub struct ProcessPool {
    inner: Arc<Inner>,
}

impl ProcessPool {
    /// A pool of `max_workers` processes with default settings.
    ///
    /// # Panics
    /// If `max_workers` is 0 or the slot threads cannot start; use [`ProcessPoolBuilder`] to
    /// handle that error.
    #[track_caller]
    pub fn new(max_workers: usize) -> Self {
        ProcessPoolBuilder::new()
            .max_workers(max_workers)
            .build()
            .expect("crew: cannot start the process pool")
    }

    /// A builder for the other settings.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::new()
    }

    /// Like [`submit`](Executor::submit), killing the worker if the task runs longer than
    /// `timeout` (the task then fails with [`TaskError::TimedOut`]).
    ///
    /// # Errors
    /// As [`Executor::submit`].
    pub fn submit_timeout<A: Message, R: Message>(
        &self,
        f: fn(A) -> R,
        arg: A,
        timeout: Duration,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.enqueue(f, &arg, false, Some(timeout))
    }

    fn enqueue<A: Message, T: serde::Serialize + ?Sized, R: Message>(
        &self,
        f: fn(A) -> R,
        arg: &T,
        chunk: bool,
        timeout: Option<Duration>,
    ) -> Result<TaskHandle<R>, SubmitError> {
        if let Some(message) = self.inner.broken.get() {
            return Err(SubmitError::Broken {
                message: message.clone(),
            });
        }
        let name = registry::name_of(f)?;
        let payload = codec::encode(arg).map_err(|message| SubmitError::Unsupported { message })?;
        let sender = self.inner.sender.read();
        let sender = sender.as_ref().ok_or(SubmitError::Shutdown)?;
        let (job, handle) = Job::new::<R>(name, chunk, payload, timeout);
        sender.send(job).map_err(|_| SubmitError::Shutdown)?;
        Ok(handle)
    }

    fn enqueue_chunk<A: Message, R: Message>(
        &self,
        f: fn(A) -> R,
        args: &[A],
    ) -> Result<TaskHandle<Vec<R>>, SubmitError> {
        if let Some(message) = self.inner.broken.get() {
            return Err(SubmitError::Broken {
                message: message.clone(),
            });
        }
        let name = registry::name_of(f)?;
        let payload =
            codec::encode(args).map_err(|message| SubmitError::Unsupported { message })?;
        let sender = self.inner.sender.read();
        let sender = sender.as_ref().ok_or(SubmitError::Shutdown)?;
        let (job, handle) = Job::new::<Vec<R>>(name, true, payload, None);
        sender.send(job).map_err(|_| SubmitError::Shutdown)?;
        Ok(handle)
    }

    /// The number of tasks queued and not yet sent to a worker.
    pub fn queued(&self) -> usize {
        self.inner.receiver.len()
    }

    /// The process ids of the live workers (a worker being replaced is missing).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.inner.pids.lock().iter().flatten().copied().collect()
    }

    /// Stops accepting tasks; see [`Executor::shutdown`]. With `wait`, every worker has exited
    /// and been reaped when it returns.
    pub fn shutdown(&self, wait: bool, cancel_pending: bool) {
        drop(self.inner.sender.write().take());
        if cancel_pending {
            while let Ok(job) = self.inner.receiver.try_recv() {
                drop(job); // its completer settles the task as cancelled
            }
        }
        if wait {
            let threads = std::mem::take(&mut *self.inner.threads.lock());
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

impl Executor for ProcessPool {
    fn submit<A: Message, R: Message>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.enqueue(f, &arg, false, None)
    }

    fn try_submit<A: Message, R: Message>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.enqueue(f, &arg, false, None)
    }

    fn submit_chunk<A: Message, R: Message>(
        &self,
        f: fn(A) -> R,
        args: Vec<A>,
    ) -> Result<TaskHandle<Vec<R>>, SubmitError> {
        self.enqueue_chunk(f, &args)
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        ProcessPool::shutdown(self, wait, cancel_pending);
    }

    fn max_workers(&self) -> usize {
        self.inner.workers
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("max_workers", &self.inner.workers)
            .field("queued", &self.queued())
            .field("worker_pids", &self.worker_pids())
            .field("shut_down", &self.inner.sender.read().is_none())
            .finish()
    }
}
