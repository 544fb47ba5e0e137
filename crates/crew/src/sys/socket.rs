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

/// Receives what is there without waiting (`MSG_DONTWAIT`, whatever the socket's mode):
/// `Ok(None)` when nothing is, `Ok(Some(0))` at end of stream. For [`spin`](super::spin).
pub(crate) fn recv_now(fd: impl AsFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match rustix::net::recv(fd.as_fd(), &mut *buf, rustix::net::RecvFlags::DONTWAIT) {
            Ok((n, _)) => return Ok(Some(n)),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Ok(None),
            Err(errno) => return Err(errno.into()),
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
    ready_now(fd, PollFlags::RDHUP)
}

/// Whether one of `flags` (or a hang-up or error) is pending on `fd` now, without waiting.
pub(crate) fn ready_now(fd: impl AsFd, flags: PollFlags) -> bool {
    let mut fds = [PollFd::new(&fd, flags)];
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

/// A counter that one thread waits on (in a [`Poller`]) and others bump to wake
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

/// An `epoll` instance watching a few descriptors, each under a caller's token. Unlike `poll`,
/// what a descriptor is watched for can be changed while another thread waits
/// ([`modify`](Self::modify)), without waking it: a process pool's caller that reads its own
/// reply stops the parked slot thread from waking for it (see the process pool's note).
#[derive(Debug)]
pub(crate) struct Poller(OwnedFd);

impl Poller {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self(rustix::event::epoll::create(
            rustix::event::epoll::CreateFlags::CLOEXEC,
        )?))
    }

    /// Watches `fd` for `flags` (hang-up and error are always reported), reported as `token`.
    pub(crate) fn add(&self, fd: impl AsFd, token: u64, flags: PollFlags) -> io::Result<()> {
        use rustix::event::epoll;
        Ok(epoll::add(
            &self.0,
            fd,
            epoll::EventData::new_u64(token),
            epoll_flags(flags),
        )?)
    }

    /// Changes what the watched `fd` is watched for.
    pub(crate) fn modify(&self, fd: impl AsFd, token: u64, flags: PollFlags) -> io::Result<()> {
        use rustix::event::epoll;
        Ok(epoll::modify(
            &self.0,
            fd,
            epoll::EventData::new_u64(token),
            epoll_flags(flags),
        )?)
    }

    /// Stops watching `fd`.
    pub(crate) fn delete(&self, fd: impl AsFd) -> io::Result<()> {
        Ok(rustix::event::epoll::delete(&self.0, fd)?)
    }

    /// Blocks until a watched descriptor is ready; calls `ready` with the token of each that is.
    pub(crate) fn wait(&self, mut ready: impl FnMut(u64)) -> io::Result<()> {
        let mut events = Vec::with_capacity(4);
        loop {
            match rustix::event::epoll::wait(
                &self.0,
                rustix::buffer::spare_capacity(&mut events),
                None,
            ) {
                Ok(_) if events.is_empty() => continue,
                Ok(_) => break,
                Err(Errno::INTR) => continue,
                Err(errno) => return Err(errno.into()),
            }
        }
        for event in events {
            ready(event.data.u64());
        }
        Ok(())
    }
}

/// The `epoll` flags of `poll` flags (the same bits on Linux).
fn epoll_flags(flags: PollFlags) -> rustix::event::epoll::EventFlags {
    rustix::event::epoll::EventFlags::from_bits_truncate(u32::from(flags.bits()))
}
