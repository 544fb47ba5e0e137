//! The [`Executor`] trait shared by every pool, lazy [`Map`], [`as_completed`] and [`wait`].
//!
//! The common currency of executors is Python's: a function and its argument
//! (`submit(fn, arg)`, `map(fn, items)`). A `#[crew::task]` function with serde-serializable
//! argument and result is something a thread, a process and a remote machine can all run, which
//! is what makes moving work between them a one-line change. Thread pools also take any
//! [`TaskFn`] (closures without captures, `fn` pointers) and closures
//! ([`ThreadPool::spawn`](crate::ThreadPool::spawn)).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{SubmitError, TaskError};
use crate::task::{TaskFn, TaskHandle, TaskOptions};

/// What may cross an executor boundary: a task's argument or result.
///
/// Every `Serialize + DeserializeOwned + Send + 'static` type is a `Message`; thread pools never
/// serialize it, process pools and clusters do.
pub trait Message: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Message for T {}

/// A pool that runs functions: the API shared by the thread pool, the process pool and the cluster.
///
/// ```
/// use crew::{Executor, MapOptions, ThreadPool};
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = ThreadPool::new(2);
/// let handle = pool.submit(square, 7).unwrap();
/// assert_eq!(handle.result().unwrap(), 49);
///
/// // Lazily, in input order, a bounded number of chunks in flight: fine on endless input.
/// let total: u64 = pool
///     .map_with(square, 0..1_000, MapOptions::new().chunksize(100))
///     .map(Result::unwrap)
///     .sum();
/// assert_eq!(total, 332_833_500);
/// ```
///
/// Implementing it for a new backend takes the public [`task`](mod@crate::task) layer only: make a
/// handle and its completer with [`task::pair_with`](crate::task::pair_with), honour the
/// deadline, register a cancel hook if the backend can stop a task; the
/// [design note](mod@crate::task) explains each part. `crates/crew-conformance` is such an executor.
pub trait Executor {
    /// Queues `f(arg)` and returns its handle. Blocks while a bounded queue is full.
    ///
    /// # Errors
    /// [`SubmitError::Shutdown`] after [`shutdown`](Self::shutdown), [`SubmitError::Broken`] when a
    /// worker initializer failed, [`SubmitError::Unsupported`] when this executor cannot run `f`
    /// (a function without `#[crew::task]` on an executor that sends work to other processes).
    fn submit<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.submit_with(f, arg, TaskOptions::new())
    }

    /// Like [`submit`](Self::submit), with per-task [`TaskOptions`] (a deadline).
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    fn submit_with<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
        options: TaskOptions,
    ) -> Result<TaskHandle<R>, SubmitError>;

    /// Like [`submit`](Self::submit), but never blocks.
    ///
    /// # Errors
    /// As `submit`, plus [`SubmitError::Full`] when the bounded queue is full.
    fn try_submit<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
    ) -> Result<TaskHandle<R>, SubmitError>;

    /// Queues one task that applies `f` to every item of `args`, in order: the unit of work of
    /// [`map`](Self::map) with a `chunksize`. If `f` panics on one item the whole chunk fails.
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    fn submit_chunk<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        args: Vec<A>,
        options: TaskOptions,
    ) -> Result<TaskHandle<Vec<R>>, SubmitError>;

    /// Stops accepting tasks. With `cancel_pending`, queued tasks that have not started are
    /// cancelled; with `wait`, blocks until every running (and, without `cancel_pending`, every
    /// queued) task has finished and the workers have exited. Idempotent. Dropping an executor
    /// is `shutdown(true, false)`.
    fn shutdown(&self, wait: bool, cancel_pending: bool);

    /// The number of workers, which sizes `map`'s default window.
    fn max_workers(&self) -> usize;

    /// `f` over `items`, lazily, in input order: Python's `Executor.map` without its memory
    /// blow-up on long input. One task per item; see [`map_with`](Self::map_with) for chunks,
    /// the window and completion order.
    fn map<A, R, F, I>(&self, f: F, items: I) -> Map<'_, Self, A, R, F, I::IntoIter>
    where
        Self: Sized,
        A: Message,
        R: Message,
        F: TaskFn<A, R>,
        I: IntoIterator<Item = A>,
    {
        self.map_with(f, items, MapOptions::new())
    }

    /// `f` over `items` with [`MapOptions`]: `chunksize` items per task, at most `window` tasks
    /// in flight, results in input or completion order. Each item yields `Ok(result)` or the
    /// error of the task that held it.
    fn map_with<A, R, F, I>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Map<'_, Self, A, R, F, I::IntoIter>
    where
        Self: Sized,
        A: Message,
        R: Message,
        F: TaskFn<A, R>,
        I: IntoIterator<Item = A>,
    {
        Map::new(self, f, items.into_iter(), options)
    }

    /// `multiprocessing.Pool.imap_unordered`: like [`map`](Self::map), in completion order.
    fn imap_unordered<A, R, F, I>(
        &self,
        f: F,
        items: I,
        chunksize: usize,
    ) -> Map<'_, Self, A, R, F, I::IntoIter>
    where
        Self: Sized,
        A: Message,
        R: Message,
        F: TaskFn<A, R>,
        I: IntoIterator<Item = A>,
    {
        self.map_with(f, items, MapOptions::new().chunksize(chunksize).unordered())
    }

    /// `multiprocessing.Pool.apply_async(f, (arg,), callback=..., error_callback=...)`: submit,
    /// then call `callback` with the value or `error_callback` with the failure, in the thread
    /// that completes the task.
    ///
    /// # Errors
    /// As [`submit`](Self::submit); then no callback runs.
    fn apply_async<A, R, F, C, E>(
        &self,
        f: F,
        arg: A,
        callback: C,
        error_callback: E,
    ) -> Result<TaskHandle<R>, SubmitError>
    where
        Self: Sized,
        A: Message,
        R: Message,
        F: TaskFn<A, R>,
        C: FnOnce(&R) + Send + 'static,
        E: FnOnce(&TaskError) + Send + 'static,
    {
        let handle = self.submit(f, arg)?;
        handle.add_done_callback(move |result| match result {
            Ok(value) => callback(value),
            Err(error) => error_callback(error),
        });
        Ok(handle)
    }
}

