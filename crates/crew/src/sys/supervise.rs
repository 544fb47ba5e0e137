//! One child supervisor for every process crew starts: pool workers, [`process::spawn`] and
//! [`subprocess`] children.
//!
//! [`process::spawn`]: crate::process::spawn
//! [`subprocess`]: crate::subprocess
//!
//! # Design note: start, signal, wait, reap
//!
//! * **Start.** [`Setup`] is applied to a `std::process::Command` before it spawns: a process
//!   group of its own, one descriptor passed at a fixed number and every other one closed, an
//!   address-space limit, a death signal. What runs between `fork` and `exec` makes only
//!   async-signal-safe system calls on integers captured by value.
//! * **Never signal a recycled pid.** A pid (and a process group id) stays reserved while the
//!   child exists, zombie included, and is free for reuse the moment it is reaped. So the
//!   supervisor waits for the exit *without reaping* (`waitid(WNOWAIT)`, or the pidfd), and
//!   reaps under the same lock that [`Supervised::signal`] takes: a signal either reaches our
//!   child (possibly a zombie, harmlessly) or is skipped because the child is reaped.
//! * **Wait with a timeout** on the child's pidfd (Linux 5.3+), which `poll` reports readable
//!   when the child exits: the waiter wakes at the exit, not at the next tick of a loop. Only
//!   on older kernels does a timed wait fall back to sleeping in short, growing steps.
//! * **No zombie.** Whoever owns a [`Supervised`] reaps it (the pool when a worker retires or
//!   dies, `spawn`'s reaper thread, `subprocess::Child::wait`); the status is decoded once
//!   into [`ExitStatus`] and kept.

use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::{Errno, FdFlags};
use rustix::process::{
    kill_process, kill_process_group, pidfd_open, waitid, Pid, PidfdFlags, Resource, Rlimit,
    Signal, WaitId, WaitIdOptions, WaitIdStatus,
};

use crate::exit::ExitStatus;
use crate::sys::socket::timeout_until;

/// What to arrange in the child between `fork` and `exec`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Setup {
    /// Lead a process group of its own, so that one group signal reaches its descendants.
    pub(crate) own_group: bool,
    /// Place descriptor `.0` of the parent at number `.1` in the child, and close every
    /// descriptor above `.1`: nothing but stdio and this one crosses into the child.
    pub(crate) pass_fd: Option<(RawFd, RawFd)>,
    /// `RLIMIT_AS` of the child, in bytes.
    pub(crate) memory_limit: Option<u64>,
    /// `SIGKILL` the child when the thread that started it dies (`PR_SET_PDEATHSIG`, which is
    /// tied to the starting *thread*: use it only from long-lived threads).
    pub(crate) death_signal: bool,
}

impl Setup {
    /// Arranges `command` to apply this setup when it spawns.
    pub(crate) fn apply(self, command: &mut Command) {
        if self.own_group {
            command.process_group(0);
        }
        if self.pass_fd.is_none() && self.memory_limit.is_none() && !self.death_signal {
            return;
        }
        let parent = rustix::process::getpid();
        // SAFETY: the closure runs in the forked child before exec. It only makes
        // async-signal-safe system calls (fcntl, dup2, close_range/close, setrlimit, prctl,
        // getppid) on integers captured by value; it allocates nothing and takes no locks.
        unsafe {
            command.pre_exec(move || self.in_child(parent));
        }
    }

    /// The part of [`apply`](Self::apply) that runs in the child.
    ///
    /// # Safety
    /// Only between `fork` and `exec`, where no other thread exists and the descriptors named
    /// in `pass_fd` are open.
    unsafe fn in_child(self, parent: Pid) -> io::Result<()> {
        if let Some((from, to)) = self.pass_fd {
            // SAFETY: `from` is open in the child (inherited from the parent, which keeps it
            // open until the spawn returns) and nothing closes it while it is borrowed here.
            let from_fd = unsafe { BorrowedFd::borrow_raw(from) };
            if from == to {
                rustix::io::fcntl_setfd(from_fd, FdFlags::empty())?;
            } else {
                // SAFETY: `to` is a plain number; the `OwnedFd` is never dropped (dup2 only
                // needs to name it), so nothing is closed on its behalf.
                let mut target = ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(to) });
                rustix::io::dup2(from_fd, &mut target)?;
            }
            // std's own error pipe for a failed exec is close-on-exec and above the standard
            // descriptors, so closing it here is harmless: std then sees a plain exit.
            // rustix has no close_range, so this one call goes through libc; the fallback for
            // kernels without it closes one descriptor at a time.
            // SAFETY: close_range takes plain integers and touches only descriptors.
            if unsafe { libc::syscall(libc::SYS_close_range, to + 1, u32::MAX, 0) } != 0 {
                for fd in (to + 1)..4096 {
                    // SAFETY: closing numbers that may or may not be open is harmless here:
                    // no `OwnedFd` in this forked child will be dropped before `exec`.
                    unsafe { rustix::io::close(fd) };
                }
            }
        }
        if let Some(bytes) = self.memory_limit {
            let limit = Rlimit {
                current: Some(bytes),
                maximum: Some(bytes),
            };
            rustix::process::setrlimit(Resource::As, limit)?;
        }
        if self.death_signal {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            // The parent may have died before the prctl took effect: then give up the start.
            if rustix::process::getppid() != Some(parent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    }
}

