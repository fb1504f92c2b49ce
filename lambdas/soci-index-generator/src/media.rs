//! Media types and the lenient views of image manifests and indexes the pipeline reads.

use std::collections::BTreeMap;

use serde::Deserialize;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const SOCI_INDEX_V1: &str = "application/vnd.amazon.soci.index.v1+json";
pub const SOCI_INDEX_V2: &str = "application/vnd.amazon.soci.index.v2+json";
pub const ANNOTATION_INDEX_DIGEST: &str = "com.amazon.soci.index-digest";
pub const ANNOTATION_IMAGE_MANIFEST_DIGEST: &str = "com.amazon.soci.image-manifest-digest";

/// The `Accept` header for manifest requests: OCI and Docker manifests and indexes.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

pub fn is_image_config(media_type: &str) -> bool {
    media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
}

/// A descriptor as read (unknown fields ignored).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescriptorView {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub platform: Option<PlatformView>,
    #[serde(default)]
    pub artifact_type: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PlatformView {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, rename = "os.version")]
    pub os_version: Option<String>,
    #[serde(default, rename = "os.features")]
    pub os_features: Option<Vec<String>>,
    #[serde(default)]
    pub variant: Option<String>,
}

impl std::fmt::Display for PlatformView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest as read.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestView {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    pub config: DescriptorView,
    #[serde(default)]
    pub layers: Vec<DescriptorView>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// An image index / manifest list as read.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexView {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<DescriptorView>,
}

/// The platform fields of an image config.
#[derive(Clone, Debug, Deserialize)]
pub struct ConfigView {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, rename = "os.version")]
    pub os_version: Option<String>,
    #[serde(default, rename = "os.features")]
    pub os_features: Option<Vec<String>>,
    #[serde(default)]
    pub variant: Option<String>,
}

impl ConfigView {
    pub fn platform(&self) -> PlatformView {
        PlatformView {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            os_version: self.os_version.clone().filter(|s| !s.is_empty()),
            os_features: self.os_features.clone().filter(|f| !f.is_empty()),
            variant: self.variant.clone().filter(|s| !s.is_empty()),
        }
    }
}

/// True for attestation manifests in an index (`unknown/unknown`, or BuildKit's
/// `vnd.docker.reference.type: attestation-manifest`).
pub fn is_attestation(d: &DescriptorView) -> bool {
    d.platform
        .as_ref()
        .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
        || d.annotations
            .get("vnd.docker.reference.type")
            .map(String::as_str)
            == Some("attestation-manifest")
}
