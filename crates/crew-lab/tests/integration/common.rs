//! Helpers shared by the lab's tests (and, through `#[path]`, crew-bench's peer tests): a line
//! client with timeouts.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crew_lab::{Model, RunningServer, ServeConfig, Server};

pub fn start(model: Model, config: ServeConfig) -> RunningServer {
    Server::bind(model, "127.0.0.1:0".parse().unwrap(), config)
        .unwrap()
        .spawn()
        .unwrap()
}

pub struct Client {
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    pub fn ask(&mut self, n: &str) -> String {
        self.send(format!("{n}\n").as_bytes());
        self.line()
    }

    /// Reads to the end: the connection must be closed by the server.
    pub fn rest(&mut self) -> String {
        let mut rest = String::new();
        self.reader.read_to_string(&mut rest).unwrap();
        rest
    }
}
