//! [`ParentGuard`]: kills a child's whole process group if the process that started it dies,
//! even by `SIGKILL` ([`Command::kill_on_parent_death`](super::Command::kill_on_parent_death)).
//!
//! # Design note: a watcher that outlives its parent
//!
//! Every child leads its own process group, so nothing the kernel does when the parent dies
//! reaches the group: the group is orphaned and runs on. (`PR_SET_PDEATHSIG` reaches one
//! process only, the leader, and is tied to the parent's *thread*.) Whatever kills the group
//! must therefore live outside the parent. Before the child is started, the parent forks a
//! small watcher, the guard: it closes every descriptor but the read end of a pipe (so it holds
//! no other child's pipe open), ignores the signals aimed at its parent's group, and blocks in
//! `read`. Messages are 4-byte integers:
//!
//! * the child writes its own pid (its process-group id) between `fork` and `exec`, after
//!   `setpgid`, so from the moment the group exists the guard knows it;
//! * the parent writes `0` to disarm the guard *before* it reaps the child (the group id stays
//!   reserved until then, so the guard never signals a recycled one), then reaps the guard;
//! * end-of-file (every write end closed: the parent is gone, the child has exec'd) with a
//!   group known and no disarm: the guard sends `SIGKILL` to the group and exits.
//!
//! The write end is close-on-exec: the child drops it at `exec`, other children never keep it.
//! The guard is a plain `fork` without `exec`: it runs only async-signal-safe system calls on
//! integers (`dup2`, `close_range` or else `getrlimit` and `close`, `sigaction`, `read`,
//! `kill`, `_exit`), never the allocator.
//! An orphaned guard is reaped by init (or the nearest subreaper) after it has done its job.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::Pid;

use crate::sys::supervise::Supervised;

/// The message that disarms the guard (pids are never 0).
const DISARM: i32 = 0;

/// A forked watcher that kills one child's process group if this process dies first.
pub(crate) struct ParentGuard {
    /// The write end of the guard's pipe; closing it (at our death) is the alarm.
    write: Option<OwnedFd>,
    guard: Supervised,
}

impl ParentGuard {
    /// Forks the guard. Start the child with [`announce_self`] in its `pre_exec`, given
    /// [`child_fd`](Self::child_fd).
    pub(crate) fn start() -> io::Result<Self> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
        let read_fd = read.as_raw_fd();
        // SAFETY: fork duplicates only the calling thread. The child branch calls `watch`,
        // which makes only async-signal-safe system calls on integers and never returns, so
        // no lock, allocation or destructor of the copied state runs there.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: we are the freshly forked child, and `read_fd` is open in it.
            unsafe { watch(read_fd) }
        }
        drop(read);
        let pid = Pid::from_raw(pid).expect("fork returned a positive pid");
        Ok(Self {
            write: Some(write),
            guard: Supervised::of_pid(pid),
        })
    }

    /// The descriptor the child announces itself on (see [`announce_self`]).
    pub(crate) fn child_fd(&self) -> RawFd {
        self.write.as_ref().map_or(-1, |write| write.as_raw_fd())
    }
}

impl Drop for ParentGuard {
    /// Disarms the guard and reaps it. Call (drop) before the child is reaped.
    fn drop(&mut self) {
        if let Some(write) = self.write.take() {
            // A failed write (the guard died) leaves nothing to disarm.
            let _ = rustix::io::write(&write, &DISARM.to_ne_bytes());
        }
        // The guard exits as soon as it reads the disarm (or end-of-file): a short wait.
        let _ = self.guard.reap();
    }
}

/// In the child, between `fork` and `exec` (after `setpgid`): tells the guard listening on
/// `fd` the child's pid, which is its process-group id.
///
/// # Safety
/// Only in a forked child before `exec`, with `fd` open.
pub(crate) unsafe fn announce_self(fd: RawFd) -> io::Result<()> {
    // SAFETY: getpid and write are async-signal-safe; the buffer is a local array.
    let written = unsafe {
        let pid: i32 = libc::getpid();
        libc::write(fd, pid.to_ne_bytes().as_ptr().cast(), 4)
    };
    if written == 4 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The guard's whole life (see the module note).
///
/// # Safety
/// Only in a process just forked from a possibly multi-threaded parent, with `read_fd` open.
unsafe fn watch(read_fd: RawFd) -> ! {
    // SAFETY: only async-signal-safe calls on integers and stack buffers follow; the
    // function ends in `_exit`, so nothing of the parent's copied state is ever dropped.
    unsafe {
        if read_fd != 0 && libc::dup2(read_fd, 0) != 0 {
            libc::_exit(1);
        }
        // Hold no other descriptor: a copied pipe end would keep another child's output open.
        if libc::syscall(libc::SYS_close_range, 1u32, u32::MAX, 0u32) != 0 {
            // No close_range (Linux < 5.9): every descriptor up to the process's limit
            // (getrlimit is async-signal-safe in practice: one system call).
            let mut limit: libc::rlimit = std::mem::zeroed();
            let highest = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur.min(1 << 20) as libc::c_int
            } else {
                4096
            };
            for fd in 1..highest {
                libc::close(fd);
            }
        }
        // Signals sent to the parent's process group (Ctrl-C, a group `SIGTERM`) must not
        // take the guard away with the parent: the guard is what acts on the parent's death.
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM] {
            libc::sigaction(signal, &ignore, std::ptr::null_mut());
        }
        let mut group: i32 = 0;
        loop {
            let mut message = [0u8; 4];
            let read = libc::read(0, message.as_mut_ptr().cast(), message.len());
            if read == 4 {
                match i32::from_ne_bytes(message) {
                    DISARM => libc::_exit(0),
                    pid => group = pid,
                }
            } else if read < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            } else {
                // End-of-file: the parent died without disarming us.
                if read == 0 && group > 0 {
                    libc::kill(-group, libc::SIGKILL);
                }
                libc::_exit(0);
            }
        }
    }
}
