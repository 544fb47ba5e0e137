//! The live view of [`Pipeline::progress`](super::Pipeline::progress): the caller's bar over
//! one line per stage, in one indicatif `MultiProgress`.
//!
//! Stage workers only bump their atomic counters (as they do without a view), and so does the
//! consumer for each result it takes; a refresher thread copies all the counters into the lines
//! ten times a second, in one pass from the last stage to the first, so the lines agree with
//! each other, and a stage that is stuck, whose counters do not move, still shows its queue
//! filling up. [`LiveView::finish`] stops the refresher, draws the final counts and finishes
//! every line.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::MultiProgress;

use super::StageCounters;
use crate::progress::Progress;
use crate::sync::Event;
use crate::task::TaskHandle;

/// How often the stage lines are refreshed.
const REFRESH: Duration = Duration::from_millis(100);

/// A stage's line and the counters it shows.
struct StageLine {
    counters: Arc<StageCounters>,
    line: Progress,
}

impl StageLine {
    /// What the line should show now: its count and its message.
    fn read(&self, capacity: usize, elapsed: Duration) -> (u64, String) {
        let counters = &self.counters;
        let busy = Duration::from_nanos(counters.busy_nanos.load(Ordering::Relaxed));
        let available = elapsed.as_secs_f64() * counters.workers as f64;
        let busy_percent = if available > 0.0 {
            (100.0 * busy.as_secs_f64() / available).min(100.0)
        } else {
            0.0
        };
        let errors = counters.errors.load(Ordering::Relaxed);
        let mut message = format!(
            "in {} · queue {}/{} · {} workers {:.0}% busy",
            counters.taken.load(Ordering::Relaxed),
            (counters.input_len)(),
            capacity,
            counters.workers,
            busy_percent,
        );
        if errors > 0 {
            message.push_str(&format!(" · {errors} failed"));
        }
        (counters.passed.load(Ordering::Relaxed), message)
    }
}

/// What the refresher thread and the run share.
struct Lines {
    overall: Progress,
    /// Results the consumer took, and how many of them were errors.
    yielded: AtomicU64,
    yielded_failed: AtomicU64,
    stages: Vec<StageLine>,
    capacity: usize,
    started: Instant,
}

impl Lines {
    /// Copies every counter into its line. Items move downstream, so the counters are read
    /// from the consumer up, and the lines set from the first stage down, the consumer's last:
    /// every frame drawn in between shows no line ahead of the line above it.
    fn refresh(&self) {
        let elapsed = self.started.elapsed();
        let failed = self.yielded_failed.load(Ordering::Relaxed);
        let done = self.yielded.load(Ordering::Relaxed);
        let mut counts: Vec<(u64, String)> = self
            .stages
            .iter()
            .rev()
            .map(|stage| stage.read(self.capacity, elapsed))
            .collect();
        counts.reverse();
        for (stage, (passed, message)) in self.stages.iter().zip(counts) {
            stage.line.set_message(message);
            stage.line.set_position(passed);
        }
        self.overall.set_counts(done, failed);
    }
}

/// A running pipeline's live view.
pub(super) struct LiveView {
    lines: Arc<Lines>,
    stop: Arc<Event>,
    refresher: Option<TaskHandle<()>>,
    /// Keeps the lines drawn together; dropped last.
    _multi: MultiProgress,
}

impl LiveView {
    /// Adds a line per stage under `overall` and starts the refresher.
    ///
    /// # Errors
    /// If the refresher thread cannot be started.
    pub(super) fn start(
        overall: Progress,
        input_len: Option<u64>,
        capacity: usize,
        stages: &[Arc<StageCounters>],
    ) -> io::Result<Self> {
        if let (None, Some(total)) = (overall.total(), input_len) {
            overall.set_total(total);
        }
        let multi = overall.multi();
        // Stage lines indented under the caller's line, every bar starting in one column.
        let width = stages
            .iter()
            .map(|s| s.name.chars().count() + 2)
            .chain([overall.label().chars().count()])
            .max()
            .unwrap_or(0);
        overall.set_label_width(width);
        let stages = stages
            .iter()
            .map(|counters| {
                let line = overall.child(&multi, format!("  {}", counters.name));
                line.set_label_width(width);
                if let Some(total) = input_len {
                    line.set_total(total);
                }
                StageLine {
                    counters: counters.clone(),
                    line,
                }
            })
            .collect();
        let lines = Arc::new(Lines {
            overall,
            yielded: AtomicU64::new(0),
            yielded_failed: AtomicU64::new(0),
            stages,
            capacity,
            started: Instant::now(),
        });
        lines.refresh();
        let stop = Arc::new(Event::new());
        let refresher = {
            let (lines, stop) = (lines.clone(), stop.clone());
            crate::thread::spawn("pipeline-view", move || {
                while !stop.wait_timeout(REFRESH) {
                    lines.refresh();
                }
            })?
        };
        Ok(Self {
            lines,
            stop,
            refresher: Some(refresher),
            _multi: multi,
        })
    }

