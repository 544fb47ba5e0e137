//! `--halt`: GNU parallel's syntax, counts and percentages.

use std::str::FromStr;

use crew::subprocess::{Halt, HaltWhen};

/// How many jobs a halt condition needs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Threshold {
    Count(usize),
    /// A percentage of all the jobs of the run, in (0, 100].
    Percent(f64),
}

/// A parsed `--halt`: `never`, or `now|soon` `,` `fail|success|done` `=` `N` or `P%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HaltSpec {
    rule: Option<(bool, &'static str, Threshold)>,
}

impl HaltSpec {
    /// Whether the threshold is a percentage (the run must then know its total up front).
    pub(crate) fn is_percent(&self) -> bool {
        matches!(self.rule, Some((_, _, Threshold::Percent(_))))
    }

    /// The runner's [`Halt`] for a run of `total` jobs: P% is `ceil(total × P / 100)` jobs (at
    /// least 1).
    pub(crate) fn resolve(&self, total: Option<usize>) -> Halt {
        let Some((now, kind, threshold)) = self.rule else {
            return Halt::Never;
        };
        let count = match threshold {
            Threshold::Count(count) => count,
            Threshold::Percent(percent) => {
                let total = total.unwrap_or(0) as f64;
                ((total * percent / 100.0).ceil() as usize).max(1)
            }
        };
        let when = match kind {
            "fail" => HaltWhen::Fail(count),
            "success" => HaltWhen::Success(count),
            _ => HaltWhen::Done(count),
        };
        if now {
            Halt::Now(when)
        } else {
            Halt::Soon(when)
        }
    }
}

impl FromStr for HaltSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "invalid halt {text:?}: expected never, or now|soon followed by ,fail= ,success= \
                 or ,done= and a count or a percentage (now,fail=1  soon,fail=3  now,success=50%)"
            )
        };
        if text == "never" {
            return Ok(Self { rule: None });
        }
        let (when, condition) = text.split_once(',').ok_or_else(usage)?;
        let now = match when {
            "now" => true,
            "soon" => false,
            _ => return Err(usage()),
        };
        let (kind, amount) = condition.split_once('=').ok_or_else(usage)?;
        let kind = match kind {
            "fail" => "fail",
            "success" => "success",
            "done" => "done",
            _ => return Err(usage()),
        };
        let threshold = match amount.strip_suffix('%') {
            Some(percent) => {
                let percent: f64 = percent.parse().map_err(|_| usage())?;
                if !(percent > 0.0 && percent <= 100.0) {
                    return Err(format!(
                        "invalid halt {text:?}: a percentage must be above 0 and at most 100"
                    ));
                }
                Threshold::Percent(percent)
            }
            None => match amount.parse::<usize>() {
                Ok(0) | Err(_) => return Err(usage()),
                Ok(count) => Threshold::Count(count),
            },
        };
        Ok(Self {
            rule: Some((now, kind, threshold)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_percentages() {
        let spec: HaltSpec = "now,fail=2".parse().unwrap();
        assert_eq!(spec.resolve(None), Halt::Now(HaltWhen::Fail(2)));
        let spec: HaltSpec = "soon,success=25%".parse().unwrap();
        assert!(spec.is_percent());
        assert_eq!(spec.resolve(Some(10)), Halt::Soon(HaltWhen::Success(3)));
        assert_eq!(spec.resolve(Some(1)), Halt::Soon(HaltWhen::Success(1)));
        let spec: HaltSpec = "now,done=100%".parse().unwrap();
        assert_eq!(spec.resolve(Some(7)), Halt::Now(HaltWhen::Done(7)));
        assert_eq!(
            "never".parse::<HaltSpec>().unwrap().resolve(Some(3)),
            Halt::Never
        );
        for bad in [
            "later,fail=1",
            "now,fail=0",
            "now,fail=0%",
            "now,fail=101%",
            "now,oops=1",
            "now",
        ] {
            assert!(bad.parse::<HaltSpec>().is_err(), "{bad}");
        }
    }
}
