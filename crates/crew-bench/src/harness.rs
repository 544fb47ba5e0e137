//! The one way every benchmark measures and reports: interleaved rounds in rotating order,
//! medians, table rows ([`render_rows`]), "not available (reason)", verdicts, and the printed
//! report with its `--json` rows and `--svg` chart ([`report`]).
//!
//! A benchmark describes what it measures as a list of [`Measurement`]s, each a key (what is
//! measured: case, implementation, parameters; any `Serialize` type) and a closure that measures
//! once and returns a sample. [`run`] calls every measurement once per round, for several rounds,
//! starting each round one measurement later than the last and going backwards every other
//! round, so background noise on a shared machine, and the after-effects of a heavy neighbour (a
//! process pool's burst, a Python start-up), spread over every implementation instead of always
//! hitting the same one. Measurements listed together stay together (the lab's servers of one
//! cell run back to back). Each
//! measurement's figure is its median sample (the upper median for an even count).
//!
//! A measurement that fails once is not run again: its [`Cell`] says `not available (reason)`,
//! and a target that depends on it is [`Verdict::NotMeasured`], never met.
//!
//! ```
//! use crew_bench::harness::{self, Measurement, Sample};
//!
//! #[derive(Clone)]
//! struct Rate { per_sec: f64 }
//! impl Sample for Rate { fn figure(&self) -> f64 { self.per_sec } }
//!
//! let mut calls = 0.0;
//! let measurements = vec![
//!     Measurement::new("count", move || { calls += 1.0; Ok(Rate { per_sec: calls }) }),
//!     Measurement::unavailable("missing-peer", "not installed"),
//! ];
//! let cells = harness::run(measurements, 3);
//! assert_eq!(cells[0].median().unwrap().per_sec, 2.0);
//! assert_eq!(cells[1].outcome.to_string(), "not available (not installed)");
//! ```

use std::fmt;
use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::chart::Chart;

/// What one measurement returns; the median is taken of [`Sample::figure`].
pub trait Sample: Clone {
    /// The number the samples are ordered by (e.g. requests/sec, or seconds).
    fn figure(&self) -> f64;
}

/// The closure that measures once.
type Measure<'a, S> = Box<dyn FnMut() -> anyhow::Result<S> + 'a>;

/// One thing to measure, round after round.
pub struct Measurement<'a, K, S> {
    key: K,
    measure: Result<Measure<'a, S>, String>,
}

impl<K: fmt::Debug, S> fmt::Debug for Measurement<'_, K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Measurement")
            .field("key", &self.key)
            .field("available", &self.measure.is_ok())
            .finish()
    }
}

impl<'a, K, S> Measurement<'a, K, S> {
    /// A measurement of `key` by `measure`, which returns one sample or why it cannot run.
    pub fn new(key: K, measure: impl FnMut() -> anyhow::Result<S> + 'a) -> Self {
        Self {
            key,
            measure: Ok(Box::new(measure)),
        }
    }

    /// A row known not to run (a peer that is not installed), shown as `not available (reason)`.
    pub fn unavailable(key: K, reason: impl Into<String>) -> Self {
        Self {
            key,
            measure: Err(reason.into()),
        }
    }

    /// What is measured.
    pub fn key(&self) -> &K {
        &self.key
    }
}

/// What came of one measurement.
#[derive(Debug, Clone)]
pub enum Outcome<S> {
    /// Every round ran.
    Measured {
        /// The sample with the median figure.
        median: S,
        /// Every round's sample, in the order measured.
        samples: Vec<S>,
    },
    /// It could not run, and why.
    NotAvailable(String),
}

impl<S> fmt::Display for Outcome<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Measured { samples, .. } => write!(f, "median of {}", samples.len()),
            Outcome::NotAvailable(reason) => write!(f, "not available ({reason})"),
        }
    }
}

/// A measurement's key and its outcome: one row of a table or of the JSON.
#[derive(Debug, Clone)]
pub struct Cell<K, S> {
    /// What was measured.
    pub key: K,
    /// The median, or why there is none.
    pub outcome: Outcome<S>,
}