    /// Counts a result the consumer took (drawn at the next refresh, with the stages).
    pub(super) fn yielded(&self, ok: bool) {
        if !ok {
            self.lines.yielded_failed.fetch_add(1, Ordering::Relaxed);
        }
        self.lines.yielded.fetch_add(1, Ordering::Relaxed);
    }

    /// The stage lines, in stage order.
    #[cfg(test)]
    pub(super) fn stage_lines(&self) -> Vec<Progress> {
        self.lines.stages.iter().map(|s| s.line.clone()).collect()
    }

    /// Stops the refresher, draws the final counts and finishes every line. Idempotent.
    pub(super) fn finish(&mut self) {
        self.stop.set();
        if let Some(refresher) = self.refresher.take() {
            refresher.wait();
        }
        self.lines.refresh();
        for stage in &self.lines.stages {
            stage.line.finish();
        }
        self.lines.overall.finish();
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::super::Pipeline;
    use crate::progress::Progress;

    #[test]
    fn stage_lines_count_items_in_and_out() {
        let progress = Progress::hidden("numbers");
        let mut run = Pipeline::from_iter(0..50u32)
            .stage("check", 2, |n: u32| {
                if n % 5 == 0 {
                    Err(format!("{n} is a multiple of five"))
                } else {
                    Ok(n)
                }
            })
            .map("double", 3, |n: u32| n * 2)
            .collect_errors()
            .progress(progress.clone())
            .run()
            .unwrap();
        let results: Vec<_> = run.by_ref().collect();
        assert_eq!(results.len(), 50);
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 10);
        assert_eq!(progress.position(), 50);
        assert_eq!(progress.failed(), 10);
        assert_eq!(progress.total(), Some(50));
        assert!(progress.is_finished());

        let lines = run.view.as_ref().unwrap().stage_lines();
        let stats = run.stats();
        assert_eq!(lines.len(), 2);
        // check: every item in and out (failed ones travel on), 10 failed in its function.
        assert_eq!(
            (stats[0].input, stats[0].output, stats[0].errors),
            (50, 50, 10)
        );
        // double: every item in and out, applied to the 40 that did not fail.
        assert_eq!(
            (stats[1].input, stats[1].output, stats[1].items),
            (50, 50, 40)
        );
        for (line, name) in lines.iter().zip(["check", "double"]) {
            assert_eq!(line.label().trim(), name);
            assert_eq!((line.position(), line.total()), (50, Some(50)));
            assert!(line.is_finished());
            let message = line.message();
            assert!(message.starts_with("in 50 · queue 0/8 · "), "{message}");
        }
        assert!(
            lines[0].message().ends_with("· 10 failed"),
            "{}",
            lines[0].message()
        );
        assert!(
            lines[1].message().contains("3 workers"),
            "{}",
            lines[1].message()
        );
    }

    #[test]
    fn stopped_run_finishes_the_view() {
        let progress = Progress::hidden("numbers");
        // Unknown input size: no total.
        let mut run = Pipeline::from_iter((0..1000u32).filter(|n| n % 2 == 0))
            .map("pass", 1, |n: u32| n)
            .capacity(2)
            .progress(progress.clone())
            .run()
            .unwrap();
        assert_eq!(run.next().unwrap().unwrap(), 0);
        assert_eq!(run.next().unwrap().unwrap(), 2);
        let lines = run.view.as_ref().unwrap().stage_lines();
        drop(run);
        assert_eq!(progress.position(), 2);
        assert_eq!(progress.total(), None);
        assert!(progress.is_finished());
        // The final refresh shows what the stage had passed on when the run stopped: at least
        // the two results taken, at most those plus what the queue and window admitted.
        let passed = lines[0].position();
        assert!((2..500).contains(&passed), "{passed}");
        assert!(lines[0].is_finished());
    }

    #[test]
    fn the_error_that_stops_a_run_is_counted() {
        let progress = Progress::hidden("numbers");
        let run = Pipeline::from_iter(0..10u32)
            .stage(
                "fail",
                1,
                |n: u32| if n == 3 { Err("three") } else { Ok(n) },
            )
            .progress(progress.clone())
            .run()
            .unwrap();
        let results: Vec<_> = run.collect();
        assert!(results.last().unwrap().is_err());
        assert_eq!(progress.failed(), 1);
        assert_eq!(progress.position(), results.len() as u64);
        assert!(progress.is_finished());
    }
}
