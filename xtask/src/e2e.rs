//! # `cargo xtask e2e`: the product, end to end, from the packaged artifacts
//!
//! What a user deploys is what this runs: the zips of `cargo xtask package`, uploaded by
//! `cargo xtask publish`, deployed by the Terraform module, triggered by an ECR push event.
//!
//! 1. **Services** on 127.0.0.1: an OCI registry (Debian's `docker-registry`, via
//!    `test-support`), `moto_server` (S3, IAM, Lambda control plane, EventBridge, Logs, STS), and
//!    a Lambda emulator of ours (`e2e_emulator.rs`, std only): the Runtime API, one port per
//!    function, and the Invoke API (`RequestResponse` → 200 with the payload, `Event` → 202 and
//!    queued, failed async invocations retried like Lambda, `--async-retries`, default 2). Every
//!    attempt's outcome is recorded for the checks. (`cargo lambda watch --only-lambda-apis`
//!    was tried: its `Event` invokes block and answer 200, so the filter would see a failed async
//!    invoke; see `e2e_emulator.rs`.)
//! 2. **Package, publish, deploy**: `cargo xtask package` and `cargo xtask publish --json` run as
//!    child processes of this binary, with this process's environment: the zips are read from
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

#[path = "e2e_emulator.rs"]
mod emulator;
#[path = "e2e_image.rs"]
mod image;
#[path = "e2e_stack.rs"]
mod stack;
#[path = "e2e_verify.rs"]
mod verify;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use soci_core::oci::{MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST};
use soci_index_generator::{Credentials, RegistryClient, RetryPolicy};

use crate::package::{Arch, ArchChoice};
use emulator::{Emulator, Record};
use stack::{AwsSide, Deployment, FunctionConfig, LambdaProcess, Phases, TempDir, Terraform};

const INCLUDED_REPO: &str = "e2e/app";
const EXCLUDED_REPO: &str = "e2e/other";
const MIN_LAYER_SIZE: u64 = 1 << 20;
const SPAN_SIZE: u64 = 256 * 1024;
const INDEX_TAG_SUFFIX: &str = "-soci";