/// How [`Executor::map_with`] cuts and schedules its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapOptions {
    chunksize: usize,
    window: Option<usize>,
    ordered: bool,
    task: TaskOptions,
}

impl Default for MapOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl MapOptions {
    /// One item per task, a window of twice the workers, input order.
    pub fn new() -> Self {
        Self {
            chunksize: 1,
            window: None,
            ordered: true,
            task: TaskOptions::new(),
        }
    }

    /// Items per task (Python's `chunksize`). Larger chunks amortise the per-task cost.
    ///
    /// # Panics
    /// If `chunksize` is 0.
    #[track_caller]
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        assert!(chunksize > 0, "MapOptions::chunksize must be at least 1");
        self.chunksize = chunksize;
        self
    }

    /// At most `window` tasks (chunks) in flight; input is read only as results are consumed.
    /// Default: twice the executor's workers.
    ///
    /// # Panics
    /// If `window` is 0.
    #[track_caller]
    pub fn window(mut self, window: usize) -> Self {
        assert!(window > 0, "MapOptions::window must be at least 1");
        self.window = Some(window);
        self
    }

    /// Yield results as tasks complete instead of in input order (`imap_unordered`).
    pub fn unordered(mut self) -> Self {
        self.ordered = false;
        self
    }

    /// Options for every task (chunk) `map` submits, e.g. a per-task timeout counted from each
    /// chunk's submission; an expired chunk yields
    /// [`TaskError::DeadlineExceeded`] for each of its items.
    pub fn task_options(mut self, options: TaskOptions) -> Self {
        self.task = options;
        self
    }
}

struct Chunk<R> {
    handle: TaskHandle<Vec<R>>,
    len: usize,
}

/// The lazy iterator of [`Executor::map_with`]: one `Result` per input item.
///
/// It keeps at most `window` tasks in flight and reads the input only to refill the window, so
/// memory stays bounded on endless input. If the executor refuses a task (it was shut down), the
/// iterator yields that error once and ends. Dropping it early detaches the tasks in flight.
pub struct Map<'a, E, A, R, F, I> {
    executor: &'a E,
    f: F,
    argument: PhantomData<fn(A)>,
    task: TaskOptions,
    items: I,
    chunksize: usize,
    window: usize,
    ordered: bool,
    input_done: bool,
    in_order: VecDeque<Chunk<R>>,
    by_id: HashMap<u64, Chunk<R>>,
    next_id: u64,
    completions: Option<(Sender<u64>, Receiver<u64>)>,
    ready: std::vec::IntoIter<R>,
    failed: Option<(TaskError, usize)>,
}

