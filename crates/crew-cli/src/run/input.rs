//! The input sources of `crew run`, as GNU parallel has them.
//!
//! ```text
//! crew run CMD ::: a b ::: 1 2          # cartesian product: a 1, a 2, b 1, b 2
//! crew run CMD ::: a b c :::+ 1 2 3     # linked (zip): a 1, b 2, c 3
//! crew run CMD :::: hosts.txt ::: x y   # a file of arguments, one per line
//! crew run CMD :::: list ::::+ other    # two files, linked line by line
//! find . -print0 | crew run -0 CMD      # standard input, NUL-separated
//! ```
//!
//! Every `:::` group and every `::::` file is one input source; a job takes one value from each
//! (`{1}`, `{2}`, ...). Sources combine as a cartesian product, the last source varying fastest
//! (GNU parallel's order). A source given with `:::+` or `::::+` is linked to the one before it:
//! the two advance together, and the linked set is as long as its shortest member (GNU parallel
//! 20221122 does the same). `-` as a `::::` file, or no source at all, is standard input.
//!
//! A single source from standard input or a file is read lazily, as jobs start; several sources
//! are read to the end first (the product needs them whole).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

/// Where one input source's values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The words after `:::`.
    Inline(Vec<String>),
    /// A file of values after `::::` (`-` is standard input).
    File(PathBuf),
    /// Standard input, when no source is given.
    Stdin,
}

/// One input source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) origin: Origin,
    /// Given with `:::+` / `::::+`: advances together with the source before it.
    pub(crate) linked: bool,
}

/// Splits the words after `crew run [OPTIONS]` into the command and its input sources.
///
/// # Errors
/// A `:::+` or `::::+` with nothing before it to link to, or `::::` without a file.
pub(crate) fn split_command(mut words: Vec<String>) -> Result<(Vec<String>, Vec<Source>), String> {
    let is_separator = |w: &str| matches!(w, ":::" | ":::+" | "::::" | "::::+");
    let Some(first) = words.iter().position(|w| is_separator(w)) else {
        let sources = vec![Source {
            origin: Origin::Stdin,
            linked: false,
        }];
        return Ok((words, sources));
    };
    let rest = words.split_off(first);
    let mut sources: Vec<Source> = Vec::new();
    let mut rest = rest.into_iter().peekable();
    while let Some(separator) = rest.next() {
        let mut group = Vec::new();
        while let Some(word) = rest.next_if(|w| !is_separator(w)) {
            group.push(word);
        }
        let linked = separator.ends_with('+');
        if linked && sources.is_empty() {
            return Err(format!(
                "`{separator}` links its arguments to the input source before it, and there is \
                 none: start with `:::` or `::::`"
            ));
        }
        if separator.starts_with("::::") {
            if group.is_empty() {
                return Err(format!(
                    "`{separator}` must be followed by a file of arguments (`-` for standard input)"
                ));
            }
            for (index, file) in group.into_iter().enumerate() {
                sources.push(Source {
                    origin: if file == "-" {
                        Origin::Stdin
                    } else {
                        Origin::File(file.into())
                    },
                    // `:::: a b` is two sources; `::::+ a b` links `a` to the previous one only.
                    linked: linked && index == 0,
                });
            }
        } else {
            sources.push(Source {
                origin: Origin::Inline(group),
                linked,
            });
        }
    }
    Ok((words, sources))
}

/// The longest record (line, or NUL-separated value with `-0`) crew reads, in bytes: Linux
/// passes no program argument or environment string longer than `MAX_ARG_STRLEN` (128 KiB with
/// its terminating NUL), so a longer value could reach no job anyway. Reading stops there with
/// an error instead of holding a multi-gigabyte "line" in memory (GNU parallel also refuses
/// such input: "Command line too long", and xargs: "argument line too long").
pub(crate) const MAX_RECORD: usize = 128 * 1024 - 1;

