//! `crew worker` and `crew cluster` against a real `nats-server` (a private one per test, on a
//! free loopback port, with a random token and a temporary store): `status` sees two workers,
//! a worker SIGTERMed while running a task finishes it and exits 0, `dlq` lists and refuses an
//! unknown id, and a wrong token is a clear error. The server binary comes from
//! `$CREW_NATS_SERVER` or PATH, else from `scripts/nats-server` (which installs one).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crew::cluster::{Cluster, ServerConfig, TestServer};
use crew::Executor;
use crew_cli::tasks::{run_command, CommandJob, CommandStatus};

#[path = "../../crew/tests/support/nats_server.rs"]
mod nats_server;
use nats_server::ensure_nats_server;

const CREW: &str = env!("CARGO_BIN_EXE_crew");
const TOKEN: &str = "cli-test-token-5f1c";

fn server() -> TestServer {
    ensure_nats_server();
    TestServer::start(ServerConfig::new().token(TOKEN)).expect("starting nats-server")
}

/// Ctrl-C (SIGINT) to `run`, which must exit with 130 (bounded in time).
fn interrupt(run: Child, what: &str) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = wait_bounded(run, what);
    assert_eq!(output.status.code(), Some(130), "{output:?}");
}

/// A temporary directory with the token in its file `token`, for `crew worker --token-file`.
fn dir_with_token() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    (dir, token_file)
}

/// `crew ARGS` with the token in the environment (never in argv), bounded in time.
fn crew(args: &[&str]) -> Output {
    let mut child = Command::new(CREW)
        .args(args)
        .env("CREW_NATS_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "crew {args:?} did not finish in 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A `crew worker` with one slot and no prefetch (it holds one task at a time); its token
/// comes from a file.
fn worker(url: &str, token_file: &Path, extra: &[&str]) -> Child {
    Command::new(CREW)
        .args([
            "worker",
            "--nats",
            url,
            "--concurrency",
            "1",
            "--prefetch",
            "0",
        ])
        .arg("--token-file")
        .arg(token_file)
        .args(extra)
        .env_remove("CREW_NATS_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn status_json(url: &str) -> serde_json::Value {
    let output = crew(&["cluster", "status", "--nats", url, "--json"]);
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Waits up to 30 s for `done`, polling.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sigterm(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

/// Waits up to 30 s for a worker told to drain; its exit status and standard error.
fn finish(child: Child) -> (std::process::ExitStatus, String) {
    let output = wait_bounded(child, "the worker told to drain");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits up to 30 s for `child` to exit (killing it and failing the test after that); its output.
fn wait_bounded(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn status_shows_two_workers_and_a_sigtermed_worker_drains_and_exits_0() {
    let server = server();
    let url = server.url();
    let (_dir, token_file) = dir_with_token();
    let first = worker(&url, &token_file, &[]);
    let second = worker(&url, &token_file, &["--threads", "--name", "second"]);

    wait_for("two workers in `crew cluster status --json`", || {
        status_json(&url)["workers"].as_array().unwrap().len() == 2
    });
    let status = status_json(&url);
    let names: Vec<&str> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"second"), "{status}");
    for worker in status["workers"].as_array().unwrap() {
        assert_eq!(worker["slots"], 1, "{status}");
    }
    let table = crew(&["cluster", "status", "--nats", &url]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("workers: 2"), "{table}");
    assert!(table.contains("queue depth: 0"), "{table}");

    // One task each, long enough to be running when the workers are told to stop.
    let cluster = Cluster::connect(server.client_options()).unwrap();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            cluster
                .submit(run_command, CommandJob::new(["sleep", "1.5"]))
                .unwrap()
        })
        .collect();
    wait_for("both tasks in flight", || {
        cluster.status().unwrap().in_flight == 2
    });
    sigterm(&first);
    sigterm(&second);
    for child in [first, second] {
        let (exit, stderr) = finish(child);
        assert!(exit.success(), "worker exit {exit:?}: {stderr}");
        assert!(stderr.contains("1 tasks done, 0 handed back"), "{stderr}");
        assert!(!stderr.contains(TOKEN), "the token was printed: {stderr}");
    }
    // Drained: both tasks finished on the workers that held them.
    for handle in handles {
        let outcome = handle.result().unwrap();
        assert_eq!(outcome.status, CommandStatus::Exited(0), "{outcome:?}");
    }
}

#[test]
fn a_worker_whose_server_is_gone_still_stops_on_sigterm() {
    // Before the fix the drain's last steps (results, heartbeat removal, flush) waited for
    // a reconnection forever: SIGTERM never ended the worker.
    let mut server = server();
    let url = server.url();
    let (_dir, token_file) = dir_with_token();
    let worker = worker(&url, &token_file, &[]);
    wait_for("the worker in `crew cluster status --json`", || {
        status_json(&url)["workers"].as_array().unwrap().len() == 1
    });
    server.kill();
    sigterm(&worker);
    let (exit, stderr) = finish(worker);
    assert!(exit.success(), "worker exit {exit:?}: {stderr}");
}

#[test]
fn dlq_lists_requeue_refuses_unknown_ids_and_a_wrong_token_is_clear() {
    let server = server();
    let url = server.url();
    let list = crew(&["cluster", "dlq", "--nats", &url]);
    assert!(list.status.success(), "{list:?}");
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).trim(),
        "no dead letters"
    );
    let json = crew(&["cluster", "dlq", "list", "--nats", &url, "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&json.stdout).unwrap(),
        serde_json::json!([])
    );
    let requeue = crew(&["cluster", "dlq", "requeue", "42", "--nats", &url]);
    assert!(!requeue.status.success());
    let stderr = String::from_utf8_lossy(&requeue.stderr);
    assert!(stderr.contains("no dead letter 42"), "{stderr}");
    let bad_id = crew(&["cluster", "dlq", "requeue", "x1", "--nats", &url]);
    assert!(!bad_id.status.success());
    assert!(String::from_utf8_lossy(&bad_id.stderr).contains("not a dead-letter id"));

    let wrong = Command::new(CREW)
        .args([
            "cluster",
            "status",
            "--nats",
            &url,
            "--token",
            "wrong-token",
        ])
        .env_remove("CREW_NATS_TOKEN")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("authentication"), "{stderr}");
    assert!(
        !stderr.contains("wrong-token"),
        "the token was printed: {stderr}"
    );
    let no_url = Command::new(CREW)
        .args(["cluster", "status"])
        .env_remove("CREW_NATS_URL")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&no_url.stderr).contains("pass --nats URL"));
}

