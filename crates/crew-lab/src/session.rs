//! One connection's protocol as a state machine without I/O, driven by the blocking and the
//! async servers alike, so the two cannot drift apart.
//!
//! A driver loops on [`Session::next_action`] and does what the [`Action`] says: read (and
//! report what happened with [`received`](Session::received), [`closed`](Session::closed),
//! [`idle`](Session::idle) or [`shutting_down`](Session::shutting_down)), compute `fib(n)` (and
//! hand the result to [`computed`](Session::computed)), write the bytes given (then call
//! [`written`](Session::written)), or close. The session decides everything else:
//!
//! - the replies to everything one read brought (pipelined requests) go out in one write;
//! - bad input gets an `error:` line and the connection stays open, and so does a failed
//!   computation (a worker process that died);
//! - an over-long line gets an `error:` line and the connection is closed;
//! - a connection idle for the timeout gets an `error: idle ...` line and is closed;
//! - after an `error:` line that ends the connection the driver *lingers* (stops writing, then
//!   drains the client's input for a moment), so the kernel does not reset the connection
//!   before the line arrives;
//! - on shutdown, what was already read is answered, then the connection is closed.
//!
//! ```
//! use crew_lab::protocol::Framing;
//! use crew_lab::session::{Action, Session};
//!
//! let mut session = Session::new(Framing::Line, 40);
//! assert_eq!(session.next_action(), Action::Read);
//! session.received(b"10\nabc\n");
//! assert_eq!(session.next_action(), Action::Compute(10));
//! session.computed(Ok(55));
//! assert_eq!(
//!     session.next_action(),
//!     Action::Write(b"55\nerror: not a number: \"abc\"; send a decimal n between 0 and 40\n")
//! );
//! session.written();
//! assert_eq!(session.next_action(), Action::Read);
//! session.closed();
//! assert_eq!(session.next_action(), Action::Close { linger: false });
//! ```

use std::time::Duration;

use crate::protocol::{self, Decoder, Frame, Framing};

/// What the driver of a [`Session`] does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Read from the connection and report the outcome.
    Read,
    /// Compute `fib(n)` and report it with [`Session::computed`].
    Compute(u32),
    /// Write all these bytes, then call [`Session::written`]; if the write fails, just close.
    Write(&'a [u8]),
    /// Close the connection; with `linger`, after an `error:` line: shut down the write side and
    /// drain the client's input briefly, so the line is not lost to a reset.
    Close {
        /// Linger before closing.
        linger: bool,
    },
}

/// Why the connection ends once the pending output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// End of input, a read error or shutdown: close at once.
    Quietly,
    /// After a final `error:` line: linger.
    AfterErrorLine,
}

/// The protocol state of one connection. See the [module](self) documentation.
#[derive(Debug)]
pub struct Session {
    decoder: Decoder,
    out: Vec<u8>,
    computing: Option<u32>,
    ending: Option<Ending>,
}

impl Session {
    /// A new connection's session, for `framing` and the server's limit `max_n`.
    pub fn new(framing: Framing, max_n: u32) -> Self {
        Self {
            decoder: Decoder::new(framing, max_n),
            out: Vec::with_capacity(256),
            computing: None,
            ending: None,
        }
    }

