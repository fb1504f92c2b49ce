//! The ECR image filter Lambda's logic, reachable from tests without a Lambda runtime.
//!
//! [`handle`] takes the raw EventBridge event (a push, a pull through cache sync, a replication,
//! or a tag's delete), validates it (the shared contract, [`soci_lambda_contract::event`]: every
//! shape comes down to the same repository, digest and tag), applies the loop/noise guards and
//! the repository:tag globs ([`glob`]) the same way for each, and invokes the SOCI index
//! generator asynchronously through an [`Invoker`] (the real one is [`SdkInvoker`]). Every decision is logged as one JSON line
//! ([`soci_lambda_contract::logging`]).
//!
//! | decision | answer |
//! |---|---|
//! | invalid event | `Ok`, `status = "invalid"` (not retried) |
//! | skipped (guard or no filter matched) | `Ok`, `status = "skipped"` |
//! | generator accepted the async invoke (HTTP 202) | `Ok`, `status = "invoked"` |
//! | invoke failed or answered anything but 202 | `Err` (Lambda's async retry applies) |

pub mod config;
pub mod glob;
pub mod invoke;

use serde::Serialize;
use soci_lambda_contract::event::{
    EcrImageActionEvent, EventKind, InvalidEvent, parse_and_validate,
};
use soci_lambda_contract::indexing::{TagSkip, tag_skip};

pub use config::{
    Config, ConfigError, DEFAULT_FILTERS, DEFAULT_INDEX_TAG_SUFFIX, ENV_FILTERS, ENV_GENERATOR_ARN,
    ENV_INDEX_TAG_SUFFIX, ENV_INDEX_VERSION,
};
pub use invoke::{InvokeError, Invoker, SdkInvoker};
pub use soci_lambda_contract::IndexVersion;

use crate::glob::Glob;

/// Media types of SOCI indexes (pushes of these are the generator's own output).
pub const SOCI_INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.amazon.soci.index.v1+json",
    "application/vnd.amazon.soci.index.v2+json",
];

/// What the filter decided for one event (also the Lambda's JSON answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub status: Status,
    /// `push`, `pull_through_cache`, `replication` or `delete`, for a valid event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<EventKind>,
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
    /// A push to the generator's zTOC cache repository (its own output).
    ZtocCache(String),
    /// Untagged push while the generator builds V2 indexes (which need a tag).
    UntaggedV2,
    /// No filter matched `<repository>:<tag>`.
    NoFilterMatched(String),
    /// A delete while the generator builds V1 indexes: only V2 index tags are cleaned up.
    DeleteInV1,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SociIndexPush(media_type) => write!(f, "push of a SOCI index ({media_type})"),
            Self::IndexTag(suffix) => write!(f, "tag ends with the index tag suffix {suffix:?}"),
            Self::ZtocCache(repo) => write!(
                f,
                "push to the generator's zTOC cache repository {repo:?} (its own output)"
            ),
            Self::UntaggedV2 => write!(
                f,
                "untagged image; the generator builds V2 indexes, which need a tag"
            ),
            Self::NoFilterMatched(name) => write!(f, "no filter matches {name:?}"),
            Self::DeleteInV1 => write!(
                f,
                "delete while the generator builds V1 indexes; only V2 index tags are cleaned up"
            ),
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
    if config.ztoc_cache_repository.as_deref() == Some(detail.repository_name.as_str()) {
        return Err(SkipReason::ZtocCache(detail.repository_name.clone()));
    }
    let tag = detail.tag();
    if event.kind().ok() == Some(EventKind::Delete) && config.index_version == IndexVersion::V1 {
        return Err(SkipReason::DeleteInV1);
    }
    match tag_skip(tag, config.index_version, &config.index_tag_suffix) {
        Some(TagSkip::IndexTag) => {
            return Err(SkipReason::IndexTag(config.index_tag_suffix.clone()));
        }
        Some(TagSkip::UntaggedV2) => return Err(SkipReason::UntaggedV2),
        None => {}
    }
    let name = format!("{}:{}", detail.repository_name, tag.unwrap_or_default());
    config
        .filters
        .iter()
        .find(|glob| glob.matches(&name))
        .ok_or(SkipReason::NoFilterMatched(name))
}