/// `cmd` with its standard output and error, bounded in time.
fn bounded(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(child, &format!("{cmd:?}"))
}

/// `crew run ARGS`, on the cluster at `url` (token from a file) or, without one, locally.
fn crew_run(cluster: Option<(&str, &Path)>, args: &[&str]) -> Output {
    let mut cmd = Command::new(CREW);
    cmd.arg("run").env_remove("CREW_NATS_TOKEN");
    if let Some((url, token_file)) = cluster {
        cmd.args(["--cluster", url, "--token-file"]).arg(token_file);
    }
    bounded(cmd.args(args))
}

#[test]
fn run_on_the_cluster_prints_logs_and_fails_as_a_local_run() {
    let server = server();
    let url = server.url();
    let (dir, token_file) = dir_with_token();
    let workers = [
        worker(&url, &token_file, &[]),
        worker(&url, &token_file, &["--threads"]),
    ];
    let cluster = Some((url.as_str(), token_file.as_path()));

    // The same output as locally, in order with -k, values reaching the shell as text.
    let args = [
        "-j",
        "4",
        "-k",
        "echo {}",
        ":::",
        "a",
        "b c",
        "$(echo pwned);x",
    ];
    let local = crew_run(None, &args);
    let remote = crew_run(cluster, &args);
    assert!(local.status.success(), "{local:?}");
    assert!(remote.status.success(), "{remote:?}");
    assert_eq!(
        String::from_utf8_lossy(&remote.stdout),
        "a\nb c\n$(echo pwned);x\n"
    );
    assert_eq!(remote.stdout, local.stdout);
    // Without -k: the same lines, each job's output whole.
    let unordered = crew_run(cluster, &["-j", "4", "echo {}", ":::", "a", "b", "c"]);
    let mut lines: Vec<_> = String::from_utf8_lossy(&unordered.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    assert_eq!(lines, ["a", "b", "c"], "{unordered:?}");

    // A failing job: exit status 1 (one failed job), its stderr, its joblog row with the
    // worker's host; a job that fails once passes with --retries 1.
    let joblog = dir.path().join("joblog");
    let marker = dir.path().join("failed-once");
    let failing = crew_run(
        cluster,
        &[
            "-j",
            "2",
            "--joblog",
            joblog.to_str().unwrap(),
            "echo out-{} && echo err-{} >&2 && exit {}",
            ":::",
            "0",
            "3",
        ],
    );
    assert_eq!(failing.status.code(), Some(1), "{failing:?}");
    assert!(String::from_utf8_lossy(&failing.stderr).contains("err-3"));
    let log = std::fs::read_to_string(&joblog).unwrap();
    let rows: Vec<Vec<&str>> = log
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{log}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for row in &rows {
        assert_eq!(row[1], host.trim(), "{log}");
        let expected = if row[0] == "2" { "3" } else { "0" };
        assert_eq!(row[6], expected, "{log}");
        assert_eq!(row[5], "6", "bytes received: {log}");
    }
    let retried = crew_run(
        cluster,
        &[
            "--retries",
            "1",
            "test -e {} || { touch {}; exit 1; }",
            ":::",
            marker.to_str().unwrap(),
        ],
    );
    assert!(retried.status.success(), "{retried:?}");

    // --halt now,fail=1 stops at the first failure with its exit code; --timeout kills a job
    // on its worker and the joblog says -1.
    let halted = crew_run(
        cluster,
        &[
            "-j",
            "1",
            "--halt",
            "now,fail=1",
            "exit {}",
            ":::",
            "4",
            "0",
            "0",
        ],
    );
    assert_eq!(halted.status.code(), Some(4), "{halted:?}");
    let slow_log = dir.path().join("slow-joblog");
    let slow = crew_run(
        cluster,
        &[
            "--timeout",
            "300ms",
            "--joblog",
            slow_log.to_str().unwrap(),
            "sleep {}",
            ":::",
            "5",
        ],
    );
    assert_eq!(slow.status.code(), Some(1), "{slow:?}");
    assert!(
        String::from_utf8_lossy(&slow.stderr).contains("timed out"),
        "{slow:?}"
    );
    let slow_log = std::fs::read_to_string(&slow_log).unwrap();
    assert_eq!(
        slow_log.lines().nth(1).unwrap().split('\t').nth(6),
        Some("-1"),
        "{slow_log}"
    );

    // Options that cannot work remotely, and a wrong token, are clear errors.
    let slot = crew_run(cluster, &["echo {%}", ":::", "a"]);
    assert!(!slot.status.success());
    assert!(
        String::from_utf8_lossy(&slot.stderr).contains("job slot"),
        "{slot:?}"
    );
    let wrong = bounded(
        Command::new(CREW)
            .args([
                "run",
                "--cluster",
                &url,
                "--token",
                "wrong-token",
                "echo {}",
                ":::",
                "a",
            ])
            .env_remove("CREW_NATS_TOKEN"),
    );
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("authentication"), "{stderr}");
    assert!(stderr.contains("--cluster"), "{stderr}");
    assert!(
        !stderr.contains("wrong-token"),
        "the token was printed: {stderr}"
    );

    for child in workers {
        sigterm(&child);
        let (exit, stderr) = finish(child);
        assert!(exit.success(), "worker exit {exit:?}: {stderr}");
    }
}

