//! `crew run`: not built yet.

use std::process::ExitCode;

/// Arguments of `crew run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`crew run` is not built yet")
}
