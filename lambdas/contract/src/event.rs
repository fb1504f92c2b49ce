//! The EventBridge events ECR sends when an image lands in a repository or leaves it, one envelope
//! for all: "ECR Image Action" (a push, or a delete), "ECR Pull Through Cache Action" (an image
//! cached from an upstream registry) and "ECR Replication Action" (an image replicated from
//! another region or account). The filter validates an event and forwards it, whole and
//! unchanged, to the generator; both read it through [`EcrImageActionEvent::request`], so each
//! shape comes down to the same [`ImageRequest`] (repository, digest, tag).
//!
//! The shapes are those of the Amazon ECR user guide, "Amazon ECR events and EventBridge"
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html>): a pull
//! through cache event carries `sync-status` (no `result`, no `action-type`), a replication
//! event `result`, `action-type: REPLICATE`, `source-account` and `source-region`.
//!
//! The envelope deserializes leniently (missing envelope fields, `result` and `action-type`
//! default to empty, so hand-written events to the generator stay short); the filter's
//! [`parse_and_validate`] is strict and answers why an event is refused.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize};

/// An EventBridge event envelope carrying an [`EcrImageAction`] detail. Unknown fields are
/// ignored (the filter forwards the original JSON, not this struct).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct EcrImageActionEvent {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub id: String,
    #[serde(rename = "detail-type", default)]
    pub detail_type: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub time: String,
    /// Empty when absent or `null`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub region: String,
    #[serde(default)]
    pub resources: Vec<String>,
    pub detail: EcrImageAction,
}

/// The `detail` of an ECR Image Action event (kebab-case fields).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct EcrImageAction {
    #[serde(default)]
    pub result: String,
    pub repository_name: String,
    /// Required by [`parse_and_validate`], except in a pull through cache event: a failed sync
    /// may have no image.
    #[serde(default)]
    pub image_digest: String,
    #[serde(default)]
    pub action_type: String,
    /// Empty or absent for untagged pushes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_media_type: Option<String>,
    /// Pull through cache: `SUCCESS` or `FAILED` (these events have no `result`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_status: Option<String>,
    /// Pull through cache, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    /// Pull through cache, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr_repository_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_registry_url: Option<String>,
    /// Replication: the account and region the image was replicated from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_region: Option<String>,
}

/// `detail-type` of a push or delete.
pub const DETAIL_TYPE_IMAGE_ACTION: &str = "ECR Image Action";
/// `detail-type` of a pull through cache sync.
pub const DETAIL_TYPE_PULL_THROUGH_CACHE: &str = "ECR Pull Through Cache Action";
/// `detail-type` of a completed (or failed) replication.
pub const DETAIL_TYPE_REPLICATION: &str = "ECR Replication Action";

/// How the image came (or went): what an event asks of the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// `ECR Image Action`, `PUSH`: index it.
    Push,
    /// `ECR Pull Through Cache Action`: cached from upstream; index it.
    PullThroughCache,
    /// `ECR Replication Action`, `REPLICATE`: replicated here; index it.
    Replication,
    /// `ECR Image Action`, `DELETE`: the tag is gone; its `<tag><suffix>` may be cleaned up.
    Delete,
}