/// Reads `reader` as records ended by `separator` (`\n`, or NUL for `-0`); the last record
/// needs no separator. A `\r` before a `\n` is kept, as GNU parallel does. A record longer
/// than [`MAX_RECORD`] ends the input with an error naming it (nothing past the limit is read
/// into memory).
pub(crate) fn records(
    reader: impl Read + 'static,
    separator: u8,
    what: String,
) -> impl Iterator<Item = anyhow::Result<String>> {
    records_up_to(reader, separator, what, MAX_RECORD)
}

/// [`records`] with the bound `limit` (tests use a small one).
fn records_up_to(
    reader: impl Read + 'static,
    separator: u8,
    what: String,
    limit: usize,
) -> impl Iterator<Item = anyhow::Result<String>> {
    let mut reader = BufReader::new(reader);
    let mut warned = false;
    let mut number = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        number += 1;
        let record = match read_record(&mut reader, separator, limit) {
            Ok(Record::Whole(bytes)) => bytes,
            Ok(Record::End) => return None,
            Ok(Record::TooLong) => {
                failed = true;
                return Some(Err(anyhow::anyhow!(
                    "record {number} of {what} is longer than {limit} bytes, more than any \
                     program argument can hold (Linux's MAX_ARG_STRLEN, 128 KiB), so crew \
                     stopped reading there; {}",
                    if separator == 0 {
                        "with -0 the input is split at NUL bytes: check that it has them \
                         (drop -0 for one value a line), or pass large data in a file and its \
                         name as the value"
                    } else {
                        "the input is split at newlines: check that it has them (-0 splits at \
                         NUL bytes), or pass large data in a file and its name as the value"
                    }
                )));
            }
            Err(error) => {
                failed = true;
                return Some(Err(
                    anyhow::Error::new(error).context(format!("cannot read {what}"))
                ));
            }
        };
        if !warned && record.contains(&0) {
            // As xargs and GNU parallel warn: such a job fails (no argument can hold a NUL).
            warned = true;
            warn!(
                "crew run: {what} holds a NUL byte, which no program argument can carry (that \
                 job fails); did you mean -0 (--null), for input split at NUL bytes?"
            );
        }
        // Bytes that are not UTF-8 (a Latin-1 file name) are kept, escaped (`raw`).
        Some(Ok(super::raw::encode(&record)))
    })
}

/// What [`read_record`] found.
enum Record {
    /// A record, without its separator.
    Whole(Vec<u8>),
    /// A record longer than the limit (the rest of it is left unread).
    TooLong,
    /// The end of the input.
    End,
}

/// The next record of `reader`. A record that grows past `limit` bytes is reported as soon as
/// it does, so memory stays within `limit` plus the reader's buffer however long it is.
fn read_record(reader: &mut impl BufRead, separator: u8, limit: usize) -> io::Result<Record> {
    let mut record = Vec::new();
    let mut read_any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok(if read_any {
                Record::Whole(record)
            } else {
                Record::End
            });
        }
        read_any = true;
        let (part, used, ended) = match available.iter().position(|&b| b == separator) {
            Some(end) => (&available[..end], end + 1, true),
            None => (available, available.len(), false),
        };
        if record.len() + part.len() > limit {
            return Ok(Record::TooLong);
        }
        record.extend_from_slice(part);
        reader.consume(used);
        if ended {
            return Ok(Record::Whole(record));
        }
    }
}

/// The values of one source, read whole.
fn load(origin: &Origin, separator: u8) -> anyhow::Result<Vec<String>> {
    match origin {
        Origin::Inline(words) => Ok(words.clone()),
        Origin::Stdin => records(io::stdin(), separator, "standard input".to_owned()).collect(),
        Origin::File(path) => records(open(path)?, separator, path.display().to_string()).collect(),
    }
}

fn open(path: &PathBuf) -> anyhow::Result<File> {
    File::open(path).map_err(|error| {
        anyhow::anyhow!("cannot read the argument file {}: {error}", path.display())
    })
}

/// Every job's values, in GNU parallel's order; `total` when known before the first job.
pub(crate) struct Jobs {
    pub(crate) iter: Box<dyn Iterator<Item = anyhow::Result<Vec<String>>>>,
    pub(crate) total: Option<usize>,
}

