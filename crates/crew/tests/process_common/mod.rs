//! A minimal test runner for process tests: their binaries need their own `main` (which calls
//! `crew::init()` first, so that the binary can serve as a worker), hence `harness = false`.

#![allow(dead_code, unreachable_pub)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Runs the tests whose names contain one of the command-line filters (all without filters),
/// one at a time, and exits with the outcome.
pub fn run(tests: &[(&str, fn())]) -> ! {
    // libtest-style arguments: NAME filters, `--skip NAME`, `--list`; other flags are ignored.
    let mut filters = Vec::new();
    let mut skips = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--skip" {
            skips.extend(args.next());
        } else if !arg.starts_with('-') {
            filters.push(arg);
        }
    }
    let list = std::env::args().any(|a| a == "--list");
    let selected: Vec<_> = tests
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .filter(|(name, _)| !skips.iter().any(|s| name.contains(s.as_str())))
        .collect();
    if list {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        std::process::exit(0);
    }
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(test));
        let status = if outcome.is_ok() { "ok" } else { "FAILED" };
        println!("test {name} ... {status} ({:.2?})", started.elapsed());
        if outcome.is_err() {
            failed.push(*name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        println!("failures: {failed:?}");
        std::process::exit(101);
    }
    std::process::exit(0);
}

/// The live children of this process and whether each is a zombie, from /proc.
pub fn children() -> Vec<(u32, bool)> {
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((ppid, state)) = stat(pid) {
            if ppid == me {
                found.push((pid, state == 'Z'));
            }
        }
    }
    found
}

/// The parent pid and state letter of `pid`, if it exists.
pub fn stat(pid: u32) -> Option<(u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Whether `pid` is gone or a zombie whose threads have all exited (so its descriptors are
/// closed). The main thread of a killed process shows `Z` while its other threads may still be
/// exiting, holding the process's descriptors: those are waited for too.
pub fn is_dead(pid: u32) -> bool {
    match stat(pid) {
        None => true,
        Some((_, state)) if state == 'Z' || state == 'X' => {
            std::fs::read_dir(format!("/proc/{pid}/task")).map_or(true, |tasks| tasks.count() <= 1)
        }
        Some(_) => false,
    }
}

/// Waits (up to a generous bound) until `condition` holds.
pub fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts that this process has no children left (none alive, no zombies).
pub fn assert_no_children() {
    eventually("all children reaped", || children().is_empty());
}
