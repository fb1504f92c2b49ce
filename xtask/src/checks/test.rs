//! `cargo xtask test`: the whole test suite, as CI runs it, on a fresh machine too.
//!
//! 0. `cargo xtask setup`: installs what is missing (about a second when nothing is), and fails
//!    if the system Python's packages changed; then `actionlint` and `zizmor` on `.github/`.
//! 1. `cargo test --workspace`: unit tests, the conformance vectors, property tests, and the
//!    integration tests against a real registry (docker-registry) and AWS emulator (moto server),
//!    which the tests start themselves on free 127.0.0.1 ports.
//! 2. `cargo xtask terraform`: fmt, validate, `terraform test`, checkov, and apply / plan /
//!    destroy of `examples/basic` against moto.
//! 3. `cargo xtask e2e`: the packaged Lambdas on a local stack, push to index.
//!
//! Every step after setup runs; the command fails if any step failed, naming them all.

use std::time::Instant;

use anyhow::Context;
use xshell::{Shell, cmd};

#[derive(clap::Args)]
pub struct Args {
    /// Do not run `cargo xtask setup` first (everything is installed, or no network).
    #[arg(long)]
    skip_setup: bool,
    /// Skip `cargo xtask terraform`.
    #[arg(long)]
    skip_terraform: bool,
    /// Skip `cargo xtask e2e`.
    #[arg(long)]
    skip_e2e: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.skip_setup {
        let started = Instant::now();
        super::setup::ensure().context("cargo xtask setup")?;
        eprintln!("setup: {:.0} s", started.elapsed().as_secs_f64());
    }
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    // Not `current_exe()`: `cargo test --workspace` may rebuild this very binary (the workspace's
    // unified features differ from `cargo run -p xtask`'s) and replace the file under us, after
    // which that path names a deleted file. /proc/self/exe still opens the image that runs.
    let xtask = std::path::PathBuf::from("/proc/self/exe");
    let mut failed = Vec::new();
    let mut timings = Vec::new();
    let mut step = |name: &str, result: xshell::Result<()>, started: Instant| {
        timings.push(format!("{name}: {:.0} s", started.elapsed().as_secs_f64()));
        if let Err(e) = result {
            eprintln!("step `{name}` failed: {e}");
            failed.push(name.to_string());
        }
    };

    let started = Instant::now();
    step("workflows", check_workflows(&sh), started);
    let started = Instant::now();
    step(
        "cargo test",
        cmd!(sh, "cargo test --workspace --locked --no-fail-fast").run(),
        started,
    );
    if !args.skip_terraform {
        let started = Instant::now();
        step(
            "xtask terraform",
            cmd!(sh, "{xtask} terraform").run(),
            started,
        );
    }
    if !args.skip_e2e {
        let started = Instant::now();
        step("xtask e2e", cmd!(sh, "{xtask} e2e").run(), started);
    }
    eprintln!("test steps: {}", timings.join(", "));
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("failed steps: {}", failed.join(", "))
    }
}

/// `actionlint` (with shellcheck on the `run:` scripts) and `zizmor` (offline audits, the
/// workflows and dependabot.yml) on `.github/`: any finding fails. Both come from the venv.
fn check_workflows(sh: &Shell) -> xshell::Result<()> {
    let actionlint = tool("actionlint");
    let shellcheck = tool("shellcheck");
    let zizmor = tool("zizmor");
    cmd!(sh, "{actionlint} -shellcheck {shellcheck}").run()?;
    cmd!(sh, "{zizmor} --offline --no-progress .github").run()
}

/// The venv's copy (`activate_venv` put it first on PATH), named by path in the command line.
fn tool(name: &str) -> std::path::PathBuf {
    test_support::find_binary(name).unwrap_or_else(|_| name.into())
}
