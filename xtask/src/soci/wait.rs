//! `cargo xtask index REF --wait --function NAME`: index before deploy. With event-driven
//! indexing, a task launched right after a push can start before its index exists; a CI
//! pipeline calls this between the push and the deploy. It invokes the deployed generator
//! synchronously (`RequestResponse`) with the ECR push event ECR would have sent, then reads the
//! registry and exits 0 only when `<tag><suffix>` is a verified SOCI index of that digest.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use soci_core::inspect::{Root, inspect};
use soci_index_generator::RegistryClient;
use soci_index_generator::registry::RepositoryGraph;
use soci_lambda_contract::event::EcrImageActionEvent;

use super::index::{Args, Prepared};

/// Where the deployed generator is and which account and region its event names.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct WaitArgs {
    /// Invoke the deployed generator synchronously (`RequestResponse`) instead of indexing in
    /// this process; exit 0 only when the index of the image's digest exists.
    #[arg(long, requires = "function")]
    pub wait: bool,
    /// The generator function's name or ARN (with `--wait`).
    #[arg(long)]
    pub function: Option<String>,
    /// The Lambda API endpoint (default: the SDK's, e.g. `AWS_ENDPOINT_URL`).
    #[arg(long)]
    pub lambda_endpoint: Option<String>,
    /// The account the event names (default: from an ECR host `<account>.dkr.ecr.<region>...`,
    /// or from `--function` when it is an ARN).
    #[arg(long)]
    pub account: Option<String>,
    /// The region the event names (default: from an ECR host, else the SDK's).
    #[arg(long)]
    pub region: Option<String>,
}

/// The event's account and region, from the flags, the registry host or the function ARN.
fn account_and_region(host: &str, wait: &WaitArgs) -> (Option<String>, Option<String>) {
    // `<account>.dkr.ecr.<region>.amazonaws.com[.cn]`
    let parts: Vec<&str> = host.split('.').collect();
    let ecr = (parts.len() >= 6 && parts[1] == "dkr" && parts[2] == "ecr")
        .then(|| (parts[0].to_string(), parts[3].to_string()));
    // `arn:<partition>:lambda:<region>:<account>:function:<name>`
    let arn: Vec<&str> = wait.function.as_deref().unwrap_or("").split(':').collect();
    let from_arn =
        (arn.len() >= 7 && arn[0] == "arn").then(|| (arn[4].to_string(), arn[3].to_string()));
    let account = wait
        .account
        .clone()
        .or_else(|| ecr.as_ref().map(|e| e.0.clone()))
        .or_else(|| from_arn.as_ref().map(|a| a.0.clone()));
    let region = wait
        .region
        .clone()
        .or_else(|| ecr.as_ref().map(|e| e.1.clone()))
        .or_else(|| from_arn.as_ref().map(|a| a.1.clone()));
    (account, region)
}

/// The event ECR sends for a successful push of `tag` at `digest`, stamped now.
pub(crate) fn push_event(
    account: &str,
    region: &str,
    repository: &str,
    digest: &str,
    tag: &str,
) -> EcrImageActionEvent {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    EcrImageActionEvent {
        id: format!("xtask-index-wait-{}", now.as_nanos()),
        time: soci_core::tar::GoTime::unix(i64::try_from(now.as_secs()).unwrap_or(i64::MAX), 0)
            .to_rfc3339_utc()
            .unwrap_or_default(),
        ..EcrImageActionEvent::push(account, region, repository, digest, Some(tag))
    }
}

