//! `cargo xtask`: the project's developer and release commands (one binary, subcommands).
//!
//! Each subcommand lives in its own module with an `Args` struct and a `run` function, in a
//! folder per concern: `soci/` (what users run on images: `ztoc`, `index`, `demo`), `release/`
//! (`package`, `publish`), `checks/` (`setup`, `test`, `terraform`, `e2e`) and `bench/`.

mod bench;
mod checks;
mod release;
mod soci;

use clap::{Parser, Subcommand};
pub use xtask::workspace::project_root;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "soci-lambda developer and release commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build, inspect, verify and extract through zTOCs.
    Ztoc(soci::ztoc::Args),
    /// Benchmarks (zTOC build throughput against a bare inflate, end-to-end indexing).
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Write a generated two-platform image into an OCI layout (or, with --registry, a local
    /// docker-registry), index it and verify the graph: nothing needed but Rust.
    Demo(soci::demo::Args),
    /// Why is my task still on overlayfs? What a deployment of an image reference would find.
    Doctor(soci::doctor::Args),
    /// Index an image in any OCI registry or OCI image layout, the way the Lambda does.
    Index(soci::index::Args),
    /// Index the images already in ECR that the deployed filter selects and that have no index.
    Backfill(soci::backfill::Args),
    /// Build reproducible Lambda zips for x86_64 and arm64.
    Package(release::package::Args),
    /// Upload the Lambda zips to S3 and print the Terraform module inputs.
    Publish(release::publish::Args),
    /// Install what the tests need, only what is missing (`test` runs it first): Debian
    /// packages, the Python tools in the project's venv (target/venv), the Rust targets.
    Setup(checks::setup::Args),
    /// The whole test suite: cargo tests, terraform checks, end to end.
    Test(checks::test::Args),
    /// Terraform checks: fmt, validate, `terraform test`, checkov, apply/plan/destroy against moto.
    Terraform(checks::terraform::Args),
    /// End-to-end test on a local stack built from the packaged artifacts.
    E2e(checks::e2e::Args),
}

fn main() -> std::process::ExitCode {
    // Before anything else (and any thread): the project's venv tools come first on PATH.
    checks::setup::activate_venv();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ztoc(args) => soci::ztoc::run(args),
        Command::Bench(bench) => bench::run(bench),
        Command::Demo(args) => soci::demo::run(args),
        Command::Doctor(args) => soci::doctor::run(args),
        Command::Index(args) => soci::index::run(args),
        Command::Backfill(args) => soci::backfill::run(args),
        Command::Package(args) => release::package::run(args),
        Command::Publish(args) => release::publish::run(args),
        Command::Setup(args) => checks::setup::run(args),
        Command::Test(args) => checks::test::run(args),
        Command::Terraform(args) => checks::terraform::run(args),
        Command::E2e(args) => checks::e2e::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // What a Unix tool killed by SIGPIPE reports: the reader went away, nothing to say.
        Err(err)
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::from(141)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
