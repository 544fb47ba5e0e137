//! [`ThreadPool`]: Python's `ThreadPoolExecutor` / `multiprocessing.pool.ThreadPool`.
//!
//! Workers share one crossbeam channel of jobs. Shutdown drops the only sender: workers drain
//! what is queued and exit when the channel reports disconnection, so there are no stop tokens
//! to race with late submissions. Idle workers sleep in `recv` and cost no CPU.

use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};

use crate::error::{SubmitError, TaskError};
use crate::executor::{Executor, Message};
use crate::handle::{task_with, Shared, TaskHandle};
use crate::thread::run_catching;

/// A queued unit of work: run it, or settle it without running.
pub(crate) trait Job: Send + Sync {
    fn run(&self);
    fn fail(&self, error: TaskError);
    fn abandon(&self);
}

/// The closure of a task, kept in the task's own cell so a task costs one allocation.
/// Taken exactly once, by the worker whose `start()` won.
struct Closure<F>(UnsafeCell<Option<F>>);

// SAFETY: the closure is only moved out (never shared by reference) and only by the one worker
// whose `start()` moved the task from Pending to Running, which happens at most once per task
// under the cell's lock; that lock's release/acquire orders the write of `Some(f)` at creation
// before the take. So it is accessed by one thread at a time and needs only `F: Send`.
unsafe impl<F: Send> Sync for Closure<F> {}

impl<F, R> Job for Shared<R, Closure<F>>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    fn run(&self) {
        if self.start() {
            // SAFETY: `start()` returned true, which happens once per task, so this thread has
            // exclusive access to the closure (see `Closure`'s `Sync` impl).
            let f = unsafe { (*self.payload().0.get()).take() }
                .expect("a task's closure is taken only by the worker that started it");
            self.complete(run_catching(f));
        }
    }

    fn fail(&self, error: TaskError) {
        self.complete(Err(error));
    }

    fn abandon(&self) {
        Shared::abandon(self);
    }
}

/// A job in the queue. If it is dropped unrun (the queue torn down, pending work cancelled)
/// its task settles as cancelled, so no handle waits forever.
struct Queued(Option<Arc<dyn Job>>);

impl Queued {
    fn run(mut self) {
        if let Some(job) = self.0.take() {
            job.run();
        }
    }

    fn fail(mut self, error: TaskError) {
        if let Some(job) = self.0.take() {
            job.fail(error);
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            job.abandon();
        }
    }
}

type Initializer = Arc<dyn Fn() + Send + Sync>;

/// Configures a [`ThreadPool`].
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let started = Arc::new(AtomicUsize::new(0));
/// let counter = started.clone();
/// let pool = crew::ThreadPoolBuilder::new()
///     .max_workers(3)
///     .thread_name_prefix("fetcher")
///     .initializer(move || {
///         counter.fetch_add(1, Ordering::SeqCst);
///     })
///     .queue_bound(100)
///     .build()
///     .unwrap();
/// let name = pool
///     .spawn(|| std::thread::current().name().unwrap().to_owned())
///     .unwrap()
///     .result()
///     .unwrap();
/// assert!(name.starts_with("fetcher-"));
/// drop(pool);
/// assert_eq!(started.load(Ordering::SeqCst), 3);
/// ```
#[derive(Clone)]
pub struct ThreadPoolBuilder {
    max_workers: Option<usize>,
    name_prefix: String,
    initializer: Option<Initializer>,
    queue_bound: Option<usize>,
    stack_size: Option<usize>,
}

impl Default for ThreadPoolBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("name_prefix", &self.name_prefix)
            .field("initializer", &self.initializer.is_some())
            .field("queue_bound", &self.queue_bound)
            .field("stack_size", &self.stack_size)
            .finish()
    }
}

impl ThreadPoolBuilder {
    /// Defaults: one worker per CPU, names `crew-thread-N`, no initializer, unbounded queue.
    pub fn new() -> Self {
        Self {
            max_workers: None,
            name_prefix: "crew-thread".to_owned(),
            initializer: None,
            queue_bound: None,
            stack_size: None,
        }
    }

