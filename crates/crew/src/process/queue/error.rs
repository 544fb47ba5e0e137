//! One error type per operation of the inter-process [`Queue`](super::Queue), shaped like
//! [`crew::queue`](crate::queue)'s: those of `put` hand the item back. Beside the in-process
//! queue's causes (closed, full until the timeout, empty until the timeout), an inter-process
//! queue can lose its owner ([`Disconnected`]) or meet an item it cannot encode or decode.

use std::error::Error;
use std::fmt;

use crate::queue::error::{CLOSED_GET, CLOSED_PUT, GET_TIMEOUT, PUT_TIMEOUT};

/// The process that owns the queue (the one that created it) is gone, or talking to it
/// failed: nothing more can be put or got through this handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnected {
    pub(crate) message: String,
}

impl Disconnected {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for Disconnected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the queue is unreachable: {}; the process that created it has probably exited \
             (keep it running while others use the queue)",
            self.message
        )
    }
}

impl Error for Disconnected {}

/// [`Queue::put`](super::Queue::put) failed; the item is handed back.
#[derive(Clone, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue is closed; nothing more can be put.
    Closed(T),
    /// The item could not be encoded; the message says why.
    Encode(T, String),
    /// The queue's owner is gone. Whether the item reached the queue before is unknown.
    Disconnected(T, Disconnected),
}

/// [`Queue::put_timeout`](super::Queue::put_timeout) failed; the item is handed back.
#[derive(Clone, PartialEq, Eq)]
pub enum PutTimeoutError<T> {
    /// The queue stayed full for the whole timeout (Python raises `queue.Full`).
    Timeout(T),
    /// The queue is closed; nothing more can be put.
    Closed(T),
    /// The item could not be encoded; the message says why.
    Encode(T, String),
    /// The queue's owner is gone. Whether the item reached the queue before is unknown.
    Disconnected(T, Disconnected),
}

/// [`Queue::get`](super::Queue::get) got no item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    /// The queue is closed and drained: no item will ever come.
    Closed,
    /// The item is not a `T` (a different type was put than is got); it was taken and lost.
    Decode(String),
    /// The queue's owner is gone.
    Disconnected(Disconnected),
}

/// [`Queue::get_timeout`](super::Queue::get_timeout) got no item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetTimeoutError {
    /// The queue stayed empty for the whole timeout (Python raises `queue.Empty`).
    Timeout,
    /// The queue is closed and drained: no item will ever come.
    Closed,
    /// The item is not a `T` (a different type was put than is got); it was taken and lost.
    Decode(String),
    /// The queue's owner is gone.
    Disconnected(Disconnected),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            Self::Closed(item) | Self::Encode(item, _) | Self::Disconnected(item, _) => item,
        }
    }
}

impl<T> PutTimeoutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            Self::Timeout(item)
            | Self::Closed(item)
            | Self::Encode(item, _)
            | Self::Disconnected(item, _) => item,
        }
    }

    /// Whether the timeout expired.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }
}

impl From<GetError> for GetTimeoutError {
    fn from(error: GetError) -> Self {
        match error {
            GetError::Closed => Self::Closed,
            GetError::Decode(message) => Self::Decode(message),
            GetError::Disconnected(error) => Self::Disconnected(error),
        }
    }
}

impl<T> From<PutError<T>> for PutTimeoutError<T> {
    fn from(error: PutError<T>) -> Self {
        match error {
            PutError::Closed(item) => Self::Closed(item),
            PutError::Encode(item, message) => Self::Encode(item, message),
            PutError::Disconnected(item, error) => Self::Disconnected(item, error),
        }
    }
}

// The item need not be `Debug`: errors holding any `T` can be unwrapped.
impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Encode(_, message) => f.debug_tuple("Encode").field(message).finish(),
            Self::Disconnected(_, error) => f.debug_tuple("Disconnected").field(error).finish(),
        }
    }
}

impl<T> fmt::Debug for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("Timeout(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Encode(_, message) => f.debug_tuple("Encode").field(message).finish(),
            Self::Disconnected(_, error) => f.debug_tuple("Disconnected").field(error).finish(),
        }
    }
}

fn encode(f: &mut fmt::Formatter<'_>, message: &str) -> fmt::Result {
    write!(
        f,
        "cannot encode the item for the queue: {message} (the item was handed back)"
    )
}

fn decode(f: &mut fmt::Formatter<'_>, message: &str) -> fmt::Result {
    write!(
        f,
        "the queue's next item is not of the type asked for: {message}; put and get the \
         same type"
    )
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed(_) => f.write_str(CLOSED_PUT),
            Self::Encode(_, message) => encode(f, message),
            Self::Disconnected(_, error) => write!(f, "{error} (the item was handed back)"),
        }
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str(PUT_TIMEOUT),
            Self::Closed(_) => f.write_str(CLOSED_PUT),
            Self::Encode(_, message) => encode(f, message),
            Self::Disconnected(_, error) => write!(f, "{error} (the item was handed back)"),
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str(CLOSED_GET),
            Self::Decode(message) => decode(f, message),
            Self::Disconnected(error) => error.fmt(f),
        }
    }
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str(GET_TIMEOUT),
            Self::Closed => f.write_str(CLOSED_GET),
            Self::Decode(message) => decode(f, message),
            Self::Disconnected(error) => error.fmt(f),
        }
    }
}

impl<T> Error for PutError<T> {}
impl<T> Error for PutTimeoutError<T> {}
impl Error for GetError {}
impl Error for GetTimeoutError {}
