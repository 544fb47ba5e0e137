//! Runs the process examples in `crates/crew/examples` (they start worker processes, which
//! re-enter the example's own `main` through `crew::init()`) and checks what they print.
//!
//! Like `examples_run.rs`, it first builds the examples as programs, since
//! `cargo test --all-targets` compiles them in test mode only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>`, from this test's path `target/<profile>/deps/examples_run-<hash>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf()
}

/// Builds every example once per test run.
fn build_examples() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let profile_dir = profile_dir();
        let target_dir = profile_dir.parent().expect("target directory");
        let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--quiet",
                "-p",
                "crew",
                "--examples",
                "--target-dir",
            ])
            .arg(target_dir);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            cargo.arg("--release");
        }
        let output = cargo
            .output()
            .map_err(|error| format!("cannot run cargo: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    });
    if let Err(error) = built {
        panic!("building the examples failed:\n{error}");
    }
}

/// The stdout of example `name`, which must succeed.
fn run(name: &str) -> String {
    build_examples();
    let path = profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
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
    stdout
}

fn lines(stdout: &str) -> Vec<&str> {
    stdout.lines().collect()
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
