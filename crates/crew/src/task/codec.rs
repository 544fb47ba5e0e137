//! The codec and the framing shared by every channel between processes (pool workers, spawned
//! processes, queues, pipes): postcard for values, length-prefixed frames on a byte stream.
//!
//! A frame is `[header length: u32 LE][payload length: u64 LE][header][payload]`. The header is a
//! small postcard-encoded message of the channel's protocol; the payload is an already-encoded
//! value (an argument, a result, a queue item) that is never re-encoded on its way through.
//!
//! # The contract for values (what a [`Message`](crate::Message) may be)
//!
//! postcard is compact and fast because it is not self-describing: a struct is its fields in
//! order, with no names and no count, and an enum is its variant's index. So the writer and
//! the reader must agree on the shape from the types alone. What follows from that, for every
//! value that crosses a process or the network (process-pool and cluster task arguments and
//! results, process and remote actor constructor arguments, call arguments, results and stream
//! items, [`Queue`](crate::process::Queue) items, pipes):
//!
//! | serde shape | carried? | what happens, and the fix |
//! | --- | --- | --- |
//! | structs, tuples, externally tagged enums (serde's default), `Option`, `Vec`, maps (any key type), sets, `Box`, `Duration`, `i128`/`u128`, `char`, `()` | yes | |
//! | `#[serde(skip)]`, `#[serde(default)]`, `rename`/`rename_all`, `with`/`serialize_with` that write a known length, `transparent`, `from`/`into` | yes | `skip` sends nothing and reads the default |
//! | `#[serde(skip_serializing_if = ...)]` on a named field | only while it does not skip | when it skips, [`encode`] refuses the value, naming the field and where it is; postcard alone would let the receiver misread the fields after it, sometimes as other values without any error. Remove it from types that cross a process (a `None` costs one byte), or use `#[serde(skip)]` |
//! | `#[serde(flatten)]` | no | [`encode`] refuses it (the struct is written as a map of unknown length, and reading it needs `deserialize_any`). Nest the struct as a named field |
//! | a sequence or map of unknown length (a `serialize_with` that collects a filtered iterator) | no | [`encode`] refuses it. Collect into a `Vec` first |
//! | `#[serde(untagged)]`, internally tagged (`#[serde(tag = "t")]`) and adjacently tagged (`tag` + `content`) enums, `serde_json::Value`, any type whose `Deserialize` calls `deserialize_any` or `deserialize_ignored_any` | no | they encode, but [`decode`] fails at the receiver with the fix: use an externally tagged enum, and send a dynamic value as text (`serde_json::to_string`) |
//! | `#[serde(skip_serializing)]` without `skip_deserializing`; `skip_serializing_if` on a field of a tuple struct or tuple variant; a hand-written `Serialize` that writes other fields than its `Deserialize` reads | no | not detectable when writing (serde's derive announces a skipped field only for named fields); [`decode`] fails in most cases, naming these causes, but a value can be misread without an error (a skipped `Option` in a tuple struct read from the next field's bytes). Use `#[serde(skip)]`, or named fields |
//! | `skip_serializing_if` together with `skip_deserializing` | no | refused by [`encode`] when it skips (which would have been read right); when it does not skip, the field is written and never read: [`decode`] fails (trailing bytes), or misreads when nested. Use `#[serde(skip)]` |
//!
//! Where the error surfaces: a value the codec refuses is refused by the sender before anything
//! is sent ([`SubmitError::Unsupported`](crate::SubmitError::Unsupported), the actor's
//! `ActorError::Encode`, the queue's `PutError::Encode` with the item handed back, the spawn's
//! `InvalidInput`); a result a worker or actor cannot encode, or an argument it cannot decode,
//! fails that one call with [`TaskError::Transport`](crate::TaskError::Transport) and the worker
//! or actor goes on; a value the receiver cannot decode fails the call, the stream item or the
//! queue's `get` there. Each message names the type, the place in the value, the cause and the
//! fix. Such a type fails the same way every time in tests, so a test that sends one value of
//! each shape a program uses finds it.
//!
//! # Design note: why postcard stays, checked
//!
//! The alternatives were weighed. A self-describing codec for user payloads (CBOR or
//! MessagePack with named struct fields) would carry `skip_serializing_if`, `flatten` and
//! untagged enums, at the cost of a field name per field in every message, a second codec
//! beside the one for the protocols' headers, and a format change for every worker and
//! cluster peer; it was not taken, so it was not measured. An encode-then-decode round trip
//! at the sender (in debug builds or opt-in) would move decode errors to the sender but double
//! the cost of every large argument, and still miss a value that decodes wrongly (decoding the
//! misread value and encoding it again gives the same bytes). What can go silently wrong is
//! what a writer leaves out, and serde's derive announces each field it leaves out
//! (`SerializeStruct::skip_field`): so [`encode`] runs postcard's serializer through a
//! checking wrapper (`checked`, design note there) that refuses those. The bytes are
//! postcard's, byte for byte, and a value that encodes costs what postcard costs (measured
//! against `postcard::to_stdvec` in one process: 0.7-1.2x, within the noise of a loaded
//! machine, for a `u64`, a small struct, 4096 `u64`s and 256 structs). Every other shape
//! postcard cannot carry already fails with an error, which [`decode`] explains.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::AsFd;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::sys::spin::Spin;

