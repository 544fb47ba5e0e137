//! Pipelines: stages of worker threads connected by bounded [`Queue`]s (seed 002, item 39).
//!
//! ```
//! use crew::pipeline::Pipeline;
//!
//! fn download(n: u32) -> Result<String, std::io::Error> {
//!     Ok(format!("image-{n}"))
//! }
//!
//! let mut run = Pipeline::from_iter(0..100)
//!     .stage("download", 4, download)
//!     .map("resize", 2, |image: String| image.to_uppercase())
//!     .map("upload", 4, |image: String| image.len())
//!     .run()
//!     .unwrap();
//! let sizes: Vec<usize> = run.by_ref().map(Result::unwrap).collect();
//! assert_eq!(sizes.len(), 100);
//! assert_eq!(sizes[0], "IMAGE-0".len()); // input order by default
//! let stats = run.stats();
//! assert_eq!(stats[0].name, "download");
//! assert_eq!(stats[1].items, 100);
//! ```
//!
//! Each stage runs `workers` threads started with [`crate::thread::spawn`]; a stage reads from
//! the queue before it and writes to the queue after it. A source thread feeds the input
//! iterator into the first queue; the caller reads the last one through [`PipelineRun`].
//!
//! # Design note: closing, ordering, memory, errors
//!
//! * **Closing propagates stage by stage.** The source closes the first queue when the input
//!   ends. A worker leaves its loop when its input queue is closed *and* drained; the last
//!   worker of a stage to leave closes the stage's output queue (a drop guard, so a worker
//!   that unwinds still counts). The next stage therefore sees "closed and drained" only after
//!   every item of the previous one arrived, and the run ends when the last queue closes.
//!   No sentinels: a queue's `close` is the end-of-stream mark.
//! * **Ordering is restored at the end.** The source numbers items as it reads them and every
//!   item carries its number through the stages. In ordered mode (the default) [`PipelineRun`]
//!   keeps early arrivals in a reorder buffer and yields item `n` only after `0..n`;
//!   [`unordered`](Pipeline::unordered) yields items as they arrive.
//! * **Memory stays bounded.** Queues have a small capacity, so a slow stage blocks the stages
//!   before it (backpressure) instead of letting queues grow. The reorder buffer is bounded
//!   too: the source takes a permit of a [`Semaphore`] per item
//!   ([`max_in_flight`](Pipeline::max_in_flight)) and the consumer returns it when the item is
//!   yielded, so a slow head item cannot let the rest pile up behind it. Items already admitted
//!   always include the one the consumer waits for, so the window cannot deadlock.
//! * **Errors.** By default a failure (a stage returning `Err`, a stage panicking, the input
//!   iterator panicking) stops the run the way a plain loop would: the results ahead of it
//!   are still delivered, then the error, then the iterator ends. The failing worker puts the
//!   error straight on the last queue, tagged with the item's number (the input iterator's
//!   panic takes the number of the item it was producing), and records the lowest failed
//!   number. From then on the source reads nothing more, and the workers discard every item
//!   that would come after the error: in input order, the items numbered above it (the items
//!   below it go on through the stages, so an ordered run yields exactly the results of
//!   items `0..n` and then the error of item `n`, where `n` is the first item in input order
//!   that failed, as `iter.map(f)` would); unordered, every item still on its way (what had
//!   reached the end of the pipeline before the error is yielded first). Yielding the error
//!   ends the run as dropping it does. With [`collect_errors`](Pipeline::collect_errors) a
//!   failed item travels on as an `Err` (later stages pass it through untouched) and the
//!   other items continue; only a panic of the input iterator ends such a run.
//! * Dropping a [`PipelineRun`] early stops the run the same way and joins its threads.

mod error;
#[cfg(feature = "progress")]
mod live;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use error::PipelineError;

use crate::error::TaskError;
use crate::queue::Queue;
use crate::sync::Semaphore;
use crate::task::TaskHandle;
use crate::thread::run_catching;

/// The default capacity of the queues between stages.
pub const DEFAULT_CAPACITY: usize = 8;