    /// The number of worker threads (Python's `max_workers`).
    ///
    /// # Panics
    /// If `n` is 0.
    #[track_caller]
    pub fn max_workers(mut self, n: usize) -> Self {
        assert!(n > 0, "ThreadPoolBuilder::max_workers must be at least 1");
        self.max_workers = Some(n);
        self
    }

    /// Worker threads are named `{prefix}-{index}` (Python's `thread_name_prefix`).
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = prefix.into();
        self
    }

    /// Runs `init` once in every worker before it takes tasks. If it panics the pool is broken:
    /// queued tasks fail with [`TaskError::InitializerFailed`] and `submit` returns
    /// [`SubmitError::Broken`] (Python's `BrokenThreadPool`).
    pub fn initializer(mut self, init: impl Fn() + Send + Sync + 'static) -> Self {
        self.initializer = Some(Arc::new(init));
        self
    }

    /// Bounds the queue of waiting tasks: `submit` then blocks while it is full and
    /// `try_submit` reports [`SubmitError::Full`] (backpressure).
    ///
    /// # Panics
    /// If `bound` is 0.
    #[track_caller]
    pub fn queue_bound(mut self, bound: usize) -> Self {
        assert!(
            bound > 0,
            "ThreadPoolBuilder::queue_bound must be at least 1"
        );
        self.queue_bound = Some(bound);
        self
    }

    /// The stack size of each worker thread, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    /// The operating system's error if a thread cannot be started (the workers already started
    /// are shut down).
    pub fn build(self) -> io::Result<ThreadPool> {
        let workers = self
            .max_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let (sender, receiver) = match self.queue_bound {
            Some(bound) => crossbeam_channel::bounded(bound),
            None => crossbeam_channel::unbounded(),
        };
        let inner = Arc::new(Inner {
            sender: RwLock::new(Some(sender)),
            receiver: receiver.clone(),
            broken: OnceLock::new(),
            threads: Mutex::new(Vec::with_capacity(workers)),
            workers,
        });
        let pool = ThreadPool { inner };
        for index in 0..workers {
            let mut builder =
                std::thread::Builder::new().name(format!("{}-{index}", self.name_prefix));
            if let Some(size) = self.stack_size {
                builder = builder.stack_size(size);
            }
            let receiver = receiver.clone();
            let initializer = self.initializer.clone();
            let inner = pool.inner.clone();
            let thread = builder.spawn(move || worker_loop(&inner, &receiver, initializer))?;
            pool.inner.threads.lock().push(thread);
        }
        Ok(pool)
    }
}

fn worker_loop(inner: &Inner, receiver: &Receiver<Queued>, initializer: Option<Initializer>) {
    if let Some(init) = initializer {
        if let Err(TaskError::Panicked { message }) = run_catching(|| init()) {
            let _ = inner.broken.set(message);
        }
    }
    while let Ok(job) = receiver.recv() {
        match inner.broken.get() {
            None => job.run(),
            Some(message) => job.fail(TaskError::InitializerFailed {
                message: message.clone(),
            }),
        }
    }
}

struct Inner {
    /// `None` once shut down; dropping it disconnects the workers after they drain the queue.
    sender: RwLock<Option<Sender<Queued>>>,
    /// Kept to discard pending jobs on `shutdown(cancel_pending = true)`.
    receiver: Receiver<Queued>,
    broken: OnceLock<String>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    workers: usize,
}

/// A pool of worker threads running closures and functions.
///
/// ```
/// let pool = crew::ThreadPool::new(4);
/// let handles: Vec<_> = (0..8).map(|i| pool.spawn(move || i * i).unwrap()).collect();
/// let squares: Vec<i32> = handles.into_iter().map(|h| h.result().unwrap()).collect();
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49]);
/// ```
///
/// Dropping the pool is `shutdown(wait = true, cancel_pending = false)`: queued tasks run and
/// the workers are joined, as at the end of Python's `with ThreadPoolExecutor() as pool:` block.
pub struct ThreadPool {
    inner: Arc<Inner>,
}