mod checked;

/// The largest header accepted: headers are a few bytes; anything bigger is a corrupt stream.
const MAX_HEADER: usize = 64 * 1024;
/// The largest payload accepted (16 GiB): beyond it the length is taken for corruption.
const MAX_PAYLOAD: u64 = 16 << 30;
const PREFIX: usize = 12;

/// Encodes `value` with postcard, refusing the shapes postcard cannot read back (see the
/// module's contract).
///
/// # Errors
/// A message naming the type, where in the value it failed, why, and what to do, when serde or
/// the codec refuses the value.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    checked::to_vec(value).map_err(|error| error.describe(std::any::type_name::<T>()))
}

/// Decodes a `T` from `bytes`, which must hold exactly one value.
///
/// # Errors
/// A message naming the type when the bytes are not one `T`, with the likely cause and what to
/// do (see the module's contract).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let type_name = std::any::type_name::<T>();
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!(
            "cannot decode a `{type_name}`: {} trailing bytes; {MISREAD}",
            rest.len()
        )),
        Err(postcard::Error::WontImplement) => Err(format!(
            "cannot decode a `{type_name}`: it (or a type inside it) needs a self-describing \
             format (serde's `deserialize_any`), which crew's codec (postcard) is not. Such are \
             `#[serde(untagged)]` enums, internally and adjacently tagged enums \
             (`#[serde(tag = \"...\")]`), `#[serde(flatten)]` fields and `serde_json::Value`. \
             Use an externally tagged enum (serde's default: drop `untagged`, `tag` and \
             `content`), nest a flattened struct as a named field, and send a dynamic value as \
             text (e.g. `serde_json::to_string`, parsed again by the receiver)"
        )),
        Err(postcard::Error::SerdeDeCustom) => Err(format!(
            "cannot decode a `{type_name}`: a `Deserialize` impl inside it refused the value \
             (postcard does not keep its message); {MISREAD}"
        )),
        Err(error) => Err(format!("cannot decode a `{type_name}`: {error}; {MISREAD}")),
    }
}

/// The likely causes of bytes that are not the expected type, for decoding errors.
const MISREAD: &str = "the bytes do not read as this type: the sender sent another type (or \
     another version of it), or the type's `Serialize` writes other fields than its \
     `Deserialize` reads (`#[serde(skip_serializing)]` without `skip_deserializing`: use \
     `#[serde(skip)]`; a hand-written impl that disagrees)";

/// Splits the first frame off `bytes` (frames packed in one message, as the remote actor
/// placement sends them): its header, its payload and the rest.
///
/// # Errors
/// A message when `bytes` does not start with a whole, sane frame.
#[cfg(any(feature = "cluster", test))]
pub(crate) fn split_frame<H: DeserializeOwned>(bytes: &[u8]) -> Result<(H, &[u8], &[u8]), String> {
    let prefix = bytes
        .get(..PREFIX)
        .ok_or_else(|| format!("a truncated frame ({} bytes)", bytes.len()))?;
    let header_len = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes")) as usize;
    let payload_len = u64::from_le_bytes(prefix[4..].try_into().expect("8 bytes"));
    if header_len == 0 || header_len > MAX_HEADER || payload_len > MAX_PAYLOAD {
        return Err(format!(
            "malformed frame: header length {header_len}, payload length {payload_len}"
        ));
    }
    let header_end = PREFIX + header_len;
    let end = header_end + payload_len as usize;
    if bytes.len() < end {
        return Err(format!(
            "a truncated frame ({} of {end} bytes)",
            bytes.len()
        ));
    }
    let header = decode(&bytes[PREFIX..header_end])?;
    Ok((header, &bytes[header_end..end], &bytes[end..]))
}

