//! The EventBridge "ECR Image Action" event, as the filter Lambda forwards it (whole).

use serde::{Deserialize, Serialize};

/// An EventBridge event envelope carrying an [`EcrImageAction`] detail.
///
/// Only `detail` matters to the pipeline; the envelope fields are kept for logs and for the
/// registry host (`account`, `region`). Unknown fields are ignored; missing envelope fields
/// default to empty so hand-written test events stay short.
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
    #[serde(default)]
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
    /// The tag, `None` when absent or empty.
    pub fn tag(&self) -> Option<&str> {
        self.image_tag.as_deref().filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_event() {
        let event: EcrImageActionEvent = serde_json::from_str(
            r#"{"version":"0","id":"999cccaa-eaaa-0000-1111-123456789012","detail-type":"ECR Image Action",
 "source":"aws.ecr","account":"123456789012","time":"2016-12-16T20:43:05Z","region":"us-east-1",
 "resources":[],"detail":{"result":"SUCCESS","repository-name":"team/app",
 "image-digest":"sha256:978f","action-type":"PUSH","image-tag":"v1",
 "manifest-media-type":"application/vnd.oci.image.manifest.v1+json",
 "artifact-media-type":"application/vnd.oci.image.config.v1+json"}}"#,
        )
        .unwrap();
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
}
