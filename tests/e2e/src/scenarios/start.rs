//! The start of a pass: the functions as deployed (checked against the packaged zips and the
//! configured environment), the rule's pattern, and the packaged bootstraps started against the
//! emulator.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, ensure};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::{Pass, Running, choose_matcher};
use crate::stack::{self, Arch, Deployment, FunctionConfig, LambdaProcess};
use crate::{Ctx, INCLUDED_REPO, MIN_LAYER_SIZE, SPAN_SIZE};

/// The two functions, by package name, in start order.
const FUNCTIONS: [&str; 2] = ["ecr-image-filter", "soci-index-generator"];

pub(super) fn start_pass<'c, 'a>(
    cx: &'c mut Ctx<'a>,
    arch: Arch,
    deployment: &'c Deployment,
    launcher: Option<(PathBuf, Vec<String>)>,
    checks: &mut Vec<String>,
) -> anyhow::Result<Pass<'c, 'a>> {
    let (filter_config, generator_config) = cx.rt.block_on(async {
        anyhow::Ok((
            stack::function_config(&cx.lambda_api, &deployment.filter_name).await?,
            stack::function_config(&cx.lambda_api, &deployment.generator_name).await?,
        ))
    })?;
    check_deployed(cx, arch, deployment, &filter_config, &generator_config)?;
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
    let pattern = rule_pattern(cx, &deployment.rule_name)?;
    let mut started = Vec::new();
    for (config, function) in [filter_config, generator_config].into_iter().zip(FUNCTIONS) {
        started.push(start_function(
            cx,
            arch,
            function,
            config,
            launcher.as_ref(),
        )?);
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

/// The deployed functions run the packaged zips, on `provided.al2023` and `arch`, with the
/// environment the module was given.
fn check_deployed(
    cx: &Ctx<'_>,
    arch: Arch,
    deployment: &Deployment,
    filter_config: &FunctionConfig,
    generator_config: &FunctionConfig,
) -> anyhow::Result<()> {
    for (config, function) in [filter_config, generator_config].into_iter().zip(FUNCTIONS) {
        let zip = cx.zips.join(format!("{function}-{arch}.zip"));
        let bytes = std::fs::read(&zip).with_context(|| format!("reading {}", zip.display()))?;
        let sha256_base64 =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
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
            config.code_sha256 == sha256_base64,
            "{}: deployed CodeSha256 {} is not the zip being run ({}, {sha256_base64})",
            config.name,
            config.code_sha256,
            zip.display()
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
        env(filter_config, "soci_repository_image_tag_filters") == format!("{INCLUDED_REPO}:*"),
        "filter env soci_repository_image_tag_filters = {:?}",
        env(filter_config, "soci_repository_image_tag_filters")
    );
    ensure!(
        env(filter_config, "soci_index_generator_lambda_arn") == generator_config.arn,
        "filter env soci_index_generator_lambda_arn = {:?}, the generator is {}",
        env(filter_config, "soci_index_generator_lambda_arn"),
        generator_config.arn
    );
    ensure!(
        env(generator_config, "min_layer_size") == MIN_LAYER_SIZE.to_string(),
        "generator env min_layer_size"
    );
    ensure!(
        env(generator_config, "span_size") == SPAN_SIZE.to_string(),
        "generator env span_size"
    );
    Ok(())
}

/// The deployed rule's event pattern (`DescribeRule`).
fn rule_pattern(cx: &Ctx<'_>, rule_name: &str) -> anyhow::Result<String> {
    let rule = cx.rt.block_on(async {
        cx.events
            .describe_rule()
            .name(rule_name)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "DescribeRule {rule_name}: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                )
            })
    })?;
    Ok(rule
        .event_pattern()
        .with_context(|| format!("rule {rule_name} has no pattern"))?
        .to_string())
}

/// Unzips `function`'s packaged bootstrap, registers it with the emulator and starts it.
fn start_function(
    cx: &mut Ctx<'_>,
    arch: Arch,
    function: &str,
    config: FunctionConfig,
    launcher: Option<&(PathBuf, Vec<String>)>,
) -> anyhow::Result<Running> {
    let dir = cx.temp.join(arch.tag());
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
        launcher,
        &env,
        dir.join(format!("{function}.log")),
    )?;
    Ok(Running {
        config,
        process,
        bootstrap,
    })
}

/// The environment of one bootstrap: what Terraform configured, what the Lambda sandbox adds,
/// and what running it here needs. `registry_override` replaces the generator's registry URL.
pub(super) fn lambda_env(
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
