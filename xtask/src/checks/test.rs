//! `cargo xtask test`: the whole test suite, as CI runs it.
//!
//! 1. `cargo test --workspace`: unit tests, the conformance vectors, property tests, and the
//!    integration tests against a real registry (docker-registry) and AWS emulator (moto server),
//!    which the tests start themselves on free 127.0.0.1 ports.
//! 2. `cargo xtask terraform`: fmt, validate, `terraform test`, checkov, and apply / plan /
//!    destroy of `examples/basic` against moto.
//! 3. `cargo xtask e2e`: the packaged Lambdas on a local stack, push to index.
//!
//! Every step runs; the command fails if any step failed, naming them all.

use std::time::Instant;

use xshell::{Shell, cmd};

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo xtask terraform`.
    #[arg(long)]
    skip_terraform: bool,
    /// Skip `cargo xtask e2e`.
    #[arg(long)]
    skip_e2e: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    let xtask = std::env::current_exe()?;
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
