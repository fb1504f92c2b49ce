//! The EventBridge "ECR Image Action" event: ECR sends it for every push; the filter validates it
//! and forwards it, whole and unchanged, to the generator.
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

/// Fields that default when deserializing but that a real ECR event always has; checked detail
/// first, then envelope, the order in which a strict deserializer reports them.
const REQUIRED_DETAIL_FIELDS: [&str; 2] = ["result", "action-type"];
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
    let missing = REQUIRED_DETAIL_FIELDS
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
                manifest_media_type: None,
                artifact_media_type: None,
            },
        }
    }

    /// Checks that this is a successful push with a well-formed repository, digest and tag.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        if self.source != "aws.ecr" {
            return Err(InvalidEvent::Source(self.source.clone()));
        }
        if !valid_account(&self.account) {
            return Err(InvalidEvent::Account(self.account.clone()));
        }
        if self.detail_type != "ECR Image Action" {
            return Err(InvalidEvent::DetailType(self.detail_type.clone()));
        }
        let detail = &self.detail;
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
        match detail.tag() {
            Some(tag) if !TAG.is_match(tag) => Err(InvalidEvent::Tag(tag.to_owned())),
            _ => Ok(()),
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