impl<'a, E, A, R, F, I> Map<'a, E, A, R, F, I>
where
    E: Executor,
    A: Message,
    R: Message,
    F: TaskFn<A, R>,
    I: Iterator<Item = A>,
{
    fn new(executor: &'a E, f: F, items: I, options: MapOptions) -> Self {
        let window = options
            .window
            .unwrap_or_else(|| executor.max_workers().max(1) * 2);
        Self {
            executor,
            f,
            argument: PhantomData,
            task: options.task,
            items,
            chunksize: options.chunksize,
            window,
            ordered: options.ordered,
            input_done: false,
            in_order: VecDeque::new(),
            by_id: HashMap::new(),
            next_id: 0,
            completions: (!options.ordered).then(crossbeam_channel::unbounded),
            ready: Vec::new().into_iter(),
            failed: None,
        }
    }

    fn in_flight(&self) -> usize {
        self.in_order.len() + self.by_id.len()
    }

    /// Submits chunks until the window is full or the input ends.
    fn refill(&mut self) {
        while !self.input_done && self.in_flight() < self.window && self.failed.is_none() {
            let chunk: Vec<A> = self.items.by_ref().take(self.chunksize).collect();
            if chunk.len() < self.chunksize {
                self.input_done = true;
            }
            if chunk.is_empty() {
                break;
            }
            let len = chunk.len();
            match self.executor.submit_chunk(self.f, chunk, self.task) {
                Ok(handle) => self.push(Chunk { handle, len }),
                Err(error) => {
                    self.failed = Some((TaskError::Rejected(error), 1));
                    self.input_done = true;
                }
            }
        }
    }

    fn push(&mut self, chunk: Chunk<R>) {
        match &self.completions {
            None => self.in_order.push_back(chunk),
            Some((sender, _)) => {
                let id = self.next_id;
                self.next_id += 1;
                let sender = sender.clone();
                chunk.handle.add_done_callback(move |_| {
                    let _ = sender.send(id);
                });
                self.by_id.insert(id, chunk);
            }
        }
    }

    /// The next finished chunk, waiting for it.
    fn next_chunk(&mut self) -> Option<Chunk<R>> {
        if self.ordered {
            return self.in_order.pop_front();
        }
        if self.by_id.is_empty() {
            return None;
        }
        let (_, receiver) = self.completions.as_ref()?;
        loop {
            let id = receiver.recv().ok()?;
            if let Some(chunk) = self.by_id.remove(&id) {
                return Some(chunk);
            }
        }
    }
}

impl<E, A, R, F, I> Iterator for Map<'_, E, A, R, F, I>
where
    E: Executor,
    A: Message,
    R: Message,
    F: TaskFn<A, R>,
    I: Iterator<Item = A>,
{
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(value) = self.ready.next() {
                return Some(Ok(value));
            }
            if let Some((error, left)) = &mut self.failed {
                if *left > 0 {
                    *left -= 1;
                    return Some(Err(error.clone()));
                }
                if self.in_flight() == 0 {
                    return None;
                }
                self.failed = None;
            }
            self.refill();
            let Some(chunk) = self.next_chunk() else {
                if self.failed.is_some() {
                    continue;
                }
                return None;
            };
            match chunk.handle.result() {
                Ok(values) => self.ready = values.into_iter(),
                Err(error) => {
                    // One error per item keeps results and inputs in step.
                    self.failed = Some((error, chunk.len));
                }
            }
        }
    }
}

impl<E, A, R, F, I> fmt::Debug for Map<'_, E, A, R, F, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("chunksize", &self.chunksize)
            .field("window", &self.window)
            .field("ordered", &self.ordered)
            .field("in_flight", &(self.in_order.len() + self.by_id.len()))
            .finish_non_exhaustive()
    }
}

