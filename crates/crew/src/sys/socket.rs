//! Stream sockets between processes: a connected pair, `send` without `SIGPIPE`, and waiting
//! for data or for the peer to hang up with `poll` (no sleeping loops).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType};

/// A connected pair of Unix stream sockets, both close-on-exec.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Sends with `MSG_NOSIGNAL`: writing to a peer that died is an `EPIPE` error, never a
/// `SIGPIPE` that would kill this process (whatever its `SIGPIPE` disposition).
pub(crate) fn send(fd: impl AsFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        match rustix::net::send(fd.as_fd(), buf, SendFlags::NOSIGNAL) {
            Err(Errno::INTR) => continue,
            result => return Ok(result?),
        }
    }
}

/// The time left until `deadline` as a `poll` timeout (`None` waits forever).
pub(crate) fn timeout_until(deadline: Option<Instant>) -> Option<Timespec> {
    deadline.map(|deadline| {
        let left = deadline.saturating_duration_since(Instant::now());
        Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        })
    })
}

/// Blocks until one of `flags` (or a hang-up or error, always reported) is pending on `fd`;
/// `false` when `deadline` passed first.
pub(crate) fn wait_for(
    fd: impl AsFd,
    flags: PollFlags,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    loop {
        let timeout = timeout_until(deadline);
        let mut fds = [PollFd::new(&fd, flags)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(false),
            Ok(0) | Err(Errno::INTR) => continue,
            Ok(_) => return Ok(true),
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Blocks until `fd` is readable (data, end of stream or error); `false` at `deadline`.
pub(crate) fn wait_readable(fd: impl AsFd, deadline: Option<Instant>) -> io::Result<bool> {
    wait_for(fd, PollFlags::IN, deadline)
}

/// Blocks until the peer of the stream socket `fd` hangs up (closes, shuts down writing or
/// dies), without reading anything: only `RDHUP` is asked for, so pending data does not wake it.
pub(crate) fn wait_hung_up(fd: impl AsFd) -> io::Result<()> {
    wait_for(fd, PollFlags::RDHUP, None).map(drop)
}

/// Whether the peer of the stream socket `fd` has hung up, without consuming any data.
pub(crate) fn peer_hung_up(fd: impl AsFd) -> bool {
    let mut fds = [PollFd::new(&fd, PollFlags::RDHUP)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

/// Sends all of `buf` with [`send`] (a stream socket may take a large buffer in parts).
pub(crate) fn send_all(fd: impl AsFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match send(fd.as_fd(), buf)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// Blocks until `first` or `second` (when given) is readable, closed or in error; returns
/// which of the two are.
pub(crate) fn wait_readable_either(
    first: BorrowedFd<'_>,
    second: Option<BorrowedFd<'_>>,
) -> io::Result<(bool, bool)> {
    loop {
        let mut fds = [
            PollFd::from_borrowed_fd(first, PollFlags::IN),
            PollFd::from_borrowed_fd(second.unwrap_or(first), PollFlags::IN),
        ];
        let count = if second.is_some() { 2 } else { 1 };
        match poll(&mut fds[..count], None) {
            Ok(0) | Err(Errno::INTR) => continue,
            Ok(_) => {
                let ready = |fd: &PollFd<'_>| !fd.revents().is_empty();
                return Ok((ready(&fds[0]), count == 2 && ready(&fds[1])));
            }
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// A counter that one thread waits on with [`wait_readable_either`] and others bump to wake
/// it (an `eventfd`, non-blocking and close-on-exec).
#[derive(Debug)]
pub(crate) struct Doorbell(OwnedFd);

impl Doorbell {
    pub(crate) fn new() -> io::Result<Self> {
        use rustix::event::{eventfd, EventfdFlags};
        Ok(Self(eventfd(
            0,
            EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
        )?))
    }

    /// Wakes the waiter (now, or at its next wait if it is not waiting).
    pub(crate) fn ring(&self) {
        // Only fails when the counter is about to overflow, i.e. it is rung already.
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    /// Resets the counter after a wake.
    pub(crate) fn reset(&self) {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.0, &mut count);
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
