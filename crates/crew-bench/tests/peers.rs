//! The Python peers speak the same protocol as crew (skipped if `python3` is missing).

mod common;

use std::process::Command;
use std::time::Duration;

use common::Client;
use crew_lab::bench::peers::{self, PYTHON};

#[test]
fn python_peers_speak_the_protocol() {
    if peers::python_version().is_err() {
        eprintln!("python3 not installed: skipping");
        return;
    }
    for script in PYTHON {
        let mut command = Command::new("python3");
        command
            .arg(peers::peers_dir().join(format!("{script}.py")))
            .args(["--addr", "127.0.0.1:0"])
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let server = peers::start(command, Duration::from_secs(30)).unwrap();
        let mut client = Client::connect(server.addr);
        assert_eq!(client.ask("10"), "55\n", "{script}");
        client.send(b"1\n2\r\n3\n");
        assert_eq!(
            [client.line(), client.line(), client.line()],
            ["1\n", "1\n", "2\n"],
            "{script}"
        );
        for bad in ["abc", "-1", "41", ""] {
            assert!(client.ask(bad).starts_with("error: "), "{script} {bad:?}");
        }
        assert_eq!(client.ask("20"), "6765\n", "{script}");
        client.send(&[b'1'; 80]);
        client.send(b"\n");
        assert_eq!(
            client.rest(),
            "error: line longer than 64 bytes\n",
            "{script}"
        );
        server.stop();
    }
}

#[test]
fn go_peer_speaks_the_protocol() {
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-peer");
    let binary = match peers::build_go(&out_dir) {
        Ok(binary) => binary,
        Err(error) => {
            eprintln!("skipping: {error:#}");
            return;
        }
    };
    let mut command = Command::new(binary);
    command.args(["-addr", "127.0.0.1:0"]);
    let server = peers::start(command, Duration::from_secs(30)).unwrap();
    let mut client = Client::connect(server.addr);
    assert_eq!(client.ask("10"), "55\n");
    client.send(b"1\n2\r\n3\n");
    assert_eq!(
        [client.line(), client.line(), client.line()],
        ["1\n", "1\n", "2\n"]
    );
    for bad in ["abc", "-1", "41", ""] {
        assert!(client.ask(bad).starts_with("error: "), "{bad:?}");
    }
    client.send(&[b'1'; 80]);
    client.send(b"\n");
    assert_eq!(client.rest(), "error: line longer than 64 bytes\n");
    server.stop();
}
