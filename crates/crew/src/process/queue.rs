//! [`Queue`]: Python's `multiprocessing.Queue`, a typed FIFO shared by processes.
//!
//! The process that creates a queue holds its items and runs a small broker: a thread listening
//! on an abstract Unix socket (named by a random token, so only holders of the handle find it),
//! and one thread per connected process. In the creating process `put`/`get` touch the items
//! directly; a `Queue` passed to a child (as, or inside, a task argument) serializes to the
//! socket's name and talks to the broker over it, one request at a time per connection.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::task::codec::{self, peer_hung_up, write_frame, FrameReader, ReadError, SocketWriter};

/// Why a queue operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The operation's timeout passed (the queue stayed empty, or full).
    #[error("timed out waiting on the queue")]
    Timeout,
    /// The queue was closed (and, for `get`, is drained); nothing more will come.
    #[error("the queue is closed")]
    Closed,
    /// The process that owns the queue is gone, or talking to it failed; the message says how.
    #[error("the queue is unreachable: {message}")]
    Disconnected {
        /// What went wrong.
        message: String,
    },
    /// An item could not be encoded or decoded (a different type was put than is got).
    #[error("queue item codec error: {message}")]
    Codec {
        /// What went wrong.
        message: String,
    },
}

/// A failed `put`: the error and the item, handed back.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PutError<T> {
    /// Why it failed.
    pub error: QueueError,
    /// The item that was not queued.
    pub item: T,
}

#[derive(Debug, Default)]
struct Items {
    items: VecDeque<Vec<u8>>,
    closed: bool,
}

#[derive(Debug)]
struct State {
    items: Mutex<Items>,
    not_empty: Condvar,
    not_full: Condvar,
    bound: Option<usize>,
    stopped: AtomicBool,
}

impl State {
    /// Waits for an item until `deadline`, giving up early when `cancelled` says so.
    fn get(
        &self,
        deadline: Option<Instant>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<u8>, QueueError> {
        let mut items = self.items.lock();
        loop {
            if let Some(item) = items.items.pop_front() {
                drop(items);
                self.not_full.notify_one();
                return Ok(item);
            }
            if items.closed {
                return Err(QueueError::Closed);
            }
            let slice = Instant::now() + Duration::from_millis(100);
            let until = deadline.map_or(slice, |d| d.min(slice));
            self.not_empty.wait_until(&mut items, until);
            if deadline.is_some_and(|d| Instant::now() >= d) && items.items.is_empty() {
                return Err(if items.closed {
                    QueueError::Closed
                } else {
                    QueueError::Timeout
                });
            }
            if cancelled() {
                return Err(QueueError::Disconnected {
                    message: "the requester went away".to_owned(),
                });
            }
        }
    }

    fn put(
        &self,
        item: Vec<u8>,
        deadline: Option<Instant>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), QueueError> {
        let mut items = self.items.lock();
        loop {
            if items.closed {
                return Err(QueueError::Closed);
            }
            if self.bound.map_or(true, |bound| items.items.len() < bound) {
                items.items.push_back(item);
                drop(items);
                self.not_empty.notify_one();
                return Ok(());
            }
            let slice = Instant::now() + Duration::from_millis(100);
            let until = deadline.map_or(slice, |d| d.min(slice));
            self.not_full.wait_until(&mut items, until);
            if deadline.is_some_and(|d| Instant::now() >= d)
                && self.bound.is_some_and(|bound| items.items.len() >= bound)
            {
                return Err(QueueError::Timeout);
            }
            if cancelled() {
                return Err(QueueError::Disconnected {
                    message: "the requester went away".to_owned(),
                });
            }
        }
    }

    fn close(&self) {
        self.items.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }
}

/// The owner side: items, listener thread. Stops listening when the last local handle drops.
struct Broker {
    state: Arc<State>,
    listener: UnixListener,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept() of the listener thread.
        let _ =
            nix::sys::socket::shutdown(self.listener.as_raw_fd(), nix::sys::socket::Shutdown::Both);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Address {
    name: String,
}

#[derive(Debug, Serialize, Deserialize)]
enum Request {
    Put { timeout_ms: Option<u64> },
    Get { timeout_ms: Option<u64> },
    Close,
    Len,
}

#[derive(Debug, Serialize, Deserialize)]
enum Response {
    Done,
    Item,
    Len(u64),
    Error(WireError),
}

#[derive(Debug, Serialize, Deserialize)]
enum WireError {
    Timeout,
    Closed,
    Other(String),
}

enum Inner {
    Local { broker: Arc<Broker> },
    Remote { connections: Mutex<Vec<Connection>> },
}

struct Connection {
    stream: UnixStream,
    writer: BufWriter<SocketWriter>,
    reader: FrameReader,
}

/// A typed FIFO queue shared between processes: Python's `multiprocessing.Queue`.
///
/// Create it in the parent, pass it (a cheap handle) to children inside task arguments, `put`
/// and `get` from anywhere. Items are encoded with the same codec as task arguments. Operations
/// block, with timeout variants; `close` lets consumers drain what is left, then `get` reports
/// [`QueueError::Closed`]. The queue lives as long as its creating process keeps a handle.
///
/// ```no_run
/// use crew::process::Queue;
///
/// #[crew::task]
/// fn write(q: Queue<String>) {
///     for value in ["A", "B", "C"] {
///         q.put(value.to_owned()).unwrap();
///     }
/// }
///
/// fn main() {
///     crew::init();
///     let q = Queue::new().unwrap();
///     let writer = crew::process::spawn(write, q.clone()).unwrap();
///     writer.join().unwrap();
///     assert_eq!(q.get().unwrap(), "A");
/// }
/// ```
pub struct Queue<T> {
    inner: Arc<Inner>,
    address: Address,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            address: self.address.clone(),
            _items: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*self.inner {
            Inner::Local { .. } => "local",
            Inner::Remote { .. } => "remote",
        };
        f.debug_struct("Queue")
            .field("address", &self.address.name)
            .field("side", &kind)
            .finish()
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.address.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let address = Address::deserialize(deserializer)?;
        Ok(Queue {
            inner: Arc::new(Inner::Remote {
                connections: Mutex::new(Vec::new()),
            }),
            address,
            _items: PhantomData,
        })
    }
}

fn random_name() -> String {
    let mut bytes = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !filled {
        use std::hash::{BuildHasher, RandomState};
        let a = RandomState::new().hash_one(std::process::id());
        let b = RandomState::new().hash_one(Instant::now());
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes());
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("crew-queue-{}-{hex}", std::process::id())
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// An unbounded queue owned by this process.
    ///
    /// # Errors
    /// The operating system's error if the broker's socket or thread cannot be created.
    pub fn new() -> io::Result<Self> {
        Self::with_bound(None)
    }

    /// A queue of at most `bound` items: `put` blocks while it is full (Python's `maxsize`).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    ///
    /// # Panics
    /// If `bound` is 0.
    #[track_caller]
    pub fn bounded(bound: usize) -> io::Result<Self> {
        assert!(bound > 0, "Queue::bounded needs a bound of at least 1");
        Self::with_bound(Some(bound))
    }

    fn with_bound(bound: Option<usize>) -> io::Result<Self> {
        let name = random_name();
        let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)?;
        let state = Arc::new(State {
            items: Mutex::new(Items::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            bound,
            stopped: AtomicBool::new(false),
        });
        let accepting = listener.try_clone()?;
        let listener_state = state.clone();
        std::thread::Builder::new()
            .name("crew-queue-broker".to_owned())
            .spawn(move || accept_loop(&accepting, &listener_state))?;
        Ok(Queue {
            inner: Arc::new(Inner::Local {
                broker: Arc::new(Broker { state, listener }),
            }),
            address: Address { name },
            _items: PhantomData,
        })
    }

    /// Appends `item`, blocking while a bounded queue is full.
    ///
    /// # Errors
    /// [`QueueError::Closed`] after [`close`](Self::close); [`QueueError::Disconnected`] when
    /// the owning process is gone. The item is handed back.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, None)
    }