/// An item on its way through the stages: its input position and its value so far.
struct Envelope<T> {
    seq: u64,
    value: Result<T, PipelineError>,
}

/// No item has failed (the value of [`Control::first_error`]).
const NO_ERROR: u64 = u64::MAX;

/// What every thread of a run shares.
struct Control {
    capacity: usize,
    collect_errors: bool,
    ordered: bool,
    /// The run is over (the consumer finished or dropped it): discard everything.
    stop: AtomicBool,
    /// The lowest number of an item whose failure ends the run, or [`NO_ERROR`].
    first_error: AtomicU64,
    /// Puts a run-ending error on the last queue, for the consumer, in the item's place.
    error_sink: Box<dyn Fn(u64, PipelineError) + Send + Sync>,
    closers: Mutex<Vec<Box<dyn Fn() + Send>>>,
    in_flight: Semaphore,
}

impl Control {
    /// Item `seq` failed and ends the run (see the design note): the source stops reading,
    /// the items that would come after it are discarded, and the error goes to the consumer.
    fn fail(&self, seq: u64, error: PipelineError) {
        self.first_error.fetch_min(seq, Ordering::AcqRel);
        (self.error_sink)(seq, error);
    }

    /// Whether the source must stop reading.
    fn source_stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire) || self.first_error.load(Ordering::Acquire) != NO_ERROR
    }

    /// Whether item `seq` would only be yielded after the error that ends the run (or the run
    /// is over): then it is not worth working on.
    fn discards(&self, seq: u64) -> bool {
        if self.stop.load(Ordering::Acquire) {
            return true;
        }
        match self.first_error.load(Ordering::Acquire) {
            NO_ERROR => false,
            first if self.ordered => seq > first,
            _ => true,
        }
    }

    /// Stops the source, closes every queue and unblocks a source waiting for a permit.
    fn abort(&self) {
        if self.stop.swap(true, Ordering::AcqRel) {
            return;
        }
        for close in self.closers.lock().iter() {
            close();
        }
        self.in_flight.add_permits(usize::MAX / 2);
    }

    fn queue<T: Send + 'static>(&self) -> Queue<Envelope<T>> {
        let queue = Queue::bounded(self.capacity);
        let closer = queue.clone();
        self.closers.lock().push(Box::new(move || closer.close()));
        if self.stop.load(Ordering::Acquire) {
            queue.close();
        }
        queue
    }
}

/// What starting a run collects.
struct Builder {
    control: Arc<Control>,
    threads: Vec<TaskHandle<()>>,
    stats: Vec<Arc<StageCounters>>,
}

/// Starts the threads up to a stage, which write to the queue given (made by the caller, so
/// that the last queue exists before any thread starts: errors go there).
type Start<T> = Box<dyn FnOnce(&mut Builder, Queue<Envelope<T>>) -> io::Result<()> + Send>;

/// A pipeline under construction: an input iterator and stages; [`run`](Self::run) starts it.
///
/// See the [module documentation](self) for an example and the design.
pub struct Pipeline<T> {
    start: Start<T>,
    capacity: usize,
    ordered: bool,
    collect_errors: bool,
    max_in_flight: Option<usize>,
    stages: usize,
    workers: usize,
    /// The input's exact size, when its size hint gives one: the live view's total.
    input_len: Option<u64>,
    #[cfg(feature = "progress")]
    progress: Option<crate::progress::Progress>,
}

