//! The wire protocol against a live server: bad input, pipelining, partial reads, limits.

use crate::common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{start, Client};
use crew_lab::fib::fib_fast;
use crew_lab::protocol::Framing;
use crew_lab::{Model, ServeConfig};

fn every_bad_input_keeps_the_connection(model: Model) {
    let server = start(model, ServeConfig::default());
    let mut client = Client::connect(server.addr());
    for bad in [
        "abc",
        "-1",
        "-",
        "41",
        "93",
        "94",
        "1e3",
        "1.5",
        "0x10",
        "",
        "   ",
        "1 2",
        "99999999999999999999999",
    ] {
        let reply = client.ask(bad);
        assert!(reply.starts_with("error: "), "{bad:?} -> {reply:?}");
        assert!(reply.ends_with('\n'));
        assert_eq!(client.ask("10"), "55\n", "usable after {bad:?}");
    }
    client.send(b"\xff\xfe\n");
    assert!(client.line().starts_with("error: not a number"));
    assert_eq!(client.ask(" 12 "), "144\n");
    assert_eq!(client.ask("+3"), "2\n");
    assert_eq!(client.ask("0"), "1\n");
    server.stop().unwrap();
}

#[test]
fn bad_input_threads() {
    every_bad_input_keeps_the_connection(Model::Threads);
}

#[test]
fn bad_input_async() {
    every_bad_input_keeps_the_connection(Model::Async);
}

#[test]
fn crlf_is_accepted() {
    let server = start(Model::Threads, ServeConfig::default());
    let mut client = Client::connect(server.addr());
    client.send(b"7\r\n");
    assert_eq!(client.line(), "13\n");
}

fn long_line_closes(model: Model) {
    let server = start(model, ServeConfig::default());
    let mut other = Client::connect(server.addr());
    let mut client = Client::connect(server.addr());
    assert_eq!(client.ask("5"), "5\n");
    client.send(&[b'1'; 100]);
    client.send(b"\n5\n");
    let rest = client.rest();
    assert_eq!(rest, "error: line longer than 64 bytes\n");
    // Without a newline, too: the server does not wait for one.
    let mut endless = Client::connect(server.addr());
    endless.send(&[b'7'; 80]);
    assert_eq!(endless.rest(), "error: line longer than 64 bytes\n");
    // The other client never noticed.
    assert_eq!(other.ask("20"), "6765\n");
    // Exactly 64 bytes is fine.
    let line = format!("{:>64}", "9");
    assert_eq!(other.ask(&line), "34\n");
}

#[test]
fn long_line_closes_threads() {
    long_line_closes(Model::Threads);
}

#[test]
fn long_line_closes_shards() {
    long_line_closes(Model::Shards);
}

fn pipelined(model: Model) {
    let server = start(model, ServeConfig::default());
    let mut client = Client::connect(server.addr());
    let mut batch = String::new();
    for i in 0..500 {
        batch.push_str(&format!("{}\n", i % 30));
    }
    client.send(batch.as_bytes());
    for i in 0..500 {
        let expected = format!("{}\n", fib_fast(i % 30).unwrap());
        assert_eq!(client.line(), expected, "reply {i}");
    }
}

#[test]
fn pipelined_requests_threads() {
    pipelined(Model::Threads);
}

#[test]
fn pipelined_requests_async_offload() {
    pipelined(Model::AsyncOffload);
}

#[test]
fn pipelined_requests_pool() {
    pipelined(Model::Pool);
}

