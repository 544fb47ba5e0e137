//! One error type per queue operation; those of `put` hand the item back.

use std::error::Error;
use std::fmt;

/// [`Queue::put`](super::Queue::put) or [`send`](super::Queue::send) failed because the queue
/// is closed; the item is handed back. Nothing more can be put into a closed queue.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PutError<T>(pub T);

/// [`Queue::try_put`](super::Queue::try_put) could not put the item now; it is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TryPutError<T> {
    /// The queue is at its capacity (Python's `queue.Full`); retry later or use `put`.
    Full(T),
    /// The queue is closed.
    Closed(T),
}

/// [`Queue::put_timeout`](super::Queue::put_timeout) could not put the item in time; it is
/// handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutTimeoutError<T> {
    /// The queue stayed full for the whole timeout (Python raises `queue.Full`).
    Timeout(T),
    /// The queue is closed.
    Closed(T),
}

/// [`Queue::get`](super::Queue::get) or [`recv`](super::Queue::recv) found the queue closed and
/// drained: no item will ever come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetError;

/// [`Queue::try_get`](super::Queue::try_get) found no item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryGetError {
    /// The queue is empty now (Python's `queue.Empty`); an item may still come.
    Empty,
    /// The queue is closed and drained.
    Closed,
}

/// [`Queue::get_timeout`](super::Queue::get_timeout) got no item in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetTimeoutError {
    /// The queue stayed empty for the whole timeout (Python raises `queue.Empty`).
    Timeout,
    /// The queue is closed and drained.
    Closed,
}

/// [`Queue::task_done`](super::Queue::task_done) was called more times than items were put
/// (Python raises `ValueError`). Call it once per item taken, after processing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> TryPutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(item) | Self::Closed(item) => item,
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

impl<T> PutTimeoutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            Self::Timeout(item) | Self::Closed(item) => item,
        }
    }

    /// Whether the timeout expired.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

impl<T> From<PutError<T>> for TryPutError<T> {
    fn from(error: PutError<T>) -> Self {
        Self::Closed(error.0)
    }
}

impl<T> From<PutError<T>> for PutTimeoutError<T> {
    fn from(error: PutError<T>) -> Self {
        Self::Closed(error.0)
    }
}

impl From<GetError> for TryGetError {
    fn from(_: GetError) -> Self {
        Self::Closed
    }
}

impl From<GetError> for GetTimeoutError {
    fn from(_: GetError) -> Self {
        Self::Closed
    }
}

// The item need not be `Debug`: errors holding any `T` can be unwrapped.
impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PutError(..)")
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Debug for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("Timeout(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

// The messages the inter-process queue's errors share (`crate::process::queue`): one wording
// for the same cause in both queues.
pub(crate) const CLOSED_PUT: &str = "cannot put into a closed queue; the item was handed back";
pub(crate) const CLOSED_GET: &str = "queue is closed and drained; no more items will come";
pub(crate) const PUT_TIMEOUT: &str = "queue stayed full until the timeout; consumers are too \
                                      slow or gone (the item was handed back)";
pub(crate) const GET_TIMEOUT: &str = "queue stayed empty until the timeout";

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(CLOSED_PUT)
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str(
                "queue is full; retry later or use the blocking put (the item was handed back)",
            ),
            Self::Closed(_) => f.write_str(CLOSED_PUT),
        }
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str(PUT_TIMEOUT),
            Self::Closed(_) => f.write_str(CLOSED_PUT),
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(CLOSED_GET)
    }
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("queue is empty; retry later or use the blocking get"),
            Self::Closed => f.write_str(CLOSED_GET),
        }
    }
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str(GET_TIMEOUT),
            Self::Closed => f.write_str(CLOSED_GET),
        }
    }
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "task_done() called more times than items were put; call it once per item taken",
        )
    }
}

impl<T> Error for PutError<T> {}
impl<T> Error for TryPutError<T> {}
impl<T> Error for PutTimeoutError<T> {}
impl Error for GetError {}
impl Error for TryGetError {}
impl Error for GetTimeoutError {}
impl Error for TaskDoneError {}
