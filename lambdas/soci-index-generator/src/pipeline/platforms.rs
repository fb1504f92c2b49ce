//! Stage 2, select platforms: the image manifests to index, each with its platform.

use std::ops::ControlFlow;

use soci_core::index::{self as soci_index, ConversionSource, PlatformManifest};
use soci_core::oci::{self, Descriptor, ImageDocument, Index, Manifest, OciError, Platform};
use soci_lambda_contract::IndexVersion;

use super::outcome::IndexingOutcome;
use super::resolve::Resolved;
use super::{ImageRef, Indexer, PipelineError, Result, doc, reg};
use crate::media;

/// One image manifest to index (a platform).
pub(super) struct Target {
    /// `{mediaType, digest, size}` as pulled.
    pub descriptor: Descriptor,
    pub manifest: Manifest,
    pub platform: Platform,
}

/// The targets of a pushed document and what the V2 conversion starts from, or why the
/// document is skipped.
type Picked = ControlFlow<String, (Vec<Target>, ConversionSource)>;

/// The manifests to index, and what the V2 conversion starts from.
pub(super) struct Selected {
    pub image: ImageRef,
    pub targets: Vec<Target>,
    pub source: ConversionSource,
}

impl Indexer {
    /// The selected platforms' image manifests, or why there is nothing to index.
    pub(super) async fn select_platforms(
        &self,
        resolved: Resolved,
    ) -> Result<ControlFlow<IndexingOutcome, Selected>> {
        let Resolved {
            image,
            document,
            descriptor,
        } = resolved;
        let picked = match document {
            ImageDocument::Index { index, .. } => self.index_targets(&image, index).await?,
            ImageDocument::Manifest { manifest, .. } => {
                self.manifest_target(&image, descriptor, manifest).await?
            }
        };
        let (targets, source) = match picked {
            ControlFlow::Continue(picked) => picked,
            ControlFlow::Break(reason) => {
                return Ok(ControlFlow::Break(IndexingOutcome::skipped(&image, reason)));
            }
        };
        if targets.is_empty() {
            let reason = "no image manifest of a selected platform in the index";
            return Ok(ControlFlow::Break(IndexingOutcome::skipped(&image, reason)));
        }
        Ok(ControlFlow::Continue(Selected {
            image,
            targets,
            source,
        }))
    }

    /// The selected image manifests of an index (attestations and other artifacts left as they
    /// are); a skip reason when the index cannot be indexed at all.
    async fn index_targets(&self, image: &ImageRef, index: Index) -> Result<Picked> {
        if self.config.index_version == IndexVersion::V1 {
            return Ok(ControlFlow::Break(
                "V1 indexes a single image manifest; this is an index (use V2)".into(),
            ));
        }
        let mut targets = Vec::new();
        for entry in soci_index::index_platform_manifests(&index) {
            if !self.platform_selected(&entry.platform) {
                tracing::info!(manifest = %entry.descriptor.digest, platform = %entry.platform.display_name(), "platform not selected");
                continue;
            }
            if let Some(t) = self
                .target_from_index_entry(&image.repository, entry)
                .await?
            {
                targets.push(t);
            }
        }
        Ok(ControlFlow::Continue((
            targets,
            ConversionSource::Index(index),
        )))
    }

    /// The pushed single image manifest, if it is an image of a selected platform.
    async fn manifest_target(
        &self,
        image: &ImageRef,
        descriptor: Descriptor,
        manifest: Manifest,
    ) -> Result<Picked> {
        if !media::is_image_config(&manifest.config.media_type) {
            return Ok(ControlFlow::Break(format!(
                "not an image: config media type {:?}",
                manifest.config.media_type
            )));
        }
        let platform = self
            .platform_from_config(&image.repository, &manifest)
            .await?;
        if !self.platform_selected(&platform) {
            return Ok(ControlFlow::Break(format!(
                "platform {} is not in the platforms to index",
                platform.display_name()
            )));
        }
        let target = Target {
            descriptor: descriptor.clone(),
            manifest,
            platform: platform.clone(),
        };
        let source = ConversionSource::SingleManifest {
            descriptor,
            platform,
        };
        Ok(ControlFlow::Continue((vec![target], source)))
    }

    fn platform_selected(&self, p: &Platform) -> bool {
        let variant = Some(p.variant.as_str()).filter(|v| !v.is_empty());
        self.config.platforms.is_empty()
            || self
                .config
                .platforms
                .iter()
                .any(|f| f.matches(&p.os, &p.architecture, variant))
    }

    async fn platform_from_config(&self, repo: &str, m: &Manifest) -> Result<Platform> {
        let bytes = self
            .registry
            .get_config(repo, &m.config.digest)
            .await
            .map_err(reg("fetch the image config"))?;
        oci::platform_from_image_config(&bytes).map_err(doc(format!(
            "read the platform from the image config {}",
            m.config.digest
        )))
    }

    /// The image manifest an index entry points to; `None` when it is not an image.
    async fn target_from_index_entry(
        &self,
        repo: &str,
        entry: PlatformManifest,
    ) -> Result<Option<Target>> {
        let digest = entry.descriptor.digest.clone();
        let step = format!("fetch the platform manifest {digest}");
        let fetched = self
            .registry
            .get_manifest(repo, &digest)
            .await
            .map_err(reg(step.clone()))?
            .ok_or_else(|| PipelineError::Invalid {
                step: step.clone(),
                detail: "referenced by the index but not found".into(),
            })?;
        let manifest = match oci::parse_image_document(&fetched.bytes, &fetched.content_type) {
            Ok(ImageDocument::Manifest { manifest, .. }) => manifest,
            Ok(ImageDocument::Index { .. }) | Err(OciError::UnsupportedMediaType { .. }) => {
                tracing::info!(manifest = %digest, "index entry is not an image manifest: skipped");
                return Ok(None);
            }
            Err(e) => return Err(doc(step)(e)),
        };
        if !media::is_image_config(&manifest.config.media_type) {
            tracing::info!(manifest = %digest, config = %manifest.config.media_type, "not an image manifest: skipped");
            return Ok(None);
        }
        let descriptor = Descriptor::new(
            &entry.descriptor.media_type,
            &fetched.digest,
            i64::try_from(fetched.bytes.len()).unwrap_or(i64::MAX),
        );
        Ok(Some(Target {
            descriptor,
            manifest,
            platform: entry.platform,
        }))
    }
}