impl<T: Send + 'static> Pipeline<T> {
    /// A pipeline whose input is `items`, read by a source thread as the first stage has room.
    #[allow(clippy::should_implement_trait)] // takes an `IntoIterator`, returns a builder
    pub fn from_iter<I>(items: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let items = items.into_iter();
        let input_len = match items.size_hint() {
            (low, Some(high)) if low == high => Some(low as u64),
            _ => None,
        };
        let start: Start<T> = Box::new(move |builder: &mut Builder, first| {
            let control = builder.control.clone();
            let source = crate::thread::spawn("pipeline-source", move || {
                feed(items, &control, &first);
                first.close();
            })?;
            builder.threads.push(source);
            Ok(())
        });
        Self {
            start,
            capacity: DEFAULT_CAPACITY,
            ordered: true,
            collect_errors: false,
            max_in_flight: None,
            stages: 0,
            workers: 0,
            input_len,
            #[cfg(feature = "progress")]
            progress: None,
        }
    }

    /// Adds a stage called `name` of `workers` threads applying `f` to every item. An `Err`
    /// from `f` (or a panic) fails the item; see [`collect_errors`](Self::collect_errors).
    ///
    /// # Panics
    /// If `workers` is 0.
    #[track_caller]
    pub fn stage<U, E, F>(self, name: &str, workers: usize, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        assert!(
            workers > 0,
            "pipeline stage {name:?} needs at least 1 worker"
        );
        let name = name.to_owned();
        let previous = self.start;
        let start: Start<U> = Box::new(move |builder: &mut Builder, output| {
            let input = builder.control.queue::<T>();
            previous(builder, input.clone())?;
            let counters = Arc::new(StageCounters::new(&name, workers, &input));
            builder.stats.push(counters.clone());
            let live = Arc::new(AtomicUsize::new(workers));
            let f = Arc::new(f);
            for index in 0..workers {
                let worker = Worker {
                    name: name.clone(),
                    input: input.clone(),
                    output: output.clone(),
                    control: builder.control.clone(),
                    counters: counters.clone(),
                    live: live.clone(),
                };
                let f = f.clone();
                let thread = crate::thread::spawn(format!("{name}-{index}"), move || {
                    worker.run(&*f);
                });
                match thread {
                    Ok(thread) => builder.threads.push(thread),
                    Err(error) => {
                        // The refused closure (and its worker) was dropped and counted itself
                        // out; count out the workers never started. `run` then aborts.
                        live.fetch_sub(workers - index - 1, Ordering::AcqRel);
                        return Err(error);
                    }
                }
            }
            Ok(())
        });
        Pipeline {
            start,
            capacity: self.capacity,
            ordered: self.ordered,
            collect_errors: self.collect_errors,
            max_in_flight: self.max_in_flight,
            stages: self.stages + 1,
            workers: self.workers + workers,
            input_len: self.input_len,
            #[cfg(feature = "progress")]
            progress: self.progress,
        }
    }

    /// Adds a stage whose function cannot fail (it may still panic).
    ///
    /// # Panics
    /// If `workers` is 0.
    #[track_caller]
    pub fn map<U, F>(self, name: &str, workers: usize, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.stage(name, workers, move |item| Ok::<U, Infallible>(f(item)))
    }

    /// The capacity of every queue between stages (default [`DEFAULT_CAPACITY`]): how far a
    /// stage may run ahead of the next one.
    ///
    /// # Panics
    /// If `capacity` is 0.
    #[track_caller]
    pub fn capacity(mut self, capacity: usize) -> Self {
        assert!(capacity > 0, "pipeline queue capacity must be at least 1");
        self.capacity = capacity;
        self
    }

    /// Yield results as they finish instead of in input order.
    pub fn unordered(mut self) -> Self {
        self.ordered = false;
        self
    }

    /// Keep going after a failed item: it is yielded as an `Err` in its place and the other
    /// items continue. By default a failed item ends the run: the results ahead of it are
    /// yielded (in input order: exactly those of the items before it), then its error, and
    /// the iterator ends (see the [module documentation](self)).
    pub fn collect_errors(mut self) -> Self {
        self.collect_errors = true;
        self
    }

    /// At most `n` items between the source and the consumer at once, counting the reorder
    /// buffer. Default: every worker busy plus every queue full.
    ///
    /// # Panics
    /// If `n` is 0.
    #[track_caller]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        assert!(n > 0, "pipeline max_in_flight must be at least 1");
        self.max_in_flight = Some(n);
        self
    }

    /// Shows a live view of the run while it goes: `progress` counts the results yielded
    /// (out of the input's size when its size hint is exact), and below it one line per stage
    /// shows the items it passed on, its rate and ETA, the items it took in, its input queue's
    /// depth, and how busy its workers are, so the stage holding the others back stands out.
    /// Drawn with indicatif (one `MultiProgress`) where `progress` draws: nothing when standard
    /// error is not a terminal. The lines are refreshed ten times a second and finished when
    /// the run ends or is dropped. See [`crew::progress`](crate::progress).
    ///
    /// ```
    /// use crew::pipeline::Pipeline;
    /// use crew::progress::Progress;
    ///
    /// let progress = Progress::hidden("images");
    /// let run = Pipeline::from_iter(0..100)
    ///     .map("resize", 2, |n: u32| n * 2)
    ///     .map("upload", 2, |n: u32| n + 1)
    ///     .progress(progress.clone())
    ///     .run()
    ///     .unwrap();
    /// assert_eq!(run.count(), 100);
    /// assert_eq!((progress.position(), progress.total()), (100, Some(100)));
    /// ```
    #[cfg(feature = "progress")]
    pub fn progress(mut self, progress: crate::progress::Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Starts the source and the stage workers and returns the iterator of results.
    ///
    /// # Errors
    /// The operating system's error if a thread cannot be started (the threads already
    /// started are stopped and joined).
    pub fn run(self) -> io::Result<PipelineRun<T>> {
        let window = self
            .max_in_flight
            .unwrap_or(self.workers + (self.stages + 1) * self.capacity);
        let output: Queue<Envelope<T>> = Queue::bounded(self.capacity);
        let (sink, closer) = (output.clone(), output.clone());
        let control = Arc::new(Control {
            capacity: self.capacity,
            collect_errors: self.collect_errors,
            ordered: self.ordered,
            stop: AtomicBool::new(false),
            first_error: AtomicU64::new(NO_ERROR),
            // A closed queue (the run was dropped) refuses the error: nobody wants it.
            error_sink: Box::new(move |seq, error| {
                let _ = sink.put(Envelope {
                    seq,
                    value: Err(error),
                });
            }),
            closers: Mutex::new(vec![Box::new(move || closer.close())]),
            in_flight: Semaphore::new(window),
        });
        let mut builder = Builder {
            control: control.clone(),
            threads: Vec::new(),
            stats: Vec::new(),
        };
        let started = (self.start)(&mut builder, output.clone()).map(|()| output);
        #[cfg(feature = "progress")]
        let started = started.and_then(|output| {
            let view = match self.progress {
                Some(progress) => Some(live::LiveView::start(
                    progress,
                    self.input_len,
                    self.capacity,
                    &builder.stats,
                )?),
                None => None,
            };
            Ok((output, view))
        });
        match started {
            #[cfg(feature = "progress")]
            Ok((output, view)) => Ok(PipelineRun {
                output,
                control,
                threads: builder.threads,
                stats: builder.stats,
                ordered: self.ordered,
                next_seq: 0,
                reorder: BTreeMap::new(),
                finished: false,
                view,
            }),
            #[cfg(not(feature = "progress"))]
            Ok(output) => Ok(PipelineRun {
                output,
                control,
                threads: builder.threads,
                stats: builder.stats,
                ordered: self.ordered,
                next_seq: 0,
                reorder: BTreeMap::new(),
                finished: false,
            }),
            Err(error) => {
                control.abort();
                for thread in builder.threads {
                    thread.wait();
                }
                Err(error)
            }
        }
    }
}

