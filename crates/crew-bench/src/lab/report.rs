//! The tables and the ratios printed by `crew bench`.

use std::fmt::Write;

use super::{BenchResults, Case, Peer};
use crate::harness::Verdict;
use crew_lab::perf::group;
use crew_lab::Model;

/// Seed-003-style tables: for each case, requests/sec per server and client count, then p99.
pub fn render_tables(results: &BenchResults) -> String {
    let mut out = String::new();
    for case in [Case::Io, Case::Cpu] {
        let n = if case == Case::Io { 1 } else { results.cpu_n };
        let title = match case {
            Case::Io => "IO-bound",
            Case::Cpu => "CPU-bound",
        };
        let _ = writeln!(
            out,
            "\n{title} (n = {n}): requests/sec, and p99 latency in µs"
        );
        let mut header = format!("{:<28}", "server");
        for &clients in &results.clients {
            let label = if clients == 1 {
                "1 client".to_owned()
            } else {
                format!("{clients} clients")
            };
            let _ = write!(header, " | {label:>18}");
        }
        for &clients in &results.clients {
            let _ = write!(header, " | {:>9}", format!("p99 {clients}c"));
        }
        let _ = writeln!(out, "{header}");
        let _ = writeln!(out, "{}", "-".repeat(header.chars().count()));
        for server in &results.servers {
            let mut line = format!("{server:<28}");
            if let Some(missing) = results.unavailable.iter().find(|u| &u.server == server) {
                let _ = writeln!(out, "{line} | {}", missing.reason);
                continue;
            }
            for &clients in &results.clients {
                let cell = match results.get(server, case, clients) {
                    None => "-".to_owned(),
                    Some(row) if row.clients_served == 0 => "no reply".to_owned(),
                    Some(row) if row.clients_served < row.clients => {
                        format!(
                            "{} ({}/{} served)",
                            group(row.rps),
                            row.clients_served,
                            row.clients
                        )
                    }
                    Some(row) => group(row.rps),
                };
                let _ = write!(line, " | {cell:>18}");
            }
            for &clients in &results.clients {
                let cell = results
                    .get(server, case, clients)
                    .filter(|row| row.clients_served > 0)
                    .map_or("-".to_owned(), |row| group(row.p99_us));
                let _ = write!(line, " | {cell:>9}");
            }
            let _ = writeln!(out, "{line}");
        }
    }
    let errors: u64 = results.rows.iter().map(|row| row.errors).sum();
    if errors > 0 {
        let _ = writeln!(out, "\nclient-side errors in the run: {errors}");
    }
    out
}

fn rps(results: &BenchResults, server: &str, case: Case, clients: usize) -> Option<f64> {
    results
        .get(server, case, clients)
        .filter(|row| row.clients_served > 0 && row.rps > 0.0)
        .map(|row| row.rps)
}

/// `met` or `MISSED` for a measured ratio; a ratio that could not be computed is `not measured`.
fn mark(ratio: Option<f64>, reached: impl FnOnce(f64) -> bool) -> Verdict {
    Verdict::of(ratio, reached)
}

/// Whether a model's design lets it beat a parallel server in this cell.
fn design_allows(model: Model, case: Case, clients: usize) -> bool {
    model.info().design.allows(case == Case::Cpu, clients)
}

