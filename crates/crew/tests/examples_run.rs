//! Runs the seed examples in `crates/crew/examples` and checks what they print.
//!
//! `cargo test --all-targets` (the test command) builds the examples before running tests; this
//! file finds them next to its own executable (`target/<profile>/examples/<name>`). When run
//! alone (`cargo test --test examples_run`) without the examples built, it says so and skips.

use std::path::PathBuf;
use std::process::Command;

/// The stdout of example `name`, or `None` if it has not been built.
fn run(name: &str) -> Option<String> {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/examples_run-<hash> → target/<profile>/examples/<name>
    let profile_dir = exe.parent()?.parent()?;
    let path: PathBuf = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        eprintln!(
            "skipping: {} is not built; run `cargo test --all-targets` (or `cargo build --examples`)",
            path.display()
        );
        return None;
    }
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
    Some(stdout)
}

fn lines(stdout: &str) -> Vec<&str> {
    stdout.lines().collect()
}

#[test]
fn threads_sayhi() {
    let Some(out) = run("threads_sayhi") else {
        return;
    };
    assert_eq!(
        lines(&out),
        ["主线程", "egon say hello", "主线程", "egon say hello"]
    );
}

#[test]
fn event() {
    let Some(out) = run("event") else { return };
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
    let Some(out) = run("counter_barrier") else {
        return;
    };
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
    let Some(out) = run("bank_balance") else {
        return;
    };
    let lines = lines(&out);
    assert!(lines[0].starts_with("without Lock: "));
    assert_eq!(lines[1], "with Lock: 0");
}

#[test]
fn thread_local() {
    let Some(out) = run("thread_local") else {
        return;
    };
    let mut lines = lines(&out);
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["Hello, Alice (in Thread-A)", "Hello, Bob (in Thread-B)"]
    );
}

#[test]
fn pipeline_download_resize_upload() {
    let Some(out) = run("pipeline_download_resize_upload") else {
        return;
    };
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
    let Some(out) = run("gcd_threads") else {
        return;
    };
    let lines = lines(&out);
    assert!(lines[0].starts_with("Took ") && lines[0].ends_with(" seconds"));
    assert!(lines[1].starts_with("Took ") && lines[1].ends_with(" seconds"));
    assert_eq!(lines[2], "results: [1, 1, 5, 1]");
}

#[test]
fn is_prime_threads() {
    let Some(out) = run("is_prime_threads") else {
        return;
    };
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
    let Some(out) = run("as_completed") else {
        return;
    };
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
