//! [`Queue`]: Python's `multiprocessing.Queue`, a typed FIFO shared by processes.
//!
//! # Design note: one queue, a broker, and no polling
//!
//! The items live in the creating process, in a [`crew::queue::Queue`](crate::queue::Queue) of
//! encoded items: in that process `put`/`get` are that queue's own operations. A `Queue` passed
//! to a child (as, or inside, a task argument) serializes to the name of an abstract Unix
//! socket (a random token, so only holders of the handle find it); the creating process runs a
//! small broker behind it: one thread accepting, one thread per connected process that serves
//! its requests one at a time, and beside it a watcher thread blocked in `poll` until that
//! process hangs up.
//!
//! Nothing sleeps in steps. A request that must wait (a `get` on an empty queue, a `put` on a
//! full one) blocks its serving thread on the queue's condition variables, which the operation
//! that unblocks it signals, or until its deadline; the requester blocks reading the reply.
//! When the requester dies meanwhile, its watcher sees the hang-up and wakes the waiters, and
//! the serving thread gives up *without* taking an item for the dead (nor putting its item):
//! before each wait and after each wake-up it checks the hang-up flag and the socket itself.
//! When the creating process dies, every socket to it closes: a requester blocked on its reply
//! reads end-of-stream and reports [`Disconnected`].

mod error;

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use self::error::{Disconnected, GetError, GetTimeoutError, PutError, PutTimeoutError};
use crate::queue::{GetTimeoutError as LocalGetTimeout, PutTimeoutError as LocalPutTimeout};
use crate::queue::{Queue as Items, Stopped};
use crate::sys::socket::{peer_hung_up, wait_hung_up};
use crate::task::codec::{self, write_frame, FrameReader, ReadError, SocketWriter};

/// The owner side: the items and the listening socket. Stops accepting when the last local
/// handle drops.
struct Broker {
    items: Items<Vec<u8>>,
    listener: UnixListener,
    stopped: Arc<AtomicBool>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept() of the listener thread.
        let _ = rustix::net::shutdown(&self.listener, rustix::net::Shutdown::Both);
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
}

enum Inner {
    Local { broker: Broker },
    Remote { connections: Mutex<Vec<Connection>> },
}

struct Connection {
    stream: UnixStream,
    writer: BufWriter<SocketWriter>,
    reader: FrameReader,
}

/// A reply from the broker: the response and its payload.
type Reply = (Response, Vec<u8>);

