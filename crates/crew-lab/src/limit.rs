//! [`SharedLimit`]: one connection limit for several processes (the `reuseport` model's children).
//!
//! Design: an eventfd in semaphore mode counts the free slots. The parent creates it holding
//! `--max-connections`; each child inherits the descriptor (its number travels in an environment
//! variable), takes one count per admitted connection with a non-blocking read (none left: the
//! busy line) and gives it back with a write before the connection's socket closes. The kernel
//! keeps the count, so the children admit exactly the limit between them, whichever child the
//! `SO_REUSEPORT` hash picks. A child that dies loses its counts, but the parent stops the whole
//! server when a child dies.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};
use rustix::event::{eventfd, EventfdFlags};

/// The environment variable that hands the limit to a child: `LIMIT,FD`.
const ENV: &str = "CREW_LAB_SHARED_LIMIT";

/// Set once a process took its inherited limit, so no two owners close one descriptor.
static INHERITED: AtomicBool = AtomicBool::new(false);

/// A connection limit shared by the processes of one server; see the [module](self) notes.
///
/// A parent makes one for its `reuseport` children; a child takes it with
/// [`SharedLimit::inherited`] and serves with it in
/// [`ServeConfig::shared_limit`](crate::ServeConfig::shared_limit).
pub struct SharedLimit {
    free: File,
    limit: usize,
}

impl fmt::Debug for SharedLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLimit")
            .field("limit", &self.limit)
            .field("fd", &self.free.as_raw_fd())
            .finish()
    }
}

impl SharedLimit {
    /// `limit` free slots.
    pub(crate) fn new(limit: usize) -> anyhow::Result<Self> {
        let Ok(initial) = u32::try_from(limit) else {
            bail!(
                "--max-connections {limit} is too large to share between processes (at most {})",
                u32::MAX
            );
        };
        let flags = EventfdFlags::SEMAPHORE | EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC;
        let fd = eventfd(initial, flags).context("creating the shared connection limit")?;
        Ok(Self {
            free: File::from(fd),
            limit,
        })
    }

    /// The limit shared.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Lets the process `command` starts inherit this limit.
    pub(crate) fn pass_to(&self, command: &mut Command) {
        let fd = self.free.as_raw_fd();
        command.env(ENV, format!("{},{fd}", self.limit));
        let keep_open = move || {
            nix::fcntl::fcntl(fd, nix::fcntl::F_SETFD(nix::fcntl::FdFlag::empty()))
                .map(drop)
                .map_err(io::Error::from)
        };
        // SAFETY: the hook runs between fork and exec and only clears close-on-exec on a
        // descriptor this process holds open (one fcntl system call: no allocation, no lock).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(command, keep_open);
        }
    }

    /// The limit this process's parent passed to it, if any (at most once per process).
    ///
    /// # Errors
    /// If the variable that passes it is malformed or names no inherited eventfd.
    pub fn inherited() -> anyhow::Result<Option<SharedLimit>> {
        let Ok(value) = std::env::var(ENV) else {
            return Ok(None);
        };
        let parsed = value
            .split_once(',')
            .and_then(|(limit, fd)| Some((limit.parse().ok()?, fd.parse::<RawFd>().ok()?)));
        let Some((limit, fd)) = parsed else {
            bail!("{ENV}={value:?} is not LIMIT,FD: it is set by a crew reuseport server for its children");
        };
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
        if target.to_str() != Some("anon_inode:[eventfd]") {
            bail!("{ENV}={value:?}: descriptor {fd} is not an inherited eventfd ({target:?}); unset the variable");
        }
        if INHERITED.swap(true, Ordering::SeqCst) {
            bail!("the shared connection limit was already taken in this process");
        }
        // SAFETY: `fd` is open and an eventfd (checked above), inherited from the parent for
        // this purpose, and taken at most once in this process (the flag above), so this is its
        // only owner.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Some(SharedLimit {
            free: File::from(fd),
            limit,
        }))
    }

    /// Takes a free slot; false when none is left.
    pub(crate) fn try_acquire(&self) -> bool {
        let mut count = [0u8; 8];
        (&self.free).read_exact(&mut count).is_ok()
    }

    /// Gives back a slot taken with [`try_acquire`](Self::try_acquire).
    pub(crate) fn release(&self) {
        if let Err(error) = (&self.free).write_all(&1u64.to_ne_bytes()) {
            eprintln!("crew serve: cannot release a shared connection slot: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_exactly_the_limit_and_takes_slots_back() {
        let limit = SharedLimit::new(3).unwrap();
        assert!((0..3).all(|_| limit.try_acquire()));
        assert!(!limit.try_acquire(), "a fourth is refused");
        limit.release();
        assert!(limit.try_acquire());
        assert!(!limit.try_acquire());
    }
}
