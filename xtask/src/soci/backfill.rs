//! `cargo xtask backfill`: index the images that were in ECR before the module was deployed.
//!
//! Event-driven indexing only sees pushes made after deployment. This lists every tagged image
//! of the account's repositories (ECR `DescribeRepositories` + `DescribeImages`), selects them
//! with the deployed filter's own code and settings (`ecr_image_filter::decide` over the
//! filter function's environment, or `--filters`), asks the generator's own pipeline, reading
//! the registry only, whether each still needs an index (`Indexer::pending`: V2 `<tag><suffix>`
//! already covers the digest; V1: a SOCI index with that subject is found through the referrers
//! tag schema), and invokes the generator (`RequestResponse`, the ECR push event) for the rest,
//! at most `--concurrency` at once and never more than the generator's reserved concurrency.
//!
//! Nothing is remembered between runs: an interrupted backfill run again finds the images done
//! already indexed and invokes only what is left.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal as _;
use std::sync::Arc;

use anyhow::{Context, bail};
use aws_sdk_ecr::types::ImageDetail;
use ecr_image_filter::config::{Config as FilterConfig, ENV_FILTERS, ENV_GENERATOR_ARN};
use futures_util::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use soci_index_generator::config::{Config as GeneratorConfig, IndexVersion, RegistryTarget};
use soci_index_generator::handler::ecr_registry_host;
use soci_index_generator::registry::EcrCredentials;
use soci_index_generator::{Credentials, ImageRef, Indexer, RegistryClient, RetryPolicy};

#[derive(clap::Args)]
pub struct Args {
    /// The deployed filter function (name or ARN): its `repository:tag` globs, index version and
    /// suffix, and the generator it invokes are used as they are deployed.
    #[arg(long, required_unless_present_all = ["filters", "function"])]
    filter_function: Option<String>,
    /// `repository:tag` globs (comma-separated, the filter's syntax) instead of the filter
    /// function's.
    #[arg(long)]
    filters: Option<String>,
    /// The generator function (name or ARN); default: the one the filter function invokes.
    #[arg(long)]
    function: Option<String>,
    /// Images indexed at once; capped by the generator's reserved concurrency.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// List what would be indexed; invoke nothing.
    #[arg(long)]
    dry_run: bool,
    /// One JSON line per image on stdout, even on a terminal (no progress bar).
    #[arg(long)]
    json: bool,
    /// The Lambda endpoint for invocations (default: the SDK's, e.g. `AWS_ENDPOINT_URL`).
    #[arg(long)]
    lambda_endpoint: Option<String>,
    /// Read images from this registry (`http(s)://host[:port]`, credentials from
    /// `SOCI_REGISTRY_USERNAME` / `SOCI_REGISTRY_PASSWORD`) instead of the one the generator's
    /// configuration names (ECR of the account): LocalStack, or a test stack.
    #[arg(long)]
    registry_url: Option<String>,
    /// The account the images are in (default: from the function's ARN).
    #[arg(long)]
    account: Option<String>,
    /// The region (default: from the function's ARN, else the SDK's).
    #[arg(long)]
    region: Option<String>,
}

/// What became of one tagged image.
#[derive(Clone, Debug, Serialize)]
struct ImageLine {
    repository: String,
    tag: String,
    digest: String,
    /// `not_selected`, a generator status that needs no invocation (`already_indexed`, ...),
    /// `would_index` (dry run), the invoked generator's status, or `failed`.
    result: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    detail: String,
}

/// A tagged image found in ECR.
#[derive(Clone, Debug)]
struct Candidate {
    repository: String,
    tag: String,
    digest: String,
    manifest_media_type: Option<String>,
    artifact_media_type: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::index::init_logs();
    let runtime = tokio::runtime::Runtime::new()?;
    let failed = runtime.block_on(backfill(&args))?;
    if failed > 0 {
        bail!("{failed} image(s) failed; run the backfill again to retry only what is left");
    }
    Ok(())
}

/// The deployed settings: the filter's decision rules, the generator's configuration (as the
/// Lambda reads its environment), where to invoke it, the account and region.
struct Deployed {
    filter: FilterConfig,
    generator: GeneratorConfig,
    generator_function: String,
    account: String,
    region: String,
    reserved_concurrency: Option<usize>,
}