#[derive(clap::Args)]
pub struct Args {
    /// Use this AWS endpoint (LocalStack: http://localhost:4566) instead of starting moto
    /// [env: SOCI_E2E_AWS_ENDPOINT].
    #[arg(long)]
    aws_endpoint: Option<String>,
    /// Deploy to real AWS (SDK default credential chain, no endpoint override).
    #[arg(long, conflicts_with = "aws_endpoint")]
    real_aws: bool,
    /// AWS region [default: AWS_REGION, else us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// S3 bucket for the Lambda zips (created when missing).
    #[arg(long, default_value = "soci-e2e-assets")]
    bucket: String,
    /// Resource prefix (`<prefix>-x86-64`, `<prefix>-arm64`).
    #[arg(long, default_value = "soci-e2e")]
    prefix: String,
    /// Use this registry (`http://host:port`, `https://<account>.dkr.ecr.<region>.amazonaws.com`)
    /// instead of starting docker-registry [env: SOCI_E2E_REGISTRY_URL].
    #[arg(long)]
    registry_url: Option<String>,
    /// Basic-auth user for --registry-url [env: SOCI_E2E_REGISTRY_USERNAME].
    #[arg(long)]
    registry_username: Option<String>,
    /// Basic-auth password for --registry-url [env: SOCI_E2E_REGISTRY_PASSWORD].
    #[arg(long)]
    registry_password: Option<String>,
    /// Architectures to run (x86_64 natively, arm64 under qemu on an x86_64 host).
    #[arg(long, value_enum, default_value_t = ArchChoice::All)]
    arch: ArchChoice,
    /// Use the zips already in `<target dir>/lambda` instead of running `cargo xtask package`.
    #[arg(long)]
    no_package: bool,
    /// Retries of a failed async invocation in the emulator (Lambda's default is 2).
    #[arg(long, default_value_t = 2)]
    async_retries: u32,
    /// Seconds to wait for the functions after each event.
    #[arg(long, default_value_t = 240)]
    wait_secs: u64,
    /// Cap on one invocation's run time in the emulator, in seconds (the generator's 900 s
    /// Lambda timeout is longer than this test should ever wait).
    #[arg(long, default_value_t = 180)]
    invocation_timeout_secs: u64,
    /// Keep the temp folder (logs, registry storage, Terraform root, unzipped bootstraps) and print
    /// its path.
    #[arg(long)]
    keep_temp: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut phases = Phases::default();
    let mut checks = Vec::new();
    let result = run_all(&args, &mut phases, &mut checks);
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
struct RegistrySide {
    _local: Option<test_support::Registry>,
    url: String,
    username: Option<String>,
    password: Option<String>,
}

impl RegistrySide {
    fn client(&self) -> anyhow::Result<RegistryClient> {
        let credentials = match (&self.username, &self.password) {
            (Some(username), Some(password)) => Credentials::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            _ => Credentials::Anonymous,
        };
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
struct Ctx<'a> {
    args: &'a Args,
    rt: &'a tokio::runtime::Runtime,
    temp: PathBuf,
    region: String,
    aws: &'a AwsSide,
    registry: &'a RegistrySide,
    emulator: &'a mut Emulator,
    lambda_api: aws_sdk_lambda::Client,
    emulator_invoke: aws_sdk_lambda::Client,
    events: aws_sdk_eventbridge::Client,
    zips: PathBuf,
}

fn run_all(args: &Args, phases: &mut Phases, checks: &mut Vec<String>) -> anyhow::Result<()> {
    let arches = args.arch.arches();
    let region = env_or(&args.region, "AWS_REGION").unwrap_or_else(|| "us-east-1".into());
    let temp = TempDir::new(args.keep_temp)?;
    println!("e2e: temp folder {}", temp.path.display());
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;

    // Declared in this order so they drop in the reverse one: processes, then Terraform
    // (destroy), then the emulator, moto and the registry.
    let (registry, aws, mut emulator) =
        phases.run("start registry, AWS side, Lambda emulator", || {
            let registry = match env_or(&args.registry_url, "SOCI_E2E_REGISTRY_URL") {
                Some(url) => RegistrySide {
                    _local: None,
                    url,
                    username: env_or(&args.registry_username, "SOCI_E2E_REGISTRY_USERNAME"),
                    password: env_or(&args.registry_password, "SOCI_E2E_REGISTRY_PASSWORD"),
                },
                None => {
                    let local = test_support::Registry::start_in(&temp.path.join("registry"))
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

    let mut terraform = Terraform::new(&temp.path, &aws_env, !matches!(aws, AwsSide::Moto(_)))?;
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

    let creds = aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "e2e");
    let emulator_invoke = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&sdk)
            .endpoint_url(emulator.invoke_endpoint())
            .credentials_provider(creds)
            .build(),
    );
    let zips = crate::package::Workspace::load()?.default_out_dir();
    let mut context = Ctx {
        args,
        rt: &rt,
        temp: temp.path.clone(),
        region: region.clone(),
        aws: &aws,
        registry: &registry,
        emulator: &mut emulator,
        lambda_api: aws_sdk_lambda::Client::new(&sdk),
        emulator_invoke,
        events: aws_sdk_eventbridge::Client::new(&sdk),
        zips,
    };
    for &arch in &arches {
        let deployment = deployments
            .get(&arch)
            .with_context(|| format!("no deployment for {arch}"))?;
        run_pass(&mut context, phases, checks, arch, deployment)?;
    }
    drop(context);
    drop(terraform);
    Ok(())
}

/// One function of one pass: its deployed configuration and its running bootstrap.
struct Running {
    config: FunctionConfig,
    process: LambdaProcess,
    bootstrap: PathBuf,
}

/// A delivered event's records, split by function.
struct Delivery {
    filter: Vec<Record>,
    generator: Vec<Record>,
}

/// How an event is matched against the rule's pattern.
enum Matcher {
    /// EventBridge's `TestEventPattern`.
    Api,
    /// moto's `EventPattern` (Python), when the endpoint is moto.
    Moto(PathBuf),
}

impl Matcher {
    fn name(&self) -> &'static str {
        match self {
            Self::Api => "EventBridge TestEventPattern",
            Self::Moto(_) => "moto's EventPattern; moto does not implement TestEventPattern",
        }
    }
}

fn test_event_pattern(
    cx: &Ctx<'_>,
    pattern: &str,
    event: &serde_json::Value,
) -> anyhow::Result<bool> {
    let out = cx.rt.block_on(async {
        cx.events
            .test_event_pattern()
            .event_pattern(pattern)
            .event(event.to_string())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "TestEventPattern: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                )
            })
    })?;
    Ok(out.result())
}

