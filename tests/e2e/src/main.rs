//! # `cargo xtask e2e` (`cargo run -p soci-e2e`): the product, end to end, from the packaged
//! artifacts
//!
//! What a user deploys is what this runs: the zips of `cargo xtask package`, uploaded by
//! `cargo xtask publish`, deployed by the Terraform module, triggered by an ECR push event.
//!
//! 1. **Services** on 127.0.0.1: an OCI registry (Debian's `docker-registry`, via
//!    `test-support`), `moto_server` (S3, IAM, Lambda control plane, EventBridge, Logs, STS), and
//!    a Lambda emulator of ours (`emulator.rs`, std only): the Runtime API, one port per
//!    function, and the Invoke API (`RequestResponse` → 200 with the payload, `Event` → 202 and
//!    queued, failed async invocations retried like Lambda, `--async-retries`, default 2). Every
//!    attempt's outcome is recorded for the checks. (`cargo lambda watch --only-lambda-apis`
//!    was tried: its `Event` invokes block and answer 200, so the filter would see a failed async
//!    invoke; see `emulator.rs`.)
//! 2. **Package, publish, deploy**: `cargo xtask package` and `cargo xtask publish --json` run as
//!    child processes of this binary (`cargo` in the workspace root), with this process's environment: the zips are read from
//!    `<cargo target dir>/lambda` (`CARGO_TARGET_DIR` is honoured by both, consistently). A
//!    Terraform root in the temp folder calls the module once per architecture (prefixes
//!    `<prefix>-x86-64`, `<prefix>-arm64`) with the filter `e2e/app:*`, `min_layer_size` 1 MiB and
//!    `span_size` 256 KiB, and is applied against the AWS side.
//! 3. **Run the packaged `bootstrap`s**, unzipped from the zips, x86_64 natively, then arm64
//!    under `qemu-aarch64-static -L /usr/aarch64-linux-gnu` (Debian `qemu-user-static`,
//!    `libc6-arm64-cross`, `libgcc-s1-arm64-cross`). Each gets exactly the environment
//!    `GetFunctionConfiguration` returns for its function (checked: runtime, handler,
//!    architecture, `CodeSha256` = the zip being run, filters, generator ARN), plus what a Lambda
//!    sandbox provides (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`, ...), fake
//!    credentials, `AWS_ENDPOINT_URL_LAMBDA` = the emulator (the filter's async invoke) and, for
//!    the generator, `SOCI_REGISTRY_URL` = the test registry.
//! 4. **Push and trigger**: a generated two-platform image (linux/amd64, linux/arm64/v8; real
//!    gzip tar layers, two above 1 MiB, one below) is pushed to `e2e/app:<tag>`; the ECR "Image
//!    Action" event EventBridge would send is checked against the deployed rule with
//!    `TestEventPattern` (against moto, whose `TestEventPattern` is an unimplemented stub, with
//!    moto's own `EventPattern` matcher, the code its `PutEvents` routes with, run by
//!    `python3`), then delivered to the filter as EventBridge does (async invoke).
//! 5. **The graph**: `<tag>-soci` is an OCI index whose annotated manifests
//!    (`com.amazon.soci.index-digest`) and SOCI index descriptors match per platform; each SOCI
//!    index (v2, `{}` config, build tool annotation) lists exactly the layers >= 1 MiB, and every
//!    zTOC passes `soci_core::verify` against its layer; every JSON document re-encodes to the
//!    same bytes through soci-core; `<tag>` still points at the original index.
//! 6. **Negative paths**: the same event again pushes nothing new (`already_indexed`, same
//!    `<tag>-soci` digest); the event of the `<tag>-soci` push and an untagged child push are
//!    skipped by the filter (no generator invocation); `e2e/other` (not in the filters) gets
//!    nothing; an event that is not a successful push does not match the rule; with the
//!    registry unreachable the generator invocation fails (every async retry) with a message
//!    naming the registry address.
//! 7. **Cleanup**: every process started (registry, moto, bootstraps) is stopped by process id
//!    from a `Drop` guard, on success, error or panic; Terraform state is destroyed when the stack
//!    is not our own moto; all files go to one temp folder, removed at the end (`--keep-temp`).
//!
//! Wall time per phase and in total is printed at the end; any failed check exits non-zero
//! with the reason.
//!
//! ## Against LocalStack or AWS
//!
//! The AWS side and the registry are parameters; the Lambda runtime is always local (the
//! packaged binaries run here, against the emulator), configured from the deployed functions:
//!
//! ```text
//! cargo xtask e2e                                      # moto + docker-registry, started here
//! cargo xtask e2e --aws-endpoint http://localhost:4566 # LocalStack (or SOCI_E2E_AWS_ENDPOINT)
//! cargo xtask e2e --real-aws --region eu-west-1 \
//!     --bucket my-assets-bucket --prefix soci-e2e \
//!     --registry-url https://123456789012.dkr.ecr.eu-west-1.amazonaws.com \
//!     --registry-username AWS --registry-password "$(aws ecr get-login-password)"
//! ```
//!
//! With `--real-aws` (or an endpoint) the credentials come from the SDK's default chain
//! (`AWS_PROFILE`, `AWS_ACCESS_KEY_ID`, ...); the run deploys two module instances
//! (`<prefix>-x86-64-*`, `<prefix>-arm64-*`) and destroys them at the end. Against ECR the
//! repositories `e2e/app` and `e2e/other` must exist. `SOCI_E2E_REGISTRY_URL`,
//! `SOCI_E2E_REGISTRY_USERNAME` and `SOCI_E2E_REGISTRY_PASSWORD` may replace the flags.

