//! `crew bench pool`: not built yet.

use std::process::ExitCode;

/// Arguments of `crew bench pool`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`crew bench pool` is not built yet")
}
