//! EventBridge delivers at least once, late and out of order: before building anything, a V2
//! run checks that the tag still names the image (else a later push owns `<tag><suffix>`) and
//! whether `<tag><suffix>` already covers the image, and then pushes nothing.

use std::collections::HashSet;

use soci_core::index::unmarshal_soci_index;
use soci_core::oci::{self, ImageDocument, Index, Manifest};

use super::layer::LayerPlan;
use super::outcome::IndexingOutcome;
use super::platforms::Target;
use super::{ImageRef, Indexer, Result, reg};
use crate::config::ORIGINAL_TAG_SUFFIX;
use crate::media;

impl Indexer {
    /// `Some(Superseded)` when the pushed tag no longer names the image being indexed: a later
    /// push moved it, and moving `<tag><suffix>` back to this image would pair the tag with an
    /// index of another image. Checked before building and again right before tagging.
    pub(super) async fn superseded(&self, image: &ImageRef) -> Result<Option<IndexingOutcome>> {
        let (Some(tag), Some(digest)) = (image.tag.as_deref(), image.digest.as_deref()) else {
            return Ok(None);
        };
        let repo = image.repository.as_str();
        let current = self
            .registry
            .tag_digest(repo, tag)
            .await
            .map_err(reg(format!("check what {tag} names now")))?;
        if current.as_deref() == Some(digest) {
            return Ok(None);
        }
        // In-place mode: this pipeline moved the tag to this image's SOCI-enabled index when
        // `<tag>-original` keeps this image and `<tag><suffix>` names what the tag names.
        if self.config.index_in_place && current.is_some() {
            let names = |t: String| async move {
                self.registry
                    .tag_digest(repo, &t)
                    .await
                    .map_err(reg(format!("check what {t} names now")))
            };
            let kept = names(format!("{tag}{ORIGINAL_TAG_SUFFIX}")).await?;
            if kept.as_deref() == Some(digest)
                && names(format!("{tag}{}", self.config.index_tag_suffix)).await? == current
            {
                return Ok(None);
            }
        }
        let message = match &current {
            Some(now) => format!(
                "tag {tag} now names {now}, pushed after {digest}: its own event indexes it; not retried"
            ),
            None => format!("tag {tag} no longer exists; not retried"),
        };
        tracing::warn!(repository = repo, digest, tag, current = ?current, "superseded: {message}");
        Ok(Some(IndexingOutcome::Superseded {
            repository: repo.into(),
            image_digest: digest.into(),
            tag: tag.into(),
            current_digest: current,
            message,
        }))
    }

    /// `Some(index digest)` when `<tag><suffix>` is an OCI index that already holds, for every
    /// wanted manifest, an annotated copy (same config and layers) and its SOCI index with a
    /// zTOC of every planned layer. An index that lacks one is not "already indexed": the
    /// layer may have been left out for a reason that retrying fixes, so it is built again.
    pub(super) async fn already_indexed(
        &self,
        repo: &str,
        index_tag: &str,
        wanted: &[(&Target, &[LayerPlan])],
    ) -> Result<Option<String>> {
        let step = format!("check the existing {index_tag}");
        let Some(existing) = self
            .registry
            .get_manifest(repo, index_tag)
            .await
            .map_err(reg(step.clone()))?
        else {
            return Ok(None);
        };
        let Ok(ImageDocument::Index { index, .. }) =
            oci::parse_image_document(&existing.bytes, &existing.content_type)
        else {
            return Ok(None);
        };
        for (t, planned) in wanted {
            if !self
                .has_annotated_copy(repo, &step, &index, t, planned)
                .await?
            {
                return Ok(None);
            }
        }
        Ok(Some(existing.digest))
    }

    /// True when `index` lists an annotated manifest of `target` whose SOCI index has a zTOC
    /// of every layer in `planned`.
    async fn has_annotated_copy(
        &self,
        repo: &str,
        step: &str,
        index: &Index,
        target: &Target,
        planned: &[LayerPlan],
    ) -> Result<bool> {
        let soci_for: HashSet<&str> = index
            .manifests()
            .iter()
            .filter(|d| d.artifact_type == media::MEDIA_TYPE_SOCI_INDEX_V2)
            .filter_map(|d| {
                d.annotations
                    .get(media::ANNOTATION_IMAGE_MANIFEST_DIGEST)
                    .map(String::as_str)
            })
            .collect();
        for d in index.manifests().iter().filter(|d| {
            soci_for.contains(d.digest.as_str())
                && d.annotations
                    .contains_key(media::ANNOTATION_SOCI_INDEX_DIGEST)
        }) {
            let Some(m) = self
                .registry
                .get_manifest(repo, &d.digest)
                .await
                .map_err(reg(step))?
            else {
                continue;
            };
            if Manifest::from_json(&m.bytes).is_ok_and(|view| same_image(&view, &target.manifest))
                && let Some(soci) = d.annotations.get(media::ANNOTATION_SOCI_INDEX_DIGEST)
                && self.covers(repo, step, soci, planned).await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// True when the SOCI index `soci_digest` has a zTOC of every layer in `planned`.
    async fn covers(
        &self,
        repo: &str,
        step: &str,
        soci_digest: &str,
        planned: &[LayerPlan],
    ) -> Result<bool> {
        let Some(m) = self
            .registry
            .get_manifest(repo, soci_digest)
            .await
            .map_err(reg(step))?
        else {
            return Ok(false);
        };
        let Ok(soci) = unmarshal_soci_index(&m.bytes) else {
            return Ok(false);
        };
        let indexed: HashSet<&str> = soci
            .blobs
            .iter()
            .flatten()
            .filter_map(|b| b.annotations.get(oci::ANNOTATION_IMAGE_LAYER_DIGEST))
            .map(String::as_str)
            .collect();
        Ok(planned.iter().all(|p| indexed.contains(p.digest.as_str())))
    }
}

/// Same config and the same layers in the same order.
pub(super) fn same_image(a: &Manifest, b: &Manifest) -> bool {
    a.config.digest == b.config.digest
        && a.layers().len() == b.layers().len()
        && a.layers()
            .iter()
            .zip(b.layers())
            .all(|(x, y)| x.digest == y.digest)
}
