//! The worker side: [`init`], the hook at the top of `main`, and the serve loop it runs in a
//! worker process. See the [protocol note](crate::task::protocol).

use std::io::{BufWriter, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use crate::sys::spin::Spin;
use crate::task::codec::{write_frame, FrameReader, ReadError};
use crate::task::protocol::{ToParent, ToWorker, PARENT_ENV, PROTOCOL, WORKER_ENV, WORKER_FD};
use crate::task::run_call;

/// The worker hook: call it first thing in `main` of every program that uses processes.
///
/// In the program as you start it, `init()` returns at once and costs one environment lookup.
/// When crew starts the same executable again as a worker (for a
/// [`ProcessPool`](crate::ProcessPool) or [`spawn`](fn@crate::process::spawn)), `init()` serves
/// tasks and then exits the process, so the rest of `main` never runs in a worker.
///
/// ```no_run
/// #[crew::task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() {
///     crew::init(); // first thing: in a worker this never returns
///     use crew::{Executor, ProcessPool};
///     let pool = ProcessPool::new(2);
///     assert_eq!(pool.submit(square, 7).unwrap().result().unwrap(), 49);
/// }
/// ```
///
/// Integration tests need their own `main` for this: declare them with `harness = false` in
/// `Cargo.toml` and call `crew::init()` first in that `main` (crew's own `tests/process_*.rs`
/// do so).
pub fn init() {
    let Some(value) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    // Only this process is a worker: nested pools and subprocesses start clean.
    std::env::remove_var(WORKER_ENV);
    if let Some(parent) = std::env::var_os(PARENT_ENV) {
        std::env::remove_var(PARENT_ENV);
        if !die_with_parent(&parent) {
            std::process::exit(0);
        }
    }
    let code = match value.to_str().and_then(|v| v.parse::<i32>().ok()) {
        Some(fd) if fd == WORKER_FD => serve(),
        _ => {
            eprintln!("crew: {WORKER_ENV}={value:?} is not a descriptor crew set; exiting");
            2
        }
    };
    std::process::exit(code);
}

/// Asks for `SIGKILL` when the thread that started this worker dies; `false` if the parent
/// (whose pid is `parent`) is gone already, or the request failed: then nobody waits for us.
fn die_with_parent(parent: &std::ffi::OsStr) -> bool {
    let parent = parent.to_str().and_then(|pid| pid.parse::<i32>().ok());
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)).is_ok()
        && parent.is_some()
        && rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get()) == parent
}

/// Whether this process was started as a worker but `init()` has not run (so the program's
/// own `main` is running where it should not).
pub(crate) fn is_unserved_worker() -> bool {
    std::env::var_os(WORKER_ENV).is_some()
}

fn serve() -> i32 {
    // SAFETY: the parent placed our end of the socketpair at WORKER_FD before exec and nothing
    // else in this process owns or closes that descriptor; we take sole ownership here.
    let fd = unsafe { OwnedFd::from_raw_fd(WORKER_FD) };
    let _ = rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC);
    let stream = UnixStream::from(fd);
    let Ok(mut reader_stream) = stream.try_clone() else {
        return 3;
    };
    let mut writer = BufWriter::with_capacity(64 * 1024, &stream);
    let hello = ToParent::Hello {
        protocol: PROTOCOL,
        pid: std::process::id(),
    };
    if write_frame(&mut writer, &hello, &[]).is_err() || writer.flush().is_err() {
        return 3;
    }
    // Started after the Hello, so that the parent goes on while the thread starts; a parent
    // gone before then is seen by the watchdog as soon as it runs.
    start_watchdog(&stream);
    let mut reader = FrameReader::new();
    // The next call of a caller that submits one task at a time comes a few microseconds
    // after the reply (tens in a server): poll for it briefly before sleeping (see `sys::spin`).
    let mut spin = Spin::waiting_for_calls();
    loop {
        let frame = match reader.read_spinning::<_, ToWorker>(&mut reader_stream, None, &mut spin) {
            Ok(frame) => frame,
            Err(ReadError::Eof) => {
                crate::sys::spin::stats::report("worker");
                return 0;
            }
            Err(ReadError::Broken(message) | ReadError::Malformed(message)) => {
                eprintln!("crew worker {}: {message}", std::process::id());
                return 3;
            }
            Err(ReadError::Timeout) => continue,
        };
        let (reply, payload) = match frame.header {
            ToWorker::Call {
                id,
                name,
                signature,
                chunk,
            } => {
                let (outcome, payload) = run_call(&name, signature, chunk, &frame.payload);
                (ToParent::Done { id, outcome }, payload)
            }
            ToWorker::Init { name, signature } => {
                let (outcome, payload) = run_call(&name, signature, false, &frame.payload);
                (ToParent::InitDone { outcome }, payload)
            }
        };
        if write_frame(&mut writer, &reply, &payload).is_err() {
            return 3;
        }
        // Flush every reply before the next call: if that call crashes the worker, the results
        // of the calls before it must already be with the parent.
        if writer.flush().is_err() {
            return 3;
        }
    }
}

/// Exits the worker as soon as the parent's end of the socket closes, even mid-task: a worker
/// never outlives its parent (the pool also sets `PR_SET_PDEATHSIG`, which is tied to the
/// parent's thread; this covers every other case).
fn start_watchdog(stream: &UnixStream) {
    let Ok(watched) = stream.try_clone() else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("crew-watchdog".to_owned())
        .stack_size(64 * 1024)
        .spawn(move || {
            // The parent is gone or closed us, and nobody wants our results.
            if crate::sys::socket::wait_hung_up(&watched).is_ok() {
                crate::sys::spin::stats::report("worker");
                // SAFETY: _exit ends the process at once without running atexit handlers or
                // touching locks another thread may hold.
                unsafe { libc::_exit(0) };
            }
        });
}
