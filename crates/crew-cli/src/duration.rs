//! The one duration grammar of every flag that takes a duration (`crew run --timeout`,
//! `--grace`, `crew perf --duration`, `--warmup`, `crew serve --idle-timeout`,
//! `crew bench --duration`).
//!
//! A duration is a non-negative decimal number and an optional unit: `ns`, `us` (`µs`), `ms`,
//! `s` (`sec`, `secs`), `m` (`min`, `mins`), `h`, `d`; a bare number is seconds. Spaces around
//! the unit are allowed: `10s`, `1.5`, `500 ms`, `2m`, `1h`, `250us`.

use std::time::Duration;

/// Parses a duration in the grammar above.
///
/// # Errors
/// A message naming the text and showing valid examples, for an empty or negative number, an
/// unknown unit, or a value too large for a `Duration`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || {
        format!("invalid duration {text:?}: use a number and a unit (ns, us, ms, s, m, h, d), e.g. 10s, 1.5, 500ms, 2m, 1h")
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn every_unit() {
        let cases = [
            ("10s", Duration::from_secs(10)),
            ("1.5", Duration::from_millis(1500)),
            ("0", Duration::ZERO),
            ("500ms", Duration::from_millis(500)),
            ("500 ms", Duration::from_millis(500)),
            (" 2m ", Duration::from_secs(120)),
            ("2min", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1d", Duration::from_secs(86400)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("100ns", Duration::from_nanos(100)),
            ("3secs", Duration::from_secs(3)),
            (".5s", Duration::from_millis(500)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn bad_input_is_named_with_examples() {
        for bad in [
            "",
            "s",
            "-1s",
            "1x",
            "1.2.3",
            "ten",
            "1e3",
            "1h30m",
            "99999999999999999999d",
        ] {
            let message = parse_duration(bad).unwrap_err();
            assert_eq!(
                message,
                format!(
                    "invalid duration {:?}: use a number and a unit (ns, us, ms, s, m, h, d), e.g. 10s, 1.5, 500ms, 2m, 1h",
                    bad.trim()
                )
            );
        }
    }
}
