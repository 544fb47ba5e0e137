//! Processes: a [`ProcessPool`] with the thread pool's API, one-off child
//! processes ([`spawn`]) and inter-process [`Queue`]s and [`pipe`]s (Python's `multiprocessing`
//! and `ProcessPoolExecutor`).
//!
//! A task is a plain function marked [`#[crew::task]`](crate::task), which registers it under
//! a stable name (`module_path::name`) so that another process can find it; it stays an ordinary
//! `fn` that the thread pool accepts too. Arguments and results are serde values. A worker is the
//! same executable started again; its `main` must call [`crew::init()`](crate::init) first. The
//! [`protocol`] note explains the handshake, the frames and what happens when a worker dies.
//!
//! ```no_run
//! use crew::{Executor, ProcessPool};
//!
//! #[crew::task]
//! fn is_prime(n: u64) -> bool {
//!     n > 1 && (2..).take_while(|i| i * i <= n).all(|i| n % i != 0)
//! }
//!
//! fn main() {
//!     crew::init();
//!     let pool = ProcessPool::new(2);
//!     let primes: Vec<bool> = pool.map(is_prime, [2, 15, 17]).map(Result::unwrap).collect();
//!     assert_eq!(primes, [true, false, true]);
//! }
//! ```

mod bytes;
mod child;
pub(crate) mod codec;
mod pipe;
mod pool;
pub mod protocol;
mod queue;
mod registry;
mod spawn;
mod worker;

pub use bytes::Bytes;
pub use pipe::{pipe, Connection};
pub use pool::{ProcessPool, ProcessPoolBuilder};
pub use queue::{Disconnected, GetError, GetTimeoutError, PutError, PutTimeoutError, Queue};
pub use spawn::{spawn, Process};
pub use worker::init;

#[cfg(all(test, not(loom)))]
mod tests;

/// What `#[crew::task]` expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::registry::{call_chunk, call_one, TaskEntry};
    pub use inventory;
}
