//! `cargo xtask e2e`: runs the end-to-end harness, the `soci-e2e` crate in `tests/e2e`, as
//! `cargo run -p soci-e2e -- <arguments>` (its flags are documented there: `cargo xtask e2e
//! --help`). A separate crate keeps the harness, and the AWS and registry code it needs, out of
//! the xtask binary.

use std::process::{Command, Stdio};

use anyhow::{Context, bail};

#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// The harness's arguments, passed through unchanged (`--help` prints them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(crate::project_root())
        .args(["run", "--quiet", "-p", "soci-e2e", "--"])
        .args(&args.args)
        .stdin(Stdio::null())
        .status()
        .context("running `cargo run -p soci-e2e`")?;
    if !status.success() {
        bail!("the end-to-end test failed ({status})");
    }
    Ok(())
}