async fn backfill(args: &Args) -> anyhow::Result<usize> {
    let deployed = read_deployment(args).await?;
    let sdk = sdk_config(&deployed.region, None).await;
    let ecr = ecr_client(&sdk, &deployed.generator);
    let candidates = list_tagged_images(&ecr).await?;
    let client = Arc::new(registry_client(&deployed, &ecr)?);
    let indexer = Arc::new(Indexer::new(client.clone(), deployed.generator.clone()));
    let lambda = aws_sdk_lambda::Client::new(
        &sdk_config(&deployed.region, args.lambda_endpoint.as_deref()).await,
    );
    let concurrency = args
        .concurrency
        .max(1)
        .min(deployed.reserved_concurrency.unwrap_or(usize::MAX).max(1));
    if let Some(reserved) = deployed.reserved_concurrency {
        eprintln!(
            "{}: reserved concurrency {reserved}; invoking at most {concurrency} at once",
            deployed.generator_function
        );
    }
    let progress = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(candidates.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let deployed = Arc::new(deployed);
    let lines = futures_util::stream::iter(candidates)
        .map(|candidate| {
            let (deployed, indexer, client, lambda) = (
                deployed.clone(),
                indexer.clone(),
                client.clone(),
                lambda.clone(),
            );
            async move {
                one_image(
                    &deployed,
                    &indexer,
                    &client,
                    &lambda,
                    candidate,
                    args.dry_run,
                )
                .await
            }
        })
        .buffer_unordered(concurrency);
    futures_util::pin_mut!(lines);
    let mut summary: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(line) = lines.next().await {
        *summary.entry(line.result.clone()).or_default() += 1;
        match &progress {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(format!("{}:{} {}", line.repository, line.tag, line.result));
                if line.result == "failed" {
                    bar.println(format!(
                        "{}:{} failed: {}",
                        line.repository, line.tag, line.detail
                    ));
                }
            }
            None => println!("{}", serde_json::to_string(&line)?),
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    print_summary(&summary, args.dry_run);
    Ok(summary.get("failed").copied().unwrap_or(0))
}

fn print_summary(summary: &BTreeMap<String, usize>, dry_run: bool) {
    let total: usize = summary.values().sum();
    let width = summary.keys().map(String::len).max().unwrap_or(0).max(5);
    eprintln!(
        "backfill summary{}:",
        if dry_run { " (dry run)" } else { "" }
    );
    for (result, count) in summary {
        eprintln!("  {result:<width$}  {count:>6}");
    }
    eprintln!("  {:<width$}  {total:>6}", "total");
}

async fn one_image(
    deployed: &Deployed,
    indexer: &Indexer,
    client: &RegistryClient,
    lambda: &aws_sdk_lambda::Client,
    candidate: Candidate,
    dry_run: bool,
) -> ImageLine {
    let mut line = ImageLine {
        repository: candidate.repository.clone(),
        tag: candidate.tag.clone(),
        digest: candidate.digest.clone(),
        result: String::new(),
        detail: String::new(),
    };
    let mut event = super::wait::push_event(
        &deployed.account,
        &deployed.region,
        &candidate.repository,
        &candidate.digest,
        &candidate.tag,
    );
    // As ECR sends them: the filter skips pushes of SOCI indexes by these.
    event.detail.manifest_media_type = candidate.manifest_media_type.clone();
    event.detail.artifact_media_type = candidate.artifact_media_type.clone();
    if let Err(reason) = ecr_image_filter::decide(&deployed.filter, &event) {
        line.result = "not_selected".into();
        line.detail = reason.to_string();
        return line;
    }
    match already_done(deployed, indexer, client, &candidate).await {
        Ok(Some((status, detail))) => {
            line.result = status;
            line.detail = detail;
            return line;
        }
        Ok(None) => {}
        Err(e) => {
            line.result = "failed".into();
            line.detail = format!("checking for an existing index: {e:#}");
            return line;
        }
    }
    if dry_run {
        line.result = "would_index".into();
        return line;
    }
    match super::wait::invoke_with(lambda, &deployed.generator_function, &event).await {
        Ok(answer) => {
            line.result = answer["status"].as_str().unwrap_or("unknown").to_string();
            if line.result != "indexed" {
                line.detail = answer.to_string();
            }
        }
        Err(e) => {
            line.result = "failed".into();
            line.detail = format!("{e:#}");
        }
    }
    line
}

/// `Some((status, why))` when the image needs no invocation: the generator's own early
/// outcome (V2), or a V1 SOCI index of the digest found through the referrers tag schema.
async fn already_done(
    deployed: &Deployed,
    indexer: &Indexer,
    client: &RegistryClient,
    candidate: &Candidate,
) -> anyhow::Result<Option<(String, String)>> {
    if deployed.generator.index_version == IndexVersion::V1 {
        let found =
            super::doctor::v1_soci_indexes(client, &candidate.repository, &candidate.digest)
                .await?;
        return Ok((!found.is_empty()).then(|| {
            (
                "already_indexed".to_string(),
                format!("v1: {}", found.join(", ")),
            )
        }));
    }
    let image = ImageRef {
        repository: candidate.repository.clone(),
        digest: Some(candidate.digest.clone()),
        tag: Some(candidate.tag.clone()),
    };
    let pending = indexer
        .pending(&image)
        .await
        .map_err(|e| anyhow::anyhow!(soci_index_generator::error_chain(&e)))?;
    Ok(pending.map(|outcome| {
        let status = outcome.status().to_string();
        let detail = serde_json::to_value(&outcome)
            .ok()
            .and_then(|v| v.get("message").or(v.get("reason")).cloned())
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        (status, detail)
    }))
}

async fn sdk_config(region: &str, endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()));
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// The ECR API client, at the generator's `ECR_ENDPOINT` when it has one (as the Lambda does).
fn ecr_client(sdk: &aws_config::SdkConfig, generator: &GeneratorConfig) -> aws_sdk_ecr::Client {
    let mut builder = aws_sdk_ecr::config::Builder::from(sdk);
    if let Some(endpoint) = &generator.ecr_endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_ecr::Client::from_conf(builder.build())
}

/// The registry the generator reads: `SOCI_REGISTRY_URL` (+ credentials) from its
/// configuration, else ECR of the account with `GetAuthorizationToken` credentials.
fn registry_client(
    deployed: &Deployed,
    ecr: &aws_sdk_ecr::Client,
) -> anyhow::Result<RegistryClient> {
    let (url, credentials) = match &deployed.generator.registry {
        RegistryTarget::Url {
            url,
            username,
            password,
        } => (
            url.clone(),
            Credentials::basic_or_anonymous(username.as_deref(), password.as_deref()),
        ),
        RegistryTarget::Ecr => (
            format!(
                "https://{}",
                ecr_registry_host(&deployed.account, &deployed.region)
            ),
            Credentials::Ecr(EcrCredentials::new(ecr.clone())),
        ),
    };
    let retry = RetryPolicy {
        attempts: deployed.generator.retry_attempts,
        base_delay: deployed.generator.retry_base_delay,
    };
    Ok(RegistryClient::new(&url, credentials, retry)?)
}

/// `arn:<partition>:lambda:<region>:<account>:function:<name>` -> (account, region).
fn account_and_region_of(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() >= 7 && parts[0] == "arn" && parts[2] == "lambda")
        .then(|| (parts[4].to_string(), parts[3].to_string()))
}

