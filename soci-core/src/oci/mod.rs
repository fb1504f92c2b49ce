//! OCI image-spec v1.1.1 structs (`Descriptor`, `Platform`, `Manifest`, `Index`) that read and
//! write JSON exactly as Go's `encoding/json` does with the `ocispec` types: fields in Go struct
//! order, Go `omitempty` rules, unknown fields dropped, Go decoding quirks (see [`crate::gojson`]).
//!
//! Field order and omission (FORMAT.md section 6):
//! - descriptor: `mediaType` (always), `digest`, `size` (always), \[`urls`\], \[`annotations`\],
//!   \[`data`\], \[`platform`\], \[`artifactType`\]
//! - platform: `architecture`, `os` (always), \[`os.version`\], \[`os.features`\], \[`variant`\].
//!   image-spec v1.1.1 has no `features` field (removed after v1.0.0): Go drops it, so do we.
//! - manifest: `schemaVersion`, \[`mediaType`\], \[`artifactType`\], `config`, `layers` (`null` when
//!   absent), \[`subject`\], \[`annotations`\]
//! - index: `schemaVersion`, \[`mediaType`\], \[`artifactType`\], `manifests` (`null` when absent),
//!   \[`subject`\], \[`annotations`\]

use std::collections::BTreeMap;

use crate::gojson::JsonError;

/// OCI image manifest.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 image manifest.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 manifest list.
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config.
pub const MEDIA_TYPE_OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config.
pub const MEDIA_TYPE_DOCKER_IMAGE_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI uncompressed tar layer.
pub const MEDIA_TYPE_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip tar layer.
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd tar layer (SOCI cannot index it).
pub const MEDIA_TYPE_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker gzip tar layer.
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed tar layer.
pub const MEDIA_TYPE_DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// SOCI index v1: config media type of the SOCI index manifest (uses `subject`).
pub const MEDIA_TYPE_SOCI_INDEX_V1: &str = "application/vnd.amazon.soci.index.v1+json";
/// SOCI index v2: config media type and descriptor `artifactType` (no `subject`).
pub const MEDIA_TYPE_SOCI_INDEX_V2: &str = "application/vnd.amazon.soci.index.v2+json";
/// Media type of a zTOC blob in a SOCI index.
pub const MEDIA_TYPE_ZTOC: &str = "application/octet-stream";

/// On a zTOC descriptor: digest of the image layer it indexes.
pub const ANNOTATION_IMAGE_LAYER_DIGEST: &str = "com.amazon.soci.image-layer-digest";
/// On a zTOC descriptor: media type of the image layer (capital T, as the reference writes it).
pub const ANNOTATION_IMAGE_LAYER_MEDIA_TYPE: &str = "com.amazon.soci.image-layer-mediaType";
/// On a zTOC descriptor: span size used to build the zTOC (decimal).
pub const ANNOTATION_SPAN_SIZE: &str = "com.amazon.soci.span-size";
/// On a zTOC descriptor: `"true"` when the layer has no xattrs and no opaque whiteouts.
pub const ANNOTATION_DISABLE_XATTRS: &str = "com.amazon.soci.disable-xattrs";
/// On the SOCI index manifest: the build tool identifier.
pub const ANNOTATION_BUILD_TOOL_IDENTIFIER: &str = "com.amazon.soci.build-tool-identifier";
/// On an image manifest (v2): digest of its SOCI index.
pub const ANNOTATION_SOCI_INDEX_DIGEST: &str = "com.amazon.soci.index-digest";
/// On a SOCI index descriptor in an OCI index (v2): digest of the annotated image manifest.
pub const ANNOTATION_IMAGE_MANIFEST_DIGEST: &str = "com.amazon.soci.image-manifest-digest";
/// BuildKit attestation descriptors carry `vnd.docker.reference.type: attestation-manifest`.
pub const ANNOTATION_DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// Value of [`ANNOTATION_DOCKER_REFERENCE_TYPE`] on attestation manifests.
pub const DOCKER_REFERENCE_TYPE_ATTESTATION: &str = "attestation-manifest";

