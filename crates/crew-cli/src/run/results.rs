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
//! value is `\e`, `.` and `..` become `\.` and `\.\.`, and a name longer than 255 bytes is cut
//! at 255 (at a character boundary). The output is printed as well, as without `--results`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crew::subprocess::{ExitStatus, JobResult};

/// The directory of the job with these values.
pub(crate) fn job_dir(root: &Path, values: &[String]) -> PathBuf {
    let mut dir = root.to_path_buf();
    for (index, value) in values.iter().enumerate() {
        dir.push((index + 1).to_string());
        dir.push(escape(value));
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
    if escaped.len() <= 255 {
        return escaped;
    }
    let mut end = 255;
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    escaped[..end].to_owned()
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
    let (stdout, stderr, exit): (&[u8], &[u8], String) = match &result.outcome {
        Ok(done) => {
            let exit = match (done.timed_out, done.status) {
                (Some(_), _) => "timeout".to_owned(),
                (None, ExitStatus::Code(code)) => code.to_string(),
                (None, ExitStatus::Signal(signal)) => format!("signal {signal}"),
            };
            (&done.stdout, &done.stderr, exit)
        }
        Err(error) => (&[], &[], format!("error: {error}")),
    };
    fs::write(dir.join("stdout"), stdout)?;
    fs::write(dir.join("stderr"), stderr)?;
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
        assert!(name.len() <= 255 && name.len() >= 254);
    }
}
