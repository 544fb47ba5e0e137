//! The load generator behind `crew perf`: seed 003's perf2, made serious.
//!
//! `clients` connections each send a request and wait for its reply (closed loop, as perf2), or
//! with a `rate` the requests are scheduled at fixed intervals (open loop) and each latency is
//! measured from the request's *intended* send time, so a stalled server is charged for every
//! request it delayed (the coordinated-omission correction of wrk2). Every reply is checked
//! against `fib(n)`; a wrong reply, an `error:` line or a broken connection counts as an error
//! (and the client reconnects). Latencies go into an HDR histogram.

use std::io::{self, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

use crate::fib::fib_fast;
use crate::protocol::Framing;

/// What to run.
#[derive(Debug, Clone)]
pub struct PerfConfig {
    /// The server.
    pub addr: SocketAddr,
    /// Concurrent connections.
    pub clients: usize,
    /// The `n` of every request.
    pub n: u32,
    /// How long to measure.
    pub duration: Duration,
    /// Load before measuring (not counted).
    pub warmup: Duration,
    /// Total requests/sec over all clients (open loop); `None`: closed loop.
    pub rate: Option<f64>,
    /// Request framing.
    pub framing: Framing,
}

impl PerfConfig {
    /// Closed loop, 5 seconds, no warm-up, line framing.
    pub fn new(addr: SocketAddr, clients: usize, n: u32) -> Self {
        Self {
            addr,
            clients,
            n,
            duration: Duration::from_secs(5),
            warmup: Duration::ZERO,
            rate: None,
            framing: Framing::Line,
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// The outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct PerfReport {
    /// The server.
    pub addr: String,
    /// Concurrent connections.
    pub clients: usize,
    /// The `n` of every request.
    pub n: u32,
    /// Open-loop target rate, if any.
    pub rate: Option<f64>,
    /// Request framing.
    pub framing: String,
    /// Measured seconds.
    pub duration_s: f64,
    /// Correct replies during the measurement.
    pub requests: u64,
    /// Wrong replies, `error:` lines, failed connects and broken connections.
    pub errors: u64,
    /// Correct replies per second.
    pub rps: f64,
    /// Clients that got at least one correct reply (fewer than `clients` when the server
    /// serves one client at a time).
    pub clients_served: usize,
    /// Latency of correct replies.
    pub latency_us: Latency,
    /// The first error seen, to say what went wrong.
    pub first_error: Option<String>,
}

/// Live counters, for a progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Seconds since measuring started (negative during warm-up).
    pub elapsed_s: f64,
    /// Seconds to measure.
    pub total_s: f64,
    /// Correct replies so far (measured part only).
    pub requests: u64,
    /// Errors so far.
    pub errors: u64,
}

struct Shared {
    requests: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn error(&self, counting: bool, message: impl FnOnce() -> String) {
        if counting {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let mut first = self.first_error.lock();
        if first.is_none() {
            *first = Some(message());
        }
    }
}

/// Runs the load; `progress` is called about five times a second.
///
/// # Errors
/// Bad settings (no clients, `n` above the exact maximum, a non-positive rate) or a failure to
/// start the client threads. Server problems are not errors of the run: they are counted.
pub fn run(
    config: &PerfConfig,
    progress: Option<&(dyn Fn(Progress) + Sync)>,
) -> anyhow::Result<PerfReport> {
    if config.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let expected = fib_fast(config.n).with_context(|| {
        format!(
            "--n {} is above {}, the largest n whose fib(n) is exact",
            config.n,
            crate::fib::MAX_N
        )
    })?;
    if let Some(rate) = config.rate {
        if !(rate.is_finite() && rate > 0.0) {
            bail!("--rate must be a positive number of requests/sec");
        }
    }
    let shared = Arc::new(Shared {
        requests: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let mut clients = Vec::with_capacity(config.clients);
    for index in 0..config.clients {
        let shared = shared.clone();
        let config = config.clone();
        let client = crew::thread::spawn(format!("crew-perf-{index}"), move || {
            client_loop(&config, index, expected, start, measure_from, end, &shared)
        })?;
        clients.push(client);
    }
    if let Some(progress) = progress {
        while Instant::now() < end && !clients.iter().all(|c| c.done()) {
            std::thread::sleep(Duration::from_millis(200));
            let now = Instant::now();
            progress(Progress {
                elapsed_s: if now >= measure_from {
                    (now - measure_from).as_secs_f64()
                } else {
                    -(measure_from - now).as_secs_f64()
                },
                total_s: config.duration.as_secs_f64(),
                requests: shared.requests.load(Ordering::Relaxed),
                errors: shared.errors.load(Ordering::Relaxed),
            });
        }
    }
    let mut histogram = new_histogram();
    let mut served = 0;
    for client in clients {
        let outcome = client
            .result()
            .map_err(|error| anyhow::anyhow!("a client thread failed: {error}"))?;
        if outcome.requests > 0 {
            served += 1;
        }
        histogram.add(&outcome.histogram)?;
    }
    // A reply counts if its request was due after the warm-up and it arrived before the end,
    // so the window is exactly `duration`.
    let measured = config.duration.as_secs_f64().max(1e-6);
    let requests = shared.requests.load(Ordering::SeqCst);
    let errors = shared.errors.load(Ordering::SeqCst);
    let us = |ns: u64| ns as f64 / 1000.0;
    let latency = if histogram.is_empty() {
        Latency::default()
    } else {
        Latency {
            p50: us(histogram.value_at_quantile(0.5)),
            p90: us(histogram.value_at_quantile(0.9)),
            p99: us(histogram.value_at_quantile(0.99)),
            p999: us(histogram.value_at_quantile(0.999)),
            max: us(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    };
    let first_error = shared.first_error.lock().clone();
    Ok(PerfReport {
        addr: config.addr.to_string(),
        clients: config.clients,
        n: config.n,
        rate: config.rate,
        framing: config.framing.to_string(),
        duration_s: measured,
        requests,
        errors,
        rps: requests as f64 / measured,
        clients_served: served,
        latency_us: latency,
        first_error,
    })
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns to 1000 s, 3 significant digits.
    Histogram::new_with_bounds(1, 1_000_000_000_000, 3).expect("valid histogram bounds")
}

struct ClientOutcome {
    requests: u64,
    histogram: Histogram<u64>,
}

enum Exchange {
    Correct,
    Wrong(String),
    Broken(String),
    Ended,
}

fn client_loop(
    config: &PerfConfig,
    index: usize,
    expected: u64,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    shared: &Shared,
) -> ClientOutcome {
    let mut histogram = new_histogram();
    let mut requests = 0;
    let request = match config.framing {
        Framing::Line => format!("{}\n", config.n),
        Framing::Talk => config.n.to_string(),
    };
    let reply = format!("{expected}\n");
    // Open loop: this client's share of the rate, offset so clients do not send in lockstep.
    let interval = config
        .rate
        .map(|rate| Duration::from_secs_f64(config.clients as f64 / rate));
    let offset = interval.map_or(Duration::ZERO, |i| i * index as u32 / config.clients as u32);
    let mut sent: u32 = 0;
    let mut buffer = Vec::with_capacity(64);
    'connect: while Instant::now() < end {
        let mut stream = match connect(config.addr, end) {
            Ok(stream) => stream,
            Err(error) => {
                shared.error(Instant::now() >= measure_from, || {
                    format!("cannot connect to {}: {error}", config.addr)
                });
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        loop {
            let intended = match interval {
                Some(interval) => {
                    let at = start + offset + interval * sent;
                    sent += 1;
                    if at >= end {
                        break 'connect;
                    }
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    at
                }
                None => Instant::now(),
            };
            if Instant::now() >= end {
                break 'connect;
            }
            let outcome = exchange(
                &mut stream,
                request.as_bytes(),
                &reply,
                config.framing,
                &mut buffer,
                end,
            );
            let counting = intended >= measure_from;
            match outcome {
                Exchange::Correct => {
                    let done = Instant::now();
                    if counting && done <= end {
                        requests += 1;
                        shared.requests.fetch_add(1, Ordering::Relaxed);
                        let ns = u64::try_from((done - intended).as_nanos()).unwrap_or(u64::MAX);
                        histogram.saturating_record(ns.max(1));
                    }
                }
                Exchange::Wrong(got) => {
                    shared.error(counting, || {
                        format!("wrong reply: expected {expected}, got {got:?}")
                    });
                }
                Exchange::Broken(why) => {
                    shared.error(counting, || format!("connection broken: {why}"));
                    std::thread::sleep(Duration::from_millis(10));
                    continue 'connect;
                }
                Exchange::Ended => break 'connect,
            }
        }
    }
    ClientOutcome {
        requests,
        histogram,
    }
}

fn connect(addr: SocketAddr, end: Instant) -> io::Result<TcpStream> {
    let timeout = end
        .saturating_duration_since(Instant::now())
        .clamp(Duration::from_millis(1), Duration::from_secs(2));
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    // Short reads let a client waiting on a server that serves someone else notice the end.
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(stream)
}

fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    reply: &str,
    framing: Framing,
    buffer: &mut Vec<u8>,
    end: Instant,
) -> Exchange {
    if let Err(error) = stream.write_all(request) {
        return Exchange::Broken(error.to_string());
    }
    buffer.clear();
    let mut chunk = [0u8; 256];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Exchange::Broken("closed by the server".to_owned()),
            Ok(read) => {
                buffer.extend_from_slice(&chunk[..read]);
                let complete = match framing {
                    Framing::Talk => true,
                    Framing::Line => buffer.contains(&b'\n'),
                };
                if complete || buffer.len() > 128 {
                    break;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if Instant::now() >= end {
                    return Exchange::Ended;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Exchange::Broken(error.to_string()),
        }
    }
    let text = String::from_utf8_lossy(buffer);
    let normalized = text.trim_end_matches(['\r', '\n']);
    let line_ok = normalized == reply.trim_end() && text.ends_with('\n');
    let talk_ok = framing == Framing::Talk && normalized.trim() == reply.trim_end();
    if line_ok || talk_ok {
        Exchange::Correct
    } else {
        Exchange::Wrong(text.chars().take(80).collect())
    }
}

/// A progress printer for stderr: `Some` when stderr is a terminal.
pub fn terminal_progress(label: String) -> Option<impl Fn(Progress) + Sync> {
    if !io::stderr().is_terminal() {
        return None;
    }
    Some(move |p: Progress| {
        let phase = if p.elapsed_s < 0.0 { "warm-up" } else { "" };
        let rps = if p.elapsed_s > 0.0 {
            p.requests as f64 / p.elapsed_s
        } else {
            0.0
        };
        eprint!(
            "\r\x1b[2K{label} {:>5.1}/{:.0}s {phase} {:>10} requests/sec, {} errors",
            p.elapsed_s.max(0.0),
            p.total_s,
            group(rps),
            p.errors
        );
        let _ = io::stderr().flush();
    })
}

/// Formats a count with spaces between thousands, as the seed's tables: `12 000`.
pub fn group(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The report as the human-readable block `crew perf` prints.
pub fn render(report: &PerfReport) -> String {
    let l = &report.latency_us;
    let mut text = format!(
        "{} clients, n = {}, {:.1}s{}: {} requests, {} errors\n  requests/sec  {}\n  latency (µs)  p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}\n",
        report.clients,
        report.n,
        report.duration_s,
        report.rate.map_or(String::new(), |r| format!(", open loop at {} req/s (latency from intended send time)", group(r))),
        report.requests,
        report.errors,
        group(report.rps),
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max
    );
    if report.clients_served < report.clients {
        text.push_str(&format!(
            "  only {} of {} clients got a reply: the server serves fewer clients at a time\n",
            report.clients_served, report.clients
        ));
    }
    if let Some(error) = &report.first_error {
        text.push_str(&format!("  first error: {error}\n"));
    }
    text
}
