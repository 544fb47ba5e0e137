//! `async-offload`: the `async` model's runtime for I/O, with `fib(n)` for `n` at or above a
//! threshold sent to a [`crew::ThreadPool`] and its [`crew::TaskHandle`] awaited, keeping the
//! event loop free.

use super::asyncio::bind_with;
use super::spec::{Design, ModelInfo, Spec};

pub(super) const MODEL: Spec = Spec {
    info: ModelInfo {
        name: "async-offload",
        seed: None,
        python_peer: "async_server",
        design: Design::PARALLEL,
        children: None,
    },
    bind: |addr, config| bind_with(addr, config, true),
};
