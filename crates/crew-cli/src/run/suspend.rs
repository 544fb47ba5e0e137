//! Ctrl-Z for `crew run`: the jobs pause with crew and continue with it.
//!
//! # Design note: passing the terminal's stop on to jobs in their own process groups
//!
//! Every job leads its own process group, so that a timeout or Ctrl-C stops all it started.
//! That also puts it outside the terminal's foreground group: the terminal's SIGTSTP (Ctrl-Z)
//! stops crew alone, and its jobs ran on (GNU parallel's jobs share its group and stop with
//! it). So crew catches SIGTSTP. The handler only writes a byte to a pipe (write(2) is
//! async-signal-safe); a thread reading that pipe sends SIGSTOP to every running job's group
//! ([`KillSwitch::pause`]; jobs that start while paused are stopped as they start), then stops
//! crew itself the standard way: SIGTSTP back to its default action, `raise(SIGTSTP)`, then the
//! handler again. The kernel discards that SIGTSTP if crew's process group is orphaned (no
//! shell left to continue it), where a SIGSTOP would stop crew for good. When the shell
//! continues crew (`fg` or `bg` send SIGCONT), or at once if the stop was discarded, that
//! thread goes on, continues the jobs ([`KillSwitch::resume`]) and drops the stop requests
//! that piled up meanwhile (a double Ctrl-Z must not stop crew again right after `fg`). A
//! job's `--timeout` keeps counting while it is paused.
//!
//! A SIGTSTP that was ignored when crew started (some service managers do that) stays ignored.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, IntoRawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crew::subprocess::KillSwitch;

/// The write end of the pipe the SIGTSTP handler writes to (-1: none yet).
static STOP_REQUESTS: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_terminal_stop(_signal: libc::c_int) {
    let fd = STOP_REQUESTS.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = 0u8;
        // SAFETY: write(2) is async-signal-safe; `fd` is the pipe's write end, open for the rest
        // of the process (its owner was turned into this raw descriptor and never closed); the
        // buffer is a valid one-byte local. The pipe is non-blocking: a full pipe (stops
        // already pending) drops the byte instead of blocking the handler. The errno location
        // is the interrupted thread's own, valid for the thread's life; a failed write would
        // change errno under the code this signal interrupted, so it is put back.
        unsafe {
            let errno = errno_location();
            let saved = *errno;
            libc::write(fd, std::ptr::from_ref(&byte).cast(), 1);
            *errno = saved;
        }
    }
}

/// The calling thread's `errno`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: returns a pointer to the calling thread's errno; no preconditions.
    unsafe { libc::__errno_location() }
}

/// The calling thread's `errno`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: returns a pointer to the calling thread's errno; no preconditions.
    unsafe { libc::__error() }
}

/// Sets SIGTSTP's action to `handler` (`on_terminal_stop`, or `libc::SIG_DFL`).
fn set_terminal_stop_action(handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: `action` is zero-initialised (a valid bit pattern) and then filled; the handler
    // is SIG_DFL or `on_terminal_stop`, which only loads an atomic, reads and restores errno
    // and calls write(2), all async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGTSTP, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn catching_handler() -> libc::sighandler_t {
    on_terminal_stop as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t
}

/// Stops crew as the terminal's SIGTSTP would have, returning once crew is continued, or at
/// once if the kernel discards the stop because crew's process group is orphaned.
fn stop_crew() -> io::Result<()> {
    set_terminal_stop_action(libc::SIG_DFL)?;
    // SAFETY: raise(3) with a valid signal number. With the default action SIGTSTP stops the
    // whole process (delivered to this thread before raise returns) until a SIGCONT, or is
    // discarded in an orphaned process group.
    unsafe {
        libc::raise(libc::SIGTSTP);
    }
    set_terminal_stop_action(catching_handler())
}

/// Reads what is in `requests` now without waiting for more.
fn drain(requests: &mut File) -> io::Result<()> {
    let mut pending = rustix::io::ioctl_fionread(requests.as_fd())?;
    let mut buffer = [0u8; 64];
    while pending > 0 {
        let want = usize::try_from(pending).map_or(buffer.len(), |n| n.min(buffer.len()));
        match requests.read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(read) => pending -= read as u64,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Waits for a stop request: `Ok(true)` when one came, `Ok(false)` when the pipe was closed.
fn next_request(requests: &mut File) -> io::Result<bool> {
    let mut byte = [0u8; 1];
    loop {
        match requests.read(&mut byte) {
            Ok(read) => return Ok(read == 1),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// From now on Ctrl-Z (SIGTSTP) pauses the jobs registered with `switch` and then crew, and
/// continues them when crew is continued (see the module note). Does nothing if SIGTSTP is
/// ignored.
///
/// # Errors
/// If the pipe, the thread or the signal handler cannot be set up.
pub(crate) fn pause_jobs_with_crew(switch: KillSwitch) -> io::Result<()> {
    // SAFETY: reads the current disposition only (a null new action); `old` is a valid,
    // zero-initialised sigaction (all-zero is a valid bit pattern for this C struct).
    let ignored = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGTSTP, std::ptr::null(), &mut old) != 0 {
            return Err(io::Error::last_os_error());
        }
        old.sa_sigaction == libc::SIG_IGN
    };
    if ignored {
        return Ok(());
    }
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    rustix::io::ioctl_fionbio(&write, true)?;
    STOP_REQUESTS.store(write.into_raw_fd(), Ordering::Relaxed);
    std::thread::Builder::new()
        .name("crew-run-ctrl-z".to_owned())
        .spawn(move || {
            let mut requests = File::from(read);
            while let Ok(true) = next_request(&mut requests) {
                switch.pause();
                let stopped = stop_crew();
                switch.resume();
                if stopped.is_err() || drain(&mut requests).is_err() {
                    break;
                }
            }
            // Errors (none are expected from a pipe crew owns) end the pass-on: Ctrl-Z goes
            // back to stopping crew alone, rather than to a handler nobody listens to.
            let _ = set_terminal_stop_action(libc::SIG_DFL);
        })?;
    set_terminal_stop_action(catching_handler())?;
    Ok(())
}
