//! Runs seed 004's master/worker port (`examples/task_master.rs`, `examples/task_worker.rs`)
//! against a real `nats-server`: across a server with a token (a worker process and a master
//! process), alone on the embedded default (`Cluster::local`), and with a wrong token. And seed
//! 000's remote actor (`examples/actor_remote.rs`): created on a worker process, called by
//! address + uid from a second process.
//!
//! The examples are built as programs once (`support/examples.rs`, as for `examples_run`). The
//! server binary comes from `$CREW_NATS_SERVER` or PATH, else from `scripts/nats-server` (which
//! installs one).

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crew::cluster::{ServerConfig, TestServer};

#[path = "support/examples.rs"]
mod examples;
#[path = "support/nats_server.rs"]
mod nats_server;
use examples::example;
use nats_server::ensure_nats_server;

const TOKEN: &str = "seed004-example-token";

/// Waits up to 60 s for `child`.
fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn master(args: &[&str], token: &str) -> Output {
    let child = Command::new(example("task_master"))
        .args(args)
        .env("CREW_NATS_TOKEN", token)
        .env_remove("CREW_NATS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, "task_master")
}

/// The master printed what the seed's prints: ten `Put task n...`, then `Try get results...`,
/// ten `Result: n * n = n²` for the same numbers in the same order, then `master exit.`.
/// Returns the numbers.
fn check_master_output(stdout: &str) -> Vec<u64> {
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|line| !line.starts_with("run task ")) // the local workers' lines
        .collect();
    assert_eq!(lines.len(), 22, "{stdout}");
    let numbers: Vec<u64> = lines[..10]
        .iter()
        .map(|line| {
            let n = line
                .strip_prefix("Put task ")
                .and_then(|rest| rest.strip_suffix("..."))
                .unwrap_or_else(|| panic!("not a put line: {line:?}"));
            n.parse().unwrap()
        })
        .collect();
    assert!(numbers.iter().all(|&n| n <= 10_000), "{numbers:?}");
    assert_eq!(lines[10], "Try get results...");
    for (line, n) in lines[11..21].iter().zip(&numbers) {
        assert_eq!(*line, format!("Result: {n} * {n} = {}", n * n));
    }
    assert_eq!(lines[21], "master exit.");
    numbers
}

#[test]
fn master_and_worker_across_a_server_with_a_token() {
    ensure_nats_server();
    let server = TestServer::start(ServerConfig::new().token(TOKEN)).unwrap();
    let url = server.url();
    let worker = Command::new(example("task_worker"))
        .arg(&url)
        .env("CREW_NATS_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = master(&[&url], TOKEN);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let numbers = check_master_output(&stdout);
    assert!(
        !stdout.contains("run task"),
        "the master ran no task itself"
    );

    // SAFETY: kill(2) with the pid of our own child, which has not been reaped yet.
    let sent = unsafe { libc::kill(worker.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM to the worker");
    let output = finish(worker, "task_worker after SIGTERM");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("Connect to server {url}..."));
    let mut ran: Vec<&str> = lines[1..lines.len() - 1].to_vec();
    let mut expected: Vec<String> = numbers
        .iter()
        .map(|n| format!("run task {n} * {n}..."))
        .collect();
    ran.sort_unstable();
    expected.sort_unstable();
    assert_eq!(ran, expected, "each task ran once, on the worker");
    assert_eq!(lines.last(), Some(&"worker exit. (10 tasks)"));
}

#[test]
fn master_alone_on_the_embedded_default() {
    ensure_nats_server();
    let output = master(&[], "unused");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let numbers = check_master_output(&stdout);
    // With nats-server installed it is a real cluster (the fallback says so on stderr), and
    // its local workers ran every task once.
    assert!(!stderr.contains("ProcessPool"), "{stderr}");
    let ran = stdout
        .lines()
        .filter(|l| l.starts_with("run task "))
        .count();
    assert_eq!(ran, numbers.len(), "{stdout}");
}

#[test]
fn a_wrong_token_is_a_clear_error() {
    ensure_nats_server();
    let server = TestServer::start(ServerConfig::new().token(TOKEN)).unwrap();
    let output = master(&[&server.url()], "not-the-token");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("authentication"), "{stderr}");
    assert!(!stderr.contains("not-the-token"), "{stderr}");
}

#[test]
fn remote_actor_reached_by_address_and_uid_from_a_second_process() {
    ensure_nats_server();
    let child = Command::new(example("actor_remote"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = finish(child, "actor_remote");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "created UniqueActorName at node-a",
            "[client] method_a(1, 2) = 3",
            "[client] method_b(1, 2) = 4 (calls so far: 2)",
            "[client] the actor ran in another process: true",
            "calls seen by the creator: 3",
            "stopped",
        ],
        "{stderr}"
    );
    // The hooks ran on the node: created once, destroyed at the stop after three calls.
    assert!(stderr.contains("created with a=1, b=2"), "{stderr}");
    assert!(stderr.contains("destroyed after 3 calls"), "{stderr}");
}
