//! [`pipe`]: Python's `multiprocessing.Pipe()`, two connected ends, built on two [`Queue`]s.

use std::io;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::process::queue::{Disconnected, GetError, GetTimeoutError, PutError, Queue};

/// One end of a [`pipe`]: send to the other end, receive from it. Serializable, so either end
/// can be passed to a child process.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Connection<T> {
    outgoing: Queue<T>,
    incoming: Queue<T>,
}

/// Two connected ends: what one sends, the other receives, in order (Python's
/// `Pipe(duplex=True)`).
///
/// ```no_run
/// use crew::process::{pipe, Connection};
///
/// #[crew::task]
/// fn child(conn: Connection<String>) {
///     conn.send("hello".to_owned()).unwrap();
///     conn.close().unwrap();
/// }
///
/// fn main() {
///     crew::init();
///     let (parent_end, child_end) = pipe().unwrap();
///     let p = crew::process::spawn(child, child_end).unwrap();
///     assert_eq!(parent_end.recv().unwrap(), "hello");
///     p.join().unwrap();
/// }
/// ```
///
/// # Errors
/// The operating system's error if the queues cannot be created.
pub fn pipe<T: Serialize + DeserializeOwned>() -> io::Result<(Connection<T>, Connection<T>)> {
    let a_to_b = Queue::new()?;
    let b_to_a = Queue::new()?;
    Ok((
        Connection {
            outgoing: a_to_b.clone(),
            incoming: b_to_a.clone(),
        },
        Connection {
            outgoing: b_to_a,
            incoming: a_to_b,
        },
    ))
}

impl<T: Serialize + DeserializeOwned> Connection<T> {
    /// Sends `item` to the other end.
    ///
    /// # Errors
    /// [`PutError::Closed`] if this end was closed; [`PutError::Disconnected`] if the process
    /// that created the pipe is gone. The item is handed back.
    pub fn send(&self, item: T) -> Result<(), PutError<T>> {
        self.outgoing.put(item)
    }

    /// Receives the next item from the other end, blocking until there is one.
    ///
    /// # Errors
    /// [`GetError::Closed`] once the other end closed and everything it sent was received;
    /// [`GetError::Disconnected`] if the process that created the pipe is gone.
    pub fn recv(&self) -> Result<T, GetError> {
        self.incoming.get()
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout`.
    ///
    /// # Errors
    /// As `recv`, plus [`GetTimeoutError::Timeout`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.incoming.get_timeout(timeout)
    }

    /// Whether an item is waiting (Python's `poll()`).
    ///
    /// # Errors
    /// [`Disconnected`] if the process that created the pipe is gone.
    pub fn poll(&self) -> Result<bool, Disconnected> {
        self.incoming.is_empty().map(|empty| !empty)
    }

    /// Closes the sending direction: the other end drains what was sent, then gets
    /// [`GetError::Closed`].
    ///
    /// # Errors
    /// [`Disconnected`] if the process that created the pipe is gone.
    pub fn close(&self) -> Result<(), Disconnected> {
        self.outgoing.close()
    }
}