const MOTO_MATCH_PY: &str = "import json, sys\n\
from moto.events.models import EventPattern\n\
print(json.dumps(EventPattern.load(sys.argv[1]).matches_event(json.loads(sys.argv[2]))))\n";

fn moto_matches(
    python: &std::path::Path,
    pattern: &str,
    event: &serde_json::Value,
) -> anyhow::Result<bool> {
    let output = std::process::Command::new(python)
        .args(["-c", MOTO_MATCH_PY, pattern, &event.to_string()])
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {} with moto's EventPattern", python.display()))?;
    ensure!(
        output.status.success(),
        "moto's EventPattern failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    match String::from_utf8_lossy(&output.stdout).trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => bail!("moto's EventPattern printed {other:?}"),
    }
}

/// Picks the matcher: `TestEventPattern` when it answers a trivially matching probe with true.
fn choose_matcher(cx: &Ctx<'_>, account: &str) -> anyhow::Result<Matcher> {
    let probe = image::push_event(
        account,
        &cx.region,
        INCLUDED_REPO,
        "sha256:0",
        "probe",
        MEDIA_TYPE_OCI_INDEX,
    );
    if test_event_pattern(cx, r#"{"source":["aws.ecr"]}"#, &probe)? {
        return Ok(Matcher::Api);
    }
    ensure!(
        matches!(cx.aws, AwsSide::Moto(_)),
        "{}: TestEventPattern does not match a trivially matching event (is it implemented there?)",
        cx.aws.describe()
    );
    let python = test_support::find_binary("python3").map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "moto does not implement TestEventPattern: matching with moto's own EventPattern instead"
    );
    Ok(Matcher::Moto(python))
}

struct Pass<'c, 'a> {
    cx: &'c mut Ctx<'a>,
    matcher: Matcher,
    arch: Arch,
    deployment: &'c Deployment,
    filter: Running,
    generator: Running,
    pattern: String,
    account: String,
    launcher: Option<(PathBuf, Vec<String>)>,
}

fn run_pass(
    cx: &mut Ctx<'_>,
    phases: &mut Phases,
    checks: &mut Vec<String>,
    arch: Arch,
    deployment: &Deployment,
) -> anyhow::Result<()> {
    let launcher = stack::launcher(arch)?;
    let how = if launcher.is_some() {
        "under qemu"
    } else {
        "natively"
    };
    let mut pass = phases.run(
        &format!("{arch}: deployed configuration, start the packaged bootstraps {how}"),
        || start_pass(cx, arch, deployment, launcher.clone(), checks),
    )?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let tag = format!("v{}-{}", seed / 1_000_000_000, module_tag(arch));
    let index_tag = format!("{tag}{INDEX_TAG_SUFFIX}");

    let (image, index_digest) = phases.run(
        &format!(
            "{arch}: push {INCLUDED_REPO}:{tag}, deliver the push event, wait for {index_tag}"
        ),
        || pass.positive(&tag, seed, checks),
    )?;
    phases.run(&format!("{arch}: verify the SOCI graph of {index_tag}"), || {
        let client = pass.cx.registry.client()?;
        let report = pass.cx.rt.block_on(verify::check_graph(
            &client,
            INCLUDED_REPO,
            &tag,
            &index_tag,
            &image,
            MIN_LAYER_SIZE,
            SPAN_SIZE,
        ))?;
        ensure!(
            report.index_digest == index_digest,
            "{index_tag} is {}, the generator reported {index_digest}",
            report.index_digest
        );
        checks.push(format!(
            "{arch}: {index_tag} graph: {} platforms, {} zTOCs verified ({} spans, {} entries), JSON canonical, {tag} untouched",
            report.platforms, report.ztocs, report.spans_checked, report.entries_checked
        ));
        Ok(())
    })?;
    phases.run(
        &format!(
            "{arch}: negative paths (repeat, -soci push, untagged, excluded repository, rule)"
        ),
        || pass.negatives(&tag, &image, &index_digest, seed, checks),
    )?;
    phases.run(
        &format!("{arch}: registry failure surfaces as a failed invocation"),
        || pass.registry_failure(&tag, &image, checks),
    )?;
    Ok(())
}

fn module_tag(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86-64",
        Arch::Arm64 => "arm64",
    }
}

