//! One module per concurrency model. Blocking models share [`conn`]; async ones share [`aio`].

use std::sync::Arc;

use crate::server::{Model, Server};
use crate::Shutdown;

mod aio;
mod asyncio;
mod conn;
mod gil;
mod loopback;
mod pool;
mod process_pool;
pub(crate) mod reuseport;
mod shards;
mod single;
mod threads;

/// How a blocking model computes a reply: `fib(n)` or a message for an `error:` line.
pub(crate) type Compute = Arc<dyn Fn(u32) -> Result<u64, String> + Send + Sync>;

pub(crate) fn run(server: Server, shutdown: &Shutdown) -> anyhow::Result<()> {
    let Server {
        model,
        config,
        addr,
        mut listeners,
        reserved,
        children,
    } = server;
    let compute: Compute = match model {
        Model::Gil => gil::compute(),
        Model::LoopbackLimit => Arc::new(loopback::compute),
        Model::ProcessPool => process_pool::compute(&config)?,
        _ => Arc::new(|n| Ok(crate::fib::fib(n))),
    };
    match model {
        Model::Single => single::run(&listeners[0], &config, shutdown),
        Model::Threads | Model::Gil | Model::LoopbackLimit | Model::ProcessPool => {
            threads::run(&listeners[0], &config, compute, shutdown)
        }
        Model::Pool => pool::run(&listeners[0], &config, shutdown),
        Model::Reuseport => match children {
            Some(children) => reuseport::run(children, reserved, shutdown),
            None => anyhow::bail!("reuseport server on {addr} has no children"),
        },
        Model::Async => asyncio::run(listeners.remove(0), config, false, shutdown),
        Model::AsyncOffload => asyncio::run(listeners.remove(0), config, true, shutdown),
        Model::Shards => shards::run(listeners, config, shutdown),
    }
}
