//! `--joblog`: GNU parallel's tab-separated job log.
//!
//! `Seq Host Starttime JobRuntime Send Receive Exitval Signal Command`, one line per job in
//! completion order. As in GNU parallel, a job killed by a signal has Exitval 0 and its signal,
//! a timed-out job has Exitval -1; a program that could not start logs 127 (not found) or 126.

use std::fs::File;
use std::io::{self, BufWriter, Write};
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

    pub(crate) fn record(&mut self, result: &JobResult, command: &str) -> io::Result<()> {
        self.out.write_all(line(result, command).as_bytes())?;
        self.out.flush()
    }
}

/// The log line of one job.
pub(crate) fn line(result: &JobResult, command: &str) -> String {
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
                done.stdout.len(),
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
    let command = command.replace(['\t', '\n'], " ");
    format!(
        "{}\t:\t{start:.3}\t{runtime:>10.3}\t0\t{receive}\t{exitval}\t{signal}\t{command}\n",
        result.seq
    )
}
