//! crew: concurrency for Rust, from threads to processes to a cluster.
//!
//! One [`Executor`] API (submit, map with chunks and a bounded window, [`as_completed`], [`wait`],
//! cancel, timeouts, callbacks, shutdown) served by a [`ThreadPool`] and, in later modules, a
//! process pool and a cluster: moving work from threads to processes to machines is a one-line
//! change. Every [`TaskHandle`] can be awaited.
//!
//! ```
//! use crew::{Executor, ThreadPool};
//!
//! fn gcd((mut a, mut b): (u64, u64)) -> u64 {
//!     while b != 0 {
//!         (a, b) = (b, a % b);
//!     }
//!     a
//! }
//!
//! let pool = ThreadPool::new(2);
//! let results: Vec<u64> = pool
//!     .map(gcd, vec![(1963309, 2265973), (2030677, 3814172)])
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(results, [1, 1]);
//! ```
//!
//! Cargo features, both on by default: `async` (queues' `send`/`recv` futures) and `progress`
//! (`crew::progress`: tqdm-style bars on `Map`, `as_completed` and pipelines, drawn by
//! indicatif only when standard error is a terminal). `default-features = false` leaves both
//! out, and indicatif with them.

// `#[crew::task]` expands to paths starting with `::crew`, which crew's own tests use too.
#[cfg(test)]
extern crate self as crew;

mod completion;
mod error;
mod executor;
mod exit;
mod lifecycle;
mod loom;
mod sys;
mod thread_pool;

// async-nats 0.51 needs Rust 1.89, so this feature does; the rest of crew keeps the workspace's
// older MSRV (raising it there would turn on newer lints in every crate).
#[cfg(feature = "cluster")]
#[clippy::msrv = "1.89"]
pub mod cluster;

pub mod actor;
pub mod pipeline;
pub mod process;
#[cfg(feature = "progress")]
pub mod progress;
pub mod queue;
pub mod subprocess;
pub mod sync;
pub mod task;
pub mod thread;

pub use error::{SubmitError, TaskError, WorkerId};
pub use executor::{
    as_completed, wait, AsCompleted, Executor, Map, MapOptions, Message, ReturnWhen,
};
pub use exit::ExitStatus;
pub use task::TaskHandle;
pub use thread_pool::{ThreadPool, ThreadPoolBuilder};

pub use process::{init, ProcessPool, ProcessPoolBuilder};

/// Registers a function as a task that worker processes can run by name; see
/// [`process`] and the [`task`](mod@task) layer.
///
/// The name is `module_path::function` unless given: `#[crew::task(name = "billing::total")]`
/// keeps it stable when the function moves.
///
/// ```no_run
/// #[crew::task]
/// fn gcd((a, b): (u64, u64)) -> u64 {
///     if b == 0 { a } else { gcd((b, a % b)) }
/// }
///
/// #[crew::task(name = "billing::total")]
/// fn total(items: Vec<u64>) -> u64 {
///     items.iter().sum()
/// }
/// # fn main() {}
/// ```
///
/// Anything but `name = "..."` is refused at compile time:
///
/// ```compile_fail
/// #[crew::task(nom = "typo")]
/// fn f(x: u8) -> u8 {
///     x
/// }
/// # fn main() {}
/// ```
pub use crew_macros::task;

/// Makes an `impl` block an actor; see [`actor`](mod@actor).
pub use crew_macros::actor;

/// What `#[crew::task]` expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::task::{call_chunk, call_one, type_id_of, TaskEntry};
    pub use inventory;
    pub use serde;

    /// The start hook's result as the [`Actor`](crate::actor::Actor) trait wants it: `()` or
    /// `Result<(), E: Display>`.
    pub trait StartResult {
        /// Converts.
        ///
        /// # Errors
        /// The hook's error as text.
        fn into_start_result(self) -> Result<(), String>;
    }

    impl StartResult for () {
        fn into_start_result(self) -> Result<(), String> {
            Ok(())
        }
    }

    impl<E: std::fmt::Display> StartResult for Result<(), E> {
        fn into_start_result(self) -> Result<(), String> {
            self.map_err(|error| error.to_string())
        }
    }
}
