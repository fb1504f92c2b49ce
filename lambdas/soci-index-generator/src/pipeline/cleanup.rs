//! The cleanup of V2 index tags: when `<tag>` is deleted (ECR's `DELETE` image action), the
//! `<tag><suffix>` left behind points at an image nobody runs. It is deleted only when it still
//! points at a conversion of the deleted image; anything else is left as it is and the answer
//! says why (`index_tag_kept`):
//!
//! - `<tag>` names the deleted image again (pushed back after the delete, or a late event), or
//!   names an image of the same config and layers, whose conversion the index is too;
//! - there is no `<tag><suffix>`;
//! - `<tag><suffix>` is not a SOCI-enabled image index (no annotated manifest with its SOCI
//!   index entry): someone else's tag;
//! - one of its annotated manifests has a config or layers that no image manifest of the
//!   deleted image has: the tag moved to another image's conversion;
//! - the deleted image can no longer be read, so nothing shows it is the conversion's original;
//! - (a registry without a tag delete) another tag names the same index.
//!
//! V1 indexes are never touched (they are untagged and found through their `subject`).
//!
//! How the tag goes: against ECR, `BatchDeleteImage` with the `imageTag` removes that tag only
//! (and the image when it was its last tag); the OCI distribution API has no tag delete before
//! spec 1.1 and deletes manifests by digest, which removes every tag of it, so against any
//! other registry the index is deleted by digest after checking that no other tag names it.

use soci_core::oci::{self, ImageDocument, Manifest, is_image_manifest_media_type};
use soci_lambda_contract::IndexVersion;

use super::outcome::IndexingOutcome;
use super::redelivery::same_image;
use super::{ImageRef, Indexer, PipelineError, Result, reg};
use crate::media;
use crate::registry::{FetchedManifest, RegistryError};

/// How an index tag is removed.
#[derive(Clone, Debug)]
pub enum TagRemover {
    /// ECR's `BatchDeleteImage` with the `imageTag`: removes just that tag.
    Ecr {
        client: aws_sdk_ecr::Client,
        /// The registry (account) id.
        registry_id: String,
    },
    /// The OCI distribution API: `DELETE` of the manifest by digest, when no other tag names it.
    Registry,
}

impl TagRemover {
    /// The name in the answer's `method`.
    fn method(&self) -> &'static str {
        match self {
            Self::Ecr { .. } => "ecr_batch_delete_image",
            Self::Registry => "registry_manifest_delete",
        }
    }
}

/// What to do with the index tag: delete it, or keep it for a reason.
type Verdict = std::result::Result<(), String>;