/// A child process that crew reaps itself; see the [module note](self).
#[derive(Debug)]
pub(crate) struct Supervised {
    pid: Pid,
    /// Readable when the child has exited (`None` on kernels without pidfds).
    pidfd: Option<OwnedFd>,
    /// Set when the child is reaped; taken by [`signal`](Self::signal) to skip a reaped child.
    status: Mutex<Option<ExitStatus>>,
}

impl Supervised {
    /// Takes over reaping `child`: from now on nobody else may wait for it (neither
    /// `std::process::Child::wait` nor another supervisor).
    pub(crate) fn of(child: &std::process::Child) -> Self {
        Self::of_pid(Pid::from_child(child))
    }

    /// Takes over reaping the child `pid`, which this process started and nobody waits for.
    pub(crate) fn of_pid(pid: Pid) -> Self {
        Self {
            pid,
            // Safe against reuse: the child cannot be reaped before this supervisor does it.
            pidfd: pidfd_open(pid, PidfdFlags::empty()).ok(),
            status: Mutex::new(None),
        }
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get() as u32
    }

    /// A descriptor that `poll` reports readable once the child has exited (its pidfd; `None`
    /// on kernels without pidfds).
    pub(crate) fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    /// How it ended, once reaped.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        *self.status.lock()
    }

    /// Sends `signal` to the child; does nothing once it is reaped (or already gone).
    pub(crate) fn signal(&self, signal: Signal) -> io::Result<()> {
        self.send(signal, kill_process)
    }

    /// Sends `signal` to the child's process group (see [`Setup::own_group`]); does nothing
    /// once the child (the group's leader, which keeps the group id reserved) is reaped.
    pub(crate) fn signal_group(&self, signal: Signal) -> io::Result<()> {
        self.send(signal, kill_process_group)
    }

    fn send(
        &self,
        signal: Signal,
        how: fn(Pid, Signal) -> rustix::io::Result<()>,
    ) -> io::Result<()> {
        let status = self.status.lock();
        if status.is_some() {
            return Ok(());
        }
        // Not reaped (reaping takes this lock), so the id is still our child's.
        match how(self.pid, signal) {
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(errno) => Err(errno.into()),
        }
    }

    /// Whether the child has exited, without reaping it and without blocking.
    pub(crate) fn has_exited(&self) -> io::Result<bool> {
        if self.status().is_some() {
            return Ok(true);
        }
        self.peek(WaitIdOptions::NOHANG)
    }

    /// Blocks until the child exits (`true`) or `deadline` passes (`false`), without reaping.
    pub(crate) fn wait_exited(&self, deadline: Option<Instant>) -> io::Result<bool> {
        if self.status().is_some() {
            return Ok(true);
        }
        let Some(deadline) = deadline else {
            return self.peek(WaitIdOptions::empty());
        };
        let mut backoff = Duration::from_micros(500);
        loop {
            if self.peek(WaitIdOptions::NOHANG)? {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            match &self.pidfd {
                Some(pidfd) => {
                    let timeout = timeout_until(Some(deadline));
                    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
                    match poll(&mut fds, timeout.as_ref()) {
                        Ok(_) | Err(Errno::INTR) => {}
                        Err(errno) => return Err(errno.into()),
                    }
                }
                // No pidfd (Linux before 5.3): sleep in growing steps.
                None => {
                    std::thread::sleep(left.min(backoff));
                    backoff = (backoff * 2).min(Duration::from_millis(20));
                }
            }
        }
    }

    /// `waitid(WEXITED | WNOWAIT | extra)`: whether the child has exited, leaving it unreaped.
    fn peek(&self, extra: WaitIdOptions) -> io::Result<bool> {
        loop {
            match waitid(
                self.id(),
                WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | extra,
            ) {
                Ok(status) => return Ok(status.is_some()),
                Err(Errno::INTR) => continue,
                Err(errno) => return Err(errno.into()),
            }
        }
    }

    fn id(&self) -> WaitId<'_> {
        match &self.pidfd {
            Some(pidfd) => WaitId::PidFd(pidfd.as_fd()),
            None => WaitId::Pid(self.pid),
        }
    }

    /// Waits for the child to exit and reaps it; the status is kept, so later calls return it.
    ///
    /// # Errors
    /// If the system cannot wait for the child (it was reaped behind crew's back, e.g. with
    /// `SIGCHLD` ignored).
    pub(crate) fn reap(&self) -> io::Result<ExitStatus> {
        // Wait outside the lock, so that signals can still be sent meanwhile.
        self.wait_exited(None)?;
        let mut status = self.status.lock();
        if let Some(status) = *status {
            return Ok(status);
        }
        let decoded = loop {
            match waitid(self.id(), WaitIdOptions::EXITED) {
                Ok(Some(info)) => break decode(&info),
                // Cannot happen with WEXITED and no WNOHANG; wait again.
                Ok(None) | Err(Errno::INTR) => continue,
                Err(errno) => return Err(errno.into()),
            }
        };
        *status = Some(decoded);
        Ok(decoded)
    }

    /// `SIGKILL`s the child (unless reaped) and reaps it.
    pub(crate) fn kill_and_reap(&self) -> io::Result<ExitStatus> {
        self.signal(Signal::KILL)?;
        self.reap()
    }
}

/// An exited child's `waitid` record as an [`ExitStatus`].
fn decode(info: &WaitIdStatus) -> ExitStatus {
    match (info.exit_status(), info.terminating_signal()) {
        (Some(code), _) => ExitStatus::Code(code),
        (None, Some(signal)) => ExitStatus::Signal(signal),
        // Only exits are asked for (WEXITED), so one of the two is always there.
        (None, None) => ExitStatus::Code(-1),
    }
}
