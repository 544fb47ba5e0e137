//! The floor of the lab's `process-pool` design, without crew: a fib server with a thread per
//! connection whose every `fib` is computed in one of `W` worker processes (default 2), over a
//! Unix socket pair per worker, by a blocking 4-byte call and 8-byte reply. A connection's
//! thread takes a free worker, or waits for one. Prints its address, then serves until killed.
//!
//! ```text
//! cargo build --release -p crew-bench --example lab_floor
//! target/release/examples/lab_floor 2 &          # prints 127.0.0.1:PORT
//! crew perf --addr 127.0.0.1:PORT --clients 2 --n 1
//! ```
//!
//! What no process pool can beat with one process round trip per request: the numbers in the
//! README's lab section (the `process-pool` paragraph) compare it with Go and `process-pool`.
//! Speaks only the lab's line protocol's happy path (a decimal `n` and a newline).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

fn fib(n: u32) -> u64 {
    if n <= 2 {
        1
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// A worker process: reads calls from its standard input (its end of the socket pair) and
/// writes each reply back on it, until the server closes it.
fn worker() -> std::io::Result<()> {
    let socket = std::io::stdin().as_fd().try_clone_to_owned()?;
    let mut socket = UnixStream::from(socket);
    let mut call = [0u8; 4];
    while socket.read_exact(&mut call).is_ok() {
        let reply = fib(u32::from_le_bytes(call).min(90));
        socket.write_all(&reply.to_le_bytes())?;
    }
    Ok(())
}

fn serve(
    connection: TcpStream,
    workers: &[Mutex<UnixStream>],
    index: usize,
) -> std::io::Result<()> {
    connection.set_nodelay(true)?;
    let mut writer = connection.try_clone()?;
    let mut reader = BufReader::new(connection);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let n: u32 = line.trim().parse().unwrap_or(1);
        let mut worker = workers
            .iter()
            .find_map(|worker| worker.try_lock().ok())
            .unwrap_or_else(|| {
                workers[index % workers.len()]
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            });
        worker.write_all(&n.to_le_bytes())?;
        let mut reply = [0u8; 8];
        worker.read_exact(&mut reply)?;
        drop(worker);
        writer.write_all(format!("{}\n", u64::from_le_bytes(reply)).as_bytes())?;
    }
}

fn main() -> std::io::Result<()> {
    let argument = std::env::args().nth(1);
    if argument.as_deref() == Some("worker") {
        return worker();
    }
    let count: usize = argument.and_then(|w| w.parse().ok()).unwrap_or(2).max(1);
    let program = std::env::current_exe()?;
    let mut workers = Vec::new();
    for _ in 0..count {
        let (ours, theirs) = UnixStream::pair()?;
        Command::new(&program)
            .arg("worker")
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .spawn()?;
        workers.push(Mutex::new(ours));
    }
    let workers = Arc::new(workers);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for (index, connection) in listener.incoming().enumerate() {
        let Ok(connection) = connection else { continue };
        let workers = workers.clone();
        std::thread::spawn(move || {
            let _ = serve(connection, &workers, index);
        });
    }
    Ok(())
}