    /// Like [`put`](Self::put), waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As `put`, plus [`QueueError::Timeout`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_deadline(item, Some(timeout))
    }

    fn put_deadline(&self, item: T, timeout: Option<Duration>) -> Result<(), PutError<T>> {
        let bytes = match codec::encode(&item) {
            Ok(bytes) => bytes,
            Err(message) => {
                return Err(PutError {
                    error: QueueError::Codec { message },
                    item,
                })
            }
        };
        let result = match &*self.inner {
            Inner::Local { broker } => {
                let deadline = timeout.map(|t| Instant::now() + t);
                broker.state.put(bytes, deadline, &|| false)
            }
            Inner::Remote { .. } => self
                .remote(
                    &Request::Put {
                        timeout_ms: timeout.map(millis),
                    },
                    &bytes,
                )
                .map(drop),
        };
        result.map_err(|error| PutError { error, item })
    }

    /// Removes and returns the oldest item, blocking until there is one.
    ///
    /// # Errors
    /// [`QueueError::Closed`] once the queue is closed and drained;
    /// [`QueueError::Disconnected`] when the owning process is gone; [`QueueError::Codec`] if
    /// the item is not a `T`.
    pub fn get(&self) -> Result<T, QueueError> {
        self.get_deadline(None)
    }

    /// Like [`get`](Self::get), waiting at most `timeout`.
    ///
    /// # Errors
    /// As `get`, plus [`QueueError::Timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, QueueError> {
        self.get_deadline(Some(timeout))
    }

    fn get_deadline(&self, timeout: Option<Duration>) -> Result<T, QueueError> {
        let bytes = match &*self.inner {
            Inner::Local { broker } => {
                let deadline = timeout.map(|t| Instant::now() + t);
                broker.state.get(deadline, &|| false)?
            }
            Inner::Remote { .. } => self.remote(
                &Request::Get {
                    timeout_ms: timeout.map(millis),
                },
                &[],
            )?,
        };
        codec::decode(&bytes).map_err(|message| QueueError::Codec { message })
    }

    /// Closes the queue for everyone: `put` fails from now on, `get` drains what is left and
    /// then fails with [`QueueError::Closed`]. Idempotent.
    ///
    /// # Errors
    /// [`QueueError::Disconnected`] when the owning process is gone.
    pub fn close(&self) -> Result<(), QueueError> {
        match &*self.inner {
            Inner::Local { broker } => {
                broker.state.close();
                Ok(())
            }
            Inner::Remote { .. } => self.remote(&Request::Close, &[]).map(drop),
        }
    }

    /// The number of items queued now (Python's `qsize()`).
    ///
    /// # Errors
    /// [`QueueError::Disconnected`] when the owning process is gone.
    pub fn len(&self) -> Result<usize, QueueError> {
        match &*self.inner {
            Inner::Local { broker } => Ok(broker.state.items.lock().items.len()),
            Inner::Remote { .. } => {
                let bytes = self.remote(&Request::Len, &[])?;
                codec::decode::<u64>(&bytes)
                    .map(|n| n as usize)
                    .map_err(|message| QueueError::Codec { message })
            }
        }
    }

    /// Whether the queue is empty now.
    ///
    /// # Errors
    /// As [`len`](Self::len).
    pub fn is_empty(&self) -> Result<bool, QueueError> {
        self.len().map(|n| n == 0)
    }

    /// One request to the broker over a pooled connection.
    fn remote(&self, request: &Request, payload: &[u8]) -> Result<Vec<u8>, QueueError> {
        let Inner::Remote { connections } = &*self.inner else {
            unreachable!("remote() is only called on remote handles");
        };
        let popped = connections.lock().pop();
        let mut connection = match popped {
            Some(connection) => connection,
            None => connect(&self.address).map_err(|error| QueueError::Disconnected {
                message: format!(
                    "cannot reach the process that created the queue: {error} (has it exited?)"
                ),
            })?,
        };
        let broken = |error: String| QueueError::Disconnected {
            message: format!("the queue's owner went away: {error}"),
        };
        write_frame(&mut connection.writer, request, payload)
            .and_then(|()| connection.writer.flush())
            .map_err(|error| broken(error.to_string()))?;
        let frame = connection
            .reader
            .read::<_, Response>(&mut connection.stream, None)
            .map_err(|error| match error {
                ReadError::Eof => broken("end of stream".to_owned()),
                ReadError::Timeout => broken("timed out".to_owned()),
                ReadError::Broken(message) | ReadError::Malformed(message) => broken(message),
            })?;
        connections.lock().push(connection);
        match frame.header {
            Response::Done => Ok(Vec::new()),
            Response::Item => Ok(frame.payload),
            Response::Len(n) => codec::encode(&n).map_err(|message| QueueError::Codec { message }),
            Response::Error(WireError::Timeout) => Err(QueueError::Timeout),
            Response::Error(WireError::Closed) => Err(QueueError::Closed),
            Response::Error(WireError::Other(message)) => Err(QueueError::Disconnected { message }),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u64::MAX as u128) as u64
}

