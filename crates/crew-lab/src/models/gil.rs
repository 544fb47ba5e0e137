//! `gil`: threads whose computing holds one global lock, as CPython's GIL does, so the seed's
//! flat CPU-bound line shows up in Rust: two clients, still one core of `fib`.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::fib::fib;

pub(super) fn compute() -> super::Compute {
    let gil = Arc::new(Mutex::new(()));
    Arc::new(move |n| {
        let _held = gil.lock();
        Ok(fib(n))
    })
}
