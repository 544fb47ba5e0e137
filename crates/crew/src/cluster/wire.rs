//! What crosses the server: a task message and a result message, each a small postcard header
//! followed by the opaque encoded argument or result (`[header length: u32 LE][header][payload]`),
//! so a payload is never re-encoded on its way through.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{TaskError, WorkerId};
use crate::exit::ExitStatus;
use crate::task::protocol::Outcome;
use crate::task::{outcome_error, TaskInfo};

/// The header of a task message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskHeader {
    /// The task's registered name.
    pub(crate) name: String,
    /// The submitter's signature hash of the task.
    pub(crate) signature: u64,
    /// Whether the payload is a `Vec` of arguments.
    pub(crate) chunk: bool,
    /// The submitter: results go to `<prefix>.result.<submitter>`.
    pub(crate) submitter: String,
    /// The task's number at its submitter.
    pub(crate) id: u64,
    /// The deadline, in milliseconds since the Unix epoch.
    pub(crate) deadline_ms: Option<u64>,
    /// How many times a failing task is run again.
    pub(crate) retries: u32,
    /// The pause before the first retry, in milliseconds.
    pub(crate) backoff_ms: u64,
    /// The argument is in the object store under this key (too large for one message).
    pub(crate) object: Option<String>,
    /// Send the result to `<prefix>.inbox.<submitter>` as a request first (the submitter's
    /// answer confirms it holds the result); else, or without an answer, to the results stream.
    pub(crate) inbox: bool,
}

/// The subject of a submitter's inbox for results.
pub(crate) fn inbox_subject(prefix: &str, submitter: &str) -> String {
    format!("{prefix}.inbox.{submitter}")
}

/// How a task ended, as the worker reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Ending {
    /// The worker ran the task (or refused it as unknown or different).
    Ran(Outcome),
    /// The process running the task died (the last delivery).
    Died {
        /// `Some((true, n))` for a signal, `Some((false, n))` for an exit code.
        exit: Option<(bool, i32)>,
        /// How many times it was delivered.
        deliveries: u64,
    },
    /// It was stopped (or never started) at its deadline.
    DeadlineExceeded,
    /// It was delivered `max_deliver` times without an outcome: it is in the dead-letter stream.
    DeadLetter {
        /// How many times it was delivered.
        deliveries: u64,
        /// What the last attempt said.
        last: String,
    },
    /// The worker could not fetch or decode it.
    Transport(String),
}

/// The header of a result message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ResultHeader {
    /// The task's number at its submitter.
    pub(crate) id: u64,
    /// Which delivery ran it (1 = the first).
    pub(crate) attempt: u32,
    /// The worker's host.
    pub(crate) host: String,
    /// The worker's process id.
    pub(crate) pid: u32,
    /// How it ended.
    pub(crate) ending: Ending,
    /// The result is in the object store under this key.
    pub(crate) object: Option<String>,
    /// The task message's acknowledgement subject, when the submitter acknowledges the task
    /// itself (a first delivery whose result goes to the inbox unconfirmed; see the design
    /// note); `None` when the worker acknowledges it after a confirmation or a stored result.
    pub(crate) ack: Option<String>,
    /// How long the task ran on its worker, in µs (0 when it did not run): the submitter sends
    /// tasks of a name in envelopes only while they run this briefly (see the design note).
    pub(crate) micros: u64,
}

impl ResultHeader {
    /// The submitter's error for an ending that is not `Ran(Ok)`.
    pub(crate) fn error(&self, task: Option<&TaskInfo>, name: &str) -> TaskError {
        let worker = WorkerId::remote(self.host.clone(), self.pid);
        match &self.ending {
            Ending::Ran(outcome) => match task {
                Some(task) => outcome_error(task, outcome.clone()),
                None => TaskError::Transport {
                    message: format!("task `{name}` failed: {outcome:?}"),
                },
            },
            Ending::Died { exit, deliveries } => {
                let _ = deliveries;
                TaskError::WorkerDied {
                    worker,
                    exit: exit.map(|(signal, n)| {
                        if signal {
                            ExitStatus::Signal(n)
                        } else {
                            ExitStatus::Code(n)
                        }
                    }),
                }
            }
            Ending::DeadlineExceeded => TaskError::DeadlineExceeded {
                worker: Some(worker),
            },
            Ending::DeadLetter { deliveries, last } => TaskError::Transport {
                message: format!(
                    "task `{name}` was delivered {deliveries} times without finishing (max_deliver) \
                     and moved to the dead-letter stream (`crew cluster dlq`); the last attempt: {last}"
                ),
            },
            Ending::Transport(message) => TaskError::Transport {
                message: message.clone(),
            },
        }
    }
}

