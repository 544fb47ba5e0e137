//! crew::subprocess process lifecycle: poll, wait, timeouts that kill process groups, signals,
//! and the errors of commands that cannot run.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crew::subprocess::{Command, Error, ExitStatus, Input, KillSwitch};

/// Whether process `pid` is gone (or a zombie waiting for a reaper that is not us).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            state.starts_with('Z') || state.starts_with('X')
        }
    }
}

/// Waits (bounded) for `pid` to disappear; a killed process is reaped by init asynchronously.
fn eventually_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn pids(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect()
}

#[test]
fn poll_reports_running_then_the_exit_status() {
    let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
    let mut polls = 0;
    while child.poll().unwrap().is_none() {
        polls += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(polls > 0);
    assert_eq!(child.poll().unwrap(), Some(ExitStatus::Code(0)));
    assert_eq!(child.wait().unwrap(), ExitStatus::Code(0));
}

#[test]
fn wait_timeout_returns_none_and_leaves_the_child_running() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    assert!(!gone(child.id()));
    child.terminate().unwrap();
    assert_eq!(child.wait().unwrap(), ExitStatus::Signal(libc::SIGTERM));
    // Signalling after the reap is a no-op, not an error.
    child.kill().unwrap();
}

#[test]
fn kill_reports_sigkill() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status, ExitStatus::Signal(9));
    assert_eq!(status.to_string(), "killed by SIGKILL");
}

#[test]
fn a_child_killed_by_a_signal_reports_it() {
    for (signal, name) in [(9, "SIGKILL"), (15, "SIGTERM"), (6, "SIGABRT")] {
        let done = Command::shell(format!("kill -{signal} $$"))
            .output()
            .unwrap();
        assert_eq!(done.status, ExitStatus::Signal(signal));
        match done.check() {
            Err(Error::Signaled {
                signal: s, name: n, ..
            }) => assert_eq!((s, n), (signal, name)),
            other => panic!("expected Signaled, got {other:?}"),
        }
    }
}

