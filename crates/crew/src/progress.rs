//! Progress bars for long work: tqdm's `process_map` for [`Map`](crate::Map), a bar you tick
//! yourself in an [`as_completed`](crate::as_completed) loop, and a live per-stage view of a
//! [`pipeline`](crate::pipeline). Behind the `progress` cargo feature (on by default; drawn by
//! [indicatif](https://docs.rs/indicatif)).
//!
//! ```
//! use crew::progress::Progress;
//! use crew::{Executor, ThreadPool};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let pool = ThreadPool::new(2);
//! // `process_map(square, range(1000))`: a bar on standard error while the results come in.
//! let squares: Vec<u64> = pool
//!     .map(square, 0..1000)
//!     .progress(Progress::bar("squares"))
//!     .map(Result::unwrap)
//!     .collect();
//! assert_eq!(squares.len(), 1000);
//! ```
//!
//! # What is drawn, and where
//!
//! [`Progress::bar`] draws on standard error, at most 20 times a second, and only when standard
//! error is a terminal: piped into a file or a CI log it writes nothing at all, so programs can
//! leave their bars on. A bar shows its label, items done out of the total when the input's size
//! is known (`[======>   ] 450/1000`), the elapsed time and the time left (ETA), the rate, and
//! how many items failed. Without a known total it shows the count and the rate.
//! [`Progress::hidden`] counts the same way and draws nothing (for tests, or to read
//! [`position`](Progress::position) yourself).
//!
//! Counting is cheap (about a nanosecond an item on a `Map` of trivial items, measured against
//! the same map without a bar): the count is handed to indicatif in steps, about 100 times a
//! second while items stream in fast and item by item while they trickle, and exactly whenever
//! a `Map` or `as_completed` waits for the next result.
//!
//! A [`Map`](crate::Map) counts an item when it yields it (its result or its error), so the bar
//! says how many results the consumer has, as tqdm around `executor.map` does; it sets the total
//! from the input's exact size hint (a `Vec`, a range, `0..n` mapped), and stops the bar when the
//! iterator ends or is dropped early, leaving it where it stopped.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Where a [`Progress`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Standard error when it is a terminal; nothing otherwise.
    Stderr,
    /// Nowhere.
    Hidden,
}

impl Target {
    fn draw_target(self) -> ProgressDrawTarget {
        match self {
            // Hidden (draws nothing) when standard error is not a terminal: indicatif checks
            // `isatty` before every draw.
            Self::Stderr => ProgressDrawTarget::stderr(),
            Self::Hidden => ProgressDrawTarget::hidden(),
        }
    }
}

/// A progress bar: a count of items done, an optional total, a label, and a count of failures.
///
/// Clones share one bar: hand one to a [`Map`](crate::Map) or a pipeline and keep one to read
/// it, or tick it from several threads. See the [module documentation](self).
///
/// ```
/// use crew::progress::Progress;
/// use crew::{as_completed, ThreadPool};
///
/// let pool = ThreadPool::new(2);
/// let handles: Vec<_> = (0..8).map(|i| pool.spawn(move || i * 2).unwrap()).collect();
/// let progress = Progress::bar("jobs").with_total(handles.len() as u64);
/// for handle in as_completed(handles, None) {
///     match handle.unwrap().result() {
///         Ok(_) => progress.inc(1),
///         Err(_) => progress.inc_failed(1),
///     }
/// }
/// progress.finish();
/// assert_eq!(progress.position(), 8);
/// ```
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    target: Target,
    counts: Arc<Counts>,
}

/// How often, at most, the counts are handed to the bar while items come in fast.
const SYNC_INTERVAL: Duration = Duration::from_millis(10);

/// A bar's counts, kept apart from indicatif's, and when to hand them over.
///
/// Handing a count to indicatif costs far more than counting (a clock read, a lock, the rate
/// estimator): on a `Map` of cheap items, ticking the bar per item made it several times
/// slower. So, like tqdm's `miniters`, [`Progress::inc`] only adds to `done` and hands the
/// count over when it reaches `next_sync`; each hand-over sets the next one about
/// [`SYNC_INTERVAL`] ahead at the rate it measured (at most doubling the step, so one burst
/// cannot set a huge step). A slow stream is handed over item by item; a fast one about 100
/// times a second. `done` is always exact ([`Progress::position`] reads it); the drawn bar may
/// lag by one step until the next hand-over, which a `Map` or `as_completed` forces before it
/// waits for the next result ([`Progress::draw_exact`]), and [`Progress::finish`] forces too.
struct Counts {
    done: AtomicU64,
    failed: AtomicU64,
    next_sync: AtomicU64,
    sync: Mutex<LastSync>,
    /// The width the label is padded to (0: as long as it is).
    label_width: AtomicUsize,
}