impl<T> fmt::Debug for Pipeline<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &self.stages)
            .field("workers", &self.workers)
            .field("capacity", &self.capacity)
            .field("ordered", &self.ordered)
            .field("collect_errors", &self.collect_errors)
            .finish_non_exhaustive()
    }
}

/// The source: reads the input as the window allows and numbers the items.
fn feed<T>(mut items: impl Iterator<Item = T>, control: &Control, first: &Queue<Envelope<T>>) {
    let mut reading = 0u64;
    let read = run_catching(|| {
        for seq in 0u64.. {
            // The permit first, then the read: an item is not even produced without room.
            control.in_flight.acquire().forget();
            if control.source_stopped() {
                return;
            }
            // Numbered before the read: a panic of `next()` fails the item it was producing.
            reading = seq;
            let Some(item) = items.next() else {
                return;
            };
            if first
                .put(Envelope {
                    seq,
                    value: Ok(item),
                })
                .is_err()
            {
                return;
            }
        }
    });
    if let Err(error) = read {
        control.fail(
            reading,
            PipelineError::SourcePanicked {
                message: panic_text(error),
            },
        );
    }
}

fn panic_text(error: TaskError) -> String {
    match error {
        TaskError::Panicked { message } => message,
        other => other.to_string(),
    }
}