/// A typed FIFO queue shared between processes: Python's `multiprocessing.Queue`.
///
/// Create it in the parent, pass it (a cheap handle) to children inside task arguments, `put`
/// and `get` from anywhere. Items are encoded with the same codec as task arguments. Operations
/// block, with timeout variants, and wake the moment an item or room arrives; `close` lets
/// consumers drain what is left, then `get` reports [`GetError::Closed`]. The queue lives as
/// long as its creating process keeps a handle; once that process is gone, every operation
/// elsewhere fails with a `Disconnected` error instead of blocking.
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
        Self::with_items(Items::new())
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
        Self::with_items(Items::bounded(bound))
    }

    fn with_items(items: Items<Vec<u8>>) -> io::Result<Self> {
        let name = random_name();
        let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)?;
        let stopped = Arc::new(AtomicBool::new(false));
        let accepting = listener.try_clone()?;
        let (served, stop) = (items.clone(), stopped.clone());
        std::thread::Builder::new()
            .name("crew-queue-broker".to_owned())
            .spawn(move || accept_loop(&accepting, &served, &stop))?;
        Ok(Queue {
            inner: Arc::new(Inner::Local {
                broker: Broker {
                    items,
                    listener,
                    stopped,
                },
            }),
            address: Address { name },
            _items: PhantomData,
        })
    }

    /// Appends `item`, blocking while a bounded queue is full.
    ///
    /// # Errors
    /// [`PutError::Closed`] after [`close`](Self::close); [`PutError::Disconnected`] when the
    /// owning process is gone; [`PutError::Encode`] if the item cannot be encoded. The item is
    /// handed back.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        let bytes = match codec::encode(&item) {
            Ok(bytes) => bytes,
            Err(message) => return Err(PutError::Encode(item, message)),
        };
        let reply = match &*self.inner {
            Inner::Local { broker } => {
                return broker.items.put(bytes).map_err(|_| PutError::Closed(item));
            }
            Inner::Remote { .. } => self.remote(&Request::Put { timeout_ms: None }, &bytes),
        };
        match reply {
            Ok((Response::Done, _)) => Ok(()),
            Ok((Response::Error(WireError::Closed), _)) => Err(PutError::Closed(item)),
            Ok((other, _)) => Err(PutError::Disconnected(item, unexpected(&other))),
            Err(error) => Err(PutError::Disconnected(item, error)),
        }
    }

    /// Like [`put`](Self::put), waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As `put`, plus [`PutTimeoutError::Timeout`]. The item is handed back.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        let bytes = match codec::encode(&item) {
            Ok(bytes) => bytes,
            Err(message) => return Err(PutTimeoutError::Encode(item, message)),
        };
        let reply = match &*self.inner {
            Inner::Local { broker } => {
                return broker
                    .items
                    .put_timeout(bytes, timeout)
                    .map_err(|error| match error {
                        LocalPutTimeout::Timeout(_) => PutTimeoutError::Timeout(item),
                        LocalPutTimeout::Closed(_) => PutTimeoutError::Closed(item),
                    });
            }
            Inner::Remote { .. } => self.remote(
                &Request::Put {
                    timeout_ms: Some(millis(timeout)),
                },
                &bytes,
            ),
        };
        match reply {
            Ok((Response::Done, _)) => Ok(()),
            Ok((Response::Error(WireError::Timeout), _)) => Err(PutTimeoutError::Timeout(item)),
            Ok((Response::Error(WireError::Closed), _)) => Err(PutTimeoutError::Closed(item)),
            Ok((other, _)) => Err(PutTimeoutError::Disconnected(item, unexpected(&other))),
            Err(error) => Err(PutTimeoutError::Disconnected(item, error)),
        }
    }

    /// Removes and returns the oldest item, blocking until there is one.
    ///
    /// # Errors
    /// [`GetError::Closed`] once the queue is closed and drained; [`GetError::Disconnected`]
    /// when the owning process is gone; [`GetError::Decode`] if the item is not a `T`.
    pub fn get(&self) -> Result<T, GetError> {
        let bytes = match &*self.inner {
            Inner::Local { broker } => broker.items.get().map_err(|_| GetError::Closed)?,
            Inner::Remote { .. } => {
                match self
                    .remote(&Request::Get { timeout_ms: None }, &[])
                    .map_err(GetError::Disconnected)?
                {
                    (Response::Item, bytes) => bytes,
                    (Response::Error(WireError::Closed), _) => return Err(GetError::Closed),
                    (other, _) => return Err(GetError::Disconnected(unexpected(&other))),
                }
            }
        };
        codec::decode(&bytes).map_err(GetError::Decode)
    }

    /// Like [`get`](Self::get), waiting at most `timeout`.
    ///
    /// # Errors
    /// As `get`, plus [`GetTimeoutError::Timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        let bytes = match &*self.inner {
            Inner::Local { broker } => {
                broker
                    .items
                    .get_timeout(timeout)
                    .map_err(|error| match error {
                        LocalGetTimeout::Timeout => GetTimeoutError::Timeout,
                        LocalGetTimeout::Closed => GetTimeoutError::Closed,
                    })?
            }
            Inner::Remote { .. } => {
                let request = Request::Get {
                    timeout_ms: Some(millis(timeout)),
                };
                match self
                    .remote(&request, &[])
                    .map_err(GetTimeoutError::Disconnected)?
                {
                    (Response::Item, bytes) => bytes,
                    (Response::Error(WireError::Timeout), _) => {
                        return Err(GetTimeoutError::Timeout)
                    }
                    (Response::Error(WireError::Closed), _) => return Err(GetTimeoutError::Closed),
                    (other, _) => return Err(GetTimeoutError::Disconnected(unexpected(&other))),
                }
            }
        };
        codec::decode(&bytes).map_err(GetTimeoutError::Decode)
    }

    /// Closes the queue for everyone: `put` fails from now on, `get` drains what is left and
    /// then fails with [`GetError::Closed`]. Idempotent.
    ///
    /// # Errors
    /// [`Disconnected`] when the owning process is gone.
    pub fn close(&self) -> Result<(), Disconnected> {
        match &*self.inner {
            Inner::Local { broker } => {
                broker.items.close();
                Ok(())
            }
            Inner::Remote { .. } => match self.remote(&Request::Close, &[])? {
                (Response::Done, _) => Ok(()),
                (other, _) => Err(unexpected(&other)),
            },
        }
    }

    /// The number of items queued now (Python's `qsize()`).
    ///
    /// # Errors
    /// [`Disconnected`] when the owning process is gone.
    pub fn len(&self) -> Result<usize, Disconnected> {
        match &*self.inner {
            Inner::Local { broker } => Ok(broker.items.len()),
            Inner::Remote { .. } => match self.remote(&Request::Len, &[])? {
                (Response::Len(n), _) => Ok(n as usize),
                (other, _) => Err(unexpected(&other)),
            },
        }
    }

    /// Whether the queue is empty now.
    ///
    /// # Errors
    /// As [`len`](Self::len).
    pub fn is_empty(&self) -> Result<bool, Disconnected> {
        self.len().map(|n| n == 0)
    }

    /// One request to the broker over a pooled connection.
    fn remote(&self, request: &Request, payload: &[u8]) -> Result<Reply, Disconnected> {
        let Inner::Remote { connections } = &*self.inner else {
            unreachable!("remote() is only called on remote handles");
        };
        let popped = connections.lock().pop();
        let mut connection = match popped {
            Some(connection) => connection,
            None => connect(&self.address).map_err(|error| {
                Disconnected::new(format!(
                    "cannot reach the process that created the queue: {error}"
                ))
            })?,
        };
        let broken =
            |error: String| Disconnected::new(format!("the queue's owner went away: {error}"));
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
        Ok((frame.header, frame.payload))
    }
}

