//! `gil`: threads whose computing holds one global lock, as CPython's GIL does, so the seed's
//! flat CPU-bound line shows up in Rust: two clients, still one core of `fib`.

use std::sync::Arc;

use parking_lot::Mutex;

use super::conn::Compute;
use super::spec::{Design, ModelInfo, Spec};
use super::threads::bind_with;
use crate::fib::fib;

pub(super) const MODEL: Spec = Spec {
    info: ModelInfo {
        name: "gil",
        seed: None,
        python_peer: "thread_server",
        design: Design {
            concurrent_clients: true,
            parallel_compute: false,
        },
        children: None,
    },
    bind: |addr, config| bind_with(addr, config, |_, _| Ok(compute())),
};

fn compute() -> Compute {
    let gil = Arc::new(Mutex::new(()));
    Arc::new(move |n| {
        let _held = gil.lock();
        Ok(fib(n))
    })
}
