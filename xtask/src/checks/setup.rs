//! `cargo xtask setup`: installs what the tests need (runs `xtask/setup.sh`, which CI runs too).

use xshell::{Shell, cmd};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    cmd!(sh, "bash xtask/setup.sh").run()?;
    Ok(())
}
