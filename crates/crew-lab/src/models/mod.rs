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
pub(crate) mod reuseport;
mod shards;
mod single;
mod threads;

pub(crate) fn run(server: Server, shutdown: &Shutdown) -> anyhow::Result<()> {
    let Server {
        model,
        config,
        addr,
        mut listeners,
        reserved,
        children,
    } = server;
    let compute: Arc<dyn Fn(u32) -> u64 + Send + Sync> = match model {
        Model::Gil => gil::compute(),
        Model::LoopbackLimit => Arc::new(loopback::compute),
        _ => Arc::new(crate::fib::fib),
    };
    match model {
        Model::Single => single::run(&listeners[0], &config, shutdown),
        Model::Threads | Model::Gil | Model::LoopbackLimit => {
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
        Model::ProcessPool => anyhow::bail!("model `{model}` is {}", model.pending().unwrap_or("")),
    }
}