impl Jobs {
    /// The jobs of `sources`. A single source that is standard input or a file is read as the
    /// jobs start, unless `whole` asks for everything up front (to know the total).
    ///
    /// # Errors
    /// An argument file that cannot be read.
    pub(crate) fn new(sources: &[Source], separator: u8, whole: bool) -> anyhow::Result<Self> {
        if let [single] = sources {
            let streamed: Option<Box<dyn Iterator<Item = anyhow::Result<String>>>> =
                match &single.origin {
                    Origin::Stdin if !whole => Some(Box::new(records(
                        io::stdin(),
                        separator,
                        "standard input".to_owned(),
                    ))),
                    Origin::File(path) if !whole => Some(Box::new(records(
                        open(path)?,
                        separator,
                        path.display().to_string(),
                    ))),
                    _ => None,
                };
            if let Some(values) = streamed {
                return Ok(Jobs {
                    iter: Box::new(values.map(|value| value.map(|v| vec![v]))),
                    total: None,
                });
            }
        }
        if sources.iter().filter(|s| s.origin == Origin::Stdin).count() > 1 {
            anyhow::bail!("standard input (`::::` -) can be only one of the input sources");
        }
        // Linked sources form one group: rows of values, as long as the shortest member.
        let mut groups: Vec<Vec<Vec<String>>> = Vec::new();
        for source in sources {
            let values = load(&source.origin, separator)?;
            match groups.last_mut() {
                Some(group) if source.linked => {
                    group.truncate(values.len());
                    for (row, value) in group.iter_mut().zip(values) {
                        row.push(value);
                    }
                }
                _ => groups.push(values.into_iter().map(|v| vec![v]).collect()),
            }
        }
        let total = groups
            .iter()
            .try_fold(1usize, |total, group| total.checked_mul(group.len()))
            .ok_or_else(|| {
                anyhow::anyhow!("the input sources make more jobs than crew can count")
            })?;
        Ok(Jobs {
            iter: Box::new(Product::new(groups).map(Ok)),
            total: Some(total),
        })
    }

    /// Reads every job now (for `--eta` and percentage halts, which need the total).
    pub(crate) fn collect_all(self) -> anyhow::Result<Vec<Vec<String>>> {
        self.iter.collect()
    }
}

/// The cartesian product of groups of rows, the last group varying fastest.
struct Product {
    groups: Vec<Vec<Vec<String>>>,
    /// The row of each group of the next job; `None` when done.
    next: Option<Vec<usize>>,
}

impl Product {
    fn new(groups: Vec<Vec<Vec<String>>>) -> Self {
        let empty = groups.is_empty() || groups.iter().any(Vec::is_empty);
        let next = (!empty).then(|| vec![0; groups.len()]);
        Self { groups, next }
    }
}

impl Iterator for Product {
    type Item = Vec<String>;