impl<K, S> Cell<K, S> {
    /// The median sample, if measured.
    pub fn median(&self) -> Option<&S> {
        match &self.outcome {
            Outcome::Measured { median, .. } => Some(median),
            Outcome::NotAvailable(_) => None,
        }
    }

    /// Every sample (empty when not available).
    pub fn samples(&self) -> &[S] {
        match &self.outcome {
            Outcome::Measured { samples, .. } => samples,
            Outcome::NotAvailable(_) => &[],
        }
    }
}

/// Measures every measurement once per round for `rounds` rounds (at least one), in rotating
/// order (forwards, then backwards), and returns one cell per measurement, in the order given.
///
/// On a terminal a progress bar names the measurement running; elsewhere nothing is printed.
pub fn run<K: fmt::Display, S: Sample>(
    measurements: Vec<Measurement<'_, K, S>>,
    rounds: usize,
) -> Vec<Cell<K, S>> {
    let rounds = rounds.max(1);
    let count = measurements.len();
    let bar = progress_bar((rounds * count) as u64);
    // Per measurement: its key, its closure (or why it stopped) and its samples so far.
    let mut state: Vec<_> = measurements
        .into_iter()
        .map(|m| (m.key, m.measure, Vec::<S>::new()))
        .collect();
    for round in 0..rounds {
        for step in 0..count {
            // Rotating alone keeps every measurement behind the same neighbour; going backwards
            // every other round gives each one its other neighbour too.
            let index = if round % 2 == 0 {
                (round + step) % count
            } else {
                (round % count + count - step) % count
            };
            let (key, measure, samples) = &mut state[index];
            if let Ok(run) = measure {
                if let Some(bar) = &bar {
                    bar.set_message(format!("round {}/{rounds}: {key}", round + 1));
                }
                match run() {
                    Ok(sample) => samples.push(sample),
                    Err(error) => *measure = Err(format!("{error:#}")),
                }
            }
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    state
        .into_iter()
        .map(|(key, measure, samples)| {
            let outcome = match measure {
                Err(reason) => Outcome::NotAvailable(reason),
                Ok(_) => match median(&samples) {
                    Some(median) => Outcome::Measured { median, samples },
                    None => Outcome::NotAvailable("no sample".to_owned()),
                },
            };
            Cell { key, outcome }
        })
        .collect()
}

/// The sample with the median figure (the upper one of two middles); `None` if empty.
pub fn median<S: Sample>(samples: &[S]) -> Option<S> {
    let mut sorted: Vec<&S> = samples.iter().collect();
    sorted.sort_by(|a, b| a.figure().total_cmp(&b.figure()));
    sorted.get(sorted.len() / 2).map(|sample| (*sample).clone())
}

fn progress_bar(len: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} {msg} (eta {eta})",
    )
    .ok()?
    .progress_chars("=> ");
    bar.set_style(style);
    Some(bar)
}

/// The median sample of the first cell whose key `matches`, if that cell was measured.
pub fn find<K, S>(cells: &[Cell<K, S>], matches: impl Fn(&K) -> bool) -> Option<&S> {
    cells
        .iter()
        .find(|cell| matches(&cell.key))
        .and_then(Cell::median)
}

/// A benchmark's table: `header`, then one line per cell: its key's columns (`key_columns`),
/// a space, and either its median's columns (`median_columns`, given the key and the median)
/// or `not available (reason)`.
pub fn render_rows<K, S>(
    cells: &[Cell<K, S>],
    header: &str,
    key_columns: impl Fn(&K) -> String,
    mut median_columns: impl FnMut(&K, &S) -> String,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{header}");
    for cell in cells {
        let key = key_columns(&cell.key);
        let _ = match cell.median() {
            Some(median) => writeln!(out, "{key} {}", median_columns(&cell.key, median)),
            None => writeln!(out, "{key} {}", cell.outcome),
        };
    }
    out
}

/// A figure for a table or a target line: `value` with `digits` decimals and `unit` after it,
/// or `-` when it was not measured.
pub fn show(value: Option<f64>, digits: usize, unit: &str) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.digits$}{unit}"))
}