/// A reply that does not fit the request: the two sides disagree about the protocol.
fn unexpected(response: &Response) -> Disconnected {
    Disconnected::new(format!("the queue's owner answered {response:?}"))
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

fn accept_loop(listener: &UnixListener, items: &Items<Vec<u8>>, stopped: &AtomicBool) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let items = items.clone();
                let _ = std::thread::Builder::new()
                    .name("crew-queue-conn".to_owned())
                    .spawn(move || serve_connection(stream, &items));
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
        if stopped.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Blocks until the peer of `stream` hangs up, then marks it `gone` and wakes the queue's
/// waiters so that one serving it gives up.
fn watch(stream: UnixStream, items: Items<Vec<u8>>, gone: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("crew-queue-watch".to_owned())
        .stack_size(64 * 1024)
        .spawn(move || {
            if wait_hung_up(&stream).is_ok() {
                gone.store(true, Ordering::SeqCst);
                items.wake_all();
            }
        });
}

fn serve_connection(stream: UnixStream, items: &Items<Vec<u8>>) {
    let (Ok(writer), Ok(watched)) = (stream.try_clone(), stream.try_clone()) else {
        return;
    };
    let gone = Arc::new(AtomicBool::new(false));
    watch(watched, items.clone(), gone.clone());
    let mut writer = BufWriter::new(SocketWriter(writer));
    let mut reading = stream;
    let mut reader = FrameReader::new();
    loop {
        let Ok(frame) = reader.read::<_, Request>(&mut reading, None) else {
            return;
        };
        // The flag is set by the watcher; the socket check covers a hang-up the watcher has not
        // reported yet.
        let cancelled = || gone.load(Ordering::SeqCst) || peer_hung_up(&reading);
        let deadline = |ms: Option<u64>| {
            ms.and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)))
        };
        let (response, payload) = match frame.header {
            Request::Put { timeout_ms } => {
                match items.put_cancellable(frame.payload, deadline(timeout_ms), &cancelled) {
                    Ok(()) => (Response::Done, Vec::new()),
                    Err((_, Stopped::Cancelled)) => return,
                    Err((_, stopped)) => (Response::Error(wire(stopped)), Vec::new()),
                }
            }
            Request::Get { timeout_ms } => {
                match items.get_cancellable(deadline(timeout_ms), &cancelled) {
                    Ok(item) => (Response::Item, item),
                    Err(Stopped::Cancelled) => return,
                    Err(stopped) => (Response::Error(wire(stopped)), Vec::new()),
                }
            }
            Request::Close => {
                items.close();
                (Response::Done, Vec::new())
            }
            Request::Len => (Response::Len(items.len() as u64), Vec::new()),
        };
        if write_frame(&mut writer, &response, &payload).is_err() || writer.flush().is_err() {
            return;
        }
    }
}

fn wire(stopped: Stopped) -> WireError {
    match stopped {
        Stopped::Timeout => WireError::Timeout,
        // `Cancelled` is handled by the caller: nobody is left to answer.
        Stopped::Closed | Stopped::Cancelled => WireError::Closed,
    }
}
