//! Processes: a [`ProcessPool`] with the thread pool's API, one-off child
//! processes ([`spawn`](fn@spawn)) and inter-process [`Queue`]s and [`pipe`](fn@pipe)s (Python's `multiprocessing`
//! and `ProcessPoolExecutor`).
//!
//! A task is a plain function marked [`#[crew::task]`](macro@crate::task), which registers it
//! under a stable name (`module_path::name`) so that another process can find it; it stays an
//! ordinary `fn` that the thread pool accepts too. Arguments and results are serde values. A
//! worker is the same executable started again (or any program registering the same tasks);
//! its `main` must call [`crew::init()`](crate::init) first. The
//! [protocol note](crate::task::protocol) explains the handshake, the frames, the per-task
//! compatibility check and what happens when a worker dies; the [task layer](mod@crate::task)
//! holds the registry and the codec every executor shares.
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
pub(crate) mod child; // the actor placement starts its workers with it
mod pipe;
mod pool;
mod queue;
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
