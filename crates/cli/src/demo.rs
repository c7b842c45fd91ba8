//! `palisade demo` (being written).
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DemoArgs {}

pub fn run(_args: &DemoArgs) -> Result<ExitCode> {
    anyhow::bail!("demo not built yet")
}
