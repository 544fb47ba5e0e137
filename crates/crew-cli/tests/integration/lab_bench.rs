//! `crew bench` end to end on a few servers with tiny durations: tables, an unavailable peer
//! shown as such, JSON rows and the SVG chart written.

use std::process::Command;

use crate::support::{succeeded, CREW};

#[test]
fn bench_prints_tables_and_writes_json_and_svg() {
    let dir = tempdir();
    let json = dir.join("rows.json");
    let svg = dir.join("chart.svg");
    // A PATH with python3 (the real executable, not a shim that needs more of PATH) but no
    // `go`: the Go peer must be shown as not available.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let found = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs (scripts/test installs it)");
    let python = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    let _ = std::fs::remove_file(bin.join("python3"));
    std::os::unix::fs::symlink(python, bin.join("python3")).unwrap();
    // A Go peer built by an earlier `crew bench` (it is cached beside the binary) would be used
    // without `go`: remove it so this run has no Go at all. No other test uses that cache.
    let crew = std::path::Path::new(CREW);
    let cached_go_peer = crew.parent().unwrap().join("crew-lab-peers/fib_server_go");
    match std::fs::remove_file(&cached_go_peer) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => panic!("removing {}: {error}", cached_go_peer.display()),
    }
    let output = Command::new(CREW)
        .args([
            "bench",
            "--quick",
            "--duration",
            "100ms",
            "--clients",
            "1,2",
            "--n",
            "15",
            "--only",
            "crew-single,crew-threads,crew-process-pool,python-thread_server,go,loopback-limit",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .env("PATH", &bin)
        .output()
        .unwrap();
    let stdout = succeeded(&output);
    assert!(stdout.contains("IO-bound (n = 1)"), "{stdout}");
    assert!(stdout.contains("CPU-bound (n = 15)"), "{stdout}");
    assert!(stdout.contains("crew-process-pool"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("go") && line.contains("not available")),
        "{stdout}"
    );
    // Python must be measured (scripts/test installs python3); Go is not, and says so.
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("python-thread_server") && !line.contains("not available")),
        "{stdout}"
    );
    assert!(stdout.contains("best crew model"), "{stdout}");
    assert!(
        stdout.contains("crew vs go: go not measured (apt-get install golang-go)"),
        "{stdout}"
    );

    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    let threads_cpu = rows
        .iter()
        .find(|row| row["server"] == "crew-threads" && row["case"] == "cpu" && row["clients"] == 2)
        .expect("a crew-threads cpu row");
    assert_eq!(threads_cpu["n"], 15);
    assert!(threads_cpu["rps"].as_f64().unwrap() > 0.0);
    assert!(threads_cpu["p99_us"].as_f64().unwrap() > 0.0);
    let process_pool_cpu = rows
        .iter()
        .find(|row| row["server"] == "crew-process-pool" && row["case"] == "cpu")
        .expect("a crew-process-pool cpu row");
    assert!(process_pool_cpu["rps"].as_f64().unwrap() > 0.0);
    assert!(rows
        .iter()
        .any(|row| row["server"] == "loopback-limit"
            && row["rps"].as_f64().is_some_and(|rps| rps > 0.0)));
    let go = rows
        .iter()
        .find(|row| row["server"] == "go")
        .expect("a go row");
    assert_eq!(go["rps"], serde_json::Value::Null);
    assert!(
        go["note"]
            .as_str()
            .is_some_and(|note| note.starts_with("not available (go is not installed")),
        "{go}"
    );
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg"),
        "{}",
        &chart[..chart.len().min(200)]
    );
    assert!(chart.contains("crew-threads"));
    // The loopback limit is drawn as a labelled reference line, crew and peers apart.
    assert!(
        chart.contains("loopback limit"),
        "the reference line's label"
    );
    assert!(chart.contains("crew (solid)") && chart.contains("peers (dashed)"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_durations_use_the_same_grammar_as_run() {
    // `1h` parses (the run then stops at the next check, before measuring anything).
    let output = Command::new(CREW)
        .args(["bench", "--duration", "1h", "--clients", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(
        stderr.trim(),
        "crew: error: --clients needs counts of at least 1, e.g. 1,2,4"
    );
    let output = Command::new(CREW)
        .args(["bench", "--duration", "1x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid duration \"1x\": use a number and a unit"),
        "{stderr}"
    );
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("crew-lab-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