/// Writes one frame. Blocks until it is written (large payloads go straight from their buffer).
///
/// # Errors
/// The writer's error, or `Other` when the header cannot be encoded.
pub fn write_frame<W: Write, H: Serialize>(
    writer: &mut W,
    header: &H,
    payload: &[u8],
) -> io::Result<()> {
    let header = encode(header).map_err(io::Error::other)?;
    let mut prefix = [0u8; PREFIX];
    prefix[..4].copy_from_slice(&(header.len() as u32).to_le_bytes());
    prefix[4..].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    if payload.len() < 64 * 1024 {
        writer.write_all(&prefix)?;
        writer.write_all(&header)?;
        writer.write_all(payload)
    } else {
        writer.flush()?;
        write_all_vectored(writer, &[&prefix, &header, payload])
    }
}

fn write_all_vectored<W: Write>(writer: &mut W, parts: &[&[u8]]) -> io::Result<()> {
    let mut parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    while !parts.is_empty() {
        let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut written = writer.write_vectored(&slices)?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            if written >= parts[0].len() {
                written -= parts[0].len();
                parts.remove(0);
            } else {
                parts[0] = &parts[0][written..];
                written = 0;
            }
        }
    }
    writer.flush()
}

/// Writes to a stream socket with `MSG_NOSIGNAL`: writing to a peer that died is an `EPIPE`
/// error, never a `SIGPIPE` that would kill this process (whatever its `SIGPIPE` disposition).
#[derive(Debug)]
pub(crate) struct SocketWriter(pub(crate) std::os::unix::net::UnixStream);

impl Write for SocketWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::sys::socket::send(&self.0, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why no frame was read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the stream between frames.
    Eof,
    /// The deadline passed.
    Timeout,
    /// The stream broke or ended inside a frame: the peer is gone.
    Broken(String),
    /// The stream carried bytes that are not a frame: the peer is confused or corrupt.
    Malformed(String),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        ReadError::Broken(format!("read failed: {error}"))
    }
}

/// One received frame.
#[derive(Debug)]
pub struct Frame<H> {
    /// The protocol message.
    pub header: H,
    /// The encoded value that follows it.
    pub payload: Vec<u8>,
}

