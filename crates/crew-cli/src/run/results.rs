//! `--results DIR`: every job's output in files, in GNU parallel's directory layout.
//!
//! A job with values `a` and `x y` (from two input sources) writes
//!
//! ```text
//! DIR/1/a/2/x y/seq       the job number ({#}), no newline (as GNU parallel writes it)
//! DIR/1/a/2/x y/stdout    its standard output, byte for byte
//! DIR/1/a/2/x y/stderr    its standard error
//! DIR/1/a/2/x y/exit      how it ended: the exit code; `signal N` (killed by signal N);
//!                         `timeout` (killed at --timeout); `error: ...` (it could not start);
//!                         no newline
//! ```
//!
//! as GNU parallel does (it writes `seq`, `stdout` and `stderr`; `exit` is crew's). Each value is
//! one directory name: `\` becomes `\\` and `/` becomes `\_` (GNU parallel's escapes), an empty
//! value is `\e`, `.` and `..` become `\.` and `\.\.`. A name longer than 255 bytes (the file
//! system's limit) keeps its first 237 bytes (cut at a character boundary, never inside an
//! escape) followed by `\h` and 16 hex digits of a hash of the whole value, so two long values
//! that share a beginning still get directories of their own. The output is printed as well, as
//! without `--results`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crew::subprocess::{ExitStatus, JobResult};

/// The directory of the job with these values.
pub(crate) fn job_dir(root: &Path, values: &[String]) -> PathBuf {
    let mut dir = root.to_path_buf();
    for (index, value) in values.iter().enumerate() {
        dir.push((index + 1).to_string());
        // A value that stands for bytes that are not UTF-8 names its directory with them.
        dir.push(super::raw::decode(&escape(value)));
    }
    dir
}

fn escape(value: &str) -> String {
    let escaped = match value {
        "" => return "\\e".to_owned(),
        "." => return "\\.".to_owned(),
        ".." => return "\\.\\.".to_owned(),
        _ => value.replace('\\', "\\\\").replace('/', "\\_"),
    };
    if escaped.len() <= NAME_MAX {
        return escaped;
    }
    let mut end = NAME_MAX - HASH_SUFFIX;
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    // An odd run of backslashes before the cut would leave half an escape behind.
    let trailing = escaped[..end]
        .bytes()
        .rev()
        .take_while(|&b| b == b'\\')
        .count();
    if trailing % 2 == 1 {
        end -= 1;
    }
    format!("{}\\h{:016x}", &escaped[..end], fnv1a(value.as_bytes()))
}

/// The longest file name Linux file systems accept, in bytes.
const NAME_MAX: usize = 255;
/// `\h` and 16 hex digits.
const HASH_SUFFIX: usize = 18;

/// FNV-1a, 64 bits: stable across Rust versions and runs (std's hasher promises neither), so
/// a rerun writes the same directories.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes the files of one finished job.
pub(crate) fn write(
    root: &Path,
    values: &[String],
    seq: usize,
    result: &JobResult,
) -> io::Result<()> {
    let dir = job_dir(root, values);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("seq"), seq.to_string())?;
    let exit = match &result.outcome {
        Ok(done) => {
            // From memory, or a chunk at a time from the spool of an output that outgrew it.
            done.copy_stdout_to(&mut fs::File::create(dir.join("stdout"))?)?;
            done.copy_stderr_to(&mut fs::File::create(dir.join("stderr"))?)?;
            match (done.timed_out, done.status) {
                (Some(_), _) => "timeout".to_owned(),
                (None, ExitStatus::Code(code)) => code.to_string(),
                (None, ExitStatus::Signal(signal)) => format!("signal {signal}"),
            }
        }
        Err(error) => {
            fs::write(dir.join("stdout"), b"")?;
            fs::write(dir.join("stderr"), b"")?;
            format!("error: {error}")
        }
    };
    fs::write(dir.join("exit"), exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_one_directory_name_each() {
        let dir = job_dir(
            Path::new("out"),
            &["a/b".into(), "x\\y".into(), "".into(), "..".into()],
        );
        assert_eq!(dir, Path::new("out/1/a\\_b/2/x\\\\y/3/\\e/4/\\.\\."));
        let long = "é".repeat(200);
        let name = escape(&long);
        assert!(name.len() <= 255 && name.len() >= 254, "{}", name.len());
        assert!(name.starts_with(&"é".repeat(118)), "{name}");
    }

    #[test]
    fn long_values_sharing_a_beginning_get_distinct_directories() {
        let common = "x".repeat(300);
        let a = escape(&format!("{common}a"));
        let b = escape(&format!("{common}b"));
        assert_ne!(a, b);
        assert!(a.len() <= 255 && b.len() <= 255);
        assert_eq!(
            a,
            escape(&format!("{common}a")),
            "the same value, the same name"
        );
    }

    #[test]
    fn a_cut_never_splits_an_escape() {
        // 236 bytes, then escaped backslashes: the cut at 237 would fall inside one.
        let value = format!("{}{}", "y".repeat(236), "\\".repeat(20));
        let name = escape(&value);
        let before_hash = &name[..name.rfind("\\h").unwrap()];
        let trailing = before_hash
            .bytes()
            .rev()
            .take_while(|&b| b == b'\\')
            .count();
        assert_eq!(trailing % 2, 0, "{name}");
    }
}