mod emulator;
mod image;
mod scenarios;
mod stack;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser as _;
use soci_index_generator::{Credentials, RegistryClient, RetryPolicy};

use emulator::Emulator;
use stack::{ArchChoice, AwsSide, Deployment, Phases, Terraform};

const INCLUDED_REPO: &str = "e2e/app";
const EXCLUDED_REPO: &str = "e2e/other";
const MIN_LAYER_SIZE: u64 = 1 << 20;
const SPAN_SIZE: u64 = 256 * 1024;
const INDEX_TAG_SUFFIX: &str = "-soci";

#[derive(clap::Parser)]
#[command(
    name = "cargo xtask e2e",
    about = "End-to-end test on a local stack built from the packaged artifacts"
)]
pub struct Args {
    /// Use this AWS endpoint (LocalStack: http://localhost:4566) instead of starting moto
    /// [env: SOCI_E2E_AWS_ENDPOINT].
    #[arg(long)]
    pub aws_endpoint: Option<String>,
    /// Deploy to real AWS (SDK default credential chain, no endpoint override).
    #[arg(long, conflicts_with = "aws_endpoint")]
    pub real_aws: bool,
    /// AWS region [default: AWS_REGION, else us-east-1].
    #[arg(long)]
    pub region: Option<String>,
    /// S3 bucket for the Lambda zips (created when missing).
    #[arg(long, default_value = "soci-e2e-assets")]
    pub bucket: String,
    /// Resource prefix (`<prefix>-x86-64`, `<prefix>-arm64`).
    #[arg(long, default_value = "soci-e2e")]
    pub prefix: String,
    /// Use this registry (`http://host:port`, `https://<account>.dkr.ecr.<region>.amazonaws.com`)
    /// instead of starting docker-registry [env: SOCI_E2E_REGISTRY_URL].
    #[arg(long)]
    pub registry_url: Option<String>,
    /// Basic-auth user for --registry-url [env: SOCI_E2E_REGISTRY_USERNAME].
    #[arg(long)]
    pub registry_username: Option<String>,
    /// Basic-auth password for --registry-url [env: SOCI_E2E_REGISTRY_PASSWORD].
    #[arg(long)]
    pub registry_password: Option<String>,
    /// Architectures to run (x86_64 natively, arm64 under qemu on an x86_64 host).
    #[arg(long, value_enum, default_value_t = ArchChoice::All)]
    pub arch: ArchChoice,
    /// Use the zips already in `<target dir>/lambda` instead of running `cargo xtask package`.
    #[arg(long)]
    pub no_package: bool,
    /// Retries of a failed async invocation in the emulator (Lambda's default is 2).
    #[arg(long, default_value_t = 2)]
    pub async_retries: u32,
    /// Seconds to wait for the functions after each event.
    #[arg(long, default_value_t = 240)]
    pub wait_secs: u64,
    /// Cap on one invocation's run time in the emulator, in seconds (the generator's 900 s
    /// Lambda timeout is longer than this test should ever wait).
    #[arg(long, default_value_t = 180)]
    pub invocation_timeout_secs: u64,
    /// Keep the temp folder (logs, registry storage, Terraform root, unzipped bootstraps) and print
    /// its path.
    #[arg(long)]
    pub keep_temp: bool,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut phases = Phases::default();
    let mut checks = Vec::new();
    let temp = test_support::work_dir("soci-e2e", args.keep_temp).map_err(anyhow::Error::from)?;
    println!("e2e: temp folder {}", temp.path().display());
    let result = run_all(args, temp.path(), &mut phases, &mut checks);
    if args.keep_temp {
        eprintln!("e2e: kept {}", temp.path().display());
    }
    drop(temp);
    phases.print(started.elapsed());
    match &result {
        Ok(()) => {
            println!("\n== cargo xtask e2e: every check passed ==");
            for check in &checks {
                println!("  ok  {check}");
            }
            println!("e2e: {} passed, 0 failed", checks.len());
        }
        Err(err) => {
            println!(
                "\n== cargo xtask e2e: FAILED after {} passed checks ==",
                checks.len()
            );
            println!("  {err:#}");
        }
    }
    result
}

