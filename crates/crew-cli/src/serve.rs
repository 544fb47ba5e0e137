//! `crew serve`: not built yet.

use std::process::ExitCode;

/// Arguments of `crew serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`crew serve` is not built yet")
}
