//! The lab's peers speak the same protocol as crew. A missing `python3` or `go` fails these
//! tests (`scripts/test` installs both): a peer the benchmark cannot run must not pass unseen.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crew_bench::lab::peers::{self, PYTHON};

// The lab's own tests' line client, so crew and its peers are checked by the same client.
#[path = "../../../crew-lab/tests/integration/common.rs"]
mod common;
use common::Client;

/// The protocol checks every peer must pass.
fn speaks_the_protocol(addr: SocketAddr, name: &str) {
    let mut client = Client::connect(addr);
    assert_eq!(client.ask("10"), "55\n", "{name}");
    client.send(b"1\n2\r\n3\n");
    assert_eq!(
        [client.line(), client.line(), client.line()],
        ["1\n", "1\n", "2\n"],
        "{name}"
    );
    for bad in ["abc", "-1", "41", ""] {
        let reply = client.ask(bad);
        assert!(reply.starts_with("error: "), "{name} {bad:?}: {reply:?}");
    }
    assert_eq!(client.ask("20"), "6765\n", "{name}");
    client.send(&[b'1'; 80]);
    client.send(b"\n");
    assert_eq!(
        client.rest(),
        "error: line longer than 64 bytes\n",
        "{name}"
    );
}

#[test]
fn python_peers_speak_the_protocol() {
    if let Err(error) = peers::python_version() {
        panic!("the Python peers cannot run: {error:#} (scripts/test installs it)");
    }
    for script in PYTHON {
        let mut command = Command::new("python3");
        command
            .arg(peers::peers_dir().join(format!("{script}.py")))
            .args(["--addr", "127.0.0.1:0"])
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let server = peers::start(command, Duration::from_secs(30)).unwrap();
        speaks_the_protocol(server.addr, script);
        server.stop();
    }
}

#[test]
fn go_peer_speaks_the_protocol() {
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-peer");
    let binary = peers::build_go(&out_dir).unwrap_or_else(|error| {
        panic!("the Go peer cannot run: {error:#} (scripts/test installs golang-go)")
    });
    let mut command = Command::new(binary);
    command.args(["-addr", "127.0.0.1:0"]);
    let server = peers::start(command, Duration::from_secs(30)).unwrap();
    speaks_the_protocol(server.addr, "go");
    server.stop();
}
