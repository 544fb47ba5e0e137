//! `crew bench` end to end on a few servers with tiny durations: tables, pending and
//! unavailable peers shown, JSON rows and the SVG chart written.

use std::process::Command;

#[test]
fn bench_prints_tables_and_writes_json_and_svg() {
    let dir = tempdir();
    let json = dir.join("rows.json");
    let svg = dir.join("chart.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_crew"))
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
            "crew-single,crew-threads,crew-process-pool,python-thread_server,loopback-limit",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("IO-bound (n = 1)"), "{stdout}");
    assert!(stdout.contains("CPU-bound (n = 15)"), "{stdout}");
    assert!(stdout.contains("crew-process-pool"), "{stdout}");
    assert!(
        stdout.contains("pending: lands with the process pool"),
        "{stdout}"
    );
    // Python is either measured or shown as not available, never dropped.
    assert!(stdout.contains("python-thread_server"), "{stdout}");
    assert!(stdout.contains("best crew model"), "{stdout}");

    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    let threads_cpu = rows
        .iter()
        .find(|row| row["server"] == "crew-threads" && row["case"] == "cpu" && row["clients"] == 2)
        .expect("a crew-threads cpu row");
    assert_eq!(threads_cpu["n"], 15);
    assert!(threads_cpu["rps"].as_f64().unwrap() > 0.0);
    assert!(threads_cpu["p99_us"].as_f64().unwrap() > 0.0);
    assert!(rows
        .iter()
        .any(|row| row["server"] == "crew-process-pool" && row["rps"].is_null()));
    assert!(rows.iter().any(|row| row["server"] == "loopback-limit"));
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg"),
        "{}",
        &chart[..chart.len().min(200)]
    );
    assert!(chart.contains("crew-threads"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("crew-lab-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
