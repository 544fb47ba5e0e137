//! Named threads whose handle is a [`TaskHandle`]: Python's `threading.Thread(target=..., name=...)`.
//!
//! For locks, condition variables, barriers and thread-locals use `std` (or `parking_lot`):
//! [`std::sync::Mutex`] (Python `Lock`), `parking_lot::ReentrantMutex` (`RLock`),
//! [`std::sync::Condvar`], [`std::sync::Barrier`], [`std::thread_local!`] (`threading.local`).
//! crew adds what `std` lacks: [`Event`](crate::sync::Event), semaphores and closable queues.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{panic_message, TaskError};
use crate::task::{pair as task, TaskHandle};

/// Starts `f` on a new thread called `name` and returns a handle that joins it:
/// `result()` gives `f`'s value, or [`TaskError::Panicked`] with the panic message.
///
/// ```
/// let handle = crew::thread::spawn("sayhi", || {
///     format!("hello from {}", std::thread::current().name().unwrap())
/// })
/// .unwrap();
/// assert_eq!(handle.result().unwrap(), "hello from sayhi");
/// ```
///
/// # Errors
/// The operating system's error if it cannot start a thread.
pub fn spawn<T, F>(name: impl Into<String>, f: F) -> io::Result<TaskHandle<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (handle, completer) = task();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if completer.start() {
                completer.complete(run_catching(f));
            }
        })?;
    Ok(handle)
}

/// Runs `f`, turning a panic into [`TaskError::Panicked`].
pub(crate) fn run_catching<T>(f: impl FnOnce() -> T) -> Result<T, TaskError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| TaskError::Panicked {
        message: panic_message(&*payload),
    })
}
