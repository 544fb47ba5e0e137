//! What the modules of this binary share: running the `crew` binary and reading its output.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `crew` binary under test.
pub(crate) const CREW: &str = env!("CARGO_BIN_EXE_crew");

/// `crew run ARGS` with nothing on its standard input, its output captured.
pub(crate) fn crew_run(args: &[&str]) -> Output {
    crew_run_stdin(args, b"")
}

/// `crew run ARGS` with `input` on its standard input (closed after it), its output captured.
pub(crate) fn crew_run_stdin(args: &[impl AsRef<OsStr>], input: impl AsRef<[u8]>) -> Output {
    let mut child = Command::new(CREW)
        .arg("run")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_ref())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The standard output of a run that must have succeeded; else a panic showing both outputs.
pub(crate) fn succeeded(output: &Output) -> String {
    let stdout = stdout(output);
    assert!(
        output.status.success(),
        "{}\n{stdout}\n{}",
        output.status,
        stderr(output)
    );
    stdout
}

/// Waits up to 30 s for `child` to exit (killing it and failing the test after that); its
/// output.
pub(crate) fn wait_bounded(mut child: std::process::Child, what: &str) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not exit within 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// How many lines the file at `path` holds (0 while it does not exist).
pub(crate) fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// Waits up to 10 s until `done()`, failing the test with `what` after that.
pub(crate) fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
