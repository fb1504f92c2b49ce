//! The ECR image filter Lambda's logic, reachable from tests without a Lambda runtime.
//!
//! [`handle`] takes the raw EventBridge event, validates it ([`event`]), applies the loop/noise
//! guards and the repository:tag globs ([`glob`]), and invokes the SOCI index generator
//! asynchronously through an [`Invoker`] (the real one is [`SdkInvoker`]). Every decision is logged
//! as one JSON line (see [`init_tracing`]).
//!
//! | outcome | answer |
//! |---|---|
//! | invalid event | `Ok`, `status = "invalid"` (not retried) |
//! | skipped (guard or no filter matched) | `Ok`, `status = "skipped"` |
//! | generator accepted the async invoke (HTTP 202) | `Ok`, `status = "invoked"` |
//! | invoke failed or answered anything but 202 | `Err` (Lambda's async retry applies) |

pub mod event;
pub mod glob;

use std::future::Future;

use serde::Serialize;

use crate::event::{EcrImageActionEvent, parse_and_validate};
use crate::glob::{Glob, parse_filter_list};

/// Env var: comma-separated globs over `<repository>:<tag>`.
pub const ENV_FILTERS: &str = "soci_repository_image_tag_filters";
/// Env var: the generator Lambda's ARN (or name).
pub const ENV_GENERATOR_ARN: &str = "soci_index_generator_lambda_arn";
/// Env var: the suffix the generator appends to index tags.
pub const ENV_INDEX_TAG_SUFFIX: &str = "index_tag_suffix";
/// Env var: `V1` or `V2`, the index version the generator builds.
pub const ENV_INDEX_VERSION: &str = "soci_index_version";

pub const DEFAULT_FILTERS: &str = "*:*";
pub const DEFAULT_INDEX_TAG_SUFFIX: &str = "-soci";

/// Media types of SOCI indexes (pushes of these are the generator's own output).
pub const SOCI_INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.amazon.soci.index.v1+json",
    "application/vnd.amazon.soci.index.v2+json",
];

/// The SOCI index version the generator builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IndexVersion {
    V1,
    V2,
}

/// Configuration problems (the Lambda fails at init, visibly, rather than silently filtering).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {ENV_GENERATOR_ARN} is not set")]
    MissingGeneratorArn,
    #[error("environment variable {ENV_FILTERS} is set but holds no pattern ({0:?})")]
    NoFilters(String),
    #[error("environment variable {ENV_INDEX_VERSION} is {0:?}, expected V1 or V2")]
    IndexVersion(String),
}

/// The filter's settings, read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub filters: Vec<Glob>,
    pub generator_arn: String,
    pub index_tag_suffix: String,
    pub index_version: IndexVersion,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (so tests need not touch the process environment).
    ///
    /// - filters: unset → `*:*`; entries trimmed, empty entries dropped; set but empty → error.
    /// - generator ARN: required, non-empty.
    /// - index tag suffix: unset or empty → `-soci` (an empty suffix would match every tag).
    /// - index version: unset or empty → V2; `V1`/`V2` in any case; anything else → error.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let raw_filters = lookup(ENV_FILTERS).unwrap_or_else(|| DEFAULT_FILTERS.to_owned());
        let filters = parse_filter_list(&raw_filters);
        if filters.is_empty() {
            return Err(ConfigError::NoFilters(raw_filters));
        }
        let generator_arn = lookup(ENV_GENERATOR_ARN)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or(ConfigError::MissingGeneratorArn)?;
        let index_tag_suffix = lookup(ENV_INDEX_TAG_SUFFIX)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_INDEX_TAG_SUFFIX.to_owned());
        let index_version = match lookup(ENV_INDEX_VERSION).as_deref().map(str::trim) {
            None | Some("") => IndexVersion::V2,
            Some(v) if v.eq_ignore_ascii_case("v2") => IndexVersion::V2,
            Some(v) if v.eq_ignore_ascii_case("v1") => IndexVersion::V1,
            Some(other) => return Err(ConfigError::IndexVersion(other.to_owned())),
        };
        Ok(Self {
            filters,
            generator_arn,
            index_tag_suffix,
            index_version,
        })
    }
}

