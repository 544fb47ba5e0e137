//! The library half of the `crew` command: what other programs (and the `crew` binary's tests)
//! share with it. Today that is the [`tasks`] built into `crew`, which `crew worker` serves to
//! a cluster, so a submitter that links this crate can send them by function.

pub mod tasks;
