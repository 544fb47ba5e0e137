//! `crew perf` against a known server: counts, verification, open loop, JSON.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use crate::support::CREW;

/// `crew perf --json` against `addr`: `clients` connections asking for fib(`n`) for `duration`,
/// with `extra` flags.
fn perf(addr: &str, clients: u32, n: u32, duration: &str, extra: &[&str]) -> serde_json::Value {
    let (clients, n) = (clients.to_string(), n.to_string());
    let output = Command::new(CREW)
        .arg("perf")
        .args([
            "--addr",
            addr,
            "--clients",
            &clients,
            "--n",
            &n,
            "--duration",
            duration,
        ])
        .args(extra)
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "bad JSON ({error}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn closed_and_open_loop_against_a_crew_server() {
    let server = crew_lab::Server::bind(
        crew_lab::Model::Threads,
        "127.0.0.1:0".parse().unwrap(),
        crew_lab::ServeConfig::default(),
    )
    .unwrap()
    .spawn()
    .unwrap();
    let addr = server.addr().to_string();
    let report = perf(&addr, 3, 12, "400ms", &[]);
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["clients_served"], 3);
    assert_eq!(report["n"], 12);
    assert!(report["requests"].as_u64().unwrap() > 0);
    assert!(report["rps"].as_f64().unwrap() > 0.0);
    assert!(report["latency_us"]["p99"].as_f64().unwrap() > 0.0);

    let open = perf(&addr, 2, 5, "500ms", &["--rate", "200"]);
    assert_eq!(open["errors"], 0, "{open}");
    assert_eq!(open["rate"], 200.0);
    // Open loop sends on a schedule: about rate × duration requests, never far more.
    let requests = open["requests"].as_u64().unwrap();
    assert!(requests > 0 && requests <= 110, "{open}");
    server.stop().unwrap();
}

#[test]
fn wrong_replies_and_error_lines_are_counted() {
    // A server that answers every request with a wrong number.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
                    if reader.get_mut().write_all(b"42\n").is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    let report = perf(&addr, 2, 10, "300ms", &[]);
    assert_eq!(report["requests"], 0, "{report}");
    assert!(report["errors"].as_u64().unwrap() > 0);
    let first = report["first_error"].as_str().unwrap();
    assert!(first.contains("expected 55"), "{first}");
}

#[test]
fn no_server_is_a_failure_with_a_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let output = Command::new(CREW)
        .args(["perf", "--addr", &addr, "--duration", "200ms"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn a_zero_duration_is_refused_with_what_to_give() {
    // Before the fix it "measured" nothing and blamed the server for serving too few clients.
    let output = Command::new(CREW)
        .args(["perf", "--addr", "127.0.0.1:1", "--duration", "0s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--duration must be more than 0"),
        "{stderr}"
    );
    assert!(!stderr.contains("fewer clients"), "{stderr}");
}
