//! EventBridge delivers at least once: before building anything, a V2 run checks whether
//! `<tag><suffix>` already covers the image, and then pushes nothing.

use std::collections::HashSet;

use soci_core::oci::{self, ImageDocument, Index, Manifest};

use super::platforms::Target;
use super::{Indexer, Result, reg};
use crate::media;

impl Indexer {
    /// `Some(index digest)` when `<tag><suffix>` is an OCI index that already holds, for every
    /// wanted manifest, an annotated copy (same config and layers) and its SOCI index.
    pub(super) async fn already_indexed(
        &self,
        repo: &str,
        index_tag: &str,
        wanted: &[&Target],
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
        for t in wanted {
            if !self.has_annotated_copy(repo, &step, &index, t).await? {
                return Ok(None);
            }
        }
        Ok(Some(existing.digest))
    }

    /// True when `index` lists an annotated manifest of `target` that has its SOCI index.
    async fn has_annotated_copy(
        &self,
        repo: &str,
        step: &str,
        index: &Index,
        target: &Target,
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
            if Manifest::from_json(&m.bytes).is_ok_and(|view| same_image(&view, &target.manifest)) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Same config and the same layers in the same order.
fn same_image(a: &Manifest, b: &Manifest) -> bool {
    a.config.digest == b.config.digest
        && a.layers().len() == b.layers().len()
        && a.layers()
            .iter()
            .zip(b.layers())
            .all(|(x, y)| x.digest == y.digest)
}