/// Handles one event: validate, guard, filter, invoke. `Ok` for everything that must not be
/// retried (invalid, skipped, invoked), `Err` only for a failed invoke.
pub async fn handle<I: Invoker>(
    config: &Config,
    invoker: &I,
    request_id: &str,
    event: &serde_json::Value,
) -> Result<Decision, InvokeError> {
    let parsed = match parse_and_validate(event) {
        Ok(parsed) => parsed,
        Err(invalid) => return Ok(invalid_decision(request_id, event, &invalid)),
    };
    let detail = &parsed.detail;
    let (repository, digest) = (&detail.repository_name, &detail.image_digest);
    let tag = detail.tag().unwrap_or_default();
    let kind = parsed.kind().ok();
    let kind_name = kind.map(EventKind::as_str).unwrap_or_default();
    let mut decision = Decision {
        status: Status::Skipped,
        kind,
        reason: String::new(),
        repository: Some(repository.clone()),
        digest: Some(digest.clone()),
        tag: Some(tag.to_owned()),
        filter: None,
    };
    let glob = match decide(config, &parsed) {
        Ok(glob) => glob,
        Err(skip) => {
            decision.reason = skip.to_string();
            tracing::info!(
                request_id,
                decision = "skip",
                kind = kind_name,
                reason = %decision.reason,
                repository = %repository,
                digest = %digest,
                tag,
                "skipped"
            );
            return Ok(decision);
        }
    };
    let payload = serde_json::to_vec(event)?;
    if let Err(err) = invoke::invoke_accepted(invoker, &config.generator_arn, payload).await {
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
    decision.status = Status::Invoked;
    decision.reason = format!("filter {:?} matched", glob.as_str());
    decision.filter = Some(glob.as_str().to_owned());
    tracing::info!(
        request_id,
        decision = "invoke",
        kind = kind_name,
        reason = %decision.reason,
        filter = glob.as_str(),
        generator = %config.generator_arn,
        repository = %repository,
        digest = %digest,
        tag,
        "invoked the SOCI index generator asynchronously"
    );
    Ok(decision)
}

/// The answer to an event that failed validation, with whatever context the raw event has.
fn invalid_decision(
    request_id: &str,
    event: &serde_json::Value,
    invalid: &InvalidEvent,
) -> Decision {
    let detail = event.get("detail");
    let field = |name: &str| {
        detail
            .and_then(|d| d.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let decision = Decision {
        status: Status::Invalid,
        kind: None,
        reason: invalid.to_string(),
        repository: field("repository-name"),
        digest: field("image-digest"),
        tag: field("image-tag"),
        filter: None,
    };
    tracing::warn!(
        request_id,
        decision = "invalid",
        reason = %decision.reason,
        repository = decision.repository.as_deref().unwrap_or(""),
        digest = decision.digest.as_deref().unwrap_or(""),
        tag = decision.tag.as_deref().unwrap_or(""),
        "invalid event, not retried"
    );
    decision
}

/// The Lambda handler: [`handle`] with the request id of the invocation.
pub async fn handle_event<I: Invoker>(
    config: &Config,
    invoker: &I,
    event: lambda_runtime::LambdaEvent<serde_json::Value>,
) -> Result<Decision, lambda_runtime::Error> {
    Ok(handle(config, invoker, &event.context.request_id, &event.payload).await?)
}

/// Logs the settings the function started with (one JSON line at init).
pub fn log_started(config: &Config) {
    tracing::info!(
        filters = ?config.filters.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        generator = %config.generator_arn,
        index_version = ?config.index_version,
        index_tag_suffix = %config.index_tag_suffix,
        "ecr-image-filter started"
    );
}
