//! Runs the seed examples in `crates/crew/examples` and checks what they print, the process
//! examples included (their worker processes re-enter the example's own `main` through
//! `crew::init()`).
//!
//! The examples are built as programs once (`support/examples.rs`), then run from
//! `target/<profile>/examples/<name>`.

use std::process::Command;

#[path = "../support/examples.rs"]
mod examples;
use examples::example;

/// The stdout of example `name`, which must succeed.
fn run(name: &str) -> String {
    run_with_stderr(name).0
}

/// The stdout and stderr of example `name`, which must succeed. Both are pipes, never a
/// terminal.
fn run_with_stderr(name: &str) -> (String, String) {
    let path = example(name);
    let output = Command::new(&path)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", path.display()));
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    assert!(
        output.status.success(),
        "{name} failed with {}:\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    (stdout, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn lines(stdout: &str) -> Vec<&str> {
    stdout.lines().collect()
}

#[test]
fn threads_sayhi() {
    let out = run("threads_sayhi");
    assert_eq!(
        lines(&out),
        ["主线程", "egon say hello", "主线程", "egon say hello"]
    );
}

#[test]
fn event() {
    let out = run("event");
    let lines = lines(&out);
    assert_eq!(lines[0], "wait(timeout=0.1) returned False");
    let set = lines
        .iter()
        .position(|l| *l == "main thread: event.set()")
        .expect("the set line");
    for i in 0..3 {
        let waiting = format!("worker {i} waiting for the event");
        let woke = format!("worker {i} woke up: wait() returned True");
        let waiting = lines.iter().position(|l| *l == waiting).expect("waiting");
        let woke = lines.iter().position(|l| *l == woke).expect("woke");
        assert!(waiting < set && set < woke, "{lines:#?}");
    }
    assert_eq!(
        lines.last(),
        Some(&"async task woke up: is_set() returned True")
    );
}

#[test]
fn counter_barrier() {
    let out = run("counter_barrier");
    let lines = lines(&out);
    assert_eq!(lines.len(), 2);
    // The unlocked count may be anything up to 500000; the locked one is exact.
    let unlocked: u64 = lines[0]
        .strip_prefix("Counter should be 500000, found ")
        .expect("first line")
        .parse()
        .unwrap();
    assert!(unlocked <= 500_000);
    assert_eq!(lines[1], "Counter should be 500000, found 500000");
}

#[test]
fn bank_balance() {
    let out = run("bank_balance");
    let lines = lines(&out);
    assert!(lines[0].starts_with("without Lock: "));
    assert_eq!(lines[1], "with Lock: 0");
}

#[test]
fn thread_local() {
    let out = run("thread_local");
    let mut lines = lines(&out);
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["Hello, Alice (in Thread-A)", "Hello, Bob (in Thread-B)"]
    );
}

#[test]
fn pipeline_download_resize_upload() {
    let out = run("pipeline_download_resize_upload");
    let lines = lines(&out);
    assert_eq!(lines[..2], ["1000 items finished", "1000 items finished"]);
    for (line, stage) in lines[2..5].iter().zip(["download", "resize", "upload"]) {
        assert!(
            line.starts_with(&format!("{stage}: 1000 items, ")),
            "{line}"
        );
    }
}

#[test]
fn gcd_threads() {
    let out = run("gcd_threads");
    let lines = lines(&out);
    assert!(lines[0].starts_with("Took ") && lines[0].ends_with(" seconds"));
    assert!(lines[1].starts_with("Took ") && lines[1].ends_with(" seconds"));
    assert_eq!(lines[2], "results: [1, 1, 5, 1]");
}

#[test]
fn is_prime_threads() {
    let out = run("is_prime_threads");
    assert_eq!(
        lines(&out),
        [
            "112272535095293 is prime: True",
            "112582705942171 is prime: True",
            "112272535095293 is prime: True",
            "115280095190773 is prime: True",
            "115797848077099 is prime: True",
            "1099726899285419 is prime: False",
        ]
    );
}

#[test]
fn as_completed() {
    let out = run("as_completed");
    let lines = lines(&out);
    assert_eq!(lines.len(), 11);
    let mut results: Vec<u64> = lines[..10].iter().map(|l| l.parse().unwrap()).collect();
    results.sort_unstable();
    assert_eq!(
        results,
        (1..=10).map(|n| n * 10_000_000).collect::<Vec<u64>>()
    );
    assert!(lines[10].starts_with("Thread pool execution in "));
}

#[test]
fn queue_threads_and_tasks() {
    let out = run("queue_threads_and_tasks");
    let lines = lines(&out);
    assert_eq!(lines[0], "consumed 400 messages, sum 79800");
    assert!(lines[1].starts_with("highest queue depth "));
    assert!(lines[1].ends_with(" (capacity 4)"));
}

#[test]
fn process_gcd_serial_threads_processes_agree() {
    let out = run("process_gcd");
    let lines = lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, label) in lines
        .iter()
        .zip(["serial:", "thread pool:", "process pool:"])
    {
        assert!(line.starts_with(label), "{line}");
        assert!(line.contains("[1, 1, 5, 1]"), "{line}");
    }
}