/// The 2-byte config blob of every SOCI index manifest.
pub const EMPTY_JSON_CONFIG: &[u8] = b"{}";
/// sha256 of [`EMPTY_JSON_CONFIG`].
pub const EMPTY_JSON_CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Errors of the OCI / SOCI index layer.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The bytes are not what Go's `json.Unmarshal` would accept for this type.
    #[error("decoding {what}: {source}")]
    Json {
        /// What was being decoded (`image manifest`, `OCI index`, `SOCI index`, ...).
        what: &'static str,
        #[source]
        source: JsonError,
    },
    /// A SOCI index whose `config.mediaType` is neither v1 nor v2 (the reference's message).
    #[error("unknown index version: {0}")]
    UnknownSociIndexVersion(String),
    /// The registry's Content-Type (or the document's mediaType) is not an image manifest/index.
    #[error("unsupported media type {media_type:?}: not an image manifest, index or manifest list")]
    UnsupportedMediaType {
        /// The media type found.
        media_type: String,
    },
    /// The document's own `mediaType` contradicts the Content-Type it was served with.
    #[error("media type mismatch: served as {served:?} but the document says {declared:?}")]
    MediaTypeMismatch {
        /// Content-Type from the registry.
        served: String,
        /// `mediaType` field of the document.
        declared: String,
    },
    /// No zTOC was given: the reference reports an empty index and pushes nothing.
    #[error("empty SOCI index: no layer was indexed")]
    EmptySociIndex,
    /// A caller-supplied value is unusable (which value, and why).
    #[error("invalid {what}: {detail}")]
    InvalidArgument {
        /// The argument or field at fault.
        what: &'static str,
        /// Why it is unusable.
        detail: String,
    },
}

impl OciError {
    /// The Go decoder error, when this is one (for comparing with the reference's messages).
    pub fn json_error(&self) -> Option<&JsonError> {
        match self {
            OciError::Json { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The text the reference (Go) prints for this error, when it has one.
    pub fn go_message(&self) -> String {
        match self {
            OciError::Json { source, .. } => source.go_message().to_string(),
            other => other.to_string(),
        }
    }
}

/// `ocispec.Platform`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `architecture` (always written).
    pub architecture: String,
    /// `os` (always written).
    pub os: String,
    /// `os.version` (omitempty).
    pub os_version: String,
    /// `os.features` (omitempty).
    pub os_features: Vec<String>,
    /// `variant` (omitempty).
    pub variant: String,
}

/// `ocispec.Descriptor` (image-spec v1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// `mediaType` (always written, even empty).
    pub media_type: String,
    /// `digest` (always written).
    pub digest: String,
    /// `size` (always written).
    pub size: i64,
    /// `urls` (omitempty).
    pub urls: Vec<String>,
    /// `annotations` (omitempty, keys sorted bytewise).
    pub annotations: BTreeMap<String, String>,
    /// `data` (omitempty, base64).
    pub data: Vec<u8>,
    /// `platform` (omitted when `None`).
    pub platform: Option<Platform>,
    /// `artifactType` (omitempty).
    pub artifact_type: String,
}

/// `ocispec.Manifest` (image-spec v1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// `schemaVersion` (always written).
    pub schema_version: i64,
    /// `mediaType` (omitempty).
    pub media_type: String,
    /// `artifactType` (omitempty).
    pub artifact_type: String,
    /// `config` (always written).
    pub config: Descriptor,
    /// `layers`: `None` is Go's nil slice, written as `null`.
    pub layers: Option<Vec<Descriptor>>,
    /// `subject` (omitted when `None`).
    pub subject: Option<Descriptor>,
    /// `annotations` (omitempty).
    pub annotations: BTreeMap<String, String>,
}

/// `ocispec.Index` (image-spec v1.1.1); also what a Docker manifest list decodes into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// `schemaVersion` (always written).
    pub schema_version: i64,
    /// `mediaType` (omitempty).
    pub media_type: String,
    /// `artifactType` (omitempty).
    pub artifact_type: String,
    /// `manifests`: `None` is Go's nil slice, written as `null`.
    pub manifests: Option<Vec<Descriptor>>,
    /// `subject` (omitted when `None`).
    pub subject: Option<Descriptor>,
    /// `annotations` (omitempty).
    pub annotations: BTreeMap<String, String>,
}

impl Platform {
    /// `os/architecture[/variant]`, as containerd formats a platform (for logs).
    pub fn display_name(&self) -> String {
        if self.variant.is_empty() {
            format!("{}/{}", self.os, self.architecture)
        } else {
            format!("{}/{}/{}", self.os, self.architecture, self.variant)
        }
    }
}

impl Descriptor {
    /// A plain `{mediaType, digest, size}` descriptor.
    pub fn new(media_type: &str, digest: &str, size: i64) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            ..Self::default()
        }
    }
}

impl Manifest {
    /// The layers (`null` reads as none).
    pub fn layers(&self) -> &[Descriptor] {
        self.layers.as_deref().unwrap_or_default()
    }
}

impl Index {
    /// The manifest descriptors (`null` reads as none).
    pub fn manifests(&self) -> &[Descriptor] {
        self.manifests.as_deref().unwrap_or_default()
    }
}

mod decode;
mod document;
mod encode;

pub(crate) use decode::{check_soci_index_struct, decode_document};
pub use document::{
    ImageDocument, is_image_manifest_media_type, is_index_media_type, normalize_platform,
    parse_image_document, platform_from_image_config,
};
