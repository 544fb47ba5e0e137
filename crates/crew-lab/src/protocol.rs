//! The wire protocol, shared by every model and by the load generator.
//!
//! A request is a decimal `n` followed by `\n` (a `\r\n` is accepted); the reply is `fib(n)` in
//! decimal followed by `\n`. One connection carries any number of requests, pipelined or not.
//! Bad input gets a reply line starting with `error:` and the connection stays usable; a line
//! longer than [`MAX_LINE`] bytes gets an error and the connection is closed.
//!
//! [`Framing::Talk`] is the framing of the original talk's clients (perf1/perf2 of "Python
//! Concurrency From the Ground Up"): they send a bare number with no newline and treat each
//! read as one request, so the server treats each read as one request too.
//!
//! The [`Decoder`] turns bytes into [`Frame`]s without doing any I/O; the `session` module's
//! state machine, built on it, answers them, so blocking and async servers
//! share one implementation of the protocol (and partial reads are handled in one place).

use std::fmt;
use std::str::FromStr;

/// The longest request line accepted, in bytes (without the line ending).
pub const MAX_LINE: usize = 64;

/// How requests are delimited on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Framing {
    /// One request per `\n`-terminated line (the default).
    #[default]
    Line,
    /// One request per read: the talk's perf1/perf2 clients send `1` with no newline.
    Talk,
}

impl FromStr for Framing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "line" => Ok(Framing::Line),
            "talk" => Ok(Framing::Talk),
            other => Err(format!(
                "unknown framing `{other}`: use `line` (default) or `talk`"
            )),
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::Line => "line",
            Framing::Talk => "talk",
        })
    }
}

/// One decoded unit of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A valid request for `fib(n)`.
    Request(u32),
    /// Bad input: reply with `error: {message}` and keep the connection.
    Bad(String),
    /// Fatal input (an over-long line): reply with `error: {message}` and close.
    Fatal(String),
}

/// Parses one request (without its line ending) against the server's limit `max_n`.
///
/// ```
/// use crew_lab::protocol::{parse_request, Frame};
/// assert_eq!(parse_request(b"25", 40), Frame::Request(25));
/// assert!(matches!(parse_request(b"-1", 40), Frame::Bad(_)));
/// assert!(matches!(parse_request(b"41", 40), Frame::Bad(_)));
/// ```
pub fn parse_request(raw: &[u8], max_n: u32) -> Frame {
    let text = match std::str::from_utf8(raw) {
        Ok(text) => text.trim(),
        Err(_) => return Frame::Bad("not a number: the request is not UTF-8 text".to_owned()),
    };
    if text.is_empty() {
        return Frame::Bad("empty request: send a number n such as `25`".to_owned());
    }
    let digits = text.strip_prefix('+').unwrap_or(text);
    if let Some(rest) = digits.strip_prefix('-') {
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            return Frame::Bad(format!(
                "negative n {text}: n must be between 0 and {max_n}"
            ));
        }
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Frame::Bad(format!(
            "not a number: {:?}; send a decimal n between 0 and {max_n}",
            shorten(text)
        ));
    }
    match digits.parse::<u32>() {
        Ok(n) if n <= max_n => Frame::Request(n),
        _ => Frame::Bad(format!(
            "n {} above the maximum {max_n} (fib(n) must be exact and finish)",
            shorten(digits)
        )),
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(24).collect()
}

/// Incremental request decoder for one connection.
///
/// Push what a read returned with [`push`](Self::push) (line framing buffers partial lines; talk
/// framing decodes the whole read as one request), then drain [`next_frame`](Self::next_frame).
#[derive(Debug)]
pub struct Decoder {
    framing: Framing,
    max_n: u32,
    buffer: Vec<u8>,
    start: usize,
    talk_pending: Option<Frame>,
    closed: bool,
}

impl Decoder {
    /// A decoder for `framing` with the server's limit `max_n`.
    pub fn new(framing: Framing, max_n: u32) -> Self {
        Self {
            framing,
            max_n,
            buffer: Vec::with_capacity(256),
            start: 0,
            talk_pending: None,
            closed: false,
        }
    }

