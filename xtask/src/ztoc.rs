//! `cargo xtask ztoc ...` and `cargo xtask bench ...`.

#[derive(clap::Args)]
pub struct Args {}

#[derive(clap::Args)]
pub struct BenchArgs {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

pub fn bench(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