#[test]
fn ctrl_c_cancels_the_cluster_jobs_of_a_run() {
    let server = server();
    let url = server.url();
    let (_dir, token_file) = dir_with_token();
    let worker = worker(&url, &token_file, &[]);
    // One job runs (the worker holds one), two wait in the queue.
    let run = Command::new(CREW)
        .args(["run", "--cluster", &url, "--token-file"])
        .arg(&token_file)
        .args(["-j", "3", "sleep {}", ":::", "25", "25", "25"])
        .env_remove("CREW_NATS_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("one job running and two queued", || {
        let status = status_json(&url);
        status["in_flight"] == 1 && status["queue_depth"] == 2
    });
    interrupt(run, "crew run after Ctrl-C");
    // Well before the jobs could have finished: nothing queued, nothing running.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = status_json(&url);
        if status["in_flight"] == 0 && status["queue_depth"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run's cluster jobs outlived its Ctrl-C: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&worker);
    let (exit, stderr) = finish(worker);
    assert!(exit.success(), "{stderr}");
}

/// Whether process `pid` is gone (no such process, or a zombie nobody has reaped yet: it runs
/// nothing any more).
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Waits up to 10 s for the two process ids in `file` (written by the job) to appear.
fn read_pids(file: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    wait_for("the job's process ids", || {
        pids = std::fs::read_to_string(file)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect();
        pids.len() == 2
    });
    pids
}