fn start_pass<'c, 'a>(
    cx: &'c mut Ctx<'a>,
    arch: Arch,
    deployment: &'c Deployment,
    launcher: Option<(PathBuf, Vec<String>)>,
    checks: &mut Vec<String>,
) -> anyhow::Result<Pass<'c, 'a>> {
    let manifest = crate::package::Manifest::read(&cx.zips)?;
    let (filter_config, generator_config) = cx.rt.block_on(async {
        anyhow::Ok((
            stack::function_config(&cx.lambda_api, &deployment.filter_name).await?,
            stack::function_config(&cx.lambda_api, &deployment.generator_name).await?,
        ))
    })?;
    for (config, function) in [
        (&filter_config, "ecr-image-filter"),
        (&generator_config, "soci-index-generator"),
    ] {
        let artifact = manifest
            .find(function, arch)
            .with_context(|| format!("{} has no {function} zip for {arch}", cx.zips.display()))?;
        ensure!(
            config.runtime == "provided.al2023",
            "{}: runtime {}",
            config.name,
            config.runtime
        );
        ensure!(
            config.handler == "bootstrap",
            "{}: handler {}",
            config.name,
            config.handler
        );
        ensure!(
            config.architectures == [arch.lambda_name()],
            "{}: architectures {:?}, want [{arch}]",
            config.name,
            config.architectures
        );
        ensure!(
            config.code_sha256 == artifact.sha256_base64,
            "{}: deployed CodeSha256 {} is not the zip being run ({}, {})",
            config.name,
            config.code_sha256,
            artifact.file,
            artifact.sha256_base64
        );
    }
    ensure!(
        generator_config.arn == deployment.generator_arn
            && filter_config.arn == deployment.filter_arn,
        "the Lambda API's ARNs ({}, {}) differ from Terraform's outputs ({}, {})",
        filter_config.arn,
        generator_config.arn,
        deployment.filter_arn,
        deployment.generator_arn
    );
    let env = |c: &FunctionConfig, k: &str| c.env.get(k).cloned().unwrap_or_default();
    ensure!(
        env(&filter_config, "soci_repository_image_tag_filters") == format!("{INCLUDED_REPO}:*"),
        "filter env soci_repository_image_tag_filters = {:?}",
        env(&filter_config, "soci_repository_image_tag_filters")
    );
    ensure!(
        env(&filter_config, "soci_index_generator_lambda_arn") == generator_config.arn,
        "filter env soci_index_generator_lambda_arn = {:?}, the generator is {}",
        env(&filter_config, "soci_index_generator_lambda_arn"),
        generator_config.arn
    );
    ensure!(
        env(&generator_config, "min_layer_size") == MIN_LAYER_SIZE.to_string(),
        "generator env min_layer_size"
    );
    ensure!(
        env(&generator_config, "span_size") == SPAN_SIZE.to_string(),
        "generator env span_size"
    );
    checks.push(format!(
        "{arch}: deployed functions: provided.al2023, bootstrap, [{arch}], CodeSha256 = the packaged zips, environment as configured"
    ));

    let account = generator_config
        .arn
        .split(':')
        .nth(4)
        .filter(|a| a.len() == 12)
        .with_context(|| format!("no account in {}", generator_config.arn))?
        .to_string();
    let pattern = cx.rt.block_on(async {
        cx.events
            .describe_rule()
            .name(&deployment.rule_name)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "DescribeRule {}: {}",
                    deployment.rule_name,
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                )
            })
    })?;
    let pattern = pattern
        .event_pattern()
        .with_context(|| format!("rule {} has no pattern", deployment.rule_name))?
        .to_string();

    let dir = cx.temp.join(module_tag(arch));
    let mut started = Vec::new();
    for (config, function) in [
        (filter_config, "ecr-image-filter"),
        (generator_config, "soci-index-generator"),
    ] {
        let zip = cx.zips.join(format!("{function}-{arch}.zip"));
        let bootstrap = stack::unzip_bootstrap(&zip, &dir.join(function))?;
        let timeout = Duration::from_secs(config.timeout.min(cx.args.invocation_timeout_secs));
        let runtime_api = cx
            .emulator
            .add_function(&config.name, &config.arn, timeout)?;
        let env = lambda_env(cx, &config, &runtime_api, &bootstrap, None)?;
        let process = LambdaProcess::start(
            &config.name,
            &bootstrap,
            launcher.as_ref(),
            &env,
            dir.join(format!("{function}.log")),
        )?;
        started.push(Running {
            config,
            process,
            bootstrap,
        });
    }
    let generator = started.pop().context("generator not started")?;
    let filter = started.pop().context("filter not started")?;
    let matcher = choose_matcher(cx, &account)?;
    Ok(Pass {
        cx,
        matcher,
        arch,
        deployment,
        filter,
        generator,
        pattern,
        account,
        launcher,
    })
}

