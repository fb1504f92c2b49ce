//! `cargo xtask index` (not written yet).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask index` is not implemented yet")
}

#[derive(clap::Args)]
pub struct BenchArgs {}

pub fn bench(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask bench index` is not implemented yet")
}