impl ThreadPool {
    /// A pool of `max_workers` threads with default settings.
    ///
    /// # Panics
    /// If `max_workers` is 0 or the operating system cannot start the threads; use
    /// [`ThreadPoolBuilder`] to handle that error.
    #[track_caller]
    pub fn new(max_workers: usize) -> Self {
        ThreadPoolBuilder::new()
            .max_workers(max_workers)
            .build()
            .expect("crew: cannot start the thread pool's workers")
    }

    /// A builder for the other settings.
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }

    /// Queues the closure `f`; blocks while a bounded queue is full.
    ///
    /// # Errors
    /// [`SubmitError::Shutdown`] after shutdown, [`SubmitError::Broken`] if an initializer failed.
    pub fn spawn<R, F>(&self, f: F) -> Result<TaskHandle<R>, SubmitError>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        self.enqueue(f, false)
    }

    /// Like [`spawn`](Self::spawn) but never blocks.
    ///
    /// # Errors
    /// As `spawn`, plus [`SubmitError::Full`] when the bounded queue is full.
    pub fn try_spawn<R, F>(&self, f: F) -> Result<TaskHandle<R>, SubmitError>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        self.enqueue(f, true)
    }

    fn enqueue<R, F>(&self, f: F, non_blocking: bool) -> Result<TaskHandle<R>, SubmitError>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        if let Some(message) = self.inner.broken.get() {
            return Err(SubmitError::Broken {
                message: message.clone(),
            });
        }
        let sender = self.inner.sender.read();
        let sender = sender.as_ref().ok_or(SubmitError::Shutdown)?;
        let (handle, cell) = task_with(Closure(UnsafeCell::new(Some(f))));
        let job = Queued(Some(cell));
        if non_blocking {
            sender.try_send(job).map_err(|error| match error {
                TrySendError::Full(_) => SubmitError::Full,
                TrySendError::Disconnected(_) => SubmitError::Shutdown,
            })?;
        } else {
            sender.send(job).map_err(|_| SubmitError::Shutdown)?;
        }
        Ok(handle)
    }

    /// The number of tasks queued and not yet started.
    pub fn queued(&self) -> usize {
        self.inner.receiver.len()
    }

    /// Stops accepting tasks; see [`Executor::shutdown`]. Called from one of the pool's own
    /// workers, `wait` joins every worker but that one.
    pub fn shutdown(&self, wait: bool, cancel_pending: bool) {
        drop(self.inner.sender.write().take());
        if cancel_pending {
            while let Ok(job) = self.inner.receiver.try_recv() {
                drop(job); // settles as cancelled
            }
        }
        if wait {
            let current = std::thread::current().id();
            let threads = std::mem::take(&mut *self.inner.threads.lock());
            for thread in threads {
                if thread.thread().id() != current {
                    let _ = thread.join();
                }
            }
        }
    }
}

impl Executor for ThreadPool {
    fn submit<A: Message, R: Message>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.spawn(move || f(arg))
    }

    fn try_submit<A: Message, R: Message>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.try_spawn(move || f(arg))
    }

    fn submit_chunk<A: Message, R: Message>(
        &self,
        f: fn(A) -> R,
        args: Vec<A>,
    ) -> Result<TaskHandle<Vec<R>>, SubmitError> {
        self.spawn(move || args.into_iter().map(f).collect())
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        ThreadPool::shutdown(self, wait, cancel_pending);
    }

    fn max_workers(&self) -> usize {
        self.inner.workers
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("max_workers", &self.inner.workers)
            .field("queued", &self.queued())
            .field("shut_down", &self.inner.sender.read().is_none())
            .finish()
    }
}

#[cfg(test)]
mod tests;