    /// Adds bytes read from the connection.
    pub fn push(&mut self, data: &[u8]) {
        match self.framing {
            Framing::Line => {
                if self.start > 0 && self.start == self.buffer.len() {
                    self.buffer.clear();
                    self.start = 0;
                }
                self.buffer.extend_from_slice(data);
            }
            Framing::Talk => {
                self.talk_pending = Some(if data.len() > MAX_LINE {
                    Frame::Fatal(format!("request longer than {MAX_LINE} bytes"))
                } else {
                    parse_request(data, self.max_n)
                });
            }
        }
    }

    /// The next complete frame, if any. After a [`Frame::Fatal`] it returns `None` forever.
    pub fn next_frame(&mut self) -> Option<Frame> {
        if self.closed {
            return None;
        }
        let frame = match self.framing {
            Framing::Talk => self.talk_pending.take()?,
            Framing::Line => {
                let pending = &self.buffer[self.start..];
                match pending.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        let mut line = &pending[..end];
                        if line.last() == Some(&b'\r') {
                            line = &line[..line.len() - 1];
                        }
                        let frame = if line.len() > MAX_LINE {
                            Frame::Fatal(format!("line longer than {MAX_LINE} bytes"))
                        } else {
                            parse_request(line, self.max_n)
                        };
                        self.start += end + 1;
                        if self.start == self.buffer.len() {
                            self.buffer.clear();
                            self.start = 0;
                        } else if self.start > 4096 {
                            self.buffer.drain(..self.start);
                            self.start = 0;
                        }
                        frame
                    }
                    // +1 for a `\r` that may precede the newline still to come.
                    None if pending.len() > MAX_LINE + 1 => {
                        Frame::Fatal(format!("line longer than {MAX_LINE} bytes"))
                    }
                    None => return None,
                }
            }
        };
        if matches!(frame, Frame::Fatal(_)) {
            self.closed = true;
        }
        Some(frame)
    }

    /// True once a fatal frame was returned: reply and close the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// Appends `value\n` to `out`.
pub fn write_value(out: &mut Vec<u8>, value: u64) {
    use std::io::Write;
    let _ = writeln!(out, "{value}");
}

/// Appends `error: message\n` to `out`.
pub fn write_error(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"error: ");
    out.extend_from_slice(message.as_bytes());
    out.push(b'\n');
}

/// The reply line sent to a client refused by the connection limit.
pub fn busy_line(limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    write_error(
        &mut out,
        &format!("server busy: {limit} connections already open; retry later"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framing: Framing, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut decoder = Decoder::new(framing, 40);
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            while let Some(frame) = decoder.next_frame() {
                out.push(frame);
            }
        }
        out
    }

    #[test]
    fn pipelined_and_partial_lines() {
        let got = frames(Framing::Line, &[b"1\n2\r\n3", b"0\n", b"", b"1", b"\n"]);
        assert_eq!(
            got,
            [
                Frame::Request(1),
                Frame::Request(2),
                Frame::Request(30),
                Frame::Request(1)
            ]
        );
    }

    #[test]
    fn bad_inputs_are_not_fatal() {
        for bad in [
            &b"abc\n"[..],
            b"-3\n",
            b"41\n",
            b"99999999999999999999\n",
            b"\n",
            b"1.5\n",
            b"\xff\n",
            b"- 3\n",
        ] {
            let got = frames(Framing::Line, &[bad, b"5\n"]);
            assert!(matches!(got[0], Frame::Bad(_)), "{bad:?} -> {got:?}");
            assert_eq!(got[1], Frame::Request(5));
        }
    }

    #[test]
    fn long_line_is_fatal_with_or_without_newline() {
        let long = vec![b'1'; MAX_LINE + 1];
        let got = frames(Framing::Line, &[&long, b"\n5\n"]);
        assert!(matches!(got[..], [Frame::Fatal(_)]), "{got:?}");
        let exact = [vec![b' '; MAX_LINE - 1], b"7\n".to_vec()].concat();
        assert_eq!(frames(Framing::Line, &[&exact]), [Frame::Request(7)]);
    }

    #[test]
    fn talk_framing_is_one_request_per_read() {
        let got = frames(Framing::Talk, &[b"1", b"25", b"x"]);
        assert!(matches!(
            got[..],
            [Frame::Request(1), Frame::Request(25), Frame::Bad(_)]
        ));
    }
}