impl EventKind {
    /// The name in logs and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::PullThroughCache => "pull_through_cache",
            Self::Replication => "replication",
            Self::Delete => "delete",
        }
    }

    /// True for the kinds that bring an image to index.
    pub fn indexes(self) -> bool {
        !matches!(self, Self::Delete)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What any of the event shapes asks for: the same request whichever way the image came.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageRequest {
    pub kind: EventKind,
    pub repository: String,
    pub digest: String,
    /// `None` for an untagged image.
    pub tag: Option<String>,
}

impl EcrImageAction {
    /// The tag, `None` for an untagged push (tag absent or empty).
    pub fn tag(&self) -> Option<&str> {
        self.image_tag.as_deref().filter(|t| !t.is_empty())
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Option::<String>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("source is {0:?}, expected \"aws.ecr\"")]
    Source(String),
    #[error("account {0:?} is not a 12-digit AWS account id")]
    Account(String),
    #[error(
        "detail-type is {0:?}, expected \"ECR Image Action\", \"ECR Pull Through Cache Action\" or \"ECR Replication Action\""
    )]
    DetailType(String),
    #[error("action-type is {action:?}, expected {expected} for {detail_type:?}")]
    ActionType {
        detail_type: String,
        action: String,
        expected: &'static str,
    },
    #[error("result is {0:?}, expected \"SUCCESS\"; nothing to index")]
    Result(String),
    #[error("sync-status is {status:?}, expected \"SUCCESS\"; nothing to index{failure}")]
    SyncStatus { status: String, failure: String },
    #[error("repository name {0:?} is not a valid ECR repository name")]
    Repository(String),
    #[error("image digest {0:?} is not a valid digest")]
    Digest(String),
    #[error("image tag {0:?} is not a valid tag")]
    Tag(String),
}

/// Fields that default when deserializing but that a real ECR event always has; checked detail
/// first, then envelope, the order in which a strict deserializer reports them. A pull through
/// cache event has `sync-status` instead of `result` and `action-type`.
const REQUIRED_DETAIL_FIELDS: [&str; 3] = ["result", "action-type", "image-digest"];
const REQUIRED_PULL_THROUGH_CACHE_FIELDS: [&str; 1] = ["sync-status"];
const REQUIRED_ENVELOPE_FIELDS: [&str; 3] = ["source", "account", "detail-type"];