/// The last hand-over.
struct LastSync {
    at: Instant,
    done: u64,
    step: u64,
    failed_shown: u64,
}

impl Progress {
    /// A bar labelled `label` on standard error, drawn only when standard error is a terminal.
    /// Its total is unknown until [`set_total`](Self::set_total) (a `Map` sets it for you when
    /// the input's size is known).
    pub fn bar(label: impl Into<Cow<'static, str>>) -> Self {
        Self::new(label, Target::Stderr)
    }

    /// A bar that counts like [`bar`](Self::bar) and never draws.
    pub fn hidden(label: impl Into<Cow<'static, str>>) -> Self {
        Self::new(label, Target::Hidden)
    }

    fn new(label: impl Into<Cow<'static, str>>, target: Target) -> Self {
        let bar = ProgressBar::with_draw_target(None, target.draw_target())
            .with_style(style(None, 0))
            .with_prefix(label);
        let counts = Counts {
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            next_sync: AtomicU64::new(0),
            sync: Mutex::new(LastSync {
                at: Instant::now(),
                done: 0,
                step: 1,
                failed_shown: 0,
            }),
            label_width: AtomicUsize::new(0),
        };
        Self {
            bar,
            target,
            counts: Arc::new(counts),
        }
    }

    /// This bar with its total set, e.g. the number of handles in an `as_completed` loop.
    pub fn with_total(self, total: u64) -> Self {
        self.set_total(total);
        self
    }

    /// Sets how many items there are: the bar then shows a percentage and an ETA.
    pub fn set_total(&self, total: u64) {
        let width = self.counts.label_width.load(Ordering::Relaxed);
        self.bar.set_style(style(Some(total), width));
        self.bar.set_length(total);
    }

    /// The total, if known.
    pub fn total(&self) -> Option<u64> {
        self.bar.length()
    }

    /// Counts `n` more items done. Cheap: a few nanoseconds, the bar itself is updated about
    /// 100 times a second at most while items come in fast.
    pub fn inc(&self, n: u64) {
        let done = self.counts.done.fetch_add(n, Ordering::Relaxed) + n;
        if done >= self.counts.next_sync.load(Ordering::Relaxed) {
            self.sync(false);
        }
    }

    /// Counts `n` more items done that failed: they move the bar like [`inc`](Self::inc) and
    /// are shown as "`k` failed".
    pub fn inc_failed(&self, n: u64) {
        self.counts.failed.fetch_add(n, Ordering::Relaxed);
        self.inc(n);
    }

    /// Hands the counts to the bar and sets the next hand-over (see [`Counts`]). With `force`,
    /// waits for a hand-over running in another thread; without, leaves the work to it.
    fn sync(&self, force: bool) {
        let counts = &*self.counts;
        let mut last = match counts.sync.try_lock() {
            Some(last) => last,
            None if force => counts.sync.lock(),
            None => return,
        };
        let now = Instant::now();
        let done = counts.done.load(Ordering::Relaxed);
        let items = done.saturating_sub(last.done);
        let elapsed = now.saturating_duration_since(last.at);
        let at_rate = if elapsed.is_zero() {
            u64::MAX
        } else {
            (items as f64 * SYNC_INTERVAL.as_secs_f64() / elapsed.as_secs_f64()) as u64
        };
        last.step = at_rate.clamp(1, last.step.saturating_mul(2));
        counts
            .next_sync
            .store(done.saturating_add(last.step), Ordering::Relaxed);
        (last.at, last.done) = (now, done);
        let failed = counts.failed.load(Ordering::Relaxed);
        if failed != last.failed_shown {
            last.failed_shown = failed;
            self.bar.set_message(format!("{failed} failed"));
        }
        self.bar.set_position(done);
    }

