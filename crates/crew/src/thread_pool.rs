//! [`ThreadPool`]: Python's `ThreadPoolExecutor` / `multiprocessing.pool.ThreadPool`.
//!
//! Workers share one crossbeam channel of jobs (the pools' common [lifecycle](crate::lifecycle)).
//! Idle workers sleep in `recv` and cost no CPU.
//!
//! A pool built with [`start_on_demand`](ThreadPoolBuilder::start_on_demand) starts one worker,
//! then one more whenever a submitted task finds every started worker owed a task: it counts the
//! tasks submitted and not yet finished (`outstanding`), and a submit that leaves more of them
//! than started workers starts another, up to `max_workers`. A worker counts a task finished
//! just *before* it publishes the result, so a caller that submits the next task on seeing a
//! result does not start a second thread for it; a count that lags otherwise can only start a
//! thread early, never leave a task waiting while the pool is below its size. (An idle-worker
//! count would lag the other way.)
//!
//! A task without a deadline costs one allocation: its closure lives in its handle's cell. A
//! task with a deadline carries it in the same cell and is registered with the task layer's
//! shared timer, which settles its handle at the deadline; a worker that takes it later skips
//! it. A thread cannot be killed, so a task still running at its deadline runs on and its
//! late result is dropped.

use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{SubmitError, TaskError};
use crate::executor::{Executor, Message};
use crate::lifecycle::Lifecycle;
use crate::task::{expire_at, task_with, Shared, TaskFn, TaskHandle, TaskOptions};
use crate::thread::run_catching;

/// A queued unit of work: run it, or settle it without running.
pub(crate) trait Job: Send + Sync {
    /// Runs the task; `finished` (an on-demand pool's count of tasks owed) is decremented
    /// just before the result is published, so whoever sees the result sees the count too.
    fn run(&self, finished: Option<&AtomicUsize>);
    fn fail(&self, error: TaskError, finished: Option<&AtomicUsize>);
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

/// The closure of a task with a deadline, and the deadline.
struct Timed<F> {
    closure: Closure<F>,
    deadline: Instant,
}

/// What a task's cell holds for the worker: its closure and, for [`Timed`], its deadline.
trait Payload: Send + Sync {
    type F;
    fn closure(&self) -> &Closure<Self::F>;
    fn deadline(&self) -> Option<Instant>;
}

impl<F: Send> Payload for Closure<F> {
    type F = F;

    fn closure(&self) -> &Closure<F> {
        self
    }

    fn deadline(&self) -> Option<Instant> {
        None
    }
}

impl<F: Send> Payload for Timed<F> {
    type F = F;

    fn closure(&self) -> &Closure<F> {
        &self.closure
    }

    fn deadline(&self) -> Option<Instant> {
        Some(self.deadline)
    }
}

impl<R, P> Job for Shared<R, P>
where
    P: Payload<F: FnOnce() -> R + Send>,
    R: Send,
{
    fn run(&self, finished: Option<&AtomicUsize>) {
        if !self.start() {
            count_finished(finished);
            return; // cancelled, or settled at its deadline by the timer
        }
        if self
            .payload()
            .deadline()
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            count_finished(finished);
            self.expire();
            return;
        }
        // SAFETY: `start()` returned true, which happens once per task, so this thread has
        // exclusive access to the closure (see `Closure`'s `Sync` impl).
        let f = unsafe { (*self.payload().closure().0.get()).take() }
            .expect("a task's closure is taken only by the worker that started it");
        let result = run_catching(f);
        count_finished(finished);
        self.complete(result);
    }

    fn fail(&self, error: TaskError, finished: Option<&AtomicUsize>) {
        count_finished(finished);
        self.complete(Err(error));
    }

    fn abandon(&self) {
        Shared::abandon(self);
    }
}

/// A job in the queue. If it is dropped unrun (the queue torn down, pending work cancelled)
/// its task settles as cancelled, so no handle waits forever.
struct Queued(Option<Arc<dyn Job>>);

