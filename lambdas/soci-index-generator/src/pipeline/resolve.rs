//! Stage 1, resolve: apply the tag rules, fetch the pushed manifest and decode it.

use std::ops::ControlFlow;

use soci_core::oci::{self, Descriptor, ImageDocument, OciError};
use soci_lambda_contract::event::{valid_digest, valid_repository_name, valid_tag};
use soci_lambda_contract::indexing::{IndexVersion, TagSkip, tag_skip};

use super::outcome::IndexingOutcome;
use super::{ImageRef, Indexer, PipelineError, Result, doc, reg};
use crate::config::ORIGINAL_TAG_SUFFIX;

/// The pushed image, fetched and decoded.
pub(super) struct Resolved {
    /// The image with the digest of the manifest fetched.
    pub image: ImageRef,
    /// The pushed document: an image manifest, or an index of them.
    pub document: ImageDocument,
    /// The pushed document's descriptor as pulled.
    pub descriptor: Descriptor,
}

impl Indexer {
    /// Resolves `image`, or says why it is skipped.
    pub(super) async fn resolve(
        &self,
        image: &ImageRef,
    ) -> Result<ControlFlow<IndexingOutcome, Resolved>> {
        if let Some(detail) = invalid_reference(image) {
            return Err(PipelineError::Invalid {
                step: "check the image reference".into(),
                detail,
            });
        }
        let repo = image.repository.as_str();
        let tag = image.tag.as_deref().filter(|t| !t.is_empty());
        if let Some(reason) = self.tag_skip_reason(tag) {
            return Ok(ControlFlow::Break(IndexingOutcome::skipped(image, reason)));
        }
        let reference = match (&image.digest, tag) {
            (Some(d), _) if !d.is_empty() => d.clone(),
            (_, Some(t)) => t.to_string(),
            _ => {
                return Err(PipelineError::Invalid {
                    step: "resolve image".into(),
                    detail: "neither digest nor tag given".into(),
                });
            }
        };
        let top = self
            .registry
            .get_manifest(repo, &reference)
            .await
            .map_err(reg("fetch the pushed manifest"))?
            .ok_or_else(|| PipelineError::Invalid {
                step: "fetch the pushed manifest".into(),
                detail: format!("{repo}@{reference} not found in the registry"),
            })?;
        tracing::info!(repository = repo, digest = %top.digest, media_type = %top.media_type, "image manifest fetched");
        let image = ImageRef {
            digest: Some(top.digest.clone()),
            ..image.clone()
        };
        let document = match oci::parse_image_document(&top.bytes, &top.content_type) {
            Ok(d) => d,
            Err(OciError::UnsupportedMediaType { media_type }) => {
                let reason = format!("not an image: media type {media_type:?}");
                return Ok(ControlFlow::Break(IndexingOutcome::skipped(&image, reason)));
            }
            Err(e) => return Err(doc("decode the pushed manifest")(e)),
        };
        if let ImageDocument::Index { index, .. } = &document
            && index
                .manifests()
                .iter()
                .any(|d| d.artifact_type == oci::MEDIA_TYPE_SOCI_INDEX_V2)
        {
            let reason = "already a SOCI-enabled image index (the in-place mode's own push of the tag, or a conversion pushed again): nothing to index";
            return Ok(ControlFlow::Break(IndexingOutcome::skipped(&image, reason)));
        }
        let descriptor = Descriptor::new(
            &document_media_type(&document),
            &top.digest,
            i64::try_from(top.bytes.len()).unwrap_or(i64::MAX),
        );
        Ok(ControlFlow::Continue(Resolved {
            image,
            document,
            descriptor,
        }))
    }

    /// The shared tag rules, applied in V2 only: a V1 index is pushed untagged, so in V1 no tag
    /// is this pipeline's own output and every push is indexed.
    fn tag_skip_reason(&self, tag: Option<&str>) -> Option<String> {
        if self.config.index_version != IndexVersion::V2 {
            return None;
        }
        let suffix = &self.config.index_tag_suffix;
        if self.config.index_in_place
            && let Some(t) = tag.filter(|t| t.ends_with(ORIGINAL_TAG_SUFFIX))
        {
            return Some(format!(
                "tag {t:?} ends with {ORIGINAL_TAG_SUFFIX:?}: the in-place mode keeps the original there"
            ));
        }
        Some(match tag_skip(tag, IndexVersion::V2, suffix)? {
            TagSkip::IndexTag => format!(
                "tag {:?} ends with {suffix:?}: it is a SOCI index tag",
                tag.unwrap_or_default()
            ),
            TagSkip::UntaggedV2 => "untagged push: V2 indexes tagged images only".into(),
        })
    }
}

/// Why `image` cannot be requested: the repository, digest and tag go into URL paths, and each
/// must be what its grammar allows (a direct invoke does not pass the filter's validation).
fn invalid_reference(image: &ImageRef) -> Option<String> {
    if !valid_repository_name(&image.repository) {
        return Some(format!(
            "repository {:?} is not a valid repository name",
            image.repository
        ));
    }
    if let Some(d) = image.digest.as_deref().filter(|d| !d.is_empty())
        && !valid_digest(d)
    {
        return Some(format!("digest {d:?} is not a valid digest"));
    }
    if let Some(t) = image.tag.as_deref().filter(|t| !t.is_empty())
        && !valid_tag(t)
    {
        return Some(format!("tag {t:?} is not a valid tag"));
    }
    None
}

fn document_media_type(d: &ImageDocument) -> String {
    match d {
        ImageDocument::Manifest { media_type, .. } | ImageDocument::Index { media_type, .. } => {
            media_type.clone()
        }
    }
}
