//! The [`Executor`] trait shared by every pool, lazy [`Map`], [`as_completed`] and [`wait`].
//!
//! The common currency of executors is Python's: a function and its argument
//! (`submit(fn, arg)`, `map(fn, items)`). A `#[crew::task]` function with serde-serializable
//! argument and result is something a thread, a process and a remote machine can all run, which
//! is what makes moving work between them a one-line change. Thread pools also take any
//! [`TaskFn`] (closures without captures, `fn` pointers) and closures
//! ([`ThreadPool::spawn`](crate::ThreadPool::spawn)).

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::completion::{Next, Order, Window};
use crate::error::{SubmitError, TaskError};
use crate::task::{TaskFn, TaskHandle, TaskOptions};

/// What may cross an executor boundary: a task's argument or result.
///
/// Every `Serialize + DeserializeOwned + Send + 'static` type is a `Message`; thread pools never
/// serialize it, process pools and clusters do, and so do process and remote actors (their
/// constructor arguments, call arguments, results and stream items) and inter-process queues.
///
/// # Which serde shapes cross a process
///
/// crew encodes with postcard ([`crew::task::codec`](crate::task::codec), where the full
/// table is), which is compact and fast because it writes no field names: writer and reader
/// agree on the shape from the types alone. Most types just work: structs, tuples, enums with
/// serde's default (external) tagging, `Option`, `Vec`, maps with any key type, `Box`,
/// `Duration`, `i128`, `#[serde(skip)]`, `#[serde(default)]` and renames. These do not, and
/// fail with an error that names the type, the cause and the fix (all but the last item
/// never with wrong data):
///
/// - `#[serde(skip_serializing_if = ...)]` on a field with a name: refused by the sender when
///   it skips the field (the receiver would misread the fields after it). Remove it, or use
///   `#[serde(skip)]`.
/// - `#[serde(flatten)]` and sequences of unknown length: refused by the sender. Nest the
///   struct as a named field; collect an iterator into a `Vec`.
/// - `#[serde(untagged)]`, internally or adjacently tagged (`#[serde(tag = ...)]`) enums,
///   `serde_json::Value` (anything that needs `deserialize_any`): the receiver cannot decode
///   them and fails the call (or the queue's `get`). Use an externally tagged enum; send a
///   dynamic value as text (`serde_json::to_string`).
/// - `#[serde(skip_serializing)]` without `skip_deserializing`, `skip_serializing_if`
///   together with `skip_deserializing`, and `skip_serializing_if` on a field of a **tuple**
///   struct or tuple variant: serde's derive leaves such a field out without telling the
///   serializer, so the sender cannot see it; the receiver fails in most cases, and can
///   misread the value without an error in others. Never put these on types that cross a
///   process: use `#[serde(skip)]`, or a struct with named fields.
///
/// A refused argument fails `submit` with [`SubmitError::Unsupported`]; an argument or result
/// that fails on the far side fails that one task with [`TaskError::Transport`]; the worker
/// goes on.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Job {
///     #[serde(skip_serializing_if = "Option::is_none")]
///     note: Option<String>,
///     n: u64,
/// }
///
/// let skipped = crew::task::codec::encode(&Job { note: None, n: 1 }).unwrap_err();
/// assert!(skipped.contains("field `note` of `Job`"));
/// assert!(skipped.contains("Remove `skip_serializing_if`"));
/// ```
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