/// The end of every benchmark: prints `text` (its tables and targets), then writes the cells'
/// `--json` rows (see [`json_rows`]) and the `--svg` chart when asked, saying where.
///
/// # Errors
/// If a file cannot be written.
pub fn report<K: Serialize, S: Serialize>(
    text: &str,
    cells: &[Cell<K, S>],
    json: Option<&Path>,
    svg: Option<(&Path, Chart)>,
) -> anyhow::Result<()> {
    print!("{text}");
    if let Some(path) = json {
        write_json(path, &json_rows(cells))?;
        println!("rows written to {}", path.display());
    }
    if let Some((path, chart)) = svg {
        chart.write_svg(path)?;
        println!("chart written to {}", path.display());
    }
    Ok(())
}

/// Whether a target was reached: only a measured figure can meet or miss one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Measured and reached.
    Met,
    /// Measured and not reached.
    Missed,
    /// Something it depends on could not be measured.
    NotMeasured,
}

impl Verdict {
    /// `Met` or `Missed` for a measured value, `NotMeasured` for none.
    pub fn of<T: Copy>(value: Option<T>, reached: impl FnOnce(T) -> bool) -> Self {
        match value {
            Some(value) if reached(value) => Verdict::Met,
            Some(_) => Verdict::Missed,
            None => Verdict::NotMeasured,
        }
    }

    /// Several checks together: not measured if any is, else missed if any is.
    pub fn all(verdicts: impl IntoIterator<Item = Verdict>) -> Self {
        let mut all = Verdict::Met;
        for verdict in verdicts {
            match verdict {
                Verdict::NotMeasured => return Verdict::NotMeasured,
                Verdict::Missed => all = Verdict::Missed,
                Verdict::Met => {}
            }
        }
        all
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::NotMeasured => "not measured",
        })
    }
}

/// One JSON row: the key's fields, the median sample's fields (absent when not available), the
/// number of rounds and a note (`not available (reason)`, or null).
#[derive(Serialize)]
struct JsonRow<'a, K, S> {
    #[serde(flatten)]
    key: &'a K,
    #[serde(flatten)]
    median: Option<&'a S>,
    rounds: usize,
    note: Option<String>,
}

/// The cells as a JSON array of rows (see the module docs of each benchmark for its fields).
pub fn json_rows<K: Serialize, S: Serialize>(cells: &[Cell<K, S>]) -> serde_json::Value {
    let rows = cells
        .iter()
        .map(|cell| JsonRow {
            key: &cell.key,
            median: cell.median(),
            rounds: cell.samples().len(),
            note: match &cell.outcome {
                Outcome::NotAvailable(_) => Some(cell.outcome.to_string()),
                Outcome::Measured { .. } => None,
            },
        })
        .map(|row| serde_json::to_value(row).unwrap_or_default())
        .collect();
    serde_json::Value::Array(rows)
}