/// The handles of `handles` as they complete (Python's `as_completed`).
///
/// With a `timeout`, counted from this call, the iterator yields `Err(TaskError::TimedOut)` once
/// when it expires and then ends; [`AsCompleted::into_pending`] returns the handles not yet done.
///
/// ```
/// use crew::{as_completed, ThreadPool};
///
/// let pool = ThreadPool::new(2);
/// let handles: Vec<_> = (0..4).map(|i| pool.spawn(move || i * 10).unwrap()).collect();
/// let mut sum = 0;
/// for handle in as_completed(handles, None) {
///     sum += handle.unwrap().result().unwrap();
/// }
/// assert_eq!(sum, 60);
/// ```
pub fn as_completed<T, I>(handles: I, timeout: Option<Duration>) -> AsCompleted<T>
where
    T: Send + 'static,
    I: IntoIterator<Item = TaskHandle<T>>,
{
    let (sender, receiver) = crossbeam_channel::unbounded();
    let mut pending = HashMap::new();
    for (index, handle) in handles.into_iter().enumerate() {
        let sender = sender.clone();
        handle.add_done_callback(move |_| {
            let _ = sender.send(index);
        });
        pending.insert(index, handle);
    }
    AsCompleted {
        pending,
        receiver,
        deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
        timed_out: false,
    }
}

/// The iterator of [`as_completed`].
pub struct AsCompleted<T> {
    pending: HashMap<usize, TaskHandle<T>>,
    receiver: Receiver<usize>,
    deadline: Option<Instant>,
    timed_out: bool,
}

impl<T> AsCompleted<T> {
    /// The handles that have not been yielded, e.g. after a timeout.
    pub fn into_pending(self) -> Vec<TaskHandle<T>> {
        let mut pending: Vec<_> = self.pending.into_iter().collect();
        pending.sort_by_key(|(index, _)| *index);
        pending.into_iter().map(|(_, handle)| handle).collect()
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Result<TaskHandle<T>, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pending.is_empty() || self.timed_out {
            return None;
        }
        loop {
            let index = match self.deadline {
                None => self.receiver.recv().ok()?,
                Some(deadline) => match self.receiver.recv_deadline(deadline) {
                    Ok(index) => index,
                    Err(RecvTimeoutError::Timeout) => {
                        self.timed_out = true;
                        return Some(Err(TaskError::TimedOut));
                    }
                    Err(RecvTimeoutError::Disconnected) => return None,
                },
            };
            if let Some(handle) = self.pending.remove(&index) {
                // The callback fires while the task settles; make "done" visible first.
                handle.wait();
                return Some(Ok(handle));
            }
        }
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("pending", &self.pending.len())
            .field("timed_out", &self.timed_out)
            .finish()
    }
}

/// When [`wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any task is done.
    FirstCompleted,
    /// As soon as any task fails (a cancelled task does not count), or when all are done.
    FirstException,
    /// When every task is done.
    AllCompleted,
}

/// Waits for `handles` as `return_when` says, at most `timeout`, and splits them into
/// `(done, not_done)`, each in input order (Python's `concurrent.futures.wait`).
///
/// ```
/// use crew::{wait, ReturnWhen, ThreadPool};
///
/// let pool = ThreadPool::new(2);
/// let handles: Vec<_> = (0..3).map(|i| pool.spawn(move || i).unwrap()).collect();
/// let (done, not_done) = wait(handles, ReturnWhen::AllCompleted, None);
/// assert_eq!((done.len(), not_done.len()), (3, 0));
/// ```
pub fn wait<T: Send + 'static>(
    handles: Vec<TaskHandle<T>>,
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> (Vec<TaskHandle<T>>, Vec<TaskHandle<T>>) {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let (sender, receiver) = crossbeam_channel::unbounded();
    for (index, handle) in handles.iter().enumerate() {
        let sender = sender.clone();
        handle.add_done_callback(move |result| {
            let failed = matches!(result, Err(error) if *error != TaskError::Cancelled);
            let _ = sender.send((index, failed));
        });
    }
    drop(sender);
    let mut finished = vec![false; handles.len()];
    let mut count = 0;
    while count < handles.len() {
        let received = match deadline {
            None => receiver.recv().ok(),
            Some(deadline) => receiver.recv_deadline(deadline).ok(),
        };
        let Some((index, failed)) = received else {
            break;
        };
        finished[index] = true;
        count += 1;
        match return_when {
            ReturnWhen::FirstCompleted => break,
            ReturnWhen::FirstException if failed => break,
            _ => {}
        }
    }
    // A callback fires while its task settles; `wait` makes "done" visible before sorting, and
    // tasks that finished after the loop stopped count as done too.
    let (mut done, mut not_done) = (Vec::new(), Vec::new());
    for (handle, finished) in handles.into_iter().zip(finished) {
        if finished {
            handle.wait();
        }
        if handle.done() {
            done.push(handle);
        } else {
            not_done.push(handle);
        }
    }
    (done, not_done)
}