/// A function's ARN and environment variables.
async fn function_environment(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
) -> anyhow::Result<(String, HashMap<String, String>)> {
    let answer = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "GetFunctionConfiguration {function}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            )
        })?;
    let variables = answer
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    Ok((
        answer.function_arn().unwrap_or(function).to_string(),
        variables,
    ))
}

async fn read_deployment(args: &Args) -> anyhow::Result<Deployed> {
    let initial_region = match &args.region {
        Some(region) => region.clone(),
        None => aws_config::load_defaults(aws_config::BehaviorVersion::latest())
            .await
            .region()
            .map(|r| r.to_string())
            .or_else(|| {
                args.filter_function
                    .as_deref()
                    .or(args.function.as_deref())
                    .and_then(account_and_region_of)
                    .map(|(_, region)| region)
            })
            .context("no region: pass --region")?,
    };
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(&initial_region, None).await);
    let mut filter_env = HashMap::new();
    let mut filter_arn = None;
    if let Some(function) = &args.filter_function {
        let (arn, env) = function_environment(&lambda, function).await?;
        filter_arn = Some(arn);
        filter_env = env;
    }
    if let Some(filters) = &args.filters {
        filter_env.insert(ENV_FILTERS.into(), filters.clone());
    }
    if let Some(function) = &args.function {
        filter_env.insert(ENV_GENERATOR_ARN.into(), function.clone());
    }
    let filter = FilterConfig::from_lookup(|name| filter_env.get(name).cloned())
        .context("the filter's settings")?;
    let generator_function = filter.generator_arn.clone();
    let (generator_arn, generator_env) = function_environment(&lambda, &generator_function).await?;
    let mut generator = GeneratorConfig::from_lookup(|name| generator_env.get(name).cloned())
        .with_context(|| format!("the configuration of {generator_function}"))?;
    if let Some(url) = &args.registry_url {
        generator.registry = RegistryTarget::Url {
            url: url.clone(),
            username: std::env::var("SOCI_REGISTRY_USERNAME").ok(),
            password: std::env::var("SOCI_REGISTRY_PASSWORD").ok(),
        };
    }
    if generator.index_version != filter.index_version
        || generator.index_tag_suffix != filter.index_tag_suffix
    {
        bail!(
            "the filter ({:?}, suffix {:?}) and {generator_function} ({:?}, suffix {:?}) disagree on the index version or suffix",
            filter.index_version,
            filter.index_tag_suffix,
            generator.index_version,
            generator.index_tag_suffix
        );
    }
    let from_arn = filter_arn
        .as_deref()
        .and_then(account_and_region_of)
        .or_else(|| account_and_region_of(&generator_arn));
    let account = args
        .account
        .clone()
        .or_else(|| from_arn.as_ref().map(|(account, _)| account.clone()))
        .context("no account: pass --account")?;
    let region = args
        .region
        .clone()
        .or_else(|| from_arn.map(|(_, region)| region))
        .unwrap_or(initial_region);
    let reserved_concurrency = lambda
        .get_function_concurrency()
        .function_name(&generator_function)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "GetFunctionConcurrency {generator_function}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            )
        })?
        .reserved_concurrent_executions()
        .map(|n| usize::try_from(n).unwrap_or(0));
    Ok(Deployed {
        filter,
        generator,
        generator_function,
        account,
        region,
        reserved_concurrency,
    })
}