    fn next(&mut self) -> Option<Vec<String>> {
        let at = self.next.as_mut()?;
        let job: Vec<String> = at
            .iter()
            .zip(&self.groups)
            .flat_map(|(&row, group)| group[row].iter().cloned())
            .collect();
        // Advance the odometer from the last group.
        let mut carry = true;
        for (index, group) in at.iter_mut().zip(&self.groups).rev() {
            *index += 1;
            if *index < group.len() {
                carry = false;
                break;
            }
            *index = 0;
        }
        if carry {
            self.next = None;
        }
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    fn inline(list: &[&str], linked: bool) -> Source {
        Source {
            origin: Origin::Inline(words(list)),
            linked,
        }
    }

    #[test]
    fn separators_split_the_command_from_its_sources() {
        let (command, sources) = split_command(words(&[
            "echo", "{}", ":::", "a", "b", ":::+", "1", "2", "::::", "f", "g",
        ]))
        .unwrap();
        assert_eq!(command, ["echo", "{}"]);
        assert_eq!(
            sources,
            [
                inline(&["a", "b"], false),
                inline(&["1", "2"], true),
                Source {
                    origin: Origin::File("f".into()),
                    linked: false
                },
                Source {
                    origin: Origin::File("g".into()),
                    linked: false
                },
            ]
        );
        let (_, sources) = split_command(words(&["echo"])).unwrap();
        assert_eq!(sources[0].origin, Origin::Stdin);
        assert!(split_command(words(&["echo", ":::+", "a"]))
            .unwrap_err()
            .contains("none"));
        assert!(split_command(words(&["echo", "::::"]))
            .unwrap_err()
            .contains("file"));
    }

    #[test]
    fn products_vary_the_last_source_fastest_and_links_zip_to_the_shortest() {
        let all = |sources: &[Source]| -> Vec<String> {
            Jobs::new(sources, b'\n', false)
                .unwrap()
                .collect_all()
                .unwrap()
                .into_iter()
                .map(|job| job.join(" "))
                .collect()
        };
        assert_eq!(
            all(&[inline(&["a", "b"], false), inline(&["1", "2"], false)]),
            ["a 1", "a 2", "b 1", "b 2"]
        );
        assert_eq!(
            all(&[
                inline(&["a", "b", "c"], false),
                inline(&["1", "2"], true),
                inline(&["x", "y"], false)
            ]),
            ["a 1 x", "a 1 y", "b 2 x", "b 2 y"]
        );
        assert!(all(&[inline(&["a"], false), inline(&[], false)]).is_empty());
        let jobs = Jobs::new(
            &[inline(&["a", "b"], false), inline(&["1", "2", "3"], false)],
            b'\n',
            false,
        )
        .unwrap();
        assert_eq!(jobs.total, Some(6));
    }

    #[test]
    fn records_split_on_the_separator_with_an_optional_last_one() {
        let read = |text: &'static str, sep: u8| -> Vec<String> {
            records(text.as_bytes(), sep, "test".into())
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(read("a\nb c\n", b'\n'), ["a", "b c"]);
        assert_eq!(read("a\nb", b'\n'), ["a", "b"]);
        assert_eq!(read("a\nb\0c\0", 0), ["a\nb", "c"]);
        // Bytes that are not UTF-8 are kept (escaped; see `raw`).
        let latin1: Vec<String> = records(&b"ok\n\xff\n"[..], b'\n', "input".into())
            .map(Result::unwrap)
            .collect();
        assert_eq!(latin1[0], "ok");
        assert_eq!(super::super::raw::decode_bytes(&latin1[1]), b"\xff");
        assert_eq!(read("", b'\n'), Vec::<String>::new());
        assert_eq!(read("\n\nx", b'\n'), ["", "", "x"]);
    }

    #[test]
    fn a_record_longer_than_the_limit_ends_the_input_with_an_error_naming_it() {
        // Two good records, then 64 times the limit without a separator: reading stops with an
        // error as soon as the record outgrows the limit (before, the whole of it was read
        // into memory and returned as one value).
        let limit = 1000;
        let input = io::Cursor::new(b"a\nbb\n".to_vec()).chain(io::repeat(b'x').take(64_000));
        let read: Vec<anyhow::Result<String>> =
            records_up_to(input, b'\n', "standard input".into(), limit).collect();
        assert_eq!(read.len(), 3, "two records and the error, then nothing");
        assert_eq!(read[0].as_ref().unwrap(), "a");
        assert_eq!(read[1].as_ref().unwrap(), "bb");
        let message = format!("{:#}", read[2].as_ref().unwrap_err());
        assert!(
            message.contains("record 3 of standard input is longer than 1000 bytes"),
            "{message}"
        );
        assert!(message.contains("-0 splits at NUL bytes"), "{message}");
        // A record of exactly the limit is fine, with or without its separator; with -0 the
        // advice is about NUL bytes.
        let exact = "y".repeat(limit);
        let input = io::Cursor::new(format!("{exact}\0{exact}").into_bytes());
        let read: Vec<String> = records_up_to(input, 0, "f".into(), limit)
            .map(Result::unwrap)
            .collect();
        assert_eq!(read, [exact.clone(), exact]);
        let input = io::repeat(b'z').take(10_000);
        let error = records_up_to(input, 0, "f".into(), limit)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(format!("{error}").contains("drop -0"), "{error}");
    }
}
