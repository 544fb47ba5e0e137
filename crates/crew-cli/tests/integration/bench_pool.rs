//! `crew bench pool` end to end with tiny cases: every implementation measured (procspawn in
//! its own `crew bench peer` process, the Python peers with python3), the same work for every
//! row of a case, JSON rows (the latency rows with their p50 and p99); and the `crew` binary's start-up does nothing for procspawn.

use std::process::Command;

use crate::support::{succeeded, CREW};

#[test]
fn every_implementation_is_measured_on_the_same_work() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("rows.json");
    let output = Command::new(CREW)
        .args([
            "bench",
            "pool",
            "--quick",
            "--tasks",
            "2000",
            "--items",
            "100000",
            "--process-tasks",
            "600",
            "--process-items",
            "50000",
            "--repeat",
            "1",
            "--only",
            "crew-threads,crossbeam,rayon,python-threads,crew-processes,python-processes,python-mp-pool,procspawn",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = succeeded(&output);
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for row in &rows {
        assert_eq!(row["note"], serde_json::Value::Null, "not measured: {row}");
        assert!(
            row["tasks_per_sec"].as_f64().is_some_and(|r| r > 0.0),
            "{row}"
        );
    }
    let n_of = |case: &str, implementation: &str| {
        rows.iter()
            .find(|row| row["case"] == case && row["impl"] == implementation)
            .unwrap_or_else(|| panic!("no row {case} {implementation}:\n{stdout}"))["n"]
            .as_u64()
            .unwrap()
    };
    for name in ["crew-threads", "crossbeam", "rayon", "python-threads"] {
        assert_eq!(n_of("submit", name), 2000, "{name}");
        assert_eq!(n_of("map", name), 100_000, "{name}");
    }
    for name in ["crew-processes", "python-processes", "python-mp-pool"] {
        assert_eq!(n_of("submit", name), 600, "{name}");
    }
    for name in ["crew-processes", "procspawn"] {
        assert_eq!(n_of("submit-256", name), 600, "{name}");
        assert_eq!(n_of("startup", name), 20, "{name}");
    }
    for name in [
        "crew-processes",
        "python-processes",
        "python-mp-pool",
        "procspawn",
    ] {
        assert_eq!(n_of("map", name), 50_000, "{name}");
    }
    for name in ["crew-processes", "procspawn", "python-processes"] {
        assert_eq!(n_of("latency", name), 120, "{name}");
        let row = rows
            .iter()
            .find(|row| row["case"] == "latency" && row["impl"] == name)
            .unwrap();
        let p50 = row["p50_us"].as_f64().unwrap_or_else(|| panic!("{row}"));
        let p99 = row["p99_us"].as_f64().unwrap_or_else(|| panic!("{row}"));
        assert!(0.0 < p50 && p50 <= p99, "{row}");
    }
    assert!(stdout.contains("process round trip"), "{stdout}");
    assert!(
        stdout.contains("workers (one per CPU) over serial"),
        "{stdout}"
    );
}

#[test]
fn startup_does_nothing_for_procspawn() {
    // procspawn::init() in main would take this for a worker's token and try to connect to it.
    let output = Command::new(CREW)
        .arg("--version")
        .env("__PROCSPAWN_CONTENT_PROCESS_ID", "/nonexistent/token")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("crew "));
}