static REPOSITORY: LazyLock<Regex> =
    LazyLock::new(|| compiled(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$"));
/// OCI digest grammar; the registered algorithms must have their exact lowercase-hex length.
static DIGEST: LazyLock<Regex> =
    LazyLock::new(|| compiled(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"));
/// The OCI distribution spec's `<name>` grammar.
static OCI_REPOSITORY: LazyLock<Regex> = LazyLock::new(|| {
    compiled(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
});
static TAG: LazyLock<Regex> = LazyLock::new(|| compiled(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"));

fn compiled(pattern: &str) -> Regex {
    // The patterns are constants of this file, covered by the tests below.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("constant regex compiles")
}

/// A 12-digit AWS account id.
pub fn valid_account(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

/// A region name that is safe to put in a host name (lowercase letters, digits, `-`).
pub fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// An OCI distribution repository name (the spec's grammar, which ECR's names are a subset
/// of): lowercase path components joined by `/`, at most 255 characters. Safe in a URL path.
pub fn valid_repository_name(name: &str) -> bool {
    name.len() <= 255 && OCI_REPOSITORY.is_match(name)
}

/// An OCI tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`). Safe in a URL path.
pub fn valid_tag(tag: &str) -> bool {
    TAG.is_match(tag)
}

/// An OCI digest; `sha256` and `sha512` must have their exact lowercase-hex length. Safe in a
/// URL path.
pub fn valid_digest(digest: &str) -> bool {
    if !DIGEST.is_match(digest) {
        return false;
    }
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match digest.split_once(':') {
        Some(("sha256", hex)) => lower_hex(hex, 64),
        Some(("sha512", hex)) => lower_hex(hex, 128),
        Some(_) => true,
        None => false,
    }
}

fn require_fields(value: &serde_json::Value) -> Result<(), InvalidEvent> {
    let detail = &value["detail"];
    let required: &[&str] = if value["detail-type"] == DETAIL_TYPE_PULL_THROUGH_CACHE {
        &REQUIRED_PULL_THROUGH_CACHE_FIELDS
    } else {
        &REQUIRED_DETAIL_FIELDS
    };
    let missing = required
        .iter()
        .find(|name| detail.get(name).is_none())
        .or_else(|| {
            REQUIRED_ENVELOPE_FIELDS
                .iter()
                .find(|name| value.get(name).is_none())
        });
    match missing {
        Some(name) => Err(InvalidEvent::Malformed(format!("missing field `{name}`"))),
        None => Ok(()),
    }
}

/// Parses and validates an event, in the order of the original filter.
pub fn parse_and_validate(value: &serde_json::Value) -> Result<EcrImageActionEvent, InvalidEvent> {
    let event = EcrImageActionEvent::deserialize(value)
        .map_err(|err| InvalidEvent::Malformed(err.to_string()))?;
    require_fields(value)?;
    event.validate()?;
    Ok(event)
}

impl EcrImageActionEvent {
    /// The event ECR sends for a successful push of `tag` (`None`: an untagged push) at `digest`
    /// in `account`'s `region`; `id` and `time` are left for the caller.
    pub fn push(
        account: &str,
        region: &str,
        repository: &str,
        digest: &str,
        tag: Option<&str>,
    ) -> Self {
        Self {
            version: "0".into(),
            id: String::new(),
            detail_type: "ECR Image Action".into(),
            source: "aws.ecr".into(),
            account: account.into(),
            time: String::new(),
            region: region.into(),
            resources: vec![format!(
                "arn:aws:ecr:{region}:{account}:repository/{repository}"
            )],
            detail: EcrImageAction {
                result: "SUCCESS".into(),
                repository_name: repository.into(),
                image_digest: digest.into(),
                action_type: "PUSH".into(),
                image_tag: tag.map(Into::into),
                ..EcrImageAction::default()
            },
        }
    }

    /// The event ECR sends when a pull through cache rule cached `tag` at `digest` from
    /// `upstream` (`sync-status: SUCCESS`); `id` and `time` are left for the caller.
    pub fn pull_through_cache(
        account: &str,
        region: &str,
        repository: &str,
        digest: &str,
        tag: &str,
        upstream: &str,
    ) -> Self {
        let mut event = Self::push(account, region, repository, digest, Some(tag));
        event.detail_type = DETAIL_TYPE_PULL_THROUGH_CACHE.into();
        let prefix = repository.split('/').next().unwrap_or(repository);
        event.detail = EcrImageAction {
            repository_name: repository.into(),
            image_digest: digest.into(),
            image_tag: Some(tag.into()),
            sync_status: Some("SUCCESS".into()),
            rule_version: Some("1".into()),
            ecr_repository_prefix: Some(prefix.into()),
            upstream_registry_url: Some(upstream.into()),
            ..EcrImageAction::default()
        };
        event
    }

    /// The event ECR sends in the destination (`account`, `region`) when `tag` at `digest` was
    /// replicated there from `source_account`'s `source_region`.
    pub fn replication(
        account: &str,
        region: &str,
        repository: &str,
        digest: &str,
        tag: &str,
        source: (&str, &str),
    ) -> Self {
        let mut event = Self::push(account, region, repository, digest, Some(tag));
        event.detail_type = DETAIL_TYPE_REPLICATION.into();
        event.detail.action_type = "REPLICATE".into();
        event.detail.source_account = Some(source.0.into());
        event.detail.source_region = Some(source.1.into());
        event
    }

    /// The event ECR sends when `tag` (at `digest`) was deleted.
    pub fn delete(account: &str, region: &str, repository: &str, digest: &str, tag: &str) -> Self {
        let mut event = Self::push(account, region, repository, digest, Some(tag));
        event.detail.action_type = "DELETE".into();
        event
    }

    /// Which of the shapes this is. Lenient, as the generator reads events: an empty
    /// `detail-type` is an image action and an empty `action-type` a push (hand-written events
    /// stay short); the strict check of their presence is [`parse_and_validate`]'s.
    pub fn kind(&self) -> Result<EventKind, InvalidEvent> {
        let action = self.detail.action_type.as_str();
        let wrong_action = |detail_type: &str, expected: &'static str| InvalidEvent::ActionType {
            detail_type: detail_type.to_owned(),
            action: action.to_owned(),
            expected,
        };
        match self.detail_type.as_str() {
            "" | DETAIL_TYPE_IMAGE_ACTION => match action {
                "" | "PUSH" => Ok(EventKind::Push),
                "DELETE" => Ok(EventKind::Delete),
                _ => Err(wrong_action(
                    DETAIL_TYPE_IMAGE_ACTION,
                    "\"PUSH\" or \"DELETE\"",
                )),
            },
            DETAIL_TYPE_PULL_THROUGH_CACHE => Ok(EventKind::PullThroughCache),
            DETAIL_TYPE_REPLICATION => match action {
                "" | "REPLICATE" => Ok(EventKind::Replication),
                _ => Err(wrong_action(DETAIL_TYPE_REPLICATION, "\"REPLICATE\"")),
            },
            other => Err(InvalidEvent::DetailType(other.to_owned())),
        }
    }

    /// The failure the event reports (`result`, or a pull through cache's `sync-status`, not
    /// `SUCCESS`). `strict`: an absent status is a failure too (the filter's view); otherwise it
    /// means success (the generator's, for hand-written events).
    fn failure(&self, kind: EventKind, strict: bool) -> Option<InvalidEvent> {
        let detail = &self.detail;
        if kind == EventKind::PullThroughCache {
            let status = detail.sync_status.as_deref().unwrap_or_default();
            if status == "SUCCESS" || (!strict && status.is_empty()) {
                return None;
            }
            let failure = match (&detail.failure_code, &detail.failure_reason) {
                (None, None) => String::new(),
                (code, reason) => format!(
                    " (failure-code {:?}: {})",
                    code.as_deref().unwrap_or_default(),
                    reason.as_deref().unwrap_or_default()
                ),
            };
            return Some(InvalidEvent::SyncStatus {
                status: status.to_owned(),
                failure,
            });
        }
        let result = detail.result.as_str();
        (result != "SUCCESS" && (strict || !result.is_empty()))
            .then(|| InvalidEvent::Result(result.to_owned()))
    }

    /// What the event asks for, whichever shape it has: the generator's reading (lenient about
    /// absent fields, like [`Self::kind`]). `Err` when there is nothing to do: a failed push,
    /// sync or replication, or an action that is neither an arrival nor a delete.
    pub fn request(&self) -> Result<ImageRequest, InvalidEvent> {
        let kind = self.kind()?;
        if let Some(failure) = self.failure(kind, false) {
            return Err(failure);
        }
        Ok(self.request_of(kind))
    }

    fn request_of(&self, kind: EventKind) -> ImageRequest {
        ImageRequest {
            kind,
            repository: self.detail.repository_name.clone(),
            digest: self.detail.image_digest.clone(),
            tag: self.detail.tag().map(str::to_owned),
        }
    }

    /// Checks that this is a successful push, pull through cache sync, replication or delete,
    /// with a well-formed repository, digest and tag: the same checks for every shape.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        self.validated().map(drop)
    }

    /// [`Self::validate`], answering the request.
    pub fn validated(&self) -> Result<ImageRequest, InvalidEvent> {
        if self.source != "aws.ecr" {
            return Err(InvalidEvent::Source(self.source.clone()));
        }
        if !valid_account(&self.account) {
            return Err(InvalidEvent::Account(self.account.clone()));
        }
        if self.detail_type.is_empty() {
            return Err(InvalidEvent::DetailType(String::new()));
        }
        let kind = self.kind()?;
        if kind != EventKind::PullThroughCache && self.detail.action_type.is_empty() {
            return Err(InvalidEvent::ActionType {
                detail_type: self.detail_type.clone(),
                action: String::new(),
                expected: if kind == EventKind::Replication {
                    "\"REPLICATE\""
                } else {
                    "\"PUSH\" or \"DELETE\""
                },
            });
        }
        if let Some(failure) = self.failure(kind, true) {
            return Err(failure);
        }
        let detail = &self.detail;
        if detail.repository_name.len() > 256 || !REPOSITORY.is_match(&detail.repository_name) {
            return Err(InvalidEvent::Repository(detail.repository_name.clone()));
        }
        if !valid_digest(&detail.image_digest) {
            return Err(InvalidEvent::Digest(detail.image_digest.clone()));
        }
        match detail.tag() {
            Some(tag) if !TAG.is_match(tag) => Err(InvalidEvent::Tag(tag.to_owned())),
            _ => Ok(self.request_of(kind)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENTED: &str = r#"{"version":"0","id":"999cccaa-eaaa-0000-1111-123456789012","detail-type":"ECR Image Action",
 "source":"aws.ecr","account":"123456789012","time":"2016-12-16T20:43:05Z","region":"us-east-1",
 "resources":[],"detail":{"result":"SUCCESS","repository-name":"team/app",
 "image-digest":"sha256:978f","action-type":"PUSH","image-tag":"v1",
 "manifest-media-type":"application/vnd.oci.image.manifest.v1+json",
 "artifact-media-type":"application/vnd.oci.image.config.v1+json"}}"#;

    /// The fixtures of the filter's tests: the shapes of the ECR user guide's "Amazon ECR events
    /// and EventBridge" page (see the fixtures' README.md for what was changed and why).
    fn fixture(name: &str) -> serde_json::Value {
        let text = match name {
            "push" => include_str!("../../ecr-image-filter/tests/fixtures/push_tagged.json"),
            "ptc" => include_str!("../../ecr-image-filter/tests/fixtures/pull_through_cache.json"),
            "ptc_failed" => {
                include_str!("../../ecr-image-filter/tests/fixtures/pull_through_cache_failed.json")
            }
            "replication" => include_str!("../../ecr-image-filter/tests/fixtures/replication.json"),
            "replication_failed" => {
                include_str!("../../ecr-image-filter/tests/fixtures/replication_failed.json")
            }
            "delete" => include_str!("../../ecr-image-filter/tests/fixtures/delete_tagged.json"),
            other => panic!("no fixture {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn every_arrival_shape_is_the_same_request() {
        for (name, kind) in [
            ("push", EventKind::Push),
            ("ptc", EventKind::PullThroughCache),
            ("replication", EventKind::Replication),
            ("delete", EventKind::Delete),
        ] {
            let value = fixture(name);
            let event = parse_and_validate(&value).unwrap_or_else(|e| panic!("{name}: {e}"));
            let strict = event.validated().unwrap();
            let lenient = event.request().unwrap();
            assert_eq!(strict, lenient, "{name}");
            assert_eq!(strict.kind, kind, "{name}");
            let detail = &value["detail"];
            assert_eq!(strict.repository, detail["repository-name"], "{name}");
            assert_eq!(strict.digest, detail["image-digest"], "{name}");
            assert_eq!(
                strict.tag.as_deref(),
                detail["image-tag"].as_str(),
                "{name}"
            );
            assert_eq!(kind.indexes(), kind != EventKind::Delete);
        }
        let replicated = parse_and_validate(&fixture("replication")).unwrap();
        assert_eq!(
            replicated.detail.source_region.as_deref(),
            Some("us-west-2")
        );
        assert_eq!(
            replicated.region, "us-east-1",
            "the event comes from the destination"
        );
    }

    #[test]
    fn failures_are_refused_with_the_reason() {
        let err = parse_and_validate(&fixture("ptc_failed")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, InvalidEvent::SyncStatus { .. }), "{err}");
        assert!(
            text.contains("\"FAILED\"") && text.contains("UPSTREAM_UNAVAILABLE"),
            "{text}"
        );
        let event: EcrImageActionEvent = serde_json::from_value(fixture("ptc_failed")).unwrap();
        assert_eq!(
            event.request().unwrap_err(),
            err,
            "the generator ignores it too"
        );

        let err = parse_and_validate(&fixture("replication_failed")).unwrap_err();
        assert_eq!(err, InvalidEvent::Result("FAILED".into()));
        let event: EcrImageActionEvent =
            serde_json::from_value(fixture("replication_failed")).unwrap();
        assert_eq!(event.request().unwrap_err(), err);
    }

    #[test]
    fn each_shape_needs_its_own_fields() {
        let mut ptc = fixture("ptc");
        ptc["detail"].as_object_mut().unwrap().remove("sync-status");
        assert_eq!(
            parse_and_validate(&ptc).unwrap_err(),
            InvalidEvent::Malformed("missing field `sync-status`".into())
        );
        let mut replication = fixture("replication");
        replication["detail"]["action-type"] = "PUSH".into();
        assert!(matches!(
            parse_and_validate(&replication).unwrap_err(),
            InvalidEvent::ActionType { .. }
        ));
        let mut storage = fixture("push");
        storage["detail"]["action-type"] = "UPDATE_STORAGE_CLASS".into();
        let err = parse_and_validate(&storage).unwrap_err();
        assert!(err.to_string().contains("UPDATE_STORAGE_CLASS"), "{err}");
        let mut scan = fixture("push");
        scan["detail-type"] = "ECR Image Scan".into();
        assert_eq!(
            parse_and_validate(&scan).unwrap_err(),
            InvalidEvent::DetailType("ECR Image Scan".into())
        );
        // The same repository, digest and tag checks for every shape.
        let mut bad_digest = fixture("ptc");
        bad_digest["detail"]["image-digest"] = "sha256:4aa0EXAMPLE".into();
        assert!(matches!(
            parse_and_validate(&bad_digest).unwrap_err(),
            InvalidEvent::Digest(_)
        ));
        let mut bad_tag = fixture("replication");
        bad_tag["detail"]["image-tag"] = "-x".into();
        assert!(matches!(
            parse_and_validate(&bad_tag).unwrap_err(),
            InvalidEvent::Tag(_)
        ));
    }

    #[test]
    fn constructors_build_what_the_filter_accepts() {
        let digest = format!("sha256:{}", "b".repeat(64));
        for event in [
            EcrImageActionEvent::push("123456789012", "eu-west-1", "a/b", &digest, Some("v1")),
            EcrImageActionEvent::pull_through_cache(
                "123456789012",
                "eu-west-1",
                "docker-hub/alpine",
                &digest,
                "3",
                "registry-1.docker.io",
            ),
            EcrImageActionEvent::replication(
                "123456789012",
                "eu-west-1",
                "a/b",
                &digest,
                "v1",
                ("210987654321", "us-east-1"),
            ),
            EcrImageActionEvent::delete("123456789012", "eu-west-1", "a/b", &digest, "v1"),
        ] {
            let value = serde_json::to_value(&event).unwrap();
            let parsed = parse_and_validate(&value).unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(parsed, event);
            assert_eq!(parsed.validated().unwrap().digest, digest);
        }
    }

    #[test]
    fn hand_written_events_default_to_a_push() {
        let event: EcrImageActionEvent = serde_json::from_str(
            r#"{"detail":{"repository-name":"a","image-digest":"sha256:00","image-tag":"v"}}"#,
        )
        .unwrap();
        assert_eq!(event.request().unwrap().kind, EventKind::Push);
        assert!(
            event.validate().is_err(),
            "the filter wants the whole event"
        );
    }

    #[test]
    fn parses_the_documented_event() {
        let event: EcrImageActionEvent = serde_json::from_str(DOCUMENTED).unwrap();
        assert_eq!(event.detail_type, "ECR Image Action");
        assert_eq!(event.detail.repository_name, "team/app");
        assert_eq!(event.detail.tag(), Some("v1"));
        assert_eq!(event.region, "us-east-1");
    }

    #[test]
    fn empty_or_absent_tag_is_untagged() {
        let empty: EcrImageAction = serde_json::from_str(
            r#"{"repository-name":"a","image-digest":"sha256:00","image-tag":""}"#,
        )
        .unwrap();
        assert_eq!(empty.tag(), None);
        let absent: EcrImageAction =
            serde_json::from_str(r#"{"repository-name":"a","image-digest":"sha256:00"}"#).unwrap();
        assert_eq!(absent.tag(), None);
    }

    #[test]
    fn null_region_is_empty() {
        let mut value: serde_json::Value = serde_json::from_str(DOCUMENTED).unwrap();
        value["region"] = serde_json::Value::Null;
        let event = EcrImageActionEvent::deserialize(&value).unwrap();
        assert_eq!(event.region, "");
    }

    #[test]
    fn strict_parsing_requires_what_ecr_always_sends() {
        let valid: serde_json::Value = serde_json::from_str(
            &DOCUMENTED.replace("sha256:978f", &format!("sha256:{}", "a".repeat(64))),
        )
        .unwrap();
        assert!(parse_and_validate(&valid).is_ok());
        for (path, name) in [
            (None, "source"),
            (None, "account"),
            (None, "detail-type"),
            (Some("detail"), "result"),
            (Some("detail"), "action-type"),
        ] {
            let mut event = valid.clone();
            let object = match path {
                Some(p) => &mut event[p],
                None => &mut event,
            };
            object.as_object_mut().unwrap().remove(name);
            assert_eq!(
                parse_and_validate(&event).unwrap_err(),
                InvalidEvent::Malformed(format!("missing field `{name}`"))
            );
        }
    }

    #[test]
    fn accounts_and_regions() {
        assert!(valid_account("123456789012"));
        assert!(!valid_account("12345678901a"));
        assert!(!valid_account("12345678901"));
        assert!(!valid_account("1234567890123"));
        assert!(valid_region("us-east-1"));
        assert!(!valid_region(""));
        assert!(!valid_region("us-east-1.evil.com/"));
    }

    #[test]
    fn repository_names() {
        for ok in [
            "app", "team/app", "a/b/c", "my-app", "my_app", "my.app", "a1/b2-c3",
        ] {
            assert!(REPOSITORY.is_match(ok), "{ok}");
        }
        for bad in [
            "",
            "App",
            "team//app",
            "/app",
            "app/",
            "-app",
            "app-",
            "a..b",
            "a:b",
        ] {
            assert!(!REPOSITORY.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn digests() {
        let hex = "a".repeat(64);
        assert!(valid_digest(&format!("sha256:{hex}")));
        assert!(!valid_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!valid_digest("sha256:abc"));
        assert!(!valid_digest("sha256"));
        assert!(!valid_digest(&format!("SHA256:{hex}")));
        assert!(valid_digest(&format!("sha512:{}", "0".repeat(128))));
    }

    #[test]
    fn oci_repository_names_are_url_safe() {
        for ok in ["app", "team/app", "a__b", "a--b/c", "my.app"] {
            assert!(valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "", "../x", "a/../b", "a?b", "a#b", "a%2fb", "a b", "A", "a/", "a:b", "a//b",
        ] {
            assert!(!valid_repository_name(bad), "{bad}");
        }
        assert!(!valid_repository_name(&"a".repeat(256)));
        assert!(valid_tag("v1") && !valid_tag("v1/../x") && !valid_tag("v1?x=1"));
    }

    #[test]
    fn tags() {
        assert!(TAG.is_match("v1.2.3-rc_1"));
        assert!(TAG.is_match(&"a".repeat(128)));
        assert!(!TAG.is_match(&"a".repeat(129)));
        assert!(!TAG.is_match(".v1"));
        assert!(!TAG.is_match("-v1"));
        assert!(!TAG.is_match("v1:2"));
    }
}