/// Reads frames from a stream through its own buffer, so that many small frames cost one read.
///
/// `buffer[start..end]` holds unread bytes; `buffer` beyond `end` is spare room that was
/// zeroed once and is reused, so a large frame costs one allocation, not one per read.
#[derive(Debug, Default)]
pub struct FrameReader {
    buffer: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self {
            buffer: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// Whether no bytes are buffered.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether a whole frame is already buffered (so reading it will not block).
    pub fn has_frame(&self) -> bool {
        matches!(self.frame_len(), Ok(Some(_)))
    }

    /// The prefix of the buffered frame: (header length, payload length), if complete.
    fn prefix(&self) -> Option<(usize, u64)> {
        let available = &self.buffer[self.start..self.end];
        if available.len() < PREFIX {
            return None;
        }
        let header_len = u32::from_le_bytes(available[..4].try_into().expect("4 bytes")) as usize;
        let payload_len = u64::from_le_bytes(available[4..12].try_into().expect("8 bytes"));
        Some((header_len, payload_len))
    }

    /// The total length of the buffered frame, if it is complete and its prefix is sane.
    fn frame_len(&self) -> Result<Option<usize>, ReadError> {
        let Some((header_len, payload_len)) = self.prefix() else {
            return Ok(None);
        };
        if header_len == 0 || header_len > MAX_HEADER || payload_len > MAX_PAYLOAD {
            return Err(ReadError::Malformed(format!(
                "malformed frame: header length {header_len}, payload length {payload_len}"
            )));
        }
        let total = PREFIX + header_len + payload_len as usize;
        Ok((self.end - self.start >= total).then_some(total))
    }

    /// The next frame if it is whole in the buffer (or the error its prefix is), without
    /// reading the stream; `None` if more bytes are needed.
    pub(crate) fn take_buffered<H: DeserializeOwned>(
        &mut self,
    ) -> Option<Result<Frame<H>, ReadError>> {
        match self.frame_len() {
            Ok(Some(total)) => Some(self.take(total)),
            Ok(None) => None,
            Err(error) => Some(Err(error)),
        }
    }

    /// Reads the next frame, blocking until `deadline` (forever with `None`).
    ///
    /// # Errors
    /// [`ReadError`]: end of stream, the deadline, a broken stream or a malformed frame.
    pub fn read<S, H>(
        &mut self,
        stream: &mut S,
        deadline: Option<Instant>,
    ) -> Result<Frame<H>, ReadError>
    where
        S: Read + AsFd,
        H: DeserializeOwned,
    {
        loop {
            if let Some(total) = self.frame_len()? {
                return self.take(total);
            }
            // Wait in `poll`, not in a blocking `read`: a thread blocked in a Unix socket's
            // `read` is woken (for nothing) each time the peer reads what this end wrote
            // (the kernel wakes the socket's sleepers when its send buffer frees up), which
            // in a round trip is once per call; `poll` for input ignores that wake-up.
            if !wait_readable(stream, deadline)? {
                return Err(ReadError::Timeout);
            }
            self.fill(stream)?;
        }
    }

    /// [`read`](Self::read), but before it blocks it polls the stream with non-blocking reads
    /// for a short, bounded, adaptive while ([`Spin`]): when the frame comes soon (a small
    /// task's reply, the next call of a busy caller), the thread never sleeps and nobody has
    /// to wake it.
    pub(crate) fn read_spinning<S, H>(
        &mut self,
        stream: &mut S,
        deadline: Option<Instant>,
        spin: &mut Spin,
    ) -> Result<Frame<H>, ReadError>
    where
        S: Read + AsFd,
        H: DeserializeOwned,
    {
        if let Some(total) = self.frame_len()? {
            return self.take(total);
        }
        let mut failed = None;
        let spun = spin.spin_until(|| match self.fill_now(&*stream) {
            Ok(false) => false,
            Ok(true) => !matches!(self.frame_len(), Ok(None)),
            Err(error) => {
                failed = Some(error);
                true
            }
        });
        if let Some(error) = failed {
            return Err(error);
        }
        if let Err(missed) = spun {
            let frame = self.read(stream, deadline);
            spin.woken(missed);
            return frame;
        }
        self.read(stream, deadline)
    }

    /// One non-blocking read: `Ok(true)` if bytes came.
    fn fill_now<S: AsFd>(&mut self, stream: &S) -> Result<bool, ReadError> {
        self.make_room();
        match crate::sys::socket::recv_now(stream, &mut self.buffer[self.end..])? {
            None => Ok(false),
            Some(0) if self.end == self.start => Err(ReadError::Eof),
            Some(0) => Err(ReadError::Broken(
                "the stream ended inside a frame".to_owned(),
            )),
            Some(n) => {
                self.end += n;
                Ok(true)
            }
        }
    }

    fn take<H: DeserializeOwned>(&mut self, total: usize) -> Result<Frame<H>, ReadError> {
        let frame = &self.buffer[self.start..self.start + total];
        let header_len = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
        let header = decode::<H>(&frame[PREFIX..PREFIX + header_len])
            .map_err(|error| ReadError::Malformed(format!("malformed frame header: {error}")))?;
        let payload = frame[PREFIX + header_len..].to_vec();
        self.start += total;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // Give back the memory of a huge frame.
            if self.buffer.len() > 1 << 20 {
                self.buffer = vec![0; 64 * 1024];
            }
        }
        Ok(Frame { header, payload })
    }

    fn fill<S: Read>(&mut self, stream: &mut S) -> Result<(), ReadError> {
        self.make_room();
        let result = loop {
            match stream.read(&mut self.buffer[self.end..]) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match result {
            Ok(0) if self.end == self.start => Err(ReadError::Eof),
            Ok(0) => Err(ReadError::Broken(
                "the stream ended inside a frame".to_owned(),
            )),
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Makes room after `end` for the rest of the current frame (and at least 16 KiB).
    fn make_room(&mut self) {
        // Room for at least the rest of the current frame when its length is known.
        let needed = match self.prefix() {
            Some((header_len, payload_len)) => PREFIX + header_len + payload_len as usize,
            None => PREFIX,
        };
        if self.start > 0 && self.start + needed.max(16 * 1024) > self.buffer.len() {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let wanted = (self.start + needed).max(self.end + 16 * 1024);
        if wanted > self.buffer.len() {
            self.buffer.resize(wanted, 0);
        }
    }
}

/// Waits until `fd` is readable (or closed); `false` when `deadline` passed first.
pub(crate) fn wait_readable<F: AsFd>(fd: &F, deadline: Option<Instant>) -> Result<bool, ReadError> {
    crate::sys::socket::wait_readable(fd, deadline)
        .map_err(|error| ReadError::Broken(format!("poll failed: {error}")))
}

/// Whether the peer of a stream socket has hung up (without consuming any data).
pub(crate) fn peer_hung_up<F: AsFd>(fd: &F) -> bool {
    crate::sys::socket::peer_hung_up(fd)
}

#[cfg(all(test, not(loom)))]
mod tests;
