//! The lab's targets: a ratio whose peer could not run is "not measured", never "met".

use crew_bench::lab::{render_ratios, BenchResults, Case, Row, Unavailable};

fn row(server: &str, case: Case, clients: usize, rps: f64) -> Row {
    Row {
        server: server.to_owned(),
        case,
        n: if case == Case::Io { 1 } else { 25 },
        clients,
        rps,
        p99_us: 100.0,
        clients_served: clients,
        errors: 0,
    }
}

/// crew-threads measured everywhere; its Python peer, Go and the loopback limit did not run.
fn results_without_peers() -> BenchResults {
    let mut rows = Vec::new();
    for case in [Case::Io, Case::Cpu] {
        for clients in [1, 2] {
            rows.push(row("crew-threads", case, clients, 1000.0 * clients as f64));
        }
    }
    let missing = |server: &str| Unavailable {
        server: server.to_owned(),
        reason: "not available (not installed)".to_owned(),
    };
    BenchResults {
        servers: [
            "crew-threads",
            "python-thread_server",
            "go",
            "loopback-limit",
        ]
        .map(str::to_owned)
        .to_vec(),
        rows,
        unavailable: vec![
            missing("python-thread_server"),
            missing("go"),
            missing("loopback-limit"),
        ],
        clients: vec![1, 2],
        cpu_n: 25,
        elapsed_s: 1.0,
        load_average: None,
        cells: Vec::new(),
    }
}

#[test]
fn a_missing_peer_is_not_measured_never_met() {
    let text = render_ratios(&results_without_peers());
    assert!(
        text.contains("  io, 1 client vs loopback-limit: not measured\n"),
        "{text}"
    );
    assert!(
        text.contains("  crew vs go: go not measured (apt-get install golang-go)\n"),
        "{text}"
    );
    let python = text
        .lines()
        .find(|line| line.contains("crew-threads") && line.contains("vs python-thread_server"))
        .unwrap_or_else(|| panic!("no python line for crew-threads:\n{text}"));
    assert!(python.ends_with("not measured"), "{python}");
    assert!(!python.contains("met"), "{python}");
    // The model's own scaling was measured (2000 / 1000 = 2.00x).
    assert!(
        text.lines()
            .any(|line| line.contains("crew-threads") && line.ends_with("2.00x  met")),
        "{text}"
    );
}
