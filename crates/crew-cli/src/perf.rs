//! `crew perf`: not built yet.

use std::process::ExitCode;

/// Arguments of `crew perf`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`crew perf` is not built yet")
}