/// The environment of one bootstrap: what Terraform configured, what the Lambda sandbox adds,
/// and what running it here needs. `registry_override` replaces the generator's registry URL.
fn lambda_env(
    cx: &Ctx<'_>,
    config: &FunctionConfig,
    runtime_api: &str,
    bootstrap: &std::path::Path,
    registry_override: Option<&str>,
) -> anyhow::Result<Vec<(String, String)>> {
    let task_root = bootstrap.parent().context("bootstrap has no directory")?;
    let home = task_root.join("home");
    let tmp = task_root.join("tmp");
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&tmp)?;
    let mut env: BTreeMap<String, String> = config.env.clone();
    env.entry("RUST_LOG".into())
        .or_insert_with(|| "info".into());
    let sandbox = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", config.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", config.memory.to_string()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", config.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "e2e".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
        ("_HANDLER", config.handler.clone()),
        ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
        ("LAMBDA_RUNTIME_DIR", task_root.display().to_string()),
        ("AWS_REGION", cx.region.clone()),
        ("AWS_DEFAULT_REGION", cx.region.clone()),
        // Fake credentials: the filter only talks to the emulator, the generator only to the
        // registry given below.
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_SESSION_TOKEN", "test".into()),
        ("AWS_ENDPOINT_URL_LAMBDA", cx.emulator.invoke_endpoint()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("HOME", home.display().to_string()),
        ("TMPDIR", tmp.display().to_string()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
        ("LANG", "C.UTF-8".into()),
        ("TZ", ":UTC".into()),
    ];
    for (k, v) in sandbox {
        env.insert(k.to_string(), v);
    }
    if let Some(endpoint) = cx.aws.endpoint() {
        env.insert("AWS_ENDPOINT_URL".into(), endpoint.into());
    }
    if config.env.contains_key("min_layer_size") {
        // The generator: the test registry instead of ECR (see the generator's config.rs).
        env.insert(
            "SOCI_REGISTRY_URL".into(),
            registry_override.unwrap_or(&cx.registry.url).to_string(),
        );
        if let (Some(u), Some(p)) = (&cx.registry.username, &cx.registry.password) {
            env.insert("SOCI_REGISTRY_USERNAME".into(), u.clone());
            env.insert("SOCI_REGISTRY_PASSWORD".into(), p.clone());
        }
    }
    Ok(env.into_iter().collect())
}

fn status_of(record: &Record) -> String {
    record
        .json()
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or("")
        .to_string()
}

fn describe(record: &Record) -> String {
    format!(
        "{} ({:?} invocation {}) attempt {} {}: {}",
        record.function,
        record.invocation_type,
        record.request_id,
        record.attempt,
        if record.outcome.is_success() {
            "succeeded"
        } else {
            "FAILED"
        },
        String::from_utf8_lossy(record.outcome.body())
    )
}

impl Pass<'_, '_> {
    fn registry_client(&self) -> anyhow::Result<RegistryClient> {
        self.cx.registry.client()
    }

    /// Does the deployed rule match `event`? EventBridge's `TestEventPattern`, or, where the
    /// endpoint is our moto (whose `TestEventPattern` is an unimplemented stub that answers
    /// nothing), moto's own matcher, the code its `PutEvents` routes events with.
    fn rule_matches(&self, event: &serde_json::Value) -> anyhow::Result<bool> {
        match &self.matcher {
            Matcher::Api => test_event_pattern(self.cx, &self.pattern, event),
            Matcher::Moto(python) => moto_matches(python, &self.pattern, event),
        }
    }

    /// Delivers `event` and checks that the filter skipped it without invoking the generator.
    fn deliver_expecting_skip(
        &mut self,
        event: &serde_json::Value,
        what: &str,
    ) -> anyhow::Result<()> {
        let delivery = self.deliver(event)?;
        ensure!(
            status_of(&delivery.filter[0]) == "skipped",
            "{what}: {}",
            describe(&delivery.filter[0])
        );
        ensure!(
            delivery.generator.is_empty(),
            "{what}: the generator was invoked"
        );
        Ok(())
    }

