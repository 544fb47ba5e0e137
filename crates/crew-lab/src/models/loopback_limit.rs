//! The row of `loopback-limit`: a thread per connection computing with [`super::loopback`]
//! (a table, no work), the most requests/sec the load generator can see on this machine.

use std::sync::Arc;

use super::spec::{Design, ModelInfo, Spec};
use super::threads::bind_with;

pub(super) const MODEL: Spec = Spec {
    info: ModelInfo {
        name: "loopback-limit",
        seed: None,
        python_peer: "thread_server",
        design: Design::PARALLEL,
        children: None,
        yardstick: true,
    },
    bind: |addr, config| bind_with(addr, config, |_| Ok(Arc::new(super::loopback::compute))),
};