/// Writes JSON rows (from [`json_rows`]) to `path`, pretty-printed.
///
/// # Errors
/// If the file cannot be written.
pub fn write_json(path: &Path, rows: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(rows)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Debug, Clone, PartialEq, Serialize)]
    struct Value {
        value: f64,
    }

    impl Sample for Value {
        fn figure(&self) -> f64 {
            self.value
        }
    }

    #[test]
    fn rounds_rotate_and_turn_and_medians_are_middle_samples() {
        let order = RefCell::new(Vec::new());
        let make = |name: &'static str, values: Vec<f64>| {
            let order = &order;
            let mut values = values.into_iter();
            Measurement::new(name, move || {
                order.borrow_mut().push(name);
                Ok(Value {
                    value: values.next().unwrap(),
                })
            })
        };
        let cells = run(
            vec![
                make("a", vec![5.0, 1.0, 3.0]),
                make("b", vec![2.0, 9.0, 4.0]),
                make("c", vec![7.0, 7.0, 8.0]),
            ],
            3,
        );
        assert_eq!(
            *order.borrow(),
            ["a", "b", "c", "b", "a", "c", "c", "a", "b"]
        );
        let medians: Vec<f64> = cells.iter().map(|c| c.median().unwrap().value).collect();
        assert_eq!(medians, [3.0, 4.0, 7.0]);
        assert_eq!(cells[1].samples().len(), 3);
    }

    #[test]
    fn a_failing_measurement_stops_and_says_why() {
        let mut calls = 0;
        let cells = run(
            vec![Measurement::new("fails", || {
                calls += 1;
                if calls == 2 {
                    anyhow::bail!("peer crashed")
                }
                Ok(Value { value: 1.0 })
            })],
            4,
        );
        assert_eq!(calls, 2, "not run again after failing");
        assert_eq!(cells[0].outcome.to_string(), "not available (peer crashed)");
        assert!(cells[0].median().is_none());
    }

    #[test]
    fn verdicts_never_meet_without_a_figure() {
        assert_eq!(Verdict::of(Some(2.0), |v| v >= 1.0), Verdict::Met);
        assert_eq!(Verdict::of(Some(0.5), |v| v >= 1.0), Verdict::Missed);
        assert_eq!(Verdict::of(None::<f64>, |_| true), Verdict::NotMeasured);
        assert_eq!(
            Verdict::all([Verdict::Met, Verdict::Missed]),
            Verdict::Missed
        );
        assert_eq!(
            Verdict::all([Verdict::Missed, Verdict::NotMeasured]),
            Verdict::NotMeasured
        );
        assert_eq!(Verdict::NotMeasured.to_string(), "not measured");
    }

    #[test]
    fn tables_show_medians_or_why_not_and_find_matches_keys() {
        let cells = vec![
            Cell {
                key: "fast",
                outcome: Outcome::Measured {
                    median: Value { value: 2.5 },
                    samples: vec![Value { value: 2.5 }],
                },
            },
            Cell {
                key: "slow",
                outcome: Outcome::NotAvailable("python3 is not installed".to_owned()),
            },
        ];
        let table = render_rows(
            &cells,
            "impl  value",
            |key| format!("{key:<5}"),
            |key, median| format!("{} ({key})", show(Some(median.value), 1, " s")),
        );
        assert_eq!(
            table,
            "impl  value\nfast  2.5 s (fast)\nslow  not available (python3 is not installed)\n"
        );
        assert_eq!(
            find(&cells, |key| *key == "fast"),
            Some(&Value { value: 2.5 })
        );
        assert_eq!(find(&cells, |key| *key == "slow"), None);
        assert_eq!(find(&cells, |key| *key == "other"), None);
        assert_eq!(show(None, 2, "x"), "-");
        assert_eq!(show(Some(1.234), 2, "x"), "1.23x");
    }

    #[test]
    fn report_writes_the_json_rows_and_the_chart_where_asked() {
        let dir = std::env::temp_dir().join(format!("crew-bench-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (json, svg) = (dir.join("rows.json"), dir.join("chart.svg"));
        let cells = vec![Cell {
            key: Value { value: 1.0 },
            outcome: Outcome::<Value>::NotAvailable("peer crashed".to_owned()),
        }];
        report("", &cells, Some(&json), Some((&svg, Chart::default()))).unwrap();
        let rows: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(rows, json_rows(&cells));
        assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
        let missing = dir.join("no-such-dir").join("rows.json");
        let error = report("", &cells, Some(&missing), None).unwrap_err();
        assert!(format!("{error:#}").contains("no-such-dir"), "{error:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_rows_flatten_key_and_median_and_note_the_missing() {
        #[derive(Serialize)]
        struct Key {
            case: &'static str,
        }
        let cells = vec![
            Cell {
                key: Key { case: "a" },
                outcome: Outcome::Measured {
                    median: Value { value: 2.0 },
                    samples: vec![Value { value: 2.0 }],
                },
            },
            Cell {
                key: Key { case: "b" },
                outcome: Outcome::NotAvailable("go is not installed".to_owned()),
            },
        ];
        let rows = json_rows(&cells);
        assert_eq!(
            rows,
            serde_json::json!([
                {"case": "a", "value": 2.0, "rounds": 1, "note": null},
                {"case": "b", "rounds": 0, "note": "not available (go is not installed)"},
            ])
        );
    }
}