impl Indexer {
    /// Handles the delete of `image.tag` (which named `image.digest`).
    pub async fn clean_up(
        &self,
        image: &ImageRef,
        remover: &TagRemover,
    ) -> Result<IndexingOutcome> {
        let repo = image.repository.as_str();
        let (Some(tag), Some(digest)) = (
            image.tag.as_deref().filter(|t| !t.is_empty()),
            image.digest.as_deref().filter(|d| !d.is_empty()),
        ) else {
            return Ok(IndexingOutcome::skipped(
                image,
                "delete without a tag and a digest: no index tag to clean up",
            ));
        };
        if self.config.index_version == IndexVersion::V1 {
            return Ok(IndexingOutcome::skipped(
                image,
                "delete while building V1 indexes: V1 indexes are never deleted",
            ));
        }
        if self.config.is_index_tag(tag) {
            return Ok(IndexingOutcome::skipped(
                image,
                format!("the deleted tag {tag} is an index tag itself"),
            ));
        }
        let index_tag = format!("{tag}{}", self.config.index_tag_suffix);
        if !soci_lambda_contract::event::valid_tag(&index_tag) {
            return Ok(IndexingOutcome::skipped(
                image,
                format!("{index_tag:?} is not a valid tag: no index tag to clean up"),
            ));
        }
        let kept = |index_digest: Option<String>, reason: String| {
            tracing::info!(repository = repo, digest, tag, index_tag = %index_tag, index_digest = ?index_digest, reason = %reason, "index tag kept");
            IndexingOutcome::IndexTagKept {
                repository: repo.into(),
                image_digest: digest.into(),
                tag: tag.into(),
                index_tag: index_tag.clone(),
                index_digest,
                reason,
            }
        };
        let now = self
            .registry
            .tag_digest(repo, tag)
            .await
            .map_err(reg(format!("check what {tag} names now")))?;
        if now.as_deref() == Some(digest) {
            return Ok(kept(
                None,
                format!("{tag} names the deleted image {digest} again: its index is current"),
            ));
        }
        let Some(index) = self
            .registry
            .get_manifest(repo, &index_tag)
            .await
            .map_err(reg(format!("read {index_tag}")))?
        else {
            return Ok(kept(
                None,
                format!("there is no {index_tag}: nothing to delete"),
            ));
        };
        let index_digest = index.digest.clone();
        if let Err(reason) = self.conversion_of(repo, &index_tag, &index, digest).await? {
            return Ok(kept(Some(index_digest), reason));
        }
        // An image rebuilt with the same config and layers converts alike: when the tag moved
        // to such an image, the index serves it too and stays.
        if let Some(current) = now.as_deref()
            && self
                .conversion_of(repo, &index_tag, &index, current)
                .await?
                .is_ok()
        {
            return Ok(kept(
                Some(index_digest),
                format!(
                    "{index_tag} is also a conversion of {current}, which {tag} names now: its index is current"
                ),
            ));
        }
        if let Err(reason) = self
            .remove(repo, &index_tag, &index_digest, remover)
            .await?
        {
            return Ok(kept(Some(index_digest), reason));
        }
        tracing::info!(repository = repo, digest, tag, index_tag = %index_tag, index_digest = %index_digest, method = remover.method(), "index tag deleted");
        Ok(IndexingOutcome::IndexTagDeleted {
            repository: repo.into(),
            image_digest: digest.into(),
            tag: tag.into(),
            index_tag,
            index_digest,
            method: remover.method().into(),
        })
    }

    /// `Ok` when `index` is a SOCI-enabled image index whose every annotated image manifest has
    /// the config and layers of an image manifest of `digest` (what the conversion keeps, as
    /// `soci_core::inspect` compares a graph with its original); `Err(why)` otherwise.
    async fn conversion_of(
        &self,
        repo: &str,
        index_tag: &str,
        index: &FetchedManifest,
        digest: &str,
    ) -> Result<Verdict> {
        let not_soci = format!("{index_tag} is not a SOCI-enabled image index");
        let Ok(ImageDocument::Index { index: parsed, .. }) =
            oci::parse_image_document(&index.bytes, &index.content_type)
        else {
            return Ok(Err(not_soci));
        };
        // The annotated manifests: those a v2 SOCI index entry names, carrying its digest.
        let annotated: Vec<&str> = parsed
            .manifests()
            .iter()
            .filter(|d| d.artifact_type == media::MEDIA_TYPE_SOCI_INDEX_V2)
            .filter_map(|soci| {
                let image = soci
                    .annotations
                    .get(media::ANNOTATION_IMAGE_MANIFEST_DIGEST)?;
                parsed
                    .manifests()
                    .iter()
                    .find(|d| {
                        &d.digest == image
                            && d.annotations.get(media::ANNOTATION_SOCI_INDEX_DIGEST)
                                == Some(&soci.digest)
                    })
                    .map(|d| d.digest.as_str())
            })
            .collect();
        if annotated.is_empty() {
            return Ok(Err(not_soci));
        }
        // Written at indexing when cleanup is on: proof without the original, which ECR has
        // deleted along with its last tag. Any other value falls through to the comparison
        // (an image of the same config and layers converts alike).
        let converted_from = parsed.annotations.get(media::ANNOTATION_CONVERTED_FROM);
        if converted_from.map(String::as_str) == Some(digest) {
            return Ok(Ok(()));
        }
        let step = format!("compare {index_tag} with the deleted image {digest}");
        let Some(original) = self
            .registry
            .get_manifest(repo, digest)
            .await
            .map_err(reg(step.clone()))?
        else {
            return Ok(Err(match converted_from {
                Some(other) => format!(
                    "{index_tag} was converted from {other}, and the deleted image {digest} can no longer be read to compare"
                ),
                None => format!(
                    "the deleted image {digest} can no longer be read, and {index_tag} does not say what it was converted from (indexed while index_tag_cleanup was off)"
                ),
            }));
        };
        let originals = self.image_manifests(repo, &step, &original).await?;
        for annotated_digest in annotated {
            let fetched = self
                .registry
                .get_manifest(repo, annotated_digest)
                .await
                .map_err(reg(step.clone()))?;
            let matches = fetched
                .as_ref()
                .and_then(|m| Manifest::from_json(&m.bytes).ok())
                .is_some_and(|m| originals.iter().any(|o| same_image(o, &m)));
            if !matches {
                return Ok(Err(format!(
                    "{index_tag} points at another image's conversion: its manifest {annotated_digest} has the config and layers of no image manifest of {digest}"
                )));
            }
        }
        Ok(Ok(()))
    }