    /// Checks the rule matches `event`, delivers it to the filter as EventBridge does (async
    /// invoke, 202), waits until the filter and everything it invoked are done.
    fn deliver(&mut self, event: &serde_json::Value) -> anyhow::Result<Delivery> {
        ensure!(
            self.rule_matches(event)?,
            "the rule {} does not match the push event {event}",
            self.deployment.rule_name
        );
        let mark = self.cx.emulator.records().len();
        let response = self.cx.rt.block_on(async {
            self.cx
                .emulator_invoke
                .invoke()
                .function_name(&self.deployment.filter_arn)
                .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "async invoke of the filter: {}",
                        aws_sdk_lambda::error::DisplayErrorContext(&e)
                    )
                })
        })?;
        ensure!(
            response.status_code() == 202,
            "async invoke of the filter answered {}",
            response.status_code()
        );
        let deadline = Instant::now() + Duration::from_secs(self.cx.args.wait_secs);
        loop {
            if self.cx.emulator.wait_idle(Duration::from_millis(500)) {
                break;
            }
            self.filter.process.check_alive()?;
            self.generator.process.check_alive()?;
            if Instant::now() >= deadline {
                bail!(
                    "the functions were still busy after {} s ({:?});\nfilter log:\n{}\ngenerator log:\n{}",
                    self.cx.args.wait_secs,
                    self.cx.emulator.busy(),
                    stack::tail(&self.filter.process.log, 20),
                    stack::tail(&self.generator.process.log, 20)
                );
            }
        }
        let records: Vec<Record> = self.cx.emulator.records().into_iter().skip(mark).collect();
        let (filter, rest): (Vec<Record>, Vec<Record>) = records
            .into_iter()
            .partition(|r| r.function == self.filter.config.name);
        let (generator, other): (Vec<Record>, Vec<Record>) = rest
            .into_iter()
            .partition(|r| r.function == self.generator.config.name);
        ensure!(
            other.is_empty(),
            "unexpected invocations: {:?}",
            other.iter().map(describe).collect::<Vec<_>>()
        );
        ensure!(
            filter.len() == 1,
            "the filter ran {} times for one event: {:?}",
            filter.len(),
            filter.iter().map(describe).collect::<Vec<_>>()
        );
        ensure!(
            filter[0].outcome.is_success(),
            "the filter failed: {}\nfilter log:\n{}",
            describe(&filter[0]),
            stack::tail(&self.filter.process.log, 20)
        );
        Ok(Delivery { filter, generator })
    }

    fn event(
        &self,
        repository: &str,
        digest: &str,
        tag: &str,
        media_type: &str,
    ) -> serde_json::Value {
        image::push_event(
            &self.account,
            &self.cx.region,
            repository,
            digest,
            tag,
            media_type,
        )
    }

    fn positive(
        &mut self,
        tag: &str,
        seed: u64,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<(image::Image, String)> {
        let image = image::generate(seed, MIN_LAYER_SIZE as usize)?;
        let client = self.registry_client()?;
        self.cx
            .rt
            .block_on(image::push(&client, INCLUDED_REPO, tag, &image))?;
        println!(
            "pushed {INCLUDED_REPO}:{tag} ({}, {} layers, 2 platforms)",
            image.index_digest,
            image.layer_count()
        );
        let event = self.event(
            INCLUDED_REPO,
            &image.index_digest,
            tag,
            MEDIA_TYPE_OCI_INDEX,
        );
        let delivery = self.deliver(&event)?;
        let filter_status = status_of(&delivery.filter[0]);
        ensure!(
            filter_status == "invoked",
            "the filter did not invoke the generator: {}",
            describe(&delivery.filter[0])
        );
        ensure!(
            delivery.generator.len() == 1,
            "the generator ran {} times: {:?}",
            delivery.generator.len(),
            delivery.generator.iter().map(describe).collect::<Vec<_>>()
        );
        let run = &delivery.generator[0];
        ensure!(
            run.outcome.is_success(),
            "the generator failed: {}\ngenerator log:\n{}",
            describe(run),
            stack::tail(&self.generator.process.log, 30)
        );
        ensure!(
            run.payload_json() == event,
            "the generator got {} instead of the original event",
            String::from_utf8_lossy(&run.payload)
        );
        let outcome = run.json();
        ensure!(
            status_of(run) == "indexed",
            "the generator did not index: {}",
            describe(run)
        );
        let index_tag = format!("{tag}{INDEX_TAG_SUFFIX}");
        ensure!(
            outcome.get("index_tag").and_then(|t| t.as_str()) == Some(index_tag.as_str()),
            "the generator reports index tag {:?}, want {index_tag}",
            outcome.get("index_tag")
        );
        let index_digest = outcome
            .get("index_digest")
            .and_then(|d| d.as_str())
            .context("the generator's outcome has no index_digest")?
            .to_string();
        checks.push(format!(
            "{}: push event matches the rule ({}); filter invoked the generator asynchronously (202); generator indexed {INCLUDED_REPO}:{tag} -> {index_tag} {index_digest}",
            self.arch,
            self.matcher.name()
        ));
        Ok((image, index_digest))
    }

    fn negatives(
        &mut self,
        tag: &str,
        image: &image::Image,
        index_digest: &str,
        seed: u64,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let arch = self.arch;
        let client = self.registry_client()?;
        let index_tag = format!("{tag}{INDEX_TAG_SUFFIX}");

        // 1. The same event again: nothing new.
        let event = self.event(
            INCLUDED_REPO,
            &image.index_digest,
            tag,
            MEDIA_TYPE_OCI_INDEX,
        );
        let delivery = self.deliver(&event)?;
        ensure!(
            status_of(&delivery.filter[0]) == "invoked",
            "repeat: {}",
            describe(&delivery.filter[0])
        );
        ensure!(
            delivery.generator.len() == 1,
            "repeat: the generator ran {} times",
            delivery.generator.len()
        );
        let run = &delivery.generator[0];
        ensure!(run.outcome.is_success(), "repeat: {}", describe(run));
        let outcome = run.json();
        let pushed_nothing = match status_of(run).as_str() {
            "already_indexed" => true,
            "indexed" => outcome
                .get("pushed")
                .and_then(|p| p.as_array())
                .is_some_and(|p| p.is_empty()),
            _ => false,
        };
        ensure!(
            pushed_nothing,
            "repeat: the same event pushed again: {}",
            describe(run)
        );
        let now = self
            .cx
            .rt
            .block_on(client.head_manifest(INCLUDED_REPO, &index_tag))?;
        ensure!(
            now.as_deref() == Some(index_digest),
            "repeat: {index_tag} moved to {now:?}"
        );
        checks.push(format!(
            "{arch}: the same event twice: {}, {index_tag} unchanged",
            status_of(run)
        ));

        // 2. The push of `<tag>-soci` itself (the generator's output) is skipped.
        let event = self.event(
            INCLUDED_REPO,
            index_digest,
            &index_tag,
            MEDIA_TYPE_OCI_INDEX,
        );
        self.deliver_expecting_skip(&event, "-soci push")?;
        checks.push(format!(
            "{arch}: the {index_tag} push event is skipped by the filter (no loop)"
        ));

        // 3. An untagged child push (what a multi-arch push also sends) is skipped in V2.
        let child = &image.platforms[0];
        let event = self.event(
            INCLUDED_REPO,
            &child.manifest_digest,
            "",
            MEDIA_TYPE_OCI_MANIFEST,
        );
        self.deliver_expecting_skip(&event, "untagged push")?;
        checks.push(format!("{arch}: untagged child push skipped by the filter"));

        // 4. A repository the filters exclude gets nothing.
        let other = image::generate(seed ^ 0x5eed, MIN_LAYER_SIZE as usize)?;
        self.cx
            .rt
            .block_on(image::push(&client, EXCLUDED_REPO, tag, &other))?;
        let event = self.event(
            EXCLUDED_REPO,
            &other.index_digest,
            tag,
            MEDIA_TYPE_OCI_INDEX,
        );
        self.deliver_expecting_skip(&event, EXCLUDED_REPO)?;
        let soci = self
            .cx
            .rt
            .block_on(client.head_manifest(EXCLUDED_REPO, &index_tag))?;
        ensure!(
            soci.is_none(),
            "{EXCLUDED_REPO}:{index_tag} exists ({soci:?})"
        );
        checks.push(format!(
            "{arch}: {EXCLUDED_REPO} (not in the filters) is skipped, no {index_tag} there"
        ));

        // 5. The rule: a failed push and another account's push do not match.
        let mut failed = self.event(
            INCLUDED_REPO,
            &image.index_digest,
            tag,
            MEDIA_TYPE_OCI_INDEX,
        );
        failed["detail"]["result"] = "FAILURE".into();
        ensure!(
            !self.rule_matches(&failed)?,
            "the rule matches a failed push"
        );
        let mut foreign = self.event(
            INCLUDED_REPO,
            &image.index_digest,
            tag,
            MEDIA_TYPE_OCI_INDEX,
        );
        foreign["account"] = "000000000000".into();
        ensure!(
            !self.rule_matches(&foreign)?,
            "the rule matches another account's push"
        );
        checks.push(format!(
            "{arch}: the rule rejects a failed push and another account's push"
        ));
        Ok(())
    }

    /// Restarts the generator against a dead registry address; the invocation (and every async
    /// retry) must fail with a message naming that address.
    fn registry_failure(
        &mut self,
        tag: &str,
        image: &image::Image,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let arch = self.arch;
        let fail_tag = format!("{tag}-unreachable");
        let client = self.registry_client()?;
        self.cx
            .rt
            .block_on(image::push(&client, INCLUDED_REPO, &fail_tag, image))?;

        let dead = test_support::free_port().map_err(|e| anyhow::anyhow!("{e}"))?;
        let dead_url = format!("http://127.0.0.1:{dead}");
        let runtime_api = self.generator.process_runtime_api(self.cx)?;
        let env = lambda_env(
            self.cx,
            &self.generator.config,
            &runtime_api,
            &self.generator.bootstrap,
            Some(&dead_url),
        )?;
        let log = self
            .generator
            .process
            .log
            .with_file_name("soci-index-generator-unreachable.log");
        // Replace the process: the old one is killed (by pid) when dropped here.
        self.generator.process = LambdaProcess::start(
            &self.generator.config.name,
            &self.generator.bootstrap,
            self.launcher.as_ref(),
            &env,
            log,
        )?;

        let event = self.event(
            INCLUDED_REPO,
            &image.index_digest,
            &fail_tag,
            MEDIA_TYPE_OCI_INDEX,
        );
        let delivery = self.deliver(&event)?;
        ensure!(
            status_of(&delivery.filter[0]) == "invoked",
            "unreachable registry: {}",
            describe(&delivery.filter[0])
        );
        let attempts = self.cx.args.async_retries as usize + 1;
        ensure!(
            delivery.generator.len() == attempts,
            "unreachable registry: {} generator attempts, want {attempts} (1 + {} async retries): {:?}",
            delivery.generator.len(),
            self.cx.args.async_retries,
            delivery.generator.iter().map(describe).collect::<Vec<_>>()
        );
        let address = format!("127.0.0.1:{dead}");
        for (n, run) in delivery.generator.iter().enumerate() {
            ensure!(
                !run.outcome.is_success(),
                "unreachable registry: attempt {n} succeeded: {}",
                describe(run)
            );
            ensure!(
                run.attempt as usize == n,
                "unreachable registry: attempt numbers {:?}",
                delivery
                    .generator
                    .iter()
                    .map(|r| r.attempt)
                    .collect::<Vec<_>>()
            );
            let message = run
                .json()
                .get("errorMessage")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_string();
            ensure!(
                message.contains(&address),
                "unreachable registry: the error does not name the registry {address}: {}",
                describe(run)
            );
        }
        let soci = self.cx.rt.block_on(
            client.head_manifest(INCLUDED_REPO, &format!("{fail_tag}{INDEX_TAG_SUFFIX}")),
        )?;
        ensure!(
            soci.is_none(),
            "an index was pushed although the generator failed"
        );
        let first = delivery.generator[0].json();
        checks.push(format!(
            "{arch}: registry unreachable: {attempts} failed attempts ({}), message: {}",
            first
                .get("errorType")
                .and_then(|t| t.as_str())
                .unwrap_or("?"),
            first
                .get("errorMessage")
                .and_then(|m| m.as_str())
                .unwrap_or("?")
        ));
        Ok(())
    }
}

impl Running {
    /// The Runtime API address the emulator gave this function.
    fn process_runtime_api(&self, cx: &Ctx<'_>) -> anyhow::Result<String> {
        cx.emulator
            .runtime_addr(&self.config.name)
            .with_context(|| format!("{} is not registered in the emulator", self.config.name))
    }
}
