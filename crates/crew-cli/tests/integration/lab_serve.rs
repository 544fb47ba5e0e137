//! `crew serve` as a process: every model over the wire, SIGTERM shutdown, a killed worker.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::CREW;

struct Served {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Served {
    let mut child = Command::new(CREW)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    Served { child, addr }
}

fn sigterm(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
}

/// Waits up to `limit` for `child` to exit; its status, or `None` if it is still running.
fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Whether a process with this pid exists (a zombie nobody reaped counts).
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Makes this test process the reaper of orphaned descendants, which it never reaps: a worker
/// the server left to be reaped by someone else stays visible to [`exists`].
fn adopt_orphans() {
    nix::sys::prctl::set_child_subreaper(true).unwrap();
}

/// Starts `fib(90)` (hours of work) on a new connection; returns the connection.
fn start_a_long_request(addr: SocketAddr) -> BufReader<TcpStream> {
    let mut client = connect(addr);
    assert_eq!(ask(&mut client, 10), "55\n");
    client.get_mut().write_all(b"90\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    client
}

#[test]
fn a_long_request_is_given_up_after_the_grace_period() {
    adopt_orphans();
    for model in ["threads", "async", "reuseport", "process-pool"] {
        let mut served = serve(&["--model", model, "--max-n", "90", "--grace", "1s"]);
        let _client = start_a_long_request(served.addr);
        let workers = children_of(served.child.id());
        sigterm(&served.child);
        let started = Instant::now();
        let status = wait_for_exit(&mut served.child, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{model}: still running 10 s after SIGTERM with --grace 1s"));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "{model}: waited only {took:?}"
        );
        assert!(took < Duration::from_secs(4), "{model}: took {took:?}");
        assert_eq!(status.code(), Some(1), "{model}: {status}");
        let left: Vec<u32> = workers.into_iter().filter(|&pid| exists(pid)).collect();
        assert!(left.is_empty(), "{model}: children left behind: {left:?}");
    }
}

#[test]
fn a_second_signal_exits_at_once() {
    adopt_orphans();
    for model in ["threads", "reuseport", "process-pool"] {
        let mut served = serve(&["--model", model, "--max-n", "90", "--grace", "60s"]);
        let _client = start_a_long_request(served.addr);
        let workers = children_of(served.child.id());
        sigterm(&served.child);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            served.child.try_wait().unwrap().is_none(),
            "{model}: in grace"
        );
        sigterm(&served.child);
        let status = wait_for_exit(&mut served.child, Duration::from_secs(3))
            .unwrap_or_else(|| panic!("{model}: still running 3 s after a second SIGTERM"));
        assert_eq!(status.code(), Some(130), "{model}: {status}");
        let left: Vec<u32> = workers.into_iter().filter(|&pid| exists(pid)).collect();
        assert!(left.is_empty(), "{model}: workers left behind: {left:?}");
    }
}

#[test]
fn process_pool_workers_are_reaped_before_a_graceful_exit() {
    adopt_orphans();
    for _ in 0..3 {
        let mut served = serve(&["--model", "process-pool", "--workers", "2"]);
        let mut client = connect(served.addr);
        assert_eq!(ask(&mut client, 20), "6765\n");
        let workers = children_of(served.child.id());
        assert_eq!(workers.len(), 2, "{workers:?}");
        sigterm(&served.child);
        let status = served.child.wait().unwrap();
        assert!(status.success(), "{status}");
        let left: Vec<u32> = workers.into_iter().filter(|&pid| exists(pid)).collect();
        assert!(left.is_empty(), "workers alive after exit 0: {left:?}");
    }
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    BufReader::new(stream)
}

fn ask(client: &mut BufReader<TcpStream>, n: u32) -> String {
    client
        .get_mut()
        .write_all(format!("{n}\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    client.read_line(&mut line).unwrap();
    line
}

#[test]
fn every_model_serves_two_clients_and_stops_on_sigterm() {
    for model in [
        "single",
        "threads",
        "pool",
        "reuseport",
        "async",
        "async-offload",
        "shards",
        "gil",
        "process-pool",
    ] {
        let mut served = serve(&["--model", model]);
        let mut first = connect(served.addr);
        assert_eq!(ask(&mut first, 20), "6765\n", "{model}");
        if model == "single" {
            drop(first);
            let mut second = connect(served.addr);
            assert_eq!(ask(&mut second, 21), "10946\n", "{model}");
        } else {
            let mut second = connect(served.addr);
            assert_eq!(ask(&mut second, 21), "10946\n", "{model}");
            assert_eq!(ask(&mut first, 22), "17711\n", "{model}");
        }
        sigterm(&served.child);
        let status = served.child.wait().unwrap();
        assert!(status.success(), "{model}: {status}");
    }
}

#[test]
fn sigterm_lets_the_in_flight_request_finish() {
    for model in ["threads", "async-offload", "reuseport", "process-pool"] {
        let mut served = serve(&["--model", model]);
        let mut client = connect(served.addr);
        assert_eq!(ask(&mut client, 1), "1\n");
        // fib(38) takes a while (~0.3 s) in a debug build: SIGTERM arrives while it computes.
        client.get_mut().write_all(b"38\n").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        sigterm(&served.child);
        let mut line = String::new();
        client.read_line(&mut line).unwrap();
        assert_eq!(line, "39088169\n", "{model}");
        let mut rest = String::new();
        client.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "", "{model}: connection closed after the reply");
        let status = served.child.wait().unwrap();
        assert!(status.success(), "{model}: {status}");
    }
}

#[test]
fn process_pool_survives_a_killed_worker() {
    let mut served = serve(&["--model", "process-pool", "--workers", "1", "--max-n", "45"]);
    let mut client = connect(served.addr);
    assert_eq!(ask(&mut client, 10), "55\n");
    let workers = children_of(served.child.id());
    assert_eq!(workers.len(), 1, "one worker process: {workers:?}");
    // fib(45) runs for many seconds: kill its worker while it computes.
    client.get_mut().write_all(b"45\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let status = Command::new("kill")
        .args(["-KILL", &workers[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut line = String::new();
    client.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("error: ") && line.contains("died"),
        "the request fails, the connection stays: {line:?}"
    );
    assert_eq!(ask(&mut client, 12), "144\n", "a replacement worker serves");
    sigterm(&served.child);
    let status = served.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn reuseport_admits_exactly_max_connections_across_its_children() {
    let served = serve(&[
        "--model",
        "reuseport",
        "--workers",
        "4",
        "--max-connections",
        "2",
    ]);
    let mut first = connect(served.addr);
    let mut second = connect(served.addr);
    assert_eq!(ask(&mut first, 3), "2\n");
    assert_eq!(ask(&mut second, 4), "3\n");
    // Whichever child the kernel picks, connection 3 gets the busy line at once (each child
    // alone would still have room for it).
    for attempt in 0..8 {
        let mut extra = connect(served.addr);
        extra
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = String::new();
        extra.read_to_string(&mut rest).unwrap();
        assert!(
            rest.starts_with("error: server busy: 2 connections"),
            "attempt {attempt}: {rest:?}"
        );
    }
    drop(first);
    // The slot comes back once the first client's connection is closed.
    let mut served_again = false;
    for _ in 0..200 {
        let mut next = connect(served.addr);
        if ask(&mut next, 6) == "8\n" {
            served_again = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(served_again, "no slot after a client left");
    assert_eq!(ask(&mut second, 5), "5\n");
}

/// The child processes of `pid`, from every one of its threads.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path().join("children");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        children.extend(text.split_whitespace().map(|p| p.parse::<u32>().unwrap()));
    }
    children
}

#[test]
fn unknown_model_says_which_exist() {
    let output = Command::new(CREW)
        .args(["serve", "--model", "fibers"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("async-offload"), "{stderr}");
}

#[test]
fn talk_framing_from_the_command_line() {
    let served = serve(&["--model", "threads", "--framing", "talk"]);
    let mut stream = TcpStream::connect(served.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(b"20").unwrap();
    let mut buffer = [0u8; 64];
    let read = stream.read(&mut buffer).unwrap();
    assert_eq!(&buffer[..read], b"6765\n");
}

#[test]
fn idle_timeout_takes_the_duration_grammar() {
    // Also through the reuseport parent, which hands the timeout to its children.
    for model in ["threads", "reuseport"] {
        let served = serve(&["--model", model, "--idle-timeout", "300ms"]);
        let mut client = connect(served.addr);
        assert_eq!(ask(&mut client, 10), "55\n");
        let started = std::time::Instant::now();
        let mut rest = String::new();
        client.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "error: idle for 0.3s, closing\n", "{model}");
        assert!(started.elapsed() < Duration::from_secs(10), "{model}");
    }
    let output = Command::new(CREW)
        .args(["serve", "--idle-timeout", "1x"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid duration \"1x\": use a number and a unit"),
        "{stderr}"
    );
}
