//! Every model serves two clients correctly; `single` makes the second one wait; shutdown lets
//! an in-flight request finish.

use crate::common;

use std::io::{ErrorKind, Read};
use std::time::Duration;

use common::{start, Client};
use crew_lab::perf::{self, PerfConfig};
use crew_lab::{Model, ServeConfig};

fn serves_two_clients_at_once(model: Model) {
    let server = start(model, ServeConfig::default());
    let mut first = Client::connect(server.addr());
    let mut second = Client::connect(server.addr());
    // Interleaved on two open connections.
    for round in 0..20u32 {
        let n = round % 20 + 1;
        let expected = format!("{}\n", crew_lab::fib::fib_fast(n).unwrap());
        assert_eq!(first.ask(&n.to_string()), expected);
        assert_eq!(
            second.ask(&(n + 1).to_string()),
            format!("{}\n", crew_lab::fib::fib_fast(n + 1).unwrap())
        );
    }
    // And under load from two perf clients, every reply verified.
    let mut config = PerfConfig::new(server.addr(), 2, 15);
    config.duration = Duration::from_millis(300);
    let report = perf::run(&config, None).unwrap();
    assert_eq!(report.errors, 0, "{:?}", report.first_error);
    assert_eq!(report.clients_served, 2);
    assert!(report.requests > 0);
    drop((first, second));
    server.stop().unwrap();
}

#[test]
fn threads_serves_two_clients() {
    serves_two_clients_at_once(Model::Threads);
}

#[test]
fn pool_serves_two_clients() {
    serves_two_clients_at_once(Model::Pool);
}

/// `--workers` bounds the pool; threads start as connections need them (a large bound once
/// started every thread up front: gigabytes, then an abort).
#[test]
fn pool_starts_threads_as_connections_need_them() {
    let config = ServeConfig {
        workers: 20_000,
        ..ServeConfig::default()
    };
    let server = start(Model::Pool, config);
    let mut client = Client::connect(server.addr());
    assert_eq!(client.ask("10"), "55\n");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let threads: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Threads: line");
    assert!(threads < 2_000, "{threads} threads in this test process");
    drop(client);
    server.stop().unwrap();
}

#[test]
fn async_serves_two_clients() {
    serves_two_clients_at_once(Model::Async);
}

#[test]
fn async_offload_serves_two_clients() {
    serves_two_clients_at_once(Model::AsyncOffload);
}

#[test]
fn shards_serves_two_clients() {
    serves_two_clients_at_once(Model::Shards);
}

#[test]
fn gil_serves_two_clients() {
    serves_two_clients_at_once(Model::Gil);
}

#[test]
fn single_makes_the_second_client_wait() {
    let server = start(Model::Single, ServeConfig::default());
    let mut first = Client::connect(server.addr());
    assert_eq!(first.ask("10"), "55\n");
    let mut second = Client::connect(server.addr());
    second.send(b"11\n");
    // While the first is connected the second gets nothing (the seed's "无响应").
    second
        .reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let waiting = second.reader.get_mut().read(&mut byte).unwrap_err();
    assert!(matches!(
        waiting.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    assert_eq!(first.ask("12"), "144\n");
    drop(first);
    second
        .reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(second.line(), "89\n");
    assert_eq!(second.ask("13"), "233\n");
    drop(second);
    server.stop().unwrap();
}

fn in_flight_request_finishes_on_shutdown(model: Model) {
    let server = start(model, ServeConfig::default());
    let mut busy = Client::connect(server.addr());
    let idle = Client::connect(server.addr());
    assert_eq!(busy.ask("1"), "1\n");
    busy.send(b"34\n");
    std::thread::sleep(Duration::from_millis(5));
    let stopper = std::thread::spawn(move || server.stop());
    assert_eq!(busy.line(), "5702887\n");
    stopper.join().unwrap().unwrap();
    // The idle connection was closed, not left hanging.
    let mut idle = idle;
    assert_eq!(idle.rest(), "");
}

#[test]
fn shutdown_finishes_in_flight_threads() {
    in_flight_request_finishes_on_shutdown(Model::Threads);
}

#[test]
fn shutdown_finishes_in_flight_pool() {
    in_flight_request_finishes_on_shutdown(Model::Pool);
}

#[test]
fn shutdown_finishes_in_flight_async_offload() {
    in_flight_request_finishes_on_shutdown(Model::AsyncOffload);
}

#[test]
fn shutdown_finishes_in_flight_shards() {
    in_flight_request_finishes_on_shutdown(Model::Shards);
}

#[test]
fn shutdown_finishes_in_flight_gil() {
    in_flight_request_finishes_on_shutdown(Model::Gil);
}

#[test]
fn single_shutdown_with_a_waiting_client() {
    let server = start(Model::Single, ServeConfig::default());
    let mut first = Client::connect(server.addr());
    assert_eq!(first.ask("2"), "1\n");
    let _waiting = Client::connect(server.addr());
    server.stop().unwrap();
    assert_eq!(first.rest(), "");
}

/// A request that reached the server just as shutdown starts is still answered.
fn request_racing_shutdown_is_answered(model: Model) {
    for _ in 0..20 {
        let server = start(model, ServeConfig::default());
        let mut client = Client::connect(server.addr());
        assert_eq!(client.ask("1"), "1\n");
        client.send(b"20\n");
        server.stop().unwrap();
        assert_eq!(client.line(), "6765\n");
        assert_eq!(client.rest(), "");
    }
}

#[test]
fn request_racing_shutdown_threads() {
    request_racing_shutdown_is_answered(Model::Threads);
}

#[test]
fn request_racing_shutdown_async() {
    request_racing_shutdown_is_answered(Model::Async);
}

#[test]
fn request_racing_shutdown_shards() {
    request_racing_shutdown_is_answered(Model::Shards);
}
