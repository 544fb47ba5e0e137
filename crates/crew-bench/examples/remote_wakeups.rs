//! Where a remote actor's blocking call spends its wake-ups and CPU: runs `N` blocking calls
//! (default 20,000) to a counter on a [`Cluster::local`] worker and prints, per call, each
//! thread's context switches and CPU time (from `/proc/.../schedstat` and `status`), for this
//! process (caller and member) and the private `nats-server`.
//!
//! ```text
//! cargo run --release -p crew-bench --example remote_wakeups -- 20000
//! ```
//!
//! A measuring tool behind the numbers in `crew::actor::remote`'s design note; `crew bench
//! actors` is the benchmark.

use std::collections::BTreeMap;
use std::time::Instant;

use crew::actor::ActorOptions;
use crew::cluster::Cluster;

// The bench crate's global allocator, as `crew bench` runs with it.
use crew_bench as _;

struct Counter {
    value: u64,
}

#[crew::actor(name = "crew_bench::examples::remote_wakeups::Counter")]
impl Counter {
    fn new(start: u64) -> Self {
        Counter { value: start }
    }

    fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }
}

/// Per thread name: (context switches, CPU ns).
fn threads(pid: u32) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let switches: u64 = status
            .lines()
            .filter(|line| line.contains("ctxt_switches"))
            .filter_map(|line| line.split_whitespace().last()?.parse::<u64>().ok())
            .sum();
        let cpu: u64 = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let entry = out.entry(name.trim().to_owned()).or_default();
        entry.0 += switches;
        entry.1 += cpu;
    }
    out
}

fn children_named(name: &str) -> Option<u32> {
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat[stat.find('(').map_or(0, |i| i + 1)..close].to_owned();
        let ppid = stat[close + 2..].split_whitespace().nth(1);
        if comm == name && ppid == Some(&me.to_string()) {
            return Some(pid);
        }
    }
    None
}

fn report(
    who: &str,
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
    calls: u64,
) {
    let (mut total_switches, mut total_cpu) = (0.0, 0.0);
    for (name, (switches, cpu)) in after {
        let (s0, c0) = before.get(name).copied().unwrap_or_default();
        let switches = (switches - s0) as f64 / calls as f64;
        let cpu = (cpu - c0) as f64 / calls as f64 / 1000.0;
        total_switches += switches;
        total_cpu += cpu;
        if switches >= 0.01 || cpu >= 0.1 {
            println!("  {who:<12} {name:<24} {switches:6.2} switches/call {cpu:7.1} µs CPU/call");
        }
    }
    println!(
        "  {who:<12} {:<24} {total_switches:6.2} switches/call {total_cpu:7.1} µs CPU/call",
        "(all)"
    );
}

fn main() {
    crew::init();
    let calls: u64 = std::env::args()
        .nth(1)
        .map_or(20_000, |n| n.parse().expect("a number of calls"));
    let cluster = Cluster::local(1).expect("Cluster::local (is nats-server installed?)");
    let counter = ActorOptions::<Counter>::new()
        .uid("wakeups-counter")
        .on_cluster(&cluster)
        .spawn(0)
        .expect("creating the remote counter");
    let server = children_named("nats-server").expect("the private nats-server");
    for _ in 0..1_000 {
        counter.incr(1).result().expect("a warm-up call");
    }
    let (me0, server0) = (threads(std::process::id()), threads(server));
    let mut latencies = Vec::with_capacity(calls as usize);
    let start = Instant::now();
    for _ in 0..calls {
        let sent = Instant::now();
        counter.incr(1).result().expect("a call");
        latencies.push(sent.elapsed().as_secs_f64() * 1e6);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (me1, server1) = (threads(std::process::id()), threads(server));
    latencies.sort_by(f64::total_cmp);
    println!(
        "{calls} blocking calls: {:.0} calls/s, p50 {:.1} µs, p90 {:.1} µs",
        calls as f64 / elapsed,
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 9 / 10]
    );
    report("this process", &me0, &me1, calls);
    report("nats-server", &server0, &server1, calls);
    counter.stop().result().expect("stopping the counter");
    drop(cluster);
}
