//! Ctrl-Z for `crew run`: the jobs pause with crew and continue with it.
//!
//! # Design note: passing the terminal's stop on to jobs in their own process groups
//!
//! Every job leads its own process group, so that a timeout or Ctrl-C stops all it started.
//! That also puts it outside the terminal's foreground group: the terminal's SIGTSTP (Ctrl-Z)
//! stops crew alone, and its jobs ran on (GNU parallel's jobs share its group and stop with
//! it). So crew catches SIGTSTP. The handler only writes a byte to a pipe (write(2) is
//! async-signal-safe); a thread reading that pipe sends SIGSTOP to every running job's group
//! ([`KillSwitch::pause`]), then stops crew itself with SIGSTOP, which cannot be caught and
//! which the shell reports as a stopped job just as it does SIGTSTP. When the shell continues
//! crew (`fg` or `bg` send SIGCONT), that thread goes on from there and continues the jobs
//! ([`KillSwitch::resume`]). A job's `--timeout` keeps counting while it is paused.
//!
//! A SIGTSTP that was ignored when crew started (some service managers do that) stays ignored.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::IntoRawFd;
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
        // already pending) drops the byte instead of blocking the handler.
        unsafe {
            libc::write(fd, std::ptr::from_ref(&byte).cast(), 1);
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
            let mut byte = [0u8; 1];
            while let Ok(1) = requests.read(&mut byte) {
                switch.pause();
                // SAFETY: raise(3) with a valid signal number; SIGSTOP stops the whole
                // process until a SIGCONT, then this thread goes on.
                unsafe {
                    libc::raise(libc::SIGSTOP);
                }
                switch.resume();
            }
        })?;
    // SAFETY: installs a handler that only loads an atomic and calls write(2), both
    // async-signal-safe; `action` is zero-initialised (a valid bit pattern) and then filled.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_terminal_stop as extern "C" fn(libc::c_int) as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGTSTP, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