/// Asserts that every process in `pids` is gone within 10 s.
fn assert_gone(pids: &[i32], after: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids.iter().all(|&pid| process_gone(pid)) {
        if Instant::now() > deadline {
            let alive: Vec<_> = pids.iter().filter(|&&pid| !process_gone(pid)).collect();
            for &&pid in &alive {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("processes {alive:?} of the job outlived {after}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A job whose shell (the group leader) starts a child and waits: it writes both process ids
/// to `file`, then would run 30 s.
fn leader_and_child(file: &Path) -> CommandJob {
    CommandJob::new([
        "sh",
        "-c",
        "sleep 30 & echo $$ $! > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"; wait",
        "sh",
        file.to_str().unwrap(),
    ])
}

/// A `run_command` job whose leader starts a child is cancelled while it runs, then another
/// runs past its deadline: each time the leader and its child end with the task.
fn cancel_and_deadline_end_the_process_group(cluster: &Cluster, dir: &Path, on: &str) {
    let cancelled_pids = dir.join("cancelled");
    let handle = cluster
        .submit(run_command, leader_and_child(&cancelled_pids))
        .unwrap();
    let pids = read_pids(&cancelled_pids);
    assert!(handle.cancel() || handle.done());
    assert!(handle.result().is_err());
    assert_gone(&pids, &format!("the cancel of its cluster task{on}"));

    let late_pids = dir.join("late");
    let handle = cluster
        .submit_with(
            run_command,
            leader_and_child(&late_pids),
            crew::task::TaskOptions::new().timeout(Duration::from_secs(3)),
        )
        .unwrap();
    let pids = read_pids(&late_pids);
    assert!(matches!(
        handle.result(),
        Err(crew::TaskError::DeadlineExceeded { .. })
    ));
    assert_gone(&pids, &format!("its cluster task's deadline{on}"));
}

#[test]
fn a_cancelled_or_late_cluster_job_takes_its_whole_process_group_with_it() {
    let server = server();
    let url = server.url();
    let (dir, token_file) = dir_with_token();
    let worker = worker(&url, &token_file, &[]);
    let cluster = Cluster::connect(server.client_options()).unwrap();

    // Cancelled while it runs: its worker process is killed, and the command with it.
    cancel_and_deadline_end_the_process_group(&cluster, dir.path(), "");

    // `crew run --cluster` stopped by Ctrl-C: the running job's processes end with it.
    let run_pids = dir.path().join("run");
    let run = Command::new(CREW)
        .args(["run", "--cluster", &url, "--token-file"])
        .arg(&token_file)
        .args([
            "sleep 30 & echo $$ $! > {}.tmp && mv {}.tmp {}; wait",
            ":::",
            run_pids.to_str().unwrap(),
        ])
        .env_remove("CREW_NATS_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pids = read_pids(&run_pids);
    interrupt(run, "crew run --cluster after Ctrl-C");
    assert_gone(&pids, "a Ctrl-C of `crew run --cluster`");

    // A value that is not UTF-8 cannot travel in a task (text): refused, never sent altered.
    let latin1 = bounded(
        Command::new(CREW)
            .args(["run", "--cluster", &url, "--token-file"])
            .arg(&token_file)
            .args(["echo", ":::"])
            .arg(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"caf\xe9"))
            .env_remove("CREW_NATS_TOKEN"),
    );
    assert_eq!(latin1.status.code(), Some(1), "{latin1:?}");
    let stderr = String::from_utf8_lossy(&latin1.stderr);
    assert!(
        stderr.contains("not UTF-8") && stderr.contains("without --cluster"),
        "{stderr}"
    );

    drop(cluster);
    sigterm(&worker);
    let (exit, stderr) = finish(worker);
    assert!(exit.success(), "{stderr}");
}

#[test]
fn a_thread_worker_kills_a_cancelled_or_late_jobs_process_group_and_frees_its_slot() {
    // `crew worker --threads` cannot kill the thread running a job: before the fix the command
    // ran on for its full 30 s and held the worker's only slot.
    let server = server();
    let url = server.url();
    let (dir, token_file) = dir_with_token();
    let worker = worker(&url, &token_file, &["--threads"]);
    let cluster = Cluster::connect(server.client_options()).unwrap();

    cancel_and_deadline_end_the_process_group(&cluster, dir.path(), " on a thread worker");

    // The one slot is free again: the next job runs long before the 30 s were up.
    let next = cluster
        .submit(run_command, CommandJob::new(["echo", "next"]))
        .unwrap()
        .result_timeout(Duration::from_secs(15))
        .unwrap();
    assert_eq!(next.stdout, b"next\n");

    drop(cluster);
    sigterm(&worker);
    let (exit, stderr) = finish(worker);
    assert!(exit.success(), "{stderr}");
}
