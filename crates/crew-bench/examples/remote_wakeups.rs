//! Where a remote actor's blocking call spends its wake-ups and CPU: runs `N` blocking calls
//! (default 20,000) to a counter on a [`Cluster::local`] worker and prints, per call, each
//! thread's context switches and CPU time (from `/proc/.../schedstat` and `status`), for this
//! process (caller and member) and the private `nats-server`; then the same for the raw floor,
//! in the same run: two clients speaking the NATS text protocol on blocking `TcpStream`s
//! through a server configured alike (nothing of crew's or async-nats's). `ROUNDS` rounds
//! alternate the two and end with their medians.
//!
//! ```text
//! cargo run --release -p crew-bench --example remote_wakeups -- 20000 3
//! ```
//!
//! `ONLY=crew` or `ONLY=floor` runs one of the two (e.g. under `perf record` or `strace -f`);
//! `FLOOR_STYLE=crew` gives the floor crew's subject shapes (a queue group, a wildcard inbox,
//! a reply subject per call), or some of them (`FLOOR_STYLE=queue`, `inbox`, `reply`,
//! comma-separated), to tell the server's cost of those apart.
//!
//! A measuring tool behind the numbers in `crew::actor::remote`'s design note; `crew bench
//! actors` is the benchmark.

use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _, Write as _};
use std::time::Instant;

use crew::actor::ActorOptions;
use crew::cluster::{Cluster, ServerConfig, TestServer};
// The bench's counter; linking the bench crate also brings its global allocator, as `crew
// bench` runs with it.
use crew_bench::actors::Counter;

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

// The floor: the same round trip with nothing of crew's or async-nats's, two clients speaking
// the NATS text protocol on blocking `TcpStream`s (`TCP_NODELAY`), one thread each, through a
// private server configured as `Cluster::local` configures its own. Measurement only: crew's
// transport is async-nats.

const FLOOR_TOKEN: &str = "remote-wakeups-floor";

fn crew_style() -> bool {
    std::env::var("FLOOR_STYLE").is_ok_and(|style| style == "crew")
}

/// One of crew's shapes for the floor: `FLOOR_STYLE=crew` (all of them) or a comma-separated
/// list of `queue` (the responder in a queue group), `inbox` (a wildcard inbox, the answer to
/// a subject of its own), `reply` (a reply subject per call).
fn shape(name: &str) -> bool {
    crew_style()
        || std::env::var("FLOOR_STYLE").is_ok_and(|style| style.split(',').any(|s| s == name))
}

/// A blocking NATS-protocol client: connected, authenticated, `PING`/`PONG` done.
struct RawClient {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl RawClient {
    fn connect(port: u16) -> std::io::Result<RawClient> {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        let mut client = RawClient {
            reader: std::io::BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        let mut info = String::new();
        client.reader.read_line(&mut info)?;
        client.writer.write_all(
            format!(
                "CONNECT {{\"verbose\":false,\"pedantic\":false,\"auth_token\":\"{FLOOR_TOKEN}\",\
                 \"protocol\":1,\"headers\":{crew_style},\"no_responders\":{crew_style}}}\r\nPING\r\n",
                crew_style = crew_style()
            )
            .as_bytes(),
        )?;
        client.until_pong()?;
        Ok(client)
    }

    fn until_pong(&mut self) -> std::io::Result<()> {
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line.starts_with("PONG") {
                return Ok(());
            }
        }
    }

    fn send(&mut self, command: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(command)
    }

    /// The next `MSG`: its reply subject (if any) and payload (answering server `PING`s).
    fn next_message(&mut self) -> std::io::Result<(Option<String>, Vec<u8>)> {
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line.starts_with("PING") {
                self.writer.write_all(b"PONG\r\n")?;
                continue;
            }
            if !line.starts_with("MSG ") {
                continue;
            }
            // MSG <subject> <sid> [reply] <size>
            let parts: Vec<&str> = line.split_whitespace().collect();
            let size: usize = parts.last().and_then(|s| s.parse().ok()).unwrap_or(0);
            let reply = (parts.len() == 5).then(|| parts[3].to_owned());
            let mut payload = vec![0; size + 2];
            self.reader.read_exact(&mut payload)?;
            payload.truncate(size);
            return Ok((reply, payload));
        }
    }
}

/// The floor's server, responder thread and requester.
struct Floor {
    requester: RawClient,
    responder: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    server: TestServer,
}