/// Every tagged image of every repository, one candidate per tag.
async fn list_tagged_images(ecr: &aws_sdk_ecr::Client) -> anyhow::Result<Vec<Candidate>> {
    let mut repositories = Vec::new();
    let mut pages = ecr.describe_repositories().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow::anyhow!(
                "ECR DescribeRepositories: {}",
                aws_sdk_ecr::error::DisplayErrorContext(&e)
            )
        })?;
        repositories.extend(
            page.repositories()
                .iter()
                .filter_map(|r| r.repository_name().map(String::from)),
        );
    }
    let mut candidates = Vec::new();
    for repository in repositories {
        let mut pages = ecr
            .describe_images()
            .repository_name(&repository)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                anyhow::anyhow!(
                    "ECR DescribeImages {repository}: {}",
                    aws_sdk_ecr::error::DisplayErrorContext(&e)
                )
            })?;
            for detail in page.image_details() {
                candidates.extend(tagged(&repository, detail));
            }
        }
    }
    candidates.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
    Ok(candidates)
}

fn tagged(repository: &str, detail: &ImageDetail) -> Vec<Candidate> {
    let Some(digest) = detail.image_digest() else {
        return Vec::new();
    };
    detail
        .image_tags()
        .iter()
        .map(|tag| Candidate {
            repository: repository.to_string(),
            tag: tag.clone(),
            digest: digest.to_string(),
            manifest_media_type: detail.image_manifest_media_type().map(String::from),
            artifact_media_type: detail.artifact_media_type().map(String::from),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_and_region_come_from_a_function_arn() {
        assert_eq!(
            account_and_region_of("arn:aws:lambda:eu-west-1:123456789012:function:filter"),
            Some(("123456789012".into(), "eu-west-1".into()))
        );
        assert_eq!(account_and_region_of("filter"), None);
    }

    #[test]
    fn every_tag_of_an_image_is_a_candidate_and_untagged_images_none() {
        let image = ImageDetail::builder()
            .image_digest("sha256:abc")
            .image_tags("v1")
            .image_tags("latest")
            .image_manifest_media_type("application/vnd.oci.image.index.v1+json")
            .build();
        let found = tagged("team/app", &image);
        assert_eq!(
            found.iter().map(|c| c.tag.as_str()).collect::<Vec<_>>(),
            ["v1", "latest"]
        );
        assert!(found.iter().all(|c| c.digest == "sha256:abc"));
        let untagged = ImageDetail::builder().image_digest("sha256:def").build();
        assert!(tagged("team/app", &untagged).is_empty());
    }
}
