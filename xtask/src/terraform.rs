//! `cargo xtask terraform` (not written yet).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask terraform` is not implemented yet")
}
