//! The model table: one line per concurrency model, one file per model.
//!
//! Each model's file holds its row, a `pub(super) const MODEL: Spec` (its [`ModelInfo`]: name,
//! seed counterpart, Python peer, what its design allows; and how to bind and run it), and its
//! code. Adding a model is that file and one line in the table below, which declares the module
//! and the [`Model`] variant. Blocking models share [`conn`] (connections, accept loop, request
//! loop), async ones [`aio`]; both drive the protocol's [`Session`](crate::session::Session).
//!
//! Dependencies go one way: this table uses the model files, which use [`spec`], [`conn`],
//! [`aio`] and the crate's configuration, listening and protocol modules, none of which use the
//! table.

use std::fmt;
use std::str::FromStr;

use spec::{ModelInfo, Spec};

mod aio;
mod conn;
pub(crate) mod spec;

/// Declares the model modules, the [`Model`] enum and its lookup in their `MODEL` rows.
macro_rules! table {
    ($($(#[$doc:meta])* $variant:ident => $module:ident,)*) => {
        $(mod $module;)*

        /// A concurrency model: how the service spreads connections and `fib` over threads,
        /// processes and event loops. Its row, [`Model::info`], names its seed counterpart and
        /// Python peer and says what its design allows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Model {
            $($(#[$doc])* $variant,)*
        }

        impl Model {
            /// Every model, in table order (the order the benchmark shows them).
            pub const ALL: [Model; [$(stringify!($variant)),*].len()] = [$(Model::$variant),*];

            pub(crate) const fn spec(self) -> &'static Spec {
                match self {
                    $(Model::$variant => &$module::MODEL,)*
                }
            }
        }
    };
}

table! {
    /// One thread, one client at a time: a second client waits.
    Single => single,
    /// A thread per connection.
    Threads => threads,
    /// Connections served by a fixed [`crew::ThreadPool`].
    Pool => pool,
    /// A thread per connection with `fib` in crew's process pool.
    ProcessPool => process_pool,
    /// N processes, each accepting on the same port with `SO_REUSEPORT`.
    Reuseport => reuseport,
    /// A tokio multi-thread runtime computing `fib` inline.
    Async => asyncio,
    /// tokio for I/O, `fib` above a threshold offloaded to a crew pool and awaited.
    AsyncOffload => async_offload,
    /// Thread-per-core: each thread its own current-thread runtime and `SO_REUSEPORT` listener.
    Shards => shards,
    /// Threads whose `fib` holds one global lock, reproducing CPython's GIL.
    Gil => gil,
}

impl Model {
    /// The model's row: name, seed counterpart, Python peer and what its design allows.
    pub fn info(self) -> &'static ModelInfo {
        &self.spec().info
    }

    /// The name used on the command line (`crew serve --model NAME`).
    pub fn name(self) -> &'static str {
        self.info().name
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Model::ALL
            .into_iter()
            .find(|model| model.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Model::ALL.iter().map(|m| m.name()).collect();
                format!("unknown model `{s}`: use one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_is_unique() {
        for model in Model::ALL {
            assert_eq!(model.name().parse::<Model>(), Ok(model));
            let same = Model::ALL.iter().filter(|m| m.name() == model.name());
            assert_eq!(same.count(), 1, "{model}");
        }
        let error = "fibers".parse::<Model>().unwrap_err();
        assert!(error.contains("async-offload"), "{error}");
    }

    #[test]
    fn only_single_and_gil_are_flat_on_cpu() {
        let flat: Vec<Model> = Model::ALL
            .into_iter()
            .filter(|m| !m.info().design.parallel_compute)
            .collect();
        assert_eq!(flat, [Model::Single, Model::Gil]);
    }

    /// The benchmark's targets, as its per-model special cases had them before the table.
    #[test]
    fn the_design_allows_what_the_benchmark_expects() {
        for model in Model::ALL {
            for cpu_bound in [false, true] {
                for clients in 1..=4 {
                    let expected = match model {
                        Model::Single => clients == 1,
                        Model::Gil => !cpu_bound || clients == 1,
                        _ => true,
                    };
                    let allowed = model.info().design.allows(cpu_bound, clients);
                    assert_eq!(allowed, expected, "{model} cpu={cpu_bound} {clients}c");
                }
            }
        }
    }

    #[test]
    fn python_peers_and_children_as_the_benchmark_expects() {
        let peer = |model: Model| model.info().python_peer;
        assert_eq!(peer(Model::Single), "one_server");
        assert_eq!(peer(Model::Threads), "thread_server");
        assert_eq!(peer(Model::Gil), "thread_server");
        assert_eq!(peer(Model::ProcessPool), "multiprocess_server");
        assert_eq!(peer(Model::Reuseport), "multiprocess_server");
        assert_eq!(peer(Model::Shards), "async_server");
        let with_children: Vec<Model> = Model::ALL
            .into_iter()
            .filter(|m| m.info().children.is_some())
            .collect();
        assert_eq!(with_children, [Model::Reuseport]);
        assert_eq!(Model::Reuseport.info().children, Some("threads"));
    }
}