/// The lazy iterator of [`Executor::map_with`]: one `Result` per input item, in step with the
/// input.
///
/// It keeps at most `window` tasks in flight and reads the input only to refill the window, so
/// memory stays bounded on endless input. A task that fails yields its error once per item of
/// its chunk, and the iterator goes on with the rest of the input. Only a refused submission
/// (the executor was shut down) ends it early: it yields that error first, then the results of
/// the tasks already in flight, then ends. Dropping it early detaches the tasks in flight.
pub struct Map<'a, E, A, R, F, I> {
    executor: &'a E,
    f: F,
    argument: PhantomData<fn(A)>,
    task: TaskOptions,
    items: I,
    chunksize: usize,
    ordered: bool,
    input_done: bool,
    /// Chunks in flight, tagged with their length.
    window: Window<usize, Vec<R>>,
    ready: std::vec::IntoIter<R>,
    /// The error of a failed chunk and how many of its items have yet to report it.
    failed: Option<(TaskError, usize)>,
    refused: Option<TaskError>,
    /// The bar of [`progress`](Self::progress), finished when the iterator is dropped.
    #[cfg(feature = "progress")]
    progress: Option<crate::progress::Attached>,
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
        let order = if options.ordered {
            Order::Input
        } else {
            Order::Completion
        };
        Self {
            executor,
            f,
            argument: PhantomData,
            task: options.task,
            items,
            chunksize: options.chunksize,
            ordered: options.ordered,
            input_done: false,
            window: Window::new(order, window),
            ready: Vec::new().into_iter(),
            failed: None,
            refused: None,
            #[cfg(feature = "progress")]
            progress: None,
        }
    }

    /// Shows a progress bar of this map's results: tqdm's `process_map`
    /// (`tqdm.contrib.concurrent`), on any executor. The bar counts each item as it is yielded
    /// (failed items shown as failed), takes its total from the input's exact size hint when
    /// there is one, no total was set and the map has not started (attach it before the first
    /// `next`), and is finished when the iterator ends or is dropped. See [`crew::progress`](crate::progress) for what is drawn and when (never when
    /// standard error is not a terminal).
    ///
    /// ```
    /// use crew::progress::Progress;
    /// use crew::{Executor, MapOptions, ThreadPool};
    ///
    /// fn double(x: u32) -> u32 {
    ///     x * 2
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let progress = Progress::hidden("doubling");
    /// let mut doubled = pool
    ///     .map_with(double, vec![1, 2, 3, 4], MapOptions::new().chunksize(2))
    ///     .progress(progress.clone());
    /// assert_eq!(doubled.next().unwrap().unwrap(), 2);
    /// assert_eq!((progress.position(), progress.total()), (1, Some(4)));
    /// drop(doubled); // early: the bar stops at 1
    /// assert!(progress.is_finished());
    /// ```
    #[cfg(feature = "progress")]
    pub fn progress(mut self, progress: crate::progress::Progress) -> Self {
        let untouched = self.window.len() == 0 && !self.input_done;
        if progress.total().is_none() && untouched {
            if let (low, Some(high)) = self.items.size_hint() {
                if low == high {
                    progress.set_total(low as u64);
                }
            }
        }
        self.progress = Some(crate::progress::Attached(progress));
        self
    }

    /// Submits chunks until the window is full or the input ends.
    fn refill(&mut self) {
        let Self {
            executor,
            f,
            task,
            items,
            chunksize,
            input_done,
            window,
            refused,
            ..
        } = self;
        window.refill(|| {
            if *input_done {
                return None;
            }
            let chunk: Vec<A> = items.by_ref().take(*chunksize).collect();
            if chunk.len() < *chunksize {
                *input_done = true;
            }
            if chunk.is_empty() {
                return None;
            }
            let len = chunk.len();
            match executor.submit_chunk(*f, chunk, *task) {
                Ok(handle) => Some((len, handle)),
                Err(error) => {
                    *refused = Some(TaskError::Rejected(error));
                    *input_done = true;
                    None
                }
            }
        });
    }

    /// The next result, without the bar's bookkeeping.
    fn next_result(&mut self) -> Option<Result<R, TaskError>> {
        loop {
            if let Some(value) = self.ready.next() {
                return Some(Ok(value));
            }
            if let Some((error, left)) = self.failed.take() {
                if left > 1 {
                    self.failed = Some((error.clone(), left - 1));
                }
                return Some(Err(error));
            }
            self.refill();
            if let Some(error) = self.refused.take() {
                return Some(Err(error));
            }
            #[cfg(feature = "progress")]
            let next = next_drawing(&mut self.window, None, self.progress.as_ref());
            #[cfg(not(feature = "progress"))]
            let next = self.window.next(None);
            match next {
                Next::Finished(chunk) => match chunk.handle.result() {
                    Ok(values) => self.ready = values.into_iter(),
                    // One error per item keeps results and inputs in step.
                    Err(error) => self.failed = Some((error, chunk.tag)),
                },
                Next::Empty => return None,
                Next::TimedOut => unreachable!("map waits without a deadline"),
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
        let item = self.next_result();
        #[cfg(feature = "progress")]
        if let Some(crate::progress::Attached(progress)) = &self.progress {
            match &item {
                Some(Ok(_)) => progress.inc(1),
                Some(Err(_)) => progress.inc_failed(1),
                None => progress.finish(),
            }
        }
        item
    }
}

impl<E, A, R, F, I> fmt::Debug for Map<'_, E, A, R, F, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("chunksize", &self.chunksize)
            .field("window", &self.window.limit())
            .field("ordered", &self.ordered)
            .field("in_flight", &self.window.len())
            .finish_non_exhaustive()
    }
}