fn env_or(value: &Option<String>, name: &str) -> Option<String> {
    value
        .clone()
        .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// The registry the run pushes to and the generator reads from.
pub struct RegistrySide {
    _local: Option<test_support::Registry>,
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl RegistrySide {
    /// Gives a `cargo xtask` command this registry's credentials, the way the commands read them
    /// (`SOCI_REGISTRY_USERNAME` / `_PASSWORD`), and removes any the caller's environment has.
    pub fn credentials_env(&self, command: &mut std::process::Command) {
        for (name, value) in [
            ("SOCI_REGISTRY_USERNAME", &self.username),
            ("SOCI_REGISTRY_PASSWORD", &self.password),
        ] {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
    }

    pub fn client(&self) -> anyhow::Result<RegistryClient> {
        let credentials =
            Credentials::basic_or_anonymous(self.username.as_deref(), self.password.as_deref());
        RegistryClient::new(
            &self.url,
            credentials,
            RetryPolicy {
                attempts: 3,
                base_delay: Duration::from_millis(200),
            },
        )
        .with_context(|| format!("registry client for {}", self.url))
    }
}

/// Everything one architecture's pass shares.
pub struct Ctx<'a> {
    pub args: &'a Args,
    pub rt: &'a tokio::runtime::Runtime,
    pub temp: PathBuf,
    pub region: String,
    pub aws: &'a AwsSide,
    pub registry: &'a RegistrySide,
    pub emulator: &'a mut Emulator,
    pub lambda_api: aws_sdk_lambda::Client,
    pub emulator_invoke: aws_sdk_lambda::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub zips: PathBuf,
}

fn run_all(
    args: &Args,
    temp: &Path,
    phases: &mut Phases,
    checks: &mut Vec<String>,
) -> anyhow::Result<()> {
    let arches = args.arch.arches();
    let region = env_or(&args.region, "AWS_REGION").unwrap_or_else(|| "us-east-1".into());
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;

    // Declared in this order so they drop in the reverse one: processes, then Terraform
    // (destroy), then the emulator, moto and the registry.
    let (registry, aws, mut emulator) = phases
        .run("start registry, AWS side, Lambda emulator", || {
            start_services(args, temp)
        })?;
    for &arch in &arches {
        stack::launcher(arch)?; // a missing qemu fails now, not after the deploy
    }

    if args.no_package {
        println!(
            "\n=== e2e: cargo xtask package: skipped (--no-package), using the zips already built ==="
        );
    } else {
        phases.run("cargo xtask package", || stack::package(args.arch))?;
    }
    let aws_env = aws.env(&region);
    let sdk = rt.block_on(aws.sdk_config(&region));
    let assets = phases.run("cargo xtask publish", || {
        rt.block_on(stack::ensure_bucket(
            &sdk,
            aws.endpoint().is_some(),
            &args.bucket,
            &region,
        ))?;
        stack::publish(&args.bucket, aws.endpoint(), &region, args.arch, &aws_env)
    })?;

    let mut terraform = Terraform::new(temp, &aws_env, !matches!(aws, AwsSide::Moto(_)))?;
    let filters = vec![format!("{INCLUDED_REPO}:*")];
    let deployments = phases.run("terraform apply (module per architecture)", || {
        terraform.write_root(&stack::TerraformSettings {
            region: &region,
            endpoint: aws.endpoint(),
            prefix: &args.prefix,
            filters: &filters,
            min_layer_size: MIN_LAYER_SIZE,
            span_size: SPAN_SIZE,
            assets: &assets,
            arches: &arches,
        })?;
        terraform.apply(&arches)
    })?;
    checks.push(format!(
        "terraform apply of the module for {arches:?} against {}",
        aws.describe()
    ));

    let mut context = Ctx {
        args,
        rt: &rt,
        temp: temp.to_path_buf(),
        region: region.clone(),
        aws: &aws,
        registry: &registry,
        lambda_api: aws_sdk_lambda::Client::new(&sdk),
        emulator_invoke: emulator_client(&sdk, &emulator),
        emulator: &mut emulator,
        events: aws_sdk_eventbridge::Client::new(&sdk),
        zips: stack::zips_dir()?,
    };
    for &arch in &arches {
        let deployment: &Deployment = deployments
            .get(&arch)
            .with_context(|| format!("no deployment for {arch}"))?;
        scenarios::run_pass(&mut context, phases, checks, arch, deployment)?;
    }
    drop(context);
    drop(terraform);
    Ok(())
}

/// The registry, the AWS side and the Lambda emulator.
fn start_services(args: &Args, temp: &Path) -> anyhow::Result<(RegistrySide, AwsSide, Emulator)> {
    let registry = match env_or(&args.registry_url, "SOCI_E2E_REGISTRY_URL") {
        Some(url) => RegistrySide {
            _local: None,
            url,
            username: env_or(&args.registry_username, "SOCI_E2E_REGISTRY_USERNAME"),
            password: env_or(&args.registry_password, "SOCI_E2E_REGISTRY_PASSWORD"),
        },
        None => {
            let local = test_support::Registry::start_in(&temp.join("registry"))
                .map_err(|e| anyhow::anyhow!("starting docker-registry: {e}"))?;
            let url = format!("http://{}", local.addr);
            RegistrySide {
                _local: Some(local),
                url,
                username: None,
                password: None,
            }
        }
    };
    println!("registry: {}", registry.url);
    let aws = if args.real_aws {
        AwsSide::Real
    } else if let Some(endpoint) = env_or(&args.aws_endpoint, "SOCI_E2E_AWS_ENDPOINT") {
        AwsSide::Endpoint(endpoint)
    } else {
        AwsSide::Moto(
            test_support::Moto::start()
                .map_err(|e| anyhow::anyhow!("starting moto_server: {e}"))?,
        )
    };
    println!("AWS: {}", aws.describe());
    let emulator = Emulator::start(args.async_retries, Duration::from_secs(1))?;
    println!(
        "Lambda emulator: Invoke API at {}",
        emulator.invoke_endpoint()
    );
    Ok((registry, aws, emulator))
}

/// A Lambda client for the emulator's Invoke API (what EventBridge's delivery goes through).
fn emulator_client(sdk: &aws_config::SdkConfig, emulator: &Emulator) -> aws_sdk_lambda::Client {
    let creds = aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "e2e");
    aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(sdk)
            .endpoint_url(emulator.invoke_endpoint())
            .credentials_provider(creds)
            .build(),
    )
}