/// The ratios behind the lab's targets.
pub fn render_ratios(results: &BenchResults) -> String {
    let mut out = String::new();
    let crew: Vec<Model> = Model::ALL
        .into_iter()
        .filter(|model| results.servers.contains(&Peer::Crew(*model).name()))
        .collect();
    let _ = writeln!(out, "\nTargets (ratios within this run):");

    // 1. IO-bound, one client: crew's best against the loopback limit.
    let best = crew
        .iter()
        .filter_map(|model| {
            let name = Peer::Crew(*model).name();
            rps(results, &name, Case::Io, 1).map(|value| (name, value))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    match (best, rps(results, "loopback-limit", Case::Io, 1)) {
        (Some((name, value)), Some(limit)) => {
            let ratio = value / limit;
            let _ = writeln!(
                out,
                "  io, 1 client: best crew model {name} = {:.0}% of loopback-limit (target >= 90%): {}",
                ratio * 100.0,
                mark(Some(ratio), |r| r >= 0.9)
            );
        }
        _ => {
            let _ = writeln!(out, "  io, 1 client vs loopback-limit: not measured");
        }
    }

    // 2. Every crew model against Go, where its design allows.
    let clients = &results.clients;
    if results.unavailable.iter().any(|u| u.server == "go")
        || !results.servers.contains(&"go".to_owned())
    {
        let _ = writeln!(
            out,
            "  crew vs go: go not measured (apt-get install golang-go)"
        );
    } else {
        let _ = writeln!(
            out,
            "  crew / go (target >= 1.0 where the design allows; * = design does not allow):"
        );
        let mut missed = Vec::new();
        let mut unmeasured = Vec::new();
        for model in &crew {
            let name = Peer::Crew(*model).name();
            let mut line = format!("    {name:<24}");
            for case in [Case::Io, Case::Cpu] {
                let _ = write!(line, " {}:", case.name());
                for &c in clients {
                    let ratio = rps(results, &name, case, c)
                        .zip(rps(results, "go", case, c))
                        .map(|(a, b)| a / b);
                    let allowed = design_allows(*model, case, c);
                    let text = ratio.map_or("-".to_owned(), |r| format!("{r:.2}"));
                    let _ = write!(line, " {text:>5}{}", if allowed { " " } else { "*" });
                    match ratio {
                        Some(r) if allowed && r < 1.0 => {
                            missed.push(format!("{name} {} {c}c", case.name()));
                        }
                        None if allowed => unmeasured.push(format!("{name} {} {c}c", case.name())),
                        _ => {}
                    }
                }
            }
            let _ = writeln!(out, "{line}");
        }
        let verdict = if !unmeasured.is_empty() {
            Verdict::NotMeasured
        } else if missed.is_empty() {
            Verdict::Met
        } else {
            Verdict::Missed
        };
        let mut detail = Vec::new();
        if !missed.is_empty() {
            detail.push(format!("below go: {}", missed.join(", ")));
        }
        if !unmeasured.is_empty() {
            detail.push(format!("no figure: {}", unmeasured.join(", ")));
        }
        if detail.is_empty() {
            detail.push("every allowed cell >= go".to_owned());
        }
        let _ = writeln!(out, "    {verdict} ({})", detail.join("; "));
    }

    // 3. CPU-bound scaling from 1 to 2 clients.
    if clients.contains(&1) && clients.contains(&2) {
        let _ = writeln!(
            out,
            "  cpu scaling 1 -> 2 clients (target >= 1.8x for parallel models; single and gil flat):"
        );
        for model in &crew {
            let name = Peer::Crew(*model).name();
            let ratio = rps(results, &name, Case::Cpu, 2)
                .zip(rps(results, &name, Case::Cpu, 1))
                .map(|(two, one)| two / one);
            let flat = !model.info().design.parallel_compute;
            let verdict = if flat {
                format!("flat as the seed's ({})", mark(ratio, |r| r < 1.3))
            } else {
                mark(ratio, |r| r >= 1.8).to_string()
            };
            let ratio = ratio.map_or("-".to_owned(), |r| format!("{r:.2}x"));
            let _ = writeln!(out, "    {name:<24} {ratio:>5}  {verdict}");
        }
    }

    // 4. Against the matching Python peer.
    let _ = writeln!(
        out,
        "  crew / matching python peer (target >= 50x on cpu at every client count; io is bounded by loopback):"
    );
    for model in &crew {
        let name = Peer::Crew(*model).name();
        let python = format!("python-{}", Peer::python_match(*model));
        let ratio = |case, c| {
            rps(results, &name, case, c)
                .zip(rps(results, &python, case, c))
                .map(|(a, b)| a / b)
        };
        let io = ratio(Case::Io, 1).map_or("-".to_owned(), |r| format!("{r:.1}x"));
        let cpu: Vec<(usize, Option<f64>)> =
            clients.iter().map(|&c| (c, ratio(Case::Cpu, c))).collect();
        let cells: Vec<String> = cpu
            .iter()
            .map(|(c, r)| format!("{c}c {}", r.map_or("-".to_owned(), |r| format!("{r:.0}x"))))
            .collect();
        let verdict = Verdict::all(cpu.iter().map(|(_, r)| mark(*r, |r| r >= 50.0)));
        let _ = writeln!(
            out,
            "    {name:<24} vs {python:<28} io 1c {io:>5}  cpu {}  {verdict}",
            cells.join(" "),
        );
    }
    if let Some(load) = results.load_average {
        let cpus = crew_lab::cpus() as f64;
        if load > cpus * 0.5 {
            let _ = writeln!(
                out,
                "\nnote: load average {load:.1} on {cpus} CPUs before the run: other processes \
                 competed with the servers and the client, so these ratios are noisy; rerun on an idle machine."
            );
        }
    }
    out
}
