//! The EventBridge "ECR Image Action" event and its validation (solution-behaviour.md section 2).

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

/// An EventBridge envelope carrying an ECR Image Action detail. Unknown fields are ignored (the
/// whole original JSON is what gets forwarded to the generator, not this struct).
#[derive(Debug, Clone, Deserialize)]
pub struct EcrImageActionEvent {
    pub source: String,
    pub account: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default)]
    pub region: Option<String>,
    pub detail: EcrImageActionDetail,
}

/// The `detail` of an ECR Image Action event.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EcrImageActionDetail {
    pub result: String,
    pub repository_name: String,
    pub image_digest: String,
    pub action_type: String,
    /// Empty or absent for untagged pushes.
    #[serde(default)]
    pub image_tag: Option<String>,
    #[serde(default)]
    pub manifest_media_type: Option<String>,
    #[serde(default)]
    pub artifact_media_type: Option<String>,
}

impl EcrImageActionDetail {
    /// The tag, `""` for an untagged push.
    pub fn tag(&self) -> &str {
        self.image_tag.as_deref().unwrap_or("")
    }
}

/// Why an event was rejected. Rejected events are answered (logged, not retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("source is {0:?}, expected \"aws.ecr\"")]
    Source(String),
    #[error("account {0:?} is not a 12-digit AWS account id")]
    Account(String),
    #[error("detail-type is {0:?}, expected \"ECR Image Action\"")]
    DetailType(String),
    #[error("action-type is {0:?}, expected \"PUSH\"")]
    ActionType(String),
    #[error("result is {0:?}, expected \"SUCCESS\"")]
    Result(String),
    #[error("repository name {0:?} is not a valid ECR repository name")]
    Repository(String),
    #[error("image digest {0:?} is not a valid digest")]
    Digest(String),
    #[error("image tag {0:?} is not a valid tag")]
    Tag(String),
}

static ACCOUNT: LazyLock<Regex> = LazyLock::new(|| compiled(r"^[0-9]{12}$"));
static REPOSITORY: LazyLock<Regex> =
    LazyLock::new(|| compiled(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$"));
/// OCI digest grammar; the registered algorithms must have their exact lowercase-hex length.
static DIGEST: LazyLock<Regex> =
    LazyLock::new(|| compiled(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"));
static TAG: LazyLock<Regex> = LazyLock::new(|| compiled(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"));

fn compiled(pattern: &str) -> Regex {
    // The patterns are constants of this file, covered by the tests below.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("constant regex compiles")
}

fn valid_digest(digest: &str) -> bool {
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

/// Parses and validates an event, in the order of the original filter.
pub fn parse_and_validate(value: &serde_json::Value) -> Result<EcrImageActionEvent, InvalidEvent> {
    let event = EcrImageActionEvent::deserialize(value)
        .map_err(|err| InvalidEvent::Malformed(err.to_string()))?;
    if event.source != "aws.ecr" {
        return Err(InvalidEvent::Source(event.source));
    }
    if !ACCOUNT.is_match(&event.account) {
        return Err(InvalidEvent::Account(event.account));
    }
    if event.detail_type != "ECR Image Action" {
        return Err(InvalidEvent::DetailType(event.detail_type));
    }
    let detail = &event.detail;
    if detail.action_type != "PUSH" {
        return Err(InvalidEvent::ActionType(detail.action_type.clone()));
    }
    if detail.result != "SUCCESS" {
        return Err(InvalidEvent::Result(detail.result.clone()));
    }
    if detail.repository_name.len() > 256 || !REPOSITORY.is_match(&detail.repository_name) {
        return Err(InvalidEvent::Repository(detail.repository_name.clone()));
    }
    if !valid_digest(&detail.image_digest) {
        return Err(InvalidEvent::Digest(detail.image_digest.clone()));
    }
    let tag = detail.tag();
    if !tag.is_empty() && !TAG.is_match(tag) {
        return Err(InvalidEvent::Tag(tag.to_owned()));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn tags() {
        assert!(TAG.is_match("v1.2.3-rc_1"));
        assert!(TAG.is_match(&"a".repeat(128)));
        assert!(!TAG.is_match(&"a".repeat(129)));
        assert!(!TAG.is_match(".v1"));
        assert!(!TAG.is_match("-v1"));
        assert!(!TAG.is_match("v1:2"));
    }
}