/// What the filter decided for one event (also the Lambda's JSON answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub status: Status,
    /// Why (human-readable).
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The filter that matched, for `invoked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Invalid,
    Skipped,
    Invoked,
}

/// Why a valid push is not indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The pushed manifest/artifact is a SOCI index (the generator's own output).
    SociIndexPush(String),
    /// The tag carries the index tag suffix (the generator's own output).
    IndexTag(String),
    /// Untagged push while the generator builds V2 indexes (which need a tag).
    UntaggedV2,
    /// No filter matched `<repository>:<tag>`.
    NoFilterMatched(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SociIndexPush(media_type) => write!(f, "push of a SOCI index ({media_type})"),
            Self::IndexTag(suffix) => write!(f, "tag ends with the index tag suffix {suffix:?}"),
            Self::UntaggedV2 => write!(
                f,
                "untagged push; the generator builds V2 indexes, which need a tag"
            ),
            Self::NoFilterMatched(name) => write!(f, "no filter matches {name:?}"),
        }
    }
}

/// The decision for a validated event: the matching filter, or why it is skipped.
pub fn decide<'c>(config: &'c Config, event: &EcrImageActionEvent) -> Result<&'c Glob, SkipReason> {
    let detail = &event.detail;
    for media_type in [&detail.manifest_media_type, &detail.artifact_media_type]
        .into_iter()
        .flatten()
    {
        if SOCI_INDEX_MEDIA_TYPES.contains(&media_type.as_str()) {
            return Err(SkipReason::SociIndexPush(media_type.clone()));
        }
    }
    let tag = detail.tag();
    if !tag.is_empty() && tag.ends_with(&config.index_tag_suffix) {
        return Err(SkipReason::IndexTag(config.index_tag_suffix.clone()));
    }
    if tag.is_empty() && config.index_version == IndexVersion::V2 {
        return Err(SkipReason::UntaggedV2);
    }
    let name = format!("{}:{}", detail.repository_name, tag);
    config
        .filters
        .iter()
        .find(|glob| glob.matches(&name))
        .ok_or(SkipReason::NoFilterMatched(name))
}

/// Invocation failures: returned as errors so Lambda retries the async event.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("invoking {function} failed: {message}")]
    Sdk { function: String, message: String },
    #[error("invoking {function} answered HTTP {status}, expected 202 (InvocationType=Event)")]
    UnexpectedStatus { function: String, status: i32 },
    #[error("serializing the event payload failed: {0}")]
    Payload(#[from] serde_json::Error),
}

/// Invokes a Lambda function asynchronously; returns the HTTP status of the Invoke API answer.
pub trait Invoker {
    fn invoke_async(
        &self,
        function: &str,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<i32, InvokeError>> + Send;
}

/// The real [`Invoker`] over aws-sdk-lambda (`InvocationType=Event`).
#[derive(Debug, Clone)]
pub struct SdkInvoker {
    client: aws_sdk_lambda::Client,
}

impl SdkInvoker {
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Self { client }
    }

    /// A client from the standard AWS configuration chain (region, credentials, and endpoint,
    /// including `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_LAMBDA`).
    pub async fn from_env() -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(aws_sdk_lambda::Client::new(&config))
    }
}

impl Invoker for SdkInvoker {
    async fn invoke_async(&self, function: &str, payload: Vec<u8>) -> Result<i32, InvokeError> {
        let output = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map_err(|err| InvokeError::Sdk {
                function: function.to_owned(),
                message: aws_sdk_lambda::error::DisplayErrorContext(&err).to_string(),
            })?;
        Ok(output.status_code())
    }
}

/// Handles one event: validate, guard, filter, invoke. `Ok` for everything that must not be
/// retried (invalid, skipped, invoked), `Err` only for a failed invoke.
pub async fn handle<I: Invoker>(
    config: &Config,
    invoker: &I,
    request_id: &str,
    event: &serde_json::Value,
) -> Result<Outcome, InvokeError> {
    let parsed = match parse_and_validate(event) {
        Ok(parsed) => parsed,
        Err(invalid) => {
            let reason = invalid.to_string();
            let detail = event.get("detail");
            let field = |name: &str| {
                detail
                    .and_then(|d| d.get(name))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let outcome = Outcome {
                status: Status::Invalid,
                reason,
                repository: field("repository-name"),
                digest: field("image-digest"),
                tag: field("image-tag"),
                filter: None,
            };
            tracing::warn!(
                request_id,
                decision = "invalid",
                reason = %outcome.reason,
                repository = outcome.repository.as_deref().unwrap_or(""),
                digest = outcome.digest.as_deref().unwrap_or(""),
                tag = outcome.tag.as_deref().unwrap_or(""),
                "invalid event, not retried"
            );
            return Ok(outcome);
        }
    };
    let detail = &parsed.detail;
    let (repository, digest, tag) = (&detail.repository_name, &detail.image_digest, detail.tag());
    let mut outcome = Outcome {
        status: Status::Skipped,
        reason: String::new(),
        repository: Some(repository.clone()),
        digest: Some(digest.clone()),
        tag: Some(tag.to_owned()),
        filter: None,
    };
    let glob = match decide(config, &parsed) {
        Ok(glob) => glob,
        Err(skip) => {
            outcome.reason = skip.to_string();
            tracing::info!(
                request_id,
                decision = "skip",
                reason = %outcome.reason,
                repository = %repository,
                digest = %digest,
                tag,
                "skipped"
            );
            return Ok(outcome);
        }
    };
    let payload = serde_json::to_vec(event)?;
    let invoked = match invoker.invoke_async(&config.generator_arn, payload).await {
        Ok(202) => Ok(()),
        Ok(status) => Err(InvokeError::UnexpectedStatus {
            function: config.generator_arn.clone(),
            status,
        }),
        Err(err) => Err(err),
    };
    if let Err(err) = invoked {
        tracing::error!(
            request_id,
            decision = "invoke_failed",
            reason = %err,
            repository = %repository,
            digest = %digest,
            tag,
            "generator invoke failed; returning an error so Lambda retries"
        );
        return Err(err);
    }
    outcome.status = Status::Invoked;
    outcome.reason = format!("filter {:?} matched", glob.as_str());
    outcome.filter = Some(glob.as_str().to_owned());
    tracing::info!(
        request_id,
        decision = "invoke",
        reason = %outcome.reason,
        filter = glob.as_str(),
        generator = %config.generator_arn,
        repository = %repository,
        digest = %digest,
        tag,
        "invoked the SOCI index generator asynchronously"
    );
    Ok(outcome)
}

/// The JSON log format: one flat JSON object per line (fields at top level, no span noise),
/// written to `writer`. `main` passes stdout; tests pass a buffer.
pub fn json_subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// Installs [`json_subscriber`] on stdout as the global subscriber.
pub fn init_tracing() {
    // Ignore "already set" (only possible if something else installed one first).
    let _ = tracing::subscriber::set_global_default(json_subscriber(std::io::stdout));
}
