//! `--joblog`: GNU parallel's tab-separated job log.
//!
//! `Seq Host Starttime JobRuntime Send Receive Exitval Signal Command`, one line per job in
//! completion order. As in GNU parallel, a job killed by a signal has Exitval 0 and its signal,
//! a timed-out job has Exitval -1; a program that could not start logs 127 (not found) or 126.
//!
//! The Command column is the job's command as `--dry-run` shows it, tabs kept and each newline
//! written as a NUL byte, as GNU parallel writes it.
//!
//! `--resume` and `--resume-failed` read it back ([`finished`]): Seq is the job's number in
//! input order (`{#}`), so a job is the same job in the next run with the same input.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crew::subprocess::{Error, ExitStatus, JobResult};

pub(crate) const HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

#[derive(Debug)]
pub(crate) struct JobLog {
    out: BufWriter<File>,
}

impl JobLog {
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(HEADER.as_bytes())?;
        out.flush()?;
        Ok(Self { out })
    }

    /// Opens an existing log to add to it (`--resume`), or creates it with its header.
    pub(crate) fn append(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let empty = file.metadata()?.len() == 0;
        let mut out = BufWriter::new(file);
        if empty {
            out.write_all(HEADER.as_bytes())?;
            out.flush()?;
        }
        Ok(Self { out })
    }

    /// Logs job `seq` (its number in input order).
    pub(crate) fn record(
        &mut self,
        seq: usize,
        host: &str,
        result: &JobResult,
        command: &str,
    ) -> io::Result<()> {
        // A value that is not UTF-8 is logged as its bytes, as GNU parallel logs it.
        self.out
            .write_all(&super::raw::decode_bytes(&line(seq, host, result, command)))?;
        self.out.flush()
    }
}

/// The jobs a previous run logged in `path` as done: every logged job, or with `only_succeeded`
/// (`--resume-failed`) only those that exited 0 without a signal. A missing log means none.
///
/// # Errors
/// If the log cannot be read, or a line is not a joblog line.
pub(crate) fn finished(path: &Path, only_succeeded: bool) -> anyhow::Result<HashSet<usize>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(error) => {
            return Err(anyhow::anyhow!(
                "cannot read the joblog {}: {error}",
                path.display()
            ))
        }
    };
    let mut done = HashSet::new();
    // Read as bytes: a command column may hold a file name that is not UTF-8 (only the
    // numbers before it matter here).
    for (index, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line =
            line.map_err(|e| anyhow::anyhow!("cannot read the joblog {}: {e}", path.display()))?;
        let line = String::from_utf8_lossy(&line);
        if (index == 0 && line.starts_with("Seq\t")) || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.splitn(9, '\t').collect();
        let parsed = match fields.as_slice() {
            [seq, _, _, _, _, _, exitval, signal, ..] => seq
                .parse::<usize>()
                .ok()
                .zip(exitval.parse::<i64>().ok())
                .zip(signal.parse::<i64>().ok()),
            _ => None,
        };
        let Some(((seq, exitval), signal)) = parsed else {
            anyhow::bail!(
                "line {} of the joblog {} is not a joblog line (Seq, Host, Starttime, JobRuntime, \
                 Send, Receive, Exitval, Signal, Command separated by tabs); pass another --joblog \
                 or remove it to start afresh",
                index + 1,
                path.display()
            );
        };
        if !only_succeeded || (exitval == 0 && signal == 0) {
            done.insert(seq);
        }
    }
    Ok(done)
}

/// The log line of job `seq`, run on `host` (`:` for this machine).
pub(crate) fn line(seq: usize, host: &str, result: &JobResult, command: &str) -> String {
    let (start, runtime, receive, exitval, signal) = match &result.outcome {
        Ok(done) => {
            let (exitval, signal) = match (done.timed_out, done.status) {
                (Some(_), ExitStatus::Signal(signal)) => (-1, signal),
                (Some(_), ExitStatus::Code(_)) => (-1, 0),
                (None, ExitStatus::Code(code)) => (code, 0),
                (None, ExitStatus::Signal(signal)) => (0, signal),
            };
            (
                done.started,
                done.duration.as_secs_f64(),
                done.stdout_len(),
                exitval,
                signal,
            )
        }
        Err(error) => {
            let exitval = match error {
                Error::NotFound { .. } => 127,
                Error::PermissionDenied { .. } => 126,
                _ => -1,
            };
            (SystemTime::now(), 0.0, 0, exitval, 0)
        }
    };
    let start = start
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    // GNU parallel's rule: the command is the last column, so a tab in it is kept as is, and a
    // newline (which would end the line) is written as a NUL byte; `--resume` matches jobs by
    // Seq and never needs to split the command.
    let command = command.replace('\n', "\0");
    let host = host.replace(['\t', '\n'], " ");
    format!("{seq}\t{host}\t{start:.3}\t{runtime:>10.3}\t0\t{receive}\t{exitval}\t{signal}\t{command}\n")
}