fn connect(address: &Address) -> io::Result<Connection> {
    let stream =
        UnixStream::connect_addr(&SocketAddr::from_abstract_name(address.name.as_bytes())?)?;
    let writer = BufWriter::new(SocketWriter(stream.try_clone()?));
    Ok(Connection {
        stream,
        writer,
        reader: FrameReader::new(),
    })
}

fn accept_loop(listener: &UnixListener, state: &Arc<State>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if state.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let state = state.clone();
                let _ = std::thread::Builder::new()
                    .name("crew-queue-conn".to_owned())
                    .spawn(move || serve_connection(stream, &state));
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
        if state.stopped.load(Ordering::SeqCst) {
            return;
        }
    }
}

fn serve_connection(stream: UnixStream, state: &State) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut writer = BufWriter::new(SocketWriter(writer));
    let mut reading = stream;
    let mut reader = FrameReader::new();
    loop {
        let Ok(frame) = reader.read::<_, Request>(&mut reading, None) else {
            return;
        };
        let gone = || peer_hung_up(&reading);
        let deadline = |ms: Option<u64>| ms.map(|ms| Instant::now() + Duration::from_millis(ms));
        let (response, payload) = match frame.header {
            Request::Put { timeout_ms } => {
                match state.put(frame.payload, deadline(timeout_ms), &gone) {
                    Ok(()) => (Response::Done, Vec::new()),
                    Err(error) => (Response::Error(wire(error)), Vec::new()),
                }
            }
            Request::Get { timeout_ms } => match state.get(deadline(timeout_ms), &gone) {
                Ok(item) => (Response::Item, item),
                Err(error) => (Response::Error(wire(error)), Vec::new()),
            },
            Request::Close => {
                state.close();
                (Response::Done, Vec::new())
            }
            Request::Len => (
                Response::Len(state.items.lock().items.len() as u64),
                Vec::new(),
            ),
        };
        if write_frame(&mut writer, &response, &payload).is_err() || writer.flush().is_err() {
            return;
        }
    }
}

fn wire(error: QueueError) -> WireError {
    match error {
        QueueError::Timeout => WireError::Timeout,
        QueueError::Closed => WireError::Closed,
        other => WireError::Other(other.to_string()),
    }
}