/// One worker thread of a stage.
struct Worker<T, U> {
    name: String,
    input: Queue<Envelope<T>>,
    output: Queue<Envelope<U>>,
    control: Arc<Control>,
    counters: Arc<StageCounters>,
    live: Arc<AtomicUsize>,
}

impl<T, U> Worker<T, U> {
    fn run<E>(&self, f: &(dyn Fn(T) -> Result<U, E> + Sync))
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        for Envelope { seq, value } in self.input.iter() {
            if self.control.discards(seq) {
                continue; // it would come after the error that ends the run: drop it
            }
            self.counters.taken.fetch_add(1, Ordering::Relaxed);
            let value = match value {
                Err(earlier) => Err(earlier), // collected in an earlier stage: pass it on
                Ok(item) => self.apply(f, seq, item),
            };
            if let Err(error) = value {
                if !self.control.collect_errors {
                    self.control.fail(seq, error);
                    continue;
                }
                if self
                    .output
                    .put(Envelope {
                        seq,
                        value: Err(error),
                    })
                    .is_err()
                {
                    break;
                }
            } else if self.output.put(Envelope { seq, value }).is_err() {
                break;
            }
            self.counters.passed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn apply<E>(
        &self,
        f: &(dyn Fn(T) -> Result<U, E> + Sync),
        seq: u64,
        item: T,
    ) -> Result<U, PipelineError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let outcome = run_catching(|| f(item));
        let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters.busy_nanos.fetch_add(busy, Ordering::Relaxed);
        self.counters.items.fetch_add(1, Ordering::Relaxed);
        let result = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => PipelineError::Failed {
                stage: self.name.clone(),
                item: seq,
                source: error.into(),
            },
            Err(error) => PipelineError::Panicked {
                stage: self.name.clone(),
                item: seq,
                message: panic_text(error),
            },
        };
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        Err(result)
    }
}

impl<T, U> Drop for Worker<T, U> {
    fn drop(&mut self) {
        // The last worker of the stage to leave ends the stream for the next stage.
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.output.close();
        }
    }
}

/// A stage's live counters.
struct StageCounters {
    name: String,
    workers: usize,
    /// Items taken from the input queue (failed items of earlier stages included).
    taken: AtomicU64,
    /// Items put on the output queue (failed items included with `collect_errors`).
    passed: AtomicU64,
    items: AtomicU64,
    errors: AtomicU64,
    busy_nanos: AtomicU64,
    input_peak: Box<dyn Fn() -> usize + Send + Sync>,
    /// The number of items waiting in the input queue now (the live view shows it).
    #[cfg(feature = "progress")]
    input_len: Box<dyn Fn() -> usize + Send + Sync>,
}

impl StageCounters {
    fn new<T: Send + 'static>(name: &str, workers: usize, input: &Queue<T>) -> Self {
        #[cfg(feature = "progress")]
        let peek = input.clone();
        let input = input.clone();
        Self {
            name: name.to_owned(),
            workers,
            taken: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            items: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
            input_peak: Box::new(move || input.peak_len()),
            #[cfg(feature = "progress")]
            input_len: Box::new(move || peek.len()),
        }
    }

    fn snapshot(&self) -> StageStats {
        StageStats {
            name: self.name.clone(),
            workers: self.workers,
            input: self.taken.load(Ordering::Relaxed),
            output: self.passed.load(Ordering::Relaxed),
            items: self.items.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            busy: Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed)),
            max_queue_depth: (self.input_peak)(),
        }
    }
}