fn count_finished(finished: Option<&AtomicUsize>) {
    if let Some(owed) = finished {
        owed.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Queued {
    fn run(mut self, finished: Option<&AtomicUsize>) {
        if let Some(job) = self.0.take() {
            job.run(finished);
        }
    }

    fn fail(mut self, error: TaskError, finished: Option<&AtomicUsize>) {
        if let Some(job) = self.0.take() {
            job.fail(error, finished);
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
    on_demand: bool,
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
            .field("on_demand", &self.on_demand)
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
            on_demand: false,
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

    /// With `true`, start one worker at `build` and the others only as concurrent work needs
    /// them, up to `max_workers` (as Python's `ThreadPoolExecutor` does); default `false`,
    /// every worker at `build`. For a large `max_workers` that is a ceiling rather than a
    /// size: the subprocess [`Runner`](crate::subprocess::Runner) (`crew run -j N`) uses it.
    /// A thread that cannot be started later is skipped: the pool runs with those it has.
    ///
    /// ```
    /// let pool = crew::ThreadPool::builder().max_workers(1000).start_on_demand(true).build()?;
    /// assert_eq!(pool.spawn(|| 6 * 7).unwrap().result(), Ok(42)); // on one thread
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start_on_demand(mut self, yes: bool) -> Self {
        self.on_demand = yes;
        self
    }

    /// Starts the workers (with [`start_on_demand`](Self::start_on_demand), the first one).
    ///
    /// # Errors
    /// The operating system's error if a thread cannot be started (the workers already started
    /// are shut down).
    pub fn build(self) -> io::Result<ThreadPool> {
        let workers = self
            .max_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let on_demand = self.on_demand.then(|| {
            Arc::new(OnDemand {
                outstanding: AtomicUsize::new(0),
                started: AtomicUsize::new(1),
                builder: self.clone(),
            })
        });
        let pool = ThreadPool {
            inner: Arc::new(Lifecycle::new(workers, self.queue_bound)),
            on_demand,
        };
        let now = if self.on_demand { 1 } else { workers };
        for index in 0..now {
            pool.inner.spawn(self.thread(index), self.worker(&pool))?;
        }
        Ok(pool)
    }

    fn thread(&self, index: usize) -> std::thread::Builder {
        let builder = std::thread::Builder::new().name(format!("{}-{index}", self.name_prefix));
        match self.stack_size {
            Some(size) => builder.stack_size(size),
            None => builder,
        }
    }

    fn worker(&self, pool: &ThreadPool) -> impl FnOnce() + Send + 'static {
        let initializer = self.initializer.clone();
        let inner = pool.inner.clone();
        let on_demand = pool.on_demand.clone();
        move || worker_loop(&inner, initializer, on_demand.as_deref())
    }
}

/// The state of a pool that starts its workers on demand (see the module note).
struct OnDemand {
    /// Tasks submitted and not yet finished (run, failed or skipped).
    outstanding: AtomicUsize,
    /// Workers started, or being started.
    started: AtomicUsize,
    /// How to start one more.
    builder: ThreadPoolBuilder,
}

impl OnDemand {
    /// After a submit: starts workers while more tasks are owed than workers exist.
    fn grow(&self, pool: &ThreadPool) {
        loop {
            let started = self.started.load(Ordering::Acquire);
            if started >= pool.inner.workers()
                || self.outstanding.load(Ordering::Acquire) <= started
            {
                return;
            }
            if self
                .started
                .compare_exchange(started, started + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let body = self.builder.worker(pool);
            match pool
                .inner
                .spawn_unless_closed(self.builder.thread(started), body)
            {
                Ok(true) => {}
                // Shut down, or the system refused a thread: run with the workers there are.
                Ok(false) | Err(_) => {
                    self.started.fetch_sub(1, Ordering::AcqRel);
                    return;
                }
            }
        }
    }
}

fn worker_loop(
    inner: &Lifecycle<Queued>,
    initializer: Option<Initializer>,
    on_demand: Option<&OnDemand>,
) {
    if let Some(init) = initializer {
        if let Err(TaskError::Panicked { message }) = run_catching(|| init()) {
            inner.set_broken(message);
        }
    }
    // A clone of its own: the shared one sits beside state that submitters write.
    let receiver = inner.receiver().clone();
    let finished = on_demand.map(|on_demand| &on_demand.outstanding);
    while let Ok(job) = receiver.recv() {
        match inner.broken() {
            None => job.run(finished),
            Some(message) => job.fail(
                TaskError::InitializerFailed {
                    message: message.clone(),
                },
                finished,
            ),
        }
    }
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
    inner: Arc<Lifecycle<Queued>>,
    /// With [`ThreadPoolBuilder::start_on_demand`].
    on_demand: Option<Arc<OnDemand>>,
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
        let (handle, cell) = task_with(Closure(UnsafeCell::new(Some(f))));
        self.queue(Queued(Some(cell)), non_blocking)?;
        Ok(handle)
    }

    /// Queues `f` to run only if it starts before `deadline`; its handle settles with
    /// [`TaskError::DeadlineExceeded`] at the deadline if it has not finished.
    fn enqueue_timed<R, F>(&self, f: F, deadline: Instant) -> Result<TaskHandle<R>, SubmitError>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let (handle, cell) = task_with(Timed {
            closure: Closure(UnsafeCell::new(Some(f))),
            deadline,
        });
        expire_at(&cell, deadline);
        self.queue(Queued(Some(cell)), false)?;
        Ok(handle)
    }

    /// Queues `job`, starting a worker for it if the pool starts them on demand.
    fn queue(&self, job: Queued, non_blocking: bool) -> Result<(), SubmitError> {
        let Some(on_demand) = &self.on_demand else {
            return self.inner.submit(job, non_blocking);
        };
        on_demand.outstanding.fetch_add(1, Ordering::AcqRel);
        if let Err(error) = self.inner.submit(job, non_blocking) {
            on_demand.outstanding.fetch_sub(1, Ordering::AcqRel);
            return Err(error);
        }
        on_demand.grow(self);
        Ok(())
    }

    fn enqueue_with<R, F>(&self, f: F, options: TaskOptions) -> Result<TaskHandle<R>, SubmitError>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        match options.deadline_from_now() {
            None => self.enqueue(f, false),
            Some(deadline) => self.enqueue_timed(f, deadline),
        }
    }

    /// The number of tasks queued and not yet started.
    pub fn queued(&self) -> usize {
        self.inner.queued()
    }

    /// Stops accepting tasks; see [`Executor::shutdown`]. Called from one of the pool's own
    /// workers (a task or a done-callback), `wait` joins every worker but that one, which exits
    /// on its own once the queue is drained.
    pub fn shutdown(&self, wait: bool, cancel_pending: bool) {
        self.inner.shutdown(wait, cancel_pending);
    }
}

impl Executor for ThreadPool {
    fn submit<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.spawn(move || f(arg))
    }

    fn submit_with<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
        options: TaskOptions,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.enqueue_with(move || f(arg), options)
    }

    fn try_submit<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.try_spawn(move || f(arg))
    }

    fn submit_chunk<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        args: Vec<A>,
        options: TaskOptions,
    ) -> Result<TaskHandle<Vec<R>>, SubmitError> {
        self.enqueue_with(move || args.into_iter().map(f).collect(), options)
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        ThreadPool::shutdown(self, wait, cancel_pending);
    }

    fn max_workers(&self) -> usize {
        self.inner.workers()
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
            .field("max_workers", &self.inner.workers())
            .field("queued", &self.queued())
            .field("shut_down", &self.inner.is_shut_down())
            .finish()
    }
}

#[cfg(test)]
mod tests;