pub fn run(args: &Args, host: &str, prepared: &Prepared) -> anyhow::Result<()> {
    let wait = &args.wait;
    let function = wait
        .function
        .as_deref()
        .context("--wait needs --function")?;
    let image = &prepared.image;
    let tag = image
        .tag
        .as_deref()
        .context("--wait needs a tag: the index is `<tag><suffix>`")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let digest = match &image.digest {
        Some(digest) => digest.clone(),
        None => {
            runtime
                .block_on(prepared.client.get_manifest(&image.repository, tag))?
                .with_context(|| format!("{}:{tag} does not exist", image.repository))?
                .digest
        }
    };
    let (account, region) = account_and_region(host, wait);
    let region = match region {
        Some(region) => region,
        None => runtime
            .block_on(aws_config::load_from_env())
            .region()
            .map(|r| r.to_string())
            .context("no region: pass --region")?,
    };
    let account = account.context("no account: pass --account (or an ECR host or function ARN)")?;
    let event = push_event(&account, &region, &image.repository, &digest, tag);
    let outcome = runtime.block_on(invoke(
        function,
        wait.lambda_endpoint.as_deref(),
        &region,
        &event,
    ))?;
    let status = outcome["status"].as_str().unwrap_or("");
    println!(
        "generator {function}: {status} {}",
        outcome["index_digest"].as_str().unwrap_or("")
    );
    ensure!(
        matches!(status, "indexed" | "already_indexed"),
        "{}:{tag}@{digest} has no index: the generator answered {outcome}",
        image.repository
    );
    let suffix = &prepared.indexer.config().index_tag_suffix;
    let index_tag = format!("{tag}{suffix}");
    runtime.block_on(confirm(
        &prepared.client,
        &image.repository,
        &index_tag,
        &digest,
    ))?;
    println!(
        "{}:{index_tag} is a verified SOCI index of {digest}",
        image.repository
    );
    Ok(())
}

async fn invoke(
    function: &str,
    endpoint: Option<&str>,
    region: &str,
    event: &EcrImageActionEvent,
) -> anyhow::Result<serde_json::Value> {
    let mut loader = aws_config::from_env().region(aws_config::Region::new(region.to_string()));
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let lambda = aws_sdk_lambda::Client::new(&loader.load().await);
    invoke_with(&lambda, function, event).await
}

/// Invokes `function` with `event` (`RequestResponse`) and returns its JSON answer; a function
/// error is an error carrying the answer.
pub(crate) async fn invoke_with(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    event: &EcrImageActionEvent,
) -> anyhow::Result<serde_json::Value> {
    let answer = lambda
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(serde_json::to_vec(event)?))
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "invoking {function}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            )
        })?;
    let payload = answer
        .payload()
        .map(|p| p.as_ref().to_vec())
        .unwrap_or_default();
    if let Some(error) = answer.function_error() {
        bail!(
            "{function} failed ({error}): {}",
            String::from_utf8_lossy(&payload)
        );
    }
    serde_json::from_slice(&payload)
        .with_context(|| format!("{function} answered {}", String::from_utf8_lossy(&payload)))
}

/// `<tag><suffix>` exists, reads back with no problem, and every annotated manifest is one of
/// the image at `digest`.
async fn confirm(
    client: &RegistryClient,
    repository: &str,
    index_tag: &str,
    digest: &str,
) -> anyhow::Result<()> {
    let graph = RepositoryGraph { client, repository };
    let report = inspect(&graph, &Root::v2(index_tag).with_original(digest))
        .await
        .with_context(|| format!("reading {repository}:{index_tag} back"))?;
    let problems = report.problems();
    ensure!(
        problems.is_empty(),
        "{repository}:{index_tag}: {}",
        problems.join("; ")
    );
    ensure!(
        report
            .platforms
            .iter()
            .all(|p| p.image_manifest.original.is_some()),
        "{repository}:{index_tag} indexes another image than {digest}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_and_region_come_from_an_ecr_host_or_the_function_arn() {
        let none = WaitArgs::default();
        assert_eq!(
            account_and_region("123456789012.dkr.ecr.eu-west-1.amazonaws.com", &none),
            (Some("123456789012".into()), Some("eu-west-1".into()))
        );
        let arn = WaitArgs {
            function: Some("arn:aws:lambda:us-east-2:210987654321:function:gen".into()),
            ..WaitArgs::default()
        };
        assert_eq!(
            account_and_region("127.0.0.1:5000", &arn),
            (Some("210987654321".into()), Some("us-east-2".into()))
        );
        let flags = WaitArgs {
            account: Some("111111111111".into()),
            region: Some("ap-south-1".into()),
            ..arn
        };
        assert_eq!(
            account_and_region("123456789012.dkr.ecr.eu-west-1.amazonaws.com", &flags),
            (Some("111111111111".into()), Some("ap-south-1".into()))
        );
        assert_eq!(account_and_region("127.0.0.1:5000", &none), (None, None));
    }

    #[test]
    fn the_event_is_a_valid_ecr_push() {
        let event = push_event(
            "123456789012",
            "eu-west-1",
            "team/app",
            &format!("sha256:{}", "a".repeat(64)),
            "v1",
        );
        event.validate().expect("the filter would accept it");
        assert_eq!(event.detail.tag(), Some("v1"));
    }
}