/// What one stage did, from [`PipelineRun::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StageStats {
    /// The stage's name.
    pub name: String,
    /// Its number of worker threads.
    pub workers: usize,
    /// Items it took from its input queue, including failed items of earlier stages passed
    /// through with [`collect_errors`](Pipeline::collect_errors).
    pub input: u64,
    /// Items it handed on to the next stage (or the consumer), failed ones included with
    /// `collect_errors`.
    pub output: u64,
    /// Items its function was applied to (including those that failed).
    pub items: u64,
    /// Items its function failed on (returned `Err` or panicked).
    pub errors: u64,
    /// Time spent inside its function, summed over its workers. Divide by the wall time and
    /// the workers for its utilisation: the busiest stage is the bottleneck.
    pub busy: Duration,
    /// The most items ever waiting in its input queue: a stage whose queue stays full cannot
    /// keep up with the one before it.
    pub max_queue_depth: usize,
}

/// The results of a running [`Pipeline`]: one `Result` per input item, in input order unless
/// [`unordered`](Pipeline::unordered); by default a failed item's error is the last result
/// (see [`collect_errors`](Pipeline::collect_errors)).
///
/// When it ends (or on the error that stops the run) the pipeline's threads have been joined,
/// so [`stats`](Self::stats) are final. Dropping it early stops the run and joins the threads:
/// it waits for stage functions already running and for a pending `next()` of the input
/// iterator, so an input that can block forever should be made to end (e.g. closed).
pub struct PipelineRun<T> {
    output: Queue<Envelope<T>>,
    control: Arc<Control>,
    threads: Vec<TaskHandle<()>>,
    stats: Vec<Arc<StageCounters>>,
    ordered: bool,
    next_seq: u64,
    reorder: BTreeMap<u64, Result<T, PipelineError>>,
    finished: bool,
    /// The live view of [`Pipeline::progress`].
    #[cfg(feature = "progress")]
    view: Option<live::LiveView>,
}

impl<T> PipelineRun<T> {
    /// Per-stage statistics, in stage order; final once the iterator has ended.
    pub fn stats(&self) -> Vec<StageStats> {
        self.stats.iter().map(|stage| stage.snapshot()).collect()
    }

    /// Whether the run is over (every result yielded, or stopped by an error).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn finish(&mut self) {
        self.finished = true;
        self.control.abort();
        for thread in self.threads.drain(..) {
            thread.wait();
        }
        self.reorder.clear();
        #[cfg(feature = "progress")]
        if let Some(view) = &mut self.view {
            view.finish();
        }
    }

    fn yielded(&mut self, value: Result<T, PipelineError>) -> Option<Result<T, PipelineError>> {
        self.control.in_flight.release();
        #[cfg(feature = "progress")]
        if let Some(view) = &self.view {
            view.yielded(value.is_ok());
        }
        // An error that ends the run is its last result (see the design note).
        let ends = match &value {
            Ok(_) => false,
            Err(PipelineError::SourcePanicked { .. }) => true,
            Err(_) => !self.control.collect_errors,
        };
        if ends {
            self.finish();
        }
        Some(value)
    }
}

impl<T> Iterator for PipelineRun<T> {
    type Item = Result<T, PipelineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        loop {
            if self.ordered {
                if let Some(value) = self.reorder.remove(&self.next_seq) {
                    self.next_seq += 1;
                    return self.yielded(value);
                }
            }
            match self.output.get() {
                Ok(Envelope { seq, value }) if self.ordered => {
                    if !self.control.discards(seq) {
                        self.reorder.insert(seq, value);
                    }
                }
                Ok(Envelope { value, .. }) => return self.yielded(value),
                Err(_) => {
                    self.finish();
                    return None;
                }
            }
        }
    }
}

impl<T> Drop for PipelineRun<T> {
    fn drop(&mut self) {
        if !self.finished {
            self.finish();
        }
    }
}

impl<T> fmt::Debug for PipelineRun<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineRun")
            .field("ordered", &self.ordered)
            .field("next_seq", &self.next_seq)
            .field("buffered", &self.reorder.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
