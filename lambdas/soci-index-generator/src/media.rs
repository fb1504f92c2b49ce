//! Media types the pipeline asks for (the document types themselves are soci-core's `oci`).

pub use soci_core::oci::{
    ANNOTATION_IMAGE_MANIFEST_DIGEST, ANNOTATION_SOCI_INDEX_DIGEST, MEDIA_TYPE_DOCKER_IMAGE_CONFIG,
    MEDIA_TYPE_OCI_IMAGE_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_SOCI_INDEX_V1, MEDIA_TYPE_SOCI_INDEX_V2, MEDIA_TYPE_ZTOC,
};

/// On the SOCI-enabled image index, when index tag cleanup is on: the digest of the image it
/// was converted from. In ECR, deleting an image's last tag deletes the image, so when the
/// delete's event arrives the original can no longer be read and compared; this annotation is
/// then what shows that `<tag><suffix>` is its conversion. Not one soci writes (it is ours, so
/// it is in our namespace); readers of an image index ignore annotations they do not know.
pub const ANNOTATION_CONVERTED_FROM: &str = "io.github.soci-lambda.converted-from";

/// The `Accept` header for manifest requests: OCI and Docker manifests and indexes.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// True for an image config (OCI or Docker); anything else is an artifact, not an image.
pub fn is_image_config(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_IMAGE_CONFIG || media_type == MEDIA_TYPE_DOCKER_IMAGE_CONFIG
}