    /// Hands the bar its exact counts now if it is behind: a `Map` calls this before it waits.
    pub(crate) fn draw_exact(&self) {
        if self.bar.position() != self.position() {
            self.sync(true);
        }
    }

    /// Sets both counts at once (a pipeline's view copies them from its counters).
    pub(crate) fn set_counts(&self, done: u64, failed: u64) {
        self.counts.done.store(done, Ordering::Relaxed);
        self.counts.failed.store(failed, Ordering::Relaxed);
        self.sync(true);
    }

    /// Items done so far, failed ones included: exact, whatever the bar shows yet.
    pub fn position(&self) -> u64 {
        self.counts.done.load(Ordering::Relaxed)
    }

    /// Items counted by [`inc_failed`](Self::inc_failed).
    pub fn failed(&self) -> u64 {
        self.counts.failed.load(Ordering::Relaxed)
    }

    /// Items per second so far.
    pub fn per_sec(&self) -> f64 {
        self.bar.per_sec()
    }

    /// The label.
    pub fn label(&self) -> String {
        self.bar.prefix()
    }

    /// The text after the counts as last drawn (e.g. "3 failed", or a pipeline stage's queue).
    pub fn message(&self) -> String {
        self.bar.message()
    }

    /// Stops the bar where it is (never jumps to 100%) and draws it one last time with the
    /// exact counts. Idempotent; a `Map` calls it when it ends or is dropped.
    pub fn finish(&self) {
        if !self.bar.is_finished() {
            self.sync(true);
            self.bar.abandon();
        }
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.bar.is_finished()
    }

    /// Sets the text after the counts.
    pub(crate) fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Pads the label to `width` characters, so that bars drawn together line up.
    pub(crate) fn set_label_width(&self, width: usize) {
        self.counts.label_width.store(width, Ordering::Relaxed);
        self.bar.set_style(style(self.total(), width));
    }

    /// Sets the count (a pipeline stage's bar mirrors its counters).
    pub(crate) fn set_position(&self, position: u64) {
        self.counts.done.store(position, Ordering::Relaxed);
        self.sync(true);
    }

    /// A view of several bars drawn together where this one draws, this one first.
    pub(crate) fn multi(&self) -> MultiProgress {
        let multi = MultiProgress::with_draw_target(self.target.draw_target());
        multi.add(self.bar.clone());
        multi
    }

    /// A new bar below the bars of `multi`, drawn where this one draws.
    pub(crate) fn child(&self, multi: &MultiProgress, label: impl Into<Cow<'static, str>>) -> Self {
        let child = Self::new(label, self.target);
        let bar = multi.add(child.bar);
        Self { bar, ..child }
    }
}

/// tqdm's layout: `label  45%|█████▌      | 450/1000 [00:04<00:05, 98.2/s] 3 failed`, the
/// label padded to `label_width` so that the bars of a pipeline's view line up.
fn style(total: Option<u64>, label_width: usize) -> ProgressStyle {
    let template = match total {
        Some(_) => format!(
            "{{prefix:<{label_width}}} {{percent:>3}}%|{{bar:20}}| {{human_pos}}/{{human_len}} \
             [{{clock}}<{{eta_clock}}, {{rate}}] {{msg}}"
        ),
        None => format!("{{prefix:<{label_width}}} {{human_pos}} [{{clock}}, {{rate}}] {{msg}}"),
    };
    ProgressStyle::with_template(&template)
        .expect("the progress templates are valid")
        .progress_chars("█▉▊▋▌▍▎▏ ")
        .with_key("clock", |state: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&clock(state.elapsed()));
        })
        .with_key(
            "eta_clock",
            |state: &ProgressState, w: &mut dyn fmt::Write| {
                let _ = w.write_str(&clock(state.eta()));
            },
        )
        .with_key("rate", |state: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&rate(state.per_sec()));
        })
}

/// `mm:ss`, or `h:mm:ss` from an hour on (tqdm's clock).
fn clock(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes:02}:{seconds:02}")
    }
}

