//! `loopback-limit`: the smallest blocking server that speaks the lab's protocol, owing nothing
//! to crew (std only): a thread per connection, every reply precomputed, no parsing beyond the
//! digits. Its requests/sec are the most the load generator can see over loopback on this
//! machine, so "crew's best model against the limit" compares crew with a floor, not with itself.
//!
//! It answers well-formed requests only (the benchmark sends nothing else): a decimal `n` up to
//! [`LARGEST_N`] and `\n` (or `\r\n`) gets `fib(n)` and `\n`; anything else gets `error: bad
//! request` and the connection is closed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// The largest `n` whose `fib(n)` fits a `u64`.
pub const LARGEST_N: usize = 93;

/// The replies, `"fib(n)\n"` for every `n` up to [`LARGEST_N`] (the lab's `fib`: 1, 1, 1, 2, 3, ...).
pub fn replies() -> Vec<Vec<u8>> {
    let (mut a, mut b) = (1u64, 1u64);
    (0..=LARGEST_N)
        .map(|n| {
            if n > 2 {
                (a, b) = (b, a + b);
            }
            format!("{b}\n").into_bytes()
        })
        .collect()
}

/// Serves `listener` forever, a thread per connection.
///
/// # Errors
/// When `accept` fails.
pub fn serve(listener: TcpListener) -> std::io::Result<()> {
    let replies: &'static [Vec<u8>] = Vec::leak(replies());
    loop {
        let (stream, _) = listener.accept()?;
        std::thread::spawn(move || connection(stream, replies));
    }
}

/// Answers every complete line in each read with one write.
fn connection(mut stream: TcpStream, replies: &[Vec<u8>]) {
    let _ = stream.set_nodelay(true);
    let mut input = [0u8; 4096];
    let mut output = Vec::with_capacity(4096);
    let mut n: Option<usize> = None;
    loop {
        let read = match stream.read(&mut input) {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        output.clear();
        for &byte in &input[..read] {
            match byte {
                b'0'..=b'9' => {
                    let digit = usize::from(byte - b'0');
                    n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(digit));
                }
                b'\r' => {}
                b'\n' => match n.take().and_then(|n| replies.get(n)) {
                    Some(reply) => output.extend_from_slice(reply),
                    None => {
                        let _ = stream.write_all(b"error: bad request\n");
                        return;
                    }
                },
                _ => {
                    let _ = stream.write_all(b"error: bad request\n");
                    return;
                }
            }
        }
        if !output.is_empty() && stream.write_all(&output).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    #[test]
    fn replies_are_the_labs_fib() {
        let replies = replies();
        assert_eq!(replies.len(), LARGEST_N + 1);
        for (n, reply) in replies.iter().enumerate() {
            let expected = crew_lab::fib::fib_fast(n as u32).unwrap();
            assert_eq!(*reply, format!("{expected}\n").into_bytes(), "n = {n}");
        }
    }

    #[test]
    fn answers_pipelined_requests_and_refuses_bad_ones() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener));
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"1\n25\r\n93\n").unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut lines = Vec::new();
        for _ in 0..3 {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            lines.push(line);
        }
        assert_eq!(lines, ["1\n", "75025\n", "12200160415121876738\n"]);
        stream.write_all(b"94\n").unwrap();
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "error: bad request\n");
    }
}