#[test]
fn process_is_prime_map_and_chunks() {
    let out = run("process_is_prime");
    let lines = lines(&out);
    assert_eq!(lines[0], "112272535095293 is prime: true");
    assert_eq!(lines[5], "1099726899285419 is prime: false");
    assert!(
        lines[6].starts_with("is_prime accepts 17984 of 1..=200000"),
        "{}",
        lines[6]
    );
}

#[test]
fn process_pool_apply_async_runs_five_tasks() {
    let out = run("process_pool_apply_async");
    let lines = lines(&out);
    assert!(lines[0].starts_with("Parent process "));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("Run task ")).count(),
        5
    );
    assert_eq!(lines.iter().filter(|l| l.contains(" runs ")).count(), 5);
    assert_eq!(lines.last(), Some(&"All subprocesses done."));
}

#[test]
fn process_queue_writer_and_reader() {
    let out = run("process_queue");
    let lines = lines(&out);
    for value in ["A", "B", "C"] {
        let put = format!("Put {value} to queue...");
        assert!(lines.contains(&put.as_str()), "{lines:?}");
    }
    // The last item races with terminate(), as in the seed; the first two were read long before.
    for value in ["A", "B"] {
        let got = format!("Get {value} from queue.");
        assert!(lines.contains(&got.as_str()), "{lines:?}");
    }
    assert!(lines
        .last()
        .unwrap()
        .starts_with("reader ended: WorkerDied"));
}

#[test]
fn process_subclass_style() {
    let out = run("process_subclass");
    let lines = lines(&out);
    assert!(lines
        .iter()
        .any(|l| l.starts_with("Run child process test (")));
    assert_eq!(lines.iter().filter(|l| l.contains("fetching")).count(), 6);
    assert_eq!(lines.last(), Some(&"fetched 6 urls"));
}

/// Trial division, as the example's `is_prime`, written again to check its count.
fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

#[test]
fn process_map_progress() {
    let (out, err) = run_with_stderr("process_map_progress");
    let first = 1_000_000_000_000u64;
    let primes = (first..first + 1_000).filter(|&n| is_prime(n)).count();
    assert_eq!(
        lines(&out),
        [
            format!("{first}..{}: {primes} primes", first + 1_000).as_str(),
            "12 jobs done, 0 failed",
        ]
    );
    // Standard error is a pipe here: the bars draw nothing at all.
    assert_eq!(err, "");
}

#[test]
fn pipeline_live_view() {
    let (out, err) = run_with_stderr("pipeline_live_view");
    // Images 7, 57, 107, ... (n % 50 == 7) are corrupt: 6 of 300.
    assert_eq!(
        lines(&out),
        [
            "294 images uploaded, 6 failed",
            "download: in 300, out 300, failed 0",
            "resize: in 300, out 300, failed 6",
            "upload: in 300, out 300, failed 0",
        ]
    );
    assert_eq!(err, "");
}

#[test]
fn actor_hooks() {
    let out = run("actor_hooks");
    assert_eq!(
        lines(&out),
        [
            "method_a(1, 2) = 3",
            "method_b(1, 2) = 4 (calls so far: 2)",
            "the actor ran in another process: true",
            "stopped"
        ]
    );
}

#[test]
fn actor_stateless_pool() {
    let out = run("actor_stateless_pool");
    assert_eq!(
        lines(&out),
        [
            "8 primes checked by 4 instances sharing one mailbox",
            "[true, true, true, true, false, true, false, true]",
            "the work spread over more than one instance: true"
        ]
    );
}

#[test]
fn actor_bank_account() {
    let out = run("actor_bank_account");
    assert_eq!(lines(&out), ["balance: 0 after 400000 changes, no lock"]);
}

#[test]
fn subprocess_timeout_kills_the_grandchild_too() {
    let out = run("subprocess_timeout");
    let lines = lines(&out);
    assert_eq!(lines[0], "started", "{out}");
    let grandchild: u32 = lines[1]
        .strip_prefix("grandchild ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no grandchild pid: {out}"));
    assert!(
        lines[2].starts_with("status: killed by SIGTERM") && lines[2].contains("timed out: Some"),
        "{out}"
    );
    assert!(lines[3].contains("timed out after 500ms"), "{out}");
    // The group was killed before the example returned (a zombie awaiting init counts as gone).
    let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    assert!(
        state.is_none_or(|rest| rest.starts_with(['Z', 'X'])),
        "the grandchild {grandchild} outlived the timeout: {stat}"
    );
}

#[test]
fn subprocess_communicate_feeds_and_reads_children() {
    let out = run("subprocess_communicate");
    assert_eq!(
        lines(&out),
        [
            "Hello from the child!",
            "bc answered:",
            "3.142",
            "18446744073709551616",
            "Exit code: exit code 0",
            "md5 of a million x: ec78dbd963d2fc01e51176ed4dec299e  -"
        ]
    );
}

#[test]
fn subprocess_parallel_sleeps_run_side_by_side() {
    let out = run("subprocess_parallel_sleeps");
    let lines = lines(&out);
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("Popen-style: finished in "), "{out}");
    assert!(
        lines[1].starts_with("Runner: 10/10 succeeded, finished in "),
        "{out}"
    );
}