/// `window.next(deadline)`; when that would wait and a bar is attached, the bar is first
/// handed its exact count, so it never sits a step behind while nothing arrives (it takes the
/// counts in steps while items come in fast: see [`Progress`](crate::progress::Progress)).
#[cfg(feature = "progress")]
fn next_drawing<K, T>(
    window: &mut Window<K, T>,
    deadline: Option<Instant>,
    progress: Option<&crate::progress::Attached>,
) -> Next<K, T> {
    if let Some(crate::progress::Attached(progress)) = progress {
        match window.next(Some(Instant::now())) {
            Next::TimedOut => progress.draw_exact(),
            ready => return ready,
        }
    }
    window.next(deadline)
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
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    // The caller already holds every handle: the window adds one slot per handle, no limit.
    let mut window = Window::new(Order::Completion, usize::MAX);
    for handle in handles {
        window.push((), handle);
    }
    AsCompleted {
        window,
        deadline,
        timed_out: false,
        #[cfg(feature = "progress")]
        progress: None,
    }
}

/// The iterator of [`as_completed`].
pub struct AsCompleted<T> {
    window: Window<(), T>,
    deadline: Option<Instant>,
    timed_out: bool,
    #[cfg(feature = "progress")]
    progress: Option<crate::progress::Attached>,
}

impl<T> AsCompleted<T> {
    /// Shows a progress bar of the handles yielded so far, out of all the handles not yet
    /// yielded when it is attached (unless a total was set); a task that failed (other than by
    /// cancellation) counts as failed. The bar is finished when the iterator ends, times out or
    /// is dropped. See [`crew::progress`](crate::progress).
    ///
    /// ```
    /// use crew::progress::Progress;
    /// use crew::{as_completed, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let handles: Vec<_> = (0..4).map(|i| pool.spawn(move || i).unwrap()).collect();
    /// let progress = Progress::hidden("tasks");
    /// let done = as_completed(handles, None).progress(progress.clone()).count();
    /// assert_eq!((done, progress.position(), progress.total()), (4, 4, Some(4)));
    /// ```
    #[cfg(feature = "progress")]
    pub fn progress(mut self, progress: crate::progress::Progress) -> Self {
        if progress.total().is_none() {
            progress.set_total(self.window.len() as u64);
        }
        self.progress = Some(crate::progress::Attached(progress));
        self
    }

    /// The handles that have not been yielded, e.g. after a timeout, in input order.
    pub fn into_pending(self) -> Vec<TaskHandle<T>> {
        self.window
            .into_pending()
            .into_iter()
            .map(|((), handle)| handle)
            .collect()
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Result<TaskHandle<T>, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.timed_out {
            return None;
        }
        #[cfg(feature = "progress")]
        let next = next_drawing(&mut self.window, self.deadline, self.progress.as_ref());
        #[cfg(not(feature = "progress"))]
        let next = self.window.next(self.deadline);
        #[cfg(feature = "progress")]
        let progress = self
            .progress
            .as_ref()
            .map(|crate::progress::Attached(progress)| progress);
        match next {
            Next::Finished(finished) => {
                #[cfg(feature = "progress")]
                match progress {
                    Some(progress) if finished.failed => progress.inc_failed(1),
                    Some(progress) => progress.inc(1),
                    None => {}
                }
                Some(Ok(finished.handle))
            }
            Next::Empty => {
                #[cfg(feature = "progress")]
                if let Some(progress) = progress {
                    progress.finish();
                }
                None
            }
            Next::TimedOut => {
                #[cfg(feature = "progress")]
                if let Some(progress) = progress {
                    progress.finish();
                }
                self.timed_out = true;
                Some(Err(TaskError::TimedOut))
            }
        }
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("pending", &self.window.len())
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
    let mut by_index: Vec<Option<TaskHandle<T>>> = Vec::with_capacity(handles.len());
    let mut window = Window::new(Order::Completion, usize::MAX);
    for (index, handle) in handles.into_iter().enumerate() {
        window.push(index, handle);
        by_index.push(None);
    }
    while let Next::Finished(finished) = window.next(deadline) {
        let failed = finished.failed;
        by_index[finished.tag] = Some(finished.handle);
        match return_when {
            ReturnWhen::FirstCompleted => break,
            ReturnWhen::FirstException if failed => break,
            _ => {}
        }
    }
    for (index, handle) in window.into_pending() {
        by_index[index] = Some(handle);
    }
    // Tasks that finished after the loop stopped count as done too.
    by_index
        .into_iter()
        .map(|handle| handle.expect("every handle is either handed back or pending"))
        .partition(TaskHandle::done)
}