#[test]
fn timeout_kills_the_child_and_its_grandchildren() {
    let start = Instant::now();
    let done = Command::shell("sleep 60 & echo $!; sleep 60 & echo $!; wait")
        .timeout(Duration::from_secs(1))
        .output()
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(done.timed_out, Some(Duration::from_secs(1)));
    let grandchildren = pids(&done.stdout_str());
    assert_eq!(grandchildren.len(), 2, "{done:?}");
    for pid in grandchildren {
        assert!(
            eventually_gone(pid),
            "grandchild {pid} survived the timeout"
        );
    }
    match done.check() {
        Err(Error::TimedOut { after, command }) => {
            assert_eq!(after, Duration::from_secs(1));
            assert!(command.contains("sleep 60"));
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
}

#[test]
fn grandchildren_that_ignore_sigterm_get_sigkill_after_the_grace_period() {
    let done = Command::shell("trap '' TERM; sleep 60 & echo $!; wait; wait")
        .timeout(Duration::from_secs(1))
        .grace(Duration::from_millis(200))
        .output()
        .unwrap();
    assert!(done.timed_out.is_some());
    assert_eq!(done.status, ExitStatus::Signal(9));
    for pid in pids(&done.stdout_str()) {
        assert!(eventually_gone(pid), "grandchild {pid} survived SIGKILL");
    }
}

#[test]
fn communicate_timeout_keeps_partial_output() {
    let mut child = Command::shell("echo before; exec sleep 60")
        .stdin(Input::Piped)
        .spawn()
        .unwrap();
    let done = child
        .communicate(Some(b"ignored"), Some(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(done.stdout_str(), "before\n");
    assert!(done.timed_out.is_some());
    assert_eq!(done.status, ExitStatus::Signal(libc::SIGTERM));
}

#[test]
fn a_grandchild_holding_the_pipe_is_killed_on_timeout() {
    // The child exits at once, but its background grandchild keeps stdout open.
    let done = Command::shell("sleep 60 & echo $!")
        .timeout(Duration::from_secs(1))
        .output()
        .unwrap();
    assert!(done.timed_out.is_some());
    for pid in pids(&done.stdout_str()) {
        assert!(eventually_gone(pid));
    }
}

#[test]
fn a_child_that_never_stops_printing_still_times_out() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let lines = Arc::new(AtomicUsize::new(0));
    let counter = lines.clone();
    let done = Command::new("yes")
        .stdout(crew::subprocess::Redirect::lines(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        }))
        .timeout(Duration::from_millis(500))
        .grace(Duration::from_millis(100))
        .output()
        .unwrap();
    assert!(done.timed_out.is_some());
    assert!(lines.load(Ordering::Relaxed) > 0);
}

#[test]
fn kill_switch_stops_every_registered_child() {
    let switch = KillSwitch::new();
    let mut children: Vec<_> = (0..5)
        .map(|_| {
            Command::new("sleep")
                .arg("60")
                .kill_switch(&switch)
                .spawn()
                .unwrap()
        })
        .collect();
    assert_eq!(switch.running(), 5);
    switch.fire(Duration::from_millis(500));
    for child in &mut children {
        assert_eq!(child.wait().unwrap(), ExitStatus::Signal(libc::SIGTERM));
    }
    assert_eq!(switch.running(), 0);
    // A child started after the switch fired is killed at once.
    let mut late = Command::new("sleep")
        .arg("60")
        .kill_switch(&switch)
        .spawn()
        .unwrap();
    assert_eq!(late.wait().unwrap(), ExitStatus::Signal(libc::SIGKILL));
}

#[test]
fn missing_command_is_not_found() {
    let error = Command::new("crew-no-such-program-xyz")
        .output()
        .unwrap_err();
    match &error {
        Error::NotFound { program } => assert_eq!(program, "crew-no-such-program-xyz"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(error
        .to_string()
        .contains("command not found: `crew-no-such-program-xyz`"));
}

#[test]
fn non_executable_file_is_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.sh");
    std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    match Command::new(&path).output() {
        Err(Error::PermissionDenied { program }) => assert!(program.ends_with("script.sh")),
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

#[test]
fn missing_working_directory_says_so() {
    let error = Command::new("true")
        .current_dir("/no/such/dir/crew")
        .output()
        .unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("/no/such/dir/crew"));
}

#[test]
fn exit_code_error_names_the_code_and_stderr() {
    let error = Command::shell("echo 'disk full' >&2; exit 7")
        .checked_output()
        .unwrap_err();
    match &error {
        Error::ExitCode { code, stderr, .. } => {
            assert_eq!(*code, 7);
            assert_eq!(stderr, "disk full");
        }
        other => panic!("expected ExitCode, got {other:?}"),
    }
    assert!(error.to_string().contains("exited with code 7: disk full"));
}

#[test]
fn feeding_input_to_a_closed_stdin_is_an_error() {
    let mut child = Command::new("cat").spawn().unwrap();
    let error = child.communicate(Some(b"data"), None).unwrap_err();
    assert!(error.to_string().contains("Input::Piped"), "{error}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn durations_too_long_for_a_deadline_mean_no_limit_instead_of_a_panic() {
    // Before the fix each of these panicked: "overflow when adding duration to instant".
    let done = Command::new("echo")
        .arg("no limit")
        .timeout(Duration::MAX)
        .output()
        .unwrap();
    assert_eq!(
        (done.stdout_str().as_ref(), done.timed_out),
        ("no limit\n", None)
    );
    let mut child = Command::new("true").spawn().unwrap();
    assert!(child
        .wait_timeout(Duration::MAX)
        .unwrap()
        .unwrap()
        .success());
    // An endless grace: SIGTERM, then wait for the child however long it takes.
    let done = Command::new("sleep")
        .arg("10")
        .timeout(Duration::from_millis(50))
        .grace(Duration::MAX)
        .output()
        .unwrap();
    assert_eq!(done.status.signal(), Some(15));
    let switch = KillSwitch::new();
    let mut child = Command::new("sleep")
        .arg("10")
        .kill_switch(&switch)
        .spawn()
        .unwrap();
    let waiter = std::thread::spawn(move || child.wait().unwrap());
    switch.fire(Duration::MAX);
    assert_eq!(waiter.join().unwrap().signal(), Some(15));
}

#[test]
fn a_kill_switch_pauses_and_resumes_whole_process_groups() {
    // The shell's background loop appends a line every 20 ms: paused, the file stops growing
    // (the whole group is stopped, not only the leader); resumed, it grows again.
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("ticks");
    let lines = || line_count(&ticks);
    let switch = KillSwitch::new();
    let mut child = Command::shell("(while :; do echo x >> \"$1\"; sleep 0.02; done) & wait")
        .arg(&ticks)
        .kill_switch(&switch)
        .spawn()
        .unwrap();
    wait_until("the loop runs", || lines() >= 3);
    assert_eq!(switch.pause(), 1);
    std::thread::sleep(Duration::from_millis(100));
    let paused = lines();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(), paused, "the group ran on while paused");
    assert_eq!(switch.resume(), 1);
    wait_until("the loop runs again", || lines() >= paused + 3);
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap(), ExitStatus::Signal(libc::SIGKILL));
    assert_eq!(
        (switch.pause(), switch.resume()),
        (0, 0),
        "a reaped child is left alone"
    );
}

#[test]
fn a_child_that_registers_while_the_switch_is_paused_starts_paused() {
    // A job forked around Ctrl-Z registers after `pause` signalled the others: it must be
    // stopped as it registers, and continue with the rest on `resume`.
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("ticks");
    let lines = || line_count(&ticks);
    let switch = KillSwitch::new();
    assert_eq!(switch.pause(), 0);
    let mut child = Command::shell("(while :; do echo x >> \"$1\"; sleep 0.02; done) & wait")
        .arg(&ticks)
        .kill_switch(&switch)
        .spawn()
        .unwrap();
    // The third field of /proc/PID/stat is the state; `T` is stopped by a signal.
    let stat = format!("/proc/{}/stat", child.id());
    let state = || {
        let text = std::fs::read_to_string(&stat).unwrap();
        let after_name = &text[text.rfind(')').unwrap() + 2..];
        after_name.chars().next().unwrap()
    };
    wait_until("the new child is stopped", || state() == 'T');
    let paused = lines();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(), 'T', "the new child was continued while paused");
    assert_eq!(lines(), paused, "the new child's group ran while paused");
    assert_eq!(switch.resume(), 1);
    wait_until("the loop runs after resume", || lines() >= paused + 3);
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap(), ExitStatus::Signal(libc::SIGKILL));
}

/// How many lines the file at `path` holds (0 while it does not exist).
fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// Waits up to 10 s until `done()`, failing the test with `what` after that.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