impl Floor {
    fn start() -> std::io::Result<Floor> {
        // As `Cluster::local`: half the CPUs for the server's goroutines.
        let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        let server = TestServer::start(ServerConfig::new().token(FLOOR_TOKEN).threads(threads))
            .map_err(std::io::Error::other)?;
        let mut responder = RawClient::connect(server.port())?;
        // `FLOOR_STYLE=crew`: crew's shapes (a queue group, a wildcard inbox, a reply subject
        // per call), to tell the server's cost of those from the clients'.
        responder.send(if shape("queue") {
            b"SUB floor.echo members 1\r\nPING\r\n"
        } else {
            b"SUB floor.echo 1\r\nPING\r\n"
        })?;
        responder.until_pong()?;
        let responder = std::thread::Builder::new()
            .name("floor-responder".to_owned())
            .spawn(move || -> std::io::Result<()> {
                loop {
                    let (reply, payload) = responder.next_message()?;
                    let Some(reply) = reply else { continue };
                    if payload == b"end" {
                        return Ok(());
                    }
                    let reply = if shape("inbox") {
                        "floor.inbox.r.m1"
                    } else {
                        &reply
                    };
                    let mut command = format!("PUB {reply} {}\r\n", payload.len()).into_bytes();
                    command.extend_from_slice(&payload);
                    command.extend_from_slice(b"\r\n");
                    responder.send(&command)?;
                }
            })?;
        let mut requester = RawClient::connect(server.port())?;
        requester.send(if shape("inbox") || shape("reply") {
            b"SUB floor.inbox.> 1\r\nPING\r\n"
        } else {
            b"SUB floor.inbox 1\r\nPING\r\n"
        })?;
        requester.until_pong()?;
        let mut floor = Floor {
            requester,
            responder: Some(responder),
            server,
        };
        for i in 0..1_000u64 {
            floor.call(i)?;
        }
        Ok(floor)
    }

    fn call(&mut self, i: u64) -> std::io::Result<()> {
        let payload = i.to_le_bytes();
        let mut command = if shape("reply") {
            format!("PUB floor.echo floor.inbox.{i}.{i} {}\r\n", payload.len())
        } else {
            format!("PUB floor.echo floor.inbox {}\r\n", payload.len())
        }
        .into_bytes();
        command.extend_from_slice(&payload);
        command.extend_from_slice(b"\r\n");
        self.requester.send(&command)?;
        let (_, answer) = self.requester.next_message()?;
        assert_eq!(answer, payload, "the echo");
        Ok(())
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self
            .requester
            .send(b"PUB floor.echo floor.inbox.0.0 3\r\nend\r\n");
        if let Some(responder) = self.responder.take() {
            let _ = responder.join();
        }
    }
}

/// Runs `calls` blocking calls with `call`, then prints the rate, latencies and each thread's
/// switches and CPU per call (this process and the server `server`); returns the rate.
fn measure(what: &str, calls: u64, server: u32, mut call: impl FnMut(u64)) -> f64 {
    let (me0, server0) = (threads(std::process::id()), threads(server));
    let mut latencies = Vec::with_capacity(calls as usize);
    let start = Instant::now();
    for i in 0..calls {
        let sent = Instant::now();
        call(i);
        latencies.push(sent.elapsed().as_secs_f64() * 1e6);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (me1, server1) = (threads(std::process::id()), threads(server));
    latencies.sort_by(f64::total_cmp);
    let rate = calls as f64 / elapsed;
    println!(
        "{what}: {calls} blocking calls: {rate:.0} calls/s, p50 {:.1} µs, p90 {:.1} µs",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 9 / 10]
    );
    report("this process", &me0, &me1, calls);
    report("nats-server", &server0, &server1, calls);
    rate
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    crew::init();
    let mut args = std::env::args().skip(1);
    let calls: u64 = args
        .next()
        .map_or(20_000, |n| n.parse().expect("a number of calls"));
    let rounds: usize = args
        .next()
        .map_or(1, |n| n.parse().expect("a number of rounds"));
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
    let mut floor = Floor::start().expect("the raw floor (nats-server installed?)");
    let floor_server = floor.server.pid().expect("the floor's server pid");
    let (mut crew_rates, mut floor_rates) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternating which goes first, so a neighbour's burst hits both alike.
        for which in [round % 2, 1 - round % 2] {
            // `ONLY=crew` or `ONLY=floor`: one of the two (e.g. under `perf record`).
            let only = std::env::var("ONLY").unwrap_or_default();
            if only == ["crew", "floor"][1 - which] {
                continue;
            }
            if which == 0 {
                crew_rates.push(measure("crew", calls, server, |_| {
                    counter.incr(1).result().expect("a call");
                }));
            } else {
                floor_rates.push(measure("raw floor", calls, floor_server, |i| {
                    floor.call(i).expect("a floor call");
                }));
            }
        }
    }
    if !crew_rates.is_empty() && !floor_rates.is_empty() {
        println!(
            "medians of {rounds}: crew {:.0} calls/s, raw floor {:.0} calls/s (crew/floor {:.2})",
            median(crew_rates.clone()),
            median(floor_rates.clone()),
            median(crew_rates) / median(floor_rates)
        );
    }
    drop(floor);
    counter.stop().result().expect("stopping the counter");
    drop(cluster);
}