    /// What to do next. Asking again without reporting anything returns the same action.
    pub fn next_action(&mut self) -> Action<'_> {
        if let Some(n) = self.computing {
            return Action::Compute(n);
        }
        while let Some(frame) = self.decoder.next_frame() {
            match frame {
                Frame::Request(n) => {
                    self.computing = Some(n);
                    return Action::Compute(n);
                }
                Frame::Bad(message) => protocol::write_error(&mut self.out, &message),
                Frame::Fatal(message) => {
                    protocol::write_error(&mut self.out, &message);
                    self.end(Ending::AfterErrorLine);
                }
            }
        }
        if !self.out.is_empty() {
            return Action::Write(&self.out);
        }
        match self.ending {
            Some(ending) => Action::Close {
                linger: ending == Ending::AfterErrorLine,
            },
            None => Action::Read,
        }
    }

    /// A read returned `data` (not empty).
    pub fn received(&mut self, data: &[u8]) {
        if self.ending != Some(Ending::AfterErrorLine) {
            self.decoder.push(data);
        }
    }

    /// The client closed its side, or reading failed: close without answering a partial line.
    pub fn closed(&mut self) {
        self.end(Ending::Quietly);
    }

    /// Nothing arrived for `timeout`: say so and close.
    pub fn idle(&mut self, timeout: Duration) {
        protocol::write_error(
            &mut self.out,
            &format!("idle for {}s, closing", timeout.as_secs_f64()),
        );
        self.end(Ending::AfterErrorLine);
    }

    /// The server is shutting down: answer what was already [`received`](Self::received), then
    /// close.
    pub fn shutting_down(&mut self) {
        self.end(Ending::Quietly);
    }

    /// The result of the [`Action::Compute`] asked for: the value, or why it could not be
    /// computed (sent as an `error:` line; the connection stays open).
    ///
    /// # Panics
    /// If no computation was asked for (a bug in the driver).
    #[track_caller]
    pub fn computed(&mut self, result: Result<u64, String>) {
        assert!(
            self.computing.take().is_some(),
            "Session::computed without an Action::Compute"
        );
        match result {
            Ok(value) => protocol::write_value(&mut self.out, value),
            Err(message) => protocol::write_error(&mut self.out, &message),
        }
    }

    /// The bytes of the last [`Action::Write`] were written.
    pub fn written(&mut self) {
        self.out.clear();
    }

    /// Ends the connection once the output is written; an error line's linger is kept.
    fn end(&mut self, ending: Ending) {
        if self.ending != Some(Ending::AfterErrorLine) {
            self.ending = Some(ending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a session over scripted reads, computing with `fib_fast` (or failing for `n`s in
    /// `failing`); returns what was written and how the connection ended.
    fn drive(
        session: &mut Session,
        mut reads: Vec<Option<&[u8]>>,
        failing: &[u32],
    ) -> (Vec<Vec<u8>>, bool) {
        reads.reverse();
        let mut writes = Vec::new();
        loop {
            match session.next_action() {
                Action::Read => match reads.pop() {
                    Some(Some(data)) => session.received(data),
                    Some(None) => session.idle(Duration::from_millis(1500)),
                    None => session.closed(),
                },
                Action::Compute(n) if failing.contains(&n) => {
                    session.computed(Err("worker died".to_owned()));
                }
                Action::Compute(n) => session.computed(Ok(crate::fib::fib_fast(n).unwrap())),
                Action::Write(bytes) => {
                    writes.push(bytes.to_vec());
                    session.written();
                }
                Action::Close { linger } => return (writes, linger),
            }
        }
    }

    fn text(writes: &[Vec<u8>]) -> Vec<String> {
        writes
            .iter()
            .map(|w| String::from_utf8(w.clone()).unwrap())
            .collect()
    }

    #[test]
    fn pipelined_replies_go_out_in_one_write_per_read() {
        let mut session = Session::new(Framing::Line, 40);
        let (writes, linger) = drive(&mut session, vec![Some(b"1\n2\n3"), Some(b"0\n")], &[]);
        assert_eq!(text(&writes), ["1\n1\n", "832040\n"]);
        assert!(!linger, "end of input closes quietly");
    }

    #[test]
    fn bad_input_and_failed_computations_keep_the_connection() {
        let mut session = Session::new(Framing::Line, 40);
        let (writes, linger) = drive(&mut session, vec![Some(b"x\n5\n"), Some(b"7\n")], &[5]);
        assert_eq!(
            text(&writes),
            [
                concat!(
                    "error: not a number: \"x\"; send a decimal n between 0 and 40\n",
                    "error: worker died\n"
                ),
                "13\n"
            ]
        );
        assert!(!linger);
    }

    #[test]
    fn an_overlong_line_answers_what_came_before_then_closes_with_linger() {
        let mut session = Session::new(Framing::Line, 40);
        let long = [b'1'; 100];
        let (writes, linger) = drive(&mut session, vec![Some(b"4\n"), Some(&long)], &[]);
        assert_eq!(text(&writes), ["3\n", "error: line longer than 64 bytes\n"]);
        assert!(linger);
        // Nothing is read or decoded after the fatal line.
        session.received(b"5\n");
        assert_eq!(session.next_action(), Action::Close { linger: true });
    }

    #[test]
    fn idle_says_so_and_closes_with_linger() {
        let mut session = Session::new(Framing::Line, 40);
        let (writes, linger) = drive(&mut session, vec![Some(b"6\n"), None], &[]);
        assert_eq!(text(&writes), ["8\n", "error: idle for 1.5s, closing\n"]);
        assert!(linger);
    }

    #[test]
    fn shutdown_answers_what_was_read_then_closes() {
        let mut session = Session::new(Framing::Line, 40);
        assert_eq!(session.next_action(), Action::Read);
        session.received(b"20\n21");
        session.shutting_down();
        assert_eq!(session.next_action(), Action::Compute(20));
        session.computed(Ok(6765));
        assert_eq!(session.next_action(), Action::Write(b"6765\n"));
        session.written();
        assert_eq!(session.next_action(), Action::Close { linger: false });
    }

    #[test]
    fn asking_again_repeats_the_action() {
        let mut session = Session::new(Framing::Talk, 40);
        session.received(b"9");
        assert_eq!(session.next_action(), Action::Compute(9));
        assert_eq!(session.next_action(), Action::Compute(9));
        session.computed(Ok(34));
        assert_eq!(session.next_action(), Action::Write(b"34\n"));
        assert_eq!(session.next_action(), Action::Write(b"34\n"));
        session.written();
        assert_eq!(session.next_action(), Action::Read);
    }

    #[test]
    #[should_panic(expected = "without an Action::Compute")]
    fn a_result_nobody_asked_for_is_a_driver_bug() {
        Session::new(Framing::Line, 40).computed(Ok(1));
    }
}
