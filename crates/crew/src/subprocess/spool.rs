//! [`Spool`]: a child's captured output kept in an unnamed temporary file once it outgrew
//! memory ([`Command::spool_after`](super::Command::spool_after)), as Python's
//! `tempfile.SpooledTemporaryFile` does.
//!
//! # Design note: memory first, then a file, never both
//!
//! A captured stream is read into memory; when it grows past the command's bound, what was
//! read so far goes to a fresh unnamed temporary file (`tempfile::tempfile`: created in
//! `TMPDIR` and unlinked at once, so nothing is left behind whatever happens to the process)
//! and every later read is appended to that file. So either [`Completed::stdout`] holds all
//! of the output, or it is empty and [`Completed::stdout_spool`] holds all of it, in order.
//! Readers use positioned reads (`pread`), so clones of a `Spool` share the file without
//! sharing a cursor.
//!
//! [`Completed::stdout`]: super::Completed::stdout
//! [`Completed::stdout_spool`]: super::Completed::stdout_spool

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Output that went to an unnamed temporary file: its bytes, read back in order with
/// [`reader`](Self::reader) or [`copy_to`](Self::copy_to). The file is deleted already (only
/// its descriptor keeps it); its space is freed when the last clone is dropped.
///
/// ```
/// use std::io::Read;
/// use crew::subprocess::Command;
///
/// let done = Command::new("head").args(["-c", "100000", "/dev/zero"]).spool_after(4096).output().unwrap();
/// assert!(done.stdout.is_empty());
/// let spool = done.stdout_spool.as_ref().unwrap();
/// assert_eq!(spool.len(), 100_000);
/// let mut bytes = Vec::new();
/// spool.reader().read_to_end(&mut bytes).unwrap();
/// assert_eq!(bytes, vec![0u8; 100_000]);
/// ```
#[derive(Clone)]
pub struct Spool {
    file: Arc<File>,
    len: u64,
}

impl Spool {
    /// How many bytes it holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader of its bytes from the start; each reader has its own position.
    pub fn reader(&self) -> SpoolReader<'_> {
        SpoolReader {
            spool: self,
            position: 0,
        }
    }

    /// Writes all its bytes to `out`, in order, a chunk at a time; returns how many.
    ///
    /// # Errors
    /// A failure to read the file or to write to `out`.
    pub fn copy_to(&self, out: &mut impl Write) -> io::Result<u64> {
        io::copy(&mut self.reader(), out)
    }

    /// The last `n` bytes (fewer if it holds fewer).
    pub(crate) fn tail(&self, n: usize) -> io::Result<Vec<u8>> {
        let start = self.len.saturating_sub(n as u64);
        let mut tail = vec![0; (self.len - start) as usize];
        self.file.read_exact_at(&mut tail, start)?;
        Ok(tail)
    }
}

/// Two spools are equal when they are clones of one spool (the same file).
impl PartialEq for Spool {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.len == other.len
    }
}

impl Eq for Spool {}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Spool({} bytes)", self.len)
    }
}

/// Reads a [`Spool`] from its start ([`Spool::reader`]).
#[derive(Debug)]
pub struct SpoolReader<'a> {
    spool: &'a Spool,
    position: u64,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.spool.len - self.position;
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.spool.file.read_at(&mut buf[..want], self.position)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the spool file is shorter than what was written to it",
            ));
        }
        self.position += n as u64;
        Ok(n)
    }
}

/// One captured stream on its way into memory or a spool (see the module note).
#[derive(Debug)]
pub(crate) struct Spooler {
    /// The bound in memory, in bytes.
    limit: usize,
    file: Option<File>,
    written: u64,
}

impl Spooler {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            file: None,
            written: 0,
        }
    }

    /// The most a read should add to the buffer at once, so that memory stays near the bound.
    pub(crate) fn batch(&self) -> u64 {
        self.limit.max(64 * 1024) as u64
    }

    /// Moves `buf` to the file once it outgrew the bound (or the file exists already).
    pub(crate) fn absorb(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if self.file.is_none() && buf.len() <= self.limit {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(tempfile::tempfile().map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!(
                        "cannot create a temporary file for output beyond {} bytes in {} \
                         (set TMPDIR to a directory with room): {error}",
                        self.limit,
                        std::env::temp_dir().display()
                    ),
                )
            })?),
        };
        file.write_all(buf).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!(
                    "cannot write output to a temporary file in {} (set TMPDIR to a directory \
                     with room): {error}",
                    std::env::temp_dir().display()
                ),
            )
        })?;
        self.written += buf.len() as u64;
        buf.clear();
        // The buffer stays only as a staging area: keep it near the bound.
        buf.shrink_to(self.limit);
        Ok(())
    }

    /// The spool, if the output went to one (everything in `buf` is then moved there first).
    pub(crate) fn finish(mut self, buf: &mut Vec<u8>) -> io::Result<Option<Spool>> {
        if self.file.is_none() {
            return Ok(None);
        }
        self.absorb(buf)?;
        Ok(self.file.map(|file| Spool {
            file: Arc::new(file),
            len: self.written,
        }))
    }
}