    /// The image manifests of an image: itself, or an index's image manifest entries.
    async fn image_manifests(
        &self,
        repo: &str,
        step: &str,
        image: &FetchedManifest,
    ) -> Result<Vec<Manifest>> {
        let document =
            oci::parse_image_document(&image.bytes, &image.content_type).map_err(|e| {
                PipelineError::Invalid {
                    step: step.into(),
                    detail: format!("the deleted image {} does not decode: {e}", image.digest),
                }
            })?;
        let index = match document {
            ImageDocument::Manifest { manifest, .. } => return Ok(vec![manifest]),
            ImageDocument::Index { index, .. } => index,
        };
        let mut manifests = Vec::new();
        for entry in index
            .manifests()
            .iter()
            .filter(|d| is_image_manifest_media_type(&d.media_type))
        {
            if let Some(m) = self
                .registry
                .get_manifest(repo, &entry.digest)
                .await
                .map_err(reg(step))?
                && let Ok(manifest) = Manifest::from_json(&m.bytes)
            {
                manifests.push(manifest);
            }
        }
        Ok(manifests)
    }

    /// Removes `index_tag` (which names `index_digest`); `Err(why)` when it is left.
    async fn remove(
        &self,
        repo: &str,
        index_tag: &str,
        index_digest: &str,
        remover: &TagRemover,
    ) -> Result<Verdict> {
        let step = format!("delete {index_tag}");
        match remover {
            TagRemover::Ecr { .. } if self.dry_run => Ok(Ok(())),
            TagRemover::Ecr {
                client,
                registry_id,
            } => {
                let id = aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag(index_tag)
                    .build();
                let out = client
                    .batch_delete_image()
                    .registry_id(registry_id)
                    .repository_name(repo)
                    .image_ids(id)
                    .send()
                    .await
                    .map_err(|e| PipelineError::Registry {
                        step: step.clone(),
                        source: RegistryError::protocol(
                            "ECR BatchDeleteImage",
                            aws_sdk_ecr::error::DisplayErrorContext(&e).to_string(),
                        ),
                    })?;
                match out.failures().first() {
                    None => Ok(Ok(())),
                    Some(failure) => Err(PipelineError::Registry {
                        step,
                        source: RegistryError::protocol(
                            "ECR BatchDeleteImage",
                            format!(
                                "{:?}: {}",
                                failure.failure_code(),
                                failure.failure_reason().unwrap_or_default()
                            ),
                        ),
                    }),
                }
            }
            TagRemover::Registry => {
                // A delete by digest takes every tag of the index with it: only when the index
                // tag is its one tag (two tags of one image share one conversion).
                let tags = self
                    .registry
                    .list_tags(repo)
                    .await
                    .map_err(reg(step.clone()))?;
                for other in tags.iter().filter(|t| t.as_str() != index_tag) {
                    let names = self
                        .registry
                        .tag_digest(repo, other)
                        .await
                        .map_err(reg(step.clone()))?;
                    if names.as_deref() == Some(index_digest) {
                        return Ok(Err(format!(
                            "{other} names the same index {index_digest}, and this registry deletes by digest only, which would take {other} too"
                        )));
                    }
                }
                if self.dry_run {
                    return Ok(Ok(()));
                }
                if !self
                    .registry
                    .delete_manifest(repo, index_digest)
                    .await
                    .map_err(reg(step))?
                {
                    return Ok(Err(format!("{index_digest} was already gone")));
                }
                Ok(Ok(()))
            }
        }
    }
}