/// Items per second with a precision that suits the size: `0.25/s`, `9.8/s`, `1234/s`.
fn rate(per_sec: f64) -> String {
    match per_sec {
        r if !r.is_finite() => "?/s".to_owned(),
        r if r < 1.0 => format!("{r:.2}/s"),
        r if r < 100.0 => format!("{r:.1}/s"),
        r => format!("{r:.0}/s"),
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("label", &self.label())
            .field("position", &self.position())
            .field("total", &self.total())
            .field("failed", &self.failed())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A [`Progress`] attached to an iterator: finished when the iterator is dropped, whether it ran
/// to the end or not.
pub(crate) struct Attached(pub(crate) Progress);

impl Drop for Attached {
    fn drop(&mut self) {
        self.0.finish();
    }
}

impl fmt::Debug for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_failures_and_total() {
        let progress = Progress::hidden("work");
        assert_eq!(progress.total(), None);
        let reader = progress.clone().with_total(5);
        progress.inc(2);
        progress.inc_failed(1);
        assert_eq!(reader.position(), 3);
        assert_eq!(reader.failed(), 1);
        assert_eq!(reader.total(), Some(5));
        assert_eq!(reader.label(), "work");
        assert!(!reader.is_finished());
        progress.finish();
        progress.finish();
        // Finishing draws the exact counts and leaves them where they were.
        assert!(reader.is_finished());
        assert_eq!(reader.position(), 3);
        assert_eq!(reader.bar.position(), 3);
        assert_eq!(reader.message(), "1 failed");
    }

    #[test]
    fn clock_and_rate_read_like_tqdm() {
        assert_eq!(clock(Duration::from_secs(65)), "01:05");
        assert_eq!(clock(Duration::from_secs(3 * 3600 + 7)), "3:00:07");
        assert_eq!(rate(0.25), "0.25/s");
        assert_eq!(rate(9.84), "9.8/s");
        assert_eq!(rate(1234.4), "1234/s");
        assert_eq!(rate(f64::INFINITY), "?/s");
    }

    #[test]
    fn a_fast_stream_is_handed_to_the_bar_in_steps() {
        let progress = Progress::hidden("fast");
        for _ in 0..1_000_000 {
            progress.inc(1);
        }
        assert_eq!(progress.position(), 1_000_000);
        // The bar got the count in steps, at most one step behind.
        let (drawn, step) = (progress.bar.position(), progress.counts.sync.lock().step);
        assert!(step > 1, "a million items in a tight loop take steps");
        assert!(
            drawn <= 1_000_000 && 1_000_000 - drawn < step,
            "{drawn}, step {step}"
        );
        progress.finish();
        assert_eq!(progress.bar.position(), 1_000_000);
    }

    #[test]
    fn a_slow_stream_is_handed_to_the_bar_item_by_item() {
        let progress = Progress::hidden("slow");
        for done in 1..=3 {
            std::thread::sleep(SYNC_INTERVAL * 2);
            progress.inc_failed(1);
            assert_eq!(progress.bar.position(), done);
            assert_eq!(progress.message(), format!("{done} failed"));
        }
    }

    static RELEASE_FIFTY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    fn slow_at_fifty(x: u64) -> u64 {
        while x == 50 && !RELEASE_FIFTY.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        x
    }

    #[test]
    fn a_waiting_map_draws_its_exact_count() {
        use crate::{Executor, MapOptions, ThreadPool};
        let pool = ThreadPool::new(2);
        let progress = Progress::hidden("gaps");
        let options = MapOptions::new().chunksize(10).window(2);
        std::thread::scope(|scope| {
            let map = pool
                .map_with(slow_at_fifty, 0..100, options)
                .progress(progress.clone());
            let consumer = scope.spawn(move || map.map(Result::unwrap).sum::<u64>());
            // The consumer takes 0..50 at full speed, so the bar gets them in steps, then
            // waits for the chunk that holds 50.
            while progress.position() < 50 {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(50));
            let (counted, drawn) = (progress.position(), progress.bar.position());
            RELEASE_FIFTY.store(true, Ordering::Release);
            assert_eq!(consumer.join().unwrap(), (0..100).sum::<u64>());
            assert_eq!((counted, drawn), (50, 50), "drawn exact while waiting");
        });
        assert_eq!(progress.bar.position(), 100);
    }

    #[test]
    fn attached_finishes_on_drop() {
        let progress = Progress::hidden("work");
        drop(Attached(progress.clone()));
        assert!(progress.is_finished());
    }
}