#[test]
fn partial_reads_are_reassembled() {
    for model in [Model::Threads, Model::Async] {
        let server = start(model, ServeConfig::default());
        let mut client = Client::connect(server.addr());
        client.reader.get_ref().set_nodelay(true).unwrap();
        for byte in b"2\r\n3\n15\n" {
            client.send(&[*byte]);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(client.line(), "1\n");
        assert_eq!(client.line(), "2\n");
        assert_eq!(client.line(), "610\n");
    }
}

fn many_clients(model: Model) {
    let server = start(model, ServeConfig::default());
    let addr = server.addr();
    let workers: Vec<_> = (0..40)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                for i in 0..25u32 {
                    let n = (c + i) % 22;
                    assert_eq!(
                        client.ask(&n.to_string()),
                        format!("{}\n", fib_fast(n).unwrap())
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    server.stop().unwrap();
}

#[test]
fn many_clients_threads() {
    many_clients(Model::Threads);
}

#[test]
fn many_clients_async() {
    many_clients(Model::Async);
}

#[test]
fn many_clients_shards() {
    many_clients(Model::Shards);
}

#[test]
fn many_clients_gil() {
    many_clients(Model::Gil);
}

#[test]
fn talk_framing_is_one_request_per_read() {
    for model in [Model::Threads, Model::Async] {
        let config = ServeConfig {
            framing: Framing::Talk,
            ..ServeConfig::default()
        };
        let server = start(model, config);
        let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // As the talk's perf2: send a bare number, read once.
        for (request, expected) in [("1", "1\n"), ("25", "75025\n"), ("x", "error: not")] {
            stream.write_all(request.as_bytes()).unwrap();
            let mut buffer = [0u8; 128];
            let read = stream.read(&mut buffer).unwrap();
            let reply = std::str::from_utf8(&buffer[..read]).unwrap();
            assert!(reply.starts_with(expected), "{request} -> {reply:?}");
        }
    }
}

fn connection_limit(model: Model) {
    let config = ServeConfig {
        max_connections: 2,
        ..ServeConfig::default()
    };
    let server = start(model, config);
    let mut first = Client::connect(server.addr());
    let mut second = Client::connect(server.addr());
    assert_eq!(first.ask("3"), "2\n");
    assert_eq!(second.ask("4"), "3\n");
    let mut third = Client::connect(server.addr());
    let refused = third.rest();
    assert!(
        refused.starts_with("error: server busy: 2 connections"),
        "{refused:?}"
    );
    assert_eq!(first.ask("5"), "5\n");
    drop(first);
    // A slot frees up once the first client leaves (the server notices asynchronously).
    let mut served = false;
    for _ in 0..200 {
        let mut next = Client::connect(server.addr());
        next.send(b"6\n");
        if next.line() == "8\n" {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(served, "no slot after a client left");
}

#[test]
fn connection_limit_threads() {
    connection_limit(Model::Threads);
}

#[test]
fn connection_limit_async() {
    connection_limit(Model::Async);
}

/// A client that reconnects as soon as it sees its old connection closed is never refused: the
/// server frees the slot before it closes the socket.
fn reconnecting_at_the_limit_is_never_refused(model: Model) {
    let config = ServeConfig {
        max_connections: 1,
        ..ServeConfig::default()
    };
    let server = start(model, config);
    for round in 0..500 {
        let mut client = Client::connect(server.addr());
        let reply = client.ask("5");
        assert_eq!(reply, "5\n", "{model}, round {round}");
        client
            .reader
            .get_ref()
            .shutdown(std::net::Shutdown::Write)
            .unwrap();
        assert_eq!(client.rest(), "", "{model}, round {round}");
    }
}

#[test]
fn reconnecting_at_the_limit_async() {
    reconnecting_at_the_limit_is_never_refused(Model::Async);
}

#[test]
fn reconnecting_at_the_limit_async_offload() {
    reconnecting_at_the_limit_is_never_refused(Model::AsyncOffload);
}

#[test]
fn reconnecting_at_the_limit_shards() {
    reconnecting_at_the_limit_is_never_refused(Model::Shards);
}

#[test]
fn reconnecting_at_the_limit_threads() {
    reconnecting_at_the_limit_is_never_refused(Model::Threads);
}

#[test]
fn idle_connections_time_out() {
    for model in [Model::Threads, Model::AsyncOffload] {
        let config = ServeConfig {
            idle_timeout: Some(Duration::from_millis(200)),
            ..ServeConfig::default()
        };
        let server = start(model, config);
        let mut client = Client::connect(server.addr());
        assert_eq!(client.ask("8"), "21\n");
        let rest = client.rest();
        assert!(rest.starts_with("error: idle"), "{rest:?}");
    }
}

#[test]
fn max_n_above_exact_bound_is_refused() {
    let config = ServeConfig {
        max_n: 94,
        ..ServeConfig::default()
    };
    let error = crew_lab::Server::bind(Model::Threads, "127.0.0.1:0".parse().unwrap(), config)
        .unwrap_err()
        .to_string();
    assert!(error.contains("93"), "{error}");
}

/// Every model that runs in this test process (`reuseport` and `process-pool` start child
/// processes of the `crew` binary: crew-cli's `lab_serve` test covers them).
fn in_process_models() -> Vec<Model> {
    Model::ALL
        .into_iter()
        .filter(|model| model.info().children.is_none() && *model != Model::ProcessPool)
        .collect()
}

/// The blocking and the async servers drive one protocol state machine: every model answers
/// alike, byte for byte, one connection at a time (so `single` takes part).
#[test]
fn every_model_speaks_the_same_protocol() {
    let models = in_process_models();
    assert!(models.contains(&Model::Single) && models.contains(&Model::Shards));
    for model in models {
        let config = ServeConfig {
            idle_timeout: Some(Duration::from_millis(300)),
            ..ServeConfig::default()
        };
        let server = start(model, config);
        let mut client = Client::connect(server.addr());
        assert_eq!(
            client.ask("1x"),
            "error: not a number: \"1x\"; send a decimal n between 0 and 40\n",
            "{model}"
        );
        client.send(b"3\n-1\n4\r\n41\n");
        assert_eq!(client.line(), "2\n", "{model}");
        assert_eq!(
            client.line(),
            "error: negative n -1: n must be between 0 and 40\n",
            "{model}"
        );
        assert_eq!(client.line(), "3\n", "{model}");
        assert_eq!(
            client.line(),
            "error: n 41 above the maximum 40 (fib(n) must be exact and finish)\n",
            "{model}"
        );
        client.send(b"5\n");
        client.send(&[b'1'; 100]);
        assert_eq!(
            client.rest(),
            "5\nerror: line longer than 64 bytes\n",
            "{model}"
        );
        drop(client);
        let mut idle = Client::connect(server.addr());
        assert_eq!(idle.ask("8"), "21\n", "{model}");
        assert_eq!(idle.rest(), "error: idle for 0.3s, closing\n", "{model}");
        drop(idle);
        server.stop().unwrap();
    }
}