/// `[header length][header][payload]`.
pub(crate) fn frame<H: Serialize>(header: &H, payload: &[u8]) -> Result<Vec<u8>, String> {
    let header = postcard::to_stdvec(header).map_err(|e| format!("cannot encode a header: {e}"))?;
    let mut bytes = Vec::with_capacity(4 + header.len() + payload.len());
    bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(payload);
    Ok(bytes)
}

/// The header and the payload's range of a framed message.
pub(crate) fn unframe<H: DeserializeOwned>(bytes: &[u8]) -> Result<(H, usize), String> {
    let len = bytes
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or_else(|| "a message shorter than its frame prefix".to_owned())?;
    let header = bytes
        .get(4..4 + len)
        .ok_or_else(|| "a message shorter than its header".to_owned())?;
    let header = postcard::from_bytes(header).map_err(|e| format!("malformed header: {e}"))?;
    Ok((header, 4 + len))
}

/// Appends one framed result to a batch: `[length: u32 LE][frame]`, repeated. Results sent to
/// an inbox unconfirmed travel in batches (one message for the results a worker has ready).
pub(crate) fn batch_push(batch: &mut Vec<u8>, frame: &[u8]) {
    batch.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    batch.extend_from_slice(frame);
}

/// The frames of a batch, in order; a truncated tail is dropped (it cannot be a result).
pub(crate) fn batch_items(mut batch: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len = u32::from_le_bytes(batch.get(..4)?.try_into().expect("4 bytes")) as usize;
        let item = batch.get(4..4 + len)?;
        batch = &batch[4 + len..];
        Some(item)
    })
}

/// The first four bytes of an envelope: a header length no task message can have.
const ENVELOPE_MARK: [u8; 4] = u32::MAX.to_le_bytes();

/// Several task messages in one JetStream message (see the design note: tasks published
/// together travel together): `[u32::MAX][length][task message]...`.
pub(crate) fn envelope<'a>(frames: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut bytes = ENVELOPE_MARK.to_vec();
    for frame in frames {
        batch_push(&mut bytes, frame);
    }
    bytes
}

/// The task messages of an envelope, in order; `None` for a message of one task.
pub(crate) fn envelope_items(bytes: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    (bytes.get(..4)? == ENVELOPE_MARK).then(|| batch_items(&bytes[4..]))
}

/// A task name as one subject token: characters NATS gives a meaning (`.`, `*`, `>`,
/// whitespace) and anything unusual become `_`. The subject is for routing and observation;
/// the exact name travels in the header.
pub(crate) fn subject_token(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_tokens_are_safe() {
        let header = ResultHeader {
            id: 7,
            attempt: 2,
            host: "h".into(),
            pid: 3,
            ending: Ending::DeadlineExceeded,
            object: None,
            ack: Some("$JS.ACK.x".into()),
            micros: 5,
        };
        let bytes = frame(&header, b"payload").unwrap();
        let (back, start): (ResultHeader, usize) = unframe(&bytes).unwrap();
        assert_eq!((back.id, back.attempt), (7, 2));
        assert_eq!(&bytes[start..], b"payload");
        assert!(unframe::<ResultHeader>(&bytes[..3]).is_err());
        assert_eq!(subject_token("a::b.c *>d"), "a::b_c___d");
    }

    #[test]
    fn batches_round_trip_and_drop_a_truncated_tail() {
        let mut batch = Vec::new();
        for item in [&b"one"[..], b"", b"three"] {
            batch_push(&mut batch, item);
        }
        let items: Vec<&[u8]> = batch_items(&batch).collect();
        assert_eq!(items, [&b"one"[..], b"", b"three"]);
        let items: Vec<&[u8]> = batch_items(&batch[..batch.len() - 1]).collect();
        assert_eq!(items, [&b"one"[..], b""]);
    }

    #[test]
    fn envelopes_round_trip_and_single_tasks_are_not_envelopes() {
        let header = TaskHeader {
            name: "t".into(),
            signature: 1,
            chunk: false,
            submitter: "s".into(),
            id: 9,
            deadline_ms: None,
            retries: 0,
            backoff_ms: 0,
            object: None,
            inbox: true,
        };
        let one = frame(&header, b"a").unwrap();
        assert!(envelope_items(&one).is_none());
        assert!(envelope_items(b"").is_none());
        let two = frame(&header, b"bc").unwrap();
        let bytes = envelope([&one[..], &two[..]]);
        let items: Vec<&[u8]> = envelope_items(&bytes).unwrap().collect();
        assert_eq!(items, [&one[..], &two[..]]);
        let (back, start): (TaskHeader, usize) = unframe(items[1]).unwrap();
        assert_eq!((back.id, &items[1][start..]), (9, &b"bc"[..]));
        // An envelope is never taken for a task message.
        assert!(unframe::<TaskHeader>(&bytes).is_err());
    }
}
