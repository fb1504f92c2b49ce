//! Stage 5, push: the SOCI indexes, then for V1 nothing more (the index names its image in
//! `subject`), for V2 the annotated manifests, the OCI index by digest and the tag, last.

use std::collections::BTreeMap;

use bytes::Bytes;
use soci_core::index::{
    self as soci_index, ConversionSource, ConvertedPlatform, SociIndex, ZtocLayer,
};
use soci_core::oci;
use soci_lambda_contract::IndexVersion;

use super::outcome::{IndexingOutcome, LayerReport, SociIndexReport};
use super::platforms::Target;
use super::pusher::{Pusher, Store};
use super::{ImageRef, Indexer, PipelineError, Result, doc, reg};
use crate::config::ORIGINAL_TAG_SUFFIX;
use crate::media;
use crate::registry::RegistryError;

/// A SOCI index pushed for one target.
pub(super) struct PushedSociIndex<'t> {
    target: &'t Target,
    index: SociIndex,
    digest: String,
    ztocs: usize,
}

/// What the final pushes report besides the artifacts.
pub(super) struct Finish<'a> {
    pub image: &'a ImageRef,
    pub layers: Vec<LayerReport>,
}

impl Indexer {
    /// Pushes the `{}` config every SOCI index refers to, then one SOCI index per target that
    /// has zTOCs (`ztocs` is parallel to `targets`).
    pub(super) async fn push_soci_indexes<'t>(
        &self,
        pusher: &Pusher,
        targets: &'t [Target],
        ztocs: &[Vec<ZtocLayer>],
    ) -> Result<Vec<PushedSociIndex<'t>>> {
        let config_media_type = match self.config.index_version {
            IndexVersion::V1 => media::MEDIA_TYPE_SOCI_INDEX_V1,
            IndexVersion::V2 => media::MEDIA_TYPE_SOCI_INDEX_V2,
        };
        pusher
            .push(
                Store::Blobs,
                "config",
                oci::EMPTY_JSON_CONFIG_DIGEST,
                config_media_type,
                Bytes::from_static(oci::EMPTY_JSON_CONFIG),
            )
            .await?;
        let mut pushed = Vec::new();
        for (t, ztocs) in targets.iter().zip(ztocs) {
            if ztocs.is_empty() {
                tracing::warn!(platform = %t.platform.display_name(), manifest = %t.descriptor.digest, "no layer of this platform was indexed: left as is");
                continue;
            }
            let build_tool = &self.config.build_tool;
            let index = match self.config.index_version {
                IndexVersion::V1 => {
                    soci_index::build_soci_index_v1(ztocs, &t.descriptor, build_tool)
                }
                IndexVersion::V2 => soci_index::build_soci_index_v2(ztocs, build_tool),
            }
            .map_err(doc(format!(
                "build the SOCI index of {}",
                t.descriptor.digest
            )))?;
            let blob = index.to_blob();
            pusher
                .push(
                    Store::Manifests,
                    "soci-index",
                    &blob.digest,
                    &blob.media_type,
                    Bytes::from(blob.bytes),
                )
                .await?;
            tracing::info!(platform = %t.platform.display_name(), manifest = %t.descriptor.digest, soci_index = %blob.digest, ztocs = ztocs.len(), "SOCI index pushed");
            pushed.push(PushedSociIndex {
                target: t,
                index,
                digest: blob.digest,
                ztocs: ztocs.len(),
            });
        }
        Ok(pushed)
    }

    /// V1: the (single) SOCI index is the result.
    pub(super) async fn finish_v1(
        &self,
        pusher: &Pusher,
        finish: Finish<'_>,
        soci: Vec<PushedSociIndex<'_>>,
    ) -> Result<IndexingOutcome> {
        let image = finish.image;
        let pushed_index = soci
            .into_iter()
            .next()
            .ok_or_else(|| PipelineError::Invalid {
                step: "V1 index".into(),
                detail: "no SOCI index built".into(),
            })?;
        let (t, digest) = (pushed_index.target, pushed_index.digest);
        let image_digest = image.digest.clone().unwrap_or_default();
        tracing::info!(repository = %image.repository, digest = %image_digest, index_digest = %digest, "indexed (V1)");
        Ok(IndexingOutcome::Indexed {
            repository: image.repository.clone(),
            image_digest,
            tag: image.tag.clone().filter(|t| !t.is_empty()),
            index_tag: None,
            index_digest: digest.clone(),
            soci_indexes: vec![SociIndexReport {
                platform: t.platform.display_name(),
                image_manifest: t.descriptor.digest.clone(),
                soci_index: digest,
                annotated_manifest: None,
                ztocs: pushed_index.ztocs,
            }],
            layers: finish.layers,
            pushed: pusher.pushed().await,
            dry_run: self.dry_run,
            in_place: None,
        })
    }

    /// V2: the annotated manifests, the OCI index by digest, then `index_tag` on it.
    pub(super) async fn finish_v2(
        &self,
        pusher: &Pusher,
        finish: Finish<'_>,
        soci: Vec<PushedSociIndex<'_>>,
        source: ConversionSource,
        index_tag: String,
    ) -> Result<IndexingOutcome> {
        let (converted, soci_reports) = self.push_annotated_manifests(pusher, soci).await?;
        // With the cleanup on, the index names its original: ECR deletes the original with
        // its last tag, and the cleanup then has nothing else to compare with.
        let annotations = match (self.config.index_tag_cleanup, &finish.image.digest) {
            (true, Some(digest)) => {
                BTreeMap::from([(media::ANNOTATION_CONVERTED_FROM.to_owned(), digest.clone())])
            }
            _ => BTreeMap::new(),
        };
        let index_blob =
            soci_index::build_converted_index_annotated(source, &converted, annotations)
                .map_err(doc("build the converted OCI index"))?;
        let index_digest = index_blob.digest.clone();
        let index_bytes = Bytes::from(index_blob.bytes);
        let media_type = &index_blob.media_type;
        pusher
            .push(
                Store::Manifests,
                "index",
                &index_digest,
                media_type,
                index_bytes.clone(),
            )
            .await?;
        let image = finish.image;
        // The build took a while: a push of another image under the same tag in the meantime
        // owns `<tag><suffix>` now.
        if let Some(superseded) = self.superseded(image).await? {
            return Ok(superseded);
        }
        pusher
            .tag(&index_tag, &index_digest, media_type, index_bytes.clone())
            .await?;
        if !self.dry_run
            && let Some(superseded) = self.superseded(image).await?
        {
            return self.reindex_after_tag_race(superseded, &index_tag).await;
        }
        let in_place = match self.config.index_in_place {
            true => Some(
                self.move_tag_in_place(pusher, image, &index_digest, media_type, index_bytes)
                    .await?,
            ),
            false => None,
        };
        let image_digest = image.digest.clone().unwrap_or_default();
        let tag = image.tag.as_deref().filter(|t| !t.is_empty());
        tracing::info!(repository = %image.repository, digest = %image_digest, tag = tag.unwrap_or_default(), index_tag = %index_tag, index_digest = %index_digest, dry_run = self.dry_run, "indexed");
        Ok(IndexingOutcome::Indexed {
            repository: image.repository.clone(),
            image_digest,
            tag: tag.map(String::from),
            index_tag: Some(index_tag),
            index_digest,
            soci_indexes: soci_reports,
            layers: finish.layers,
            pushed: pusher.pushed().await,
            dry_run: self.dry_run,
            in_place,
        })
    }

    /// The in-place mode: `<tag>-original` on the original, then `<tag>` itself on the
    /// SOCI-enabled index, so that deployments that keep referencing `<tag>` lazy-load. The
    /// push of `<tag>` this causes comes back as an event, which [`Indexer::resolve`] recognises
    /// (a SOCI-enabled index has nothing to index). A registry that refuses to move the tag
    /// (ECR repositories with immutable tags answer `400 TAG_INVALID`) leaves `<tag>` where it
    /// was: the answer says so and names the tag to deploy instead.
    async fn move_tag_in_place(
        &self,
        pusher: &Pusher,
        image: &ImageRef,
        index_digest: &str,
        media_type: &str,
        index_bytes: Bytes,
    ) -> Result<String> {
        let (Some(tag), Some(digest)) = (
            image.tag.as_deref().filter(|t| !t.is_empty()),
            image.digest.as_deref(),
        ) else {
            return Ok("not moved: the push has no tag".into());
        };
        let repo = image.repository.as_str();
        let index_tag = format!("{tag}{}", self.config.index_tag_suffix);
        let original_tag = format!("{tag}{ORIGINAL_TAG_SUFFIX}");
        let original = self
            .registry
            .get_manifest(repo, digest)
            .await
            .map_err(reg("fetch the original to keep it"))?
            .ok_or_else(|| PipelineError::Invalid {
                step: "keep the original".into(),
                detail: format!("{repo}@{digest} is gone"),
            })?;
        if let Err(e) = pusher
            .tag(&original_tag, digest, &original.media_type, original.bytes)
            .await
        {
            return refusal(&e, repo, &original_tag, &index_tag).ok_or(e);
        }
        if let Some(IndexingOutcome::Superseded { message, .. }) = self.superseded(image).await? {
            return Ok(format!("not moved: {message}"));
        }
        match pusher.tag(tag, index_digest, media_type, index_bytes).await {
            Ok(()) => Ok(format!(
                "{tag} names the SOCI-enabled index {index_digest}; the original {digest} stays reachable as {original_tag}"
            )),
            Err(e) => refusal(&e, repo, tag, &index_tag).ok_or(e),
        }
    }

    /// The tag moved between the check before tagging and the tag write. The newer image may
    /// already have been indexed, its `<tag><suffix>` then overwritten by this older image's
    /// (registries have no conditional tag write), so it is indexed once more, which puts
    /// `<tag><suffix>` back on the image the tag names. A failure of that run is the run's
    /// failure: its own event's delivery may already be over.
    async fn reindex_after_tag_race(
        &self,
        superseded: IndexingOutcome,
        index_tag: &str,
    ) -> Result<IndexingOutcome> {
        let IndexingOutcome::Superseded {
            repository,
            image_digest,
            tag,
            current_digest: Some(current),
            message,
        } = superseded
        else {
            return Ok(superseded);
        };
        if !self.repair_tag_races {
            return Ok(IndexingOutcome::Superseded {
                repository,
                image_digest,
                tag,
                current_digest: Some(current),
                message,
            });
        }
        let newer = ImageRef {
            repository: repository.clone(),
            digest: Some(current.clone()),
            tag: Some(tag.clone()),
        };
        let once = Indexer {
            registry: self.registry.clone(),
            config: self.config.clone(),
            dry_run: self.dry_run,
            repair_tag_races: false,
        };
        let repaired = Box::pin(once.run(&newer)).await?;
        tracing::warn!(repository = %repository, digest = %image_digest, tag = %tag, current = %current, repaired = repaired.status(), "the tag moved while {index_tag} was written: indexed what it names now");
        Ok(IndexingOutcome::Superseded {
            repository,
            image_digest,
            tag,
            message: format!(
                "{message}; it moved while {index_tag} was being written, so {current} was indexed again ({})",
                repaired.status()
            ),
            current_digest: Some(current),
        })
    }

    /// Pushes each target's manifest annotated with its SOCI index digest.
    async fn push_annotated_manifests(
        &self,
        pusher: &Pusher,
        soci: Vec<PushedSociIndex<'_>>,
    ) -> Result<(Vec<ConvertedPlatform>, Vec<SociIndexReport>)> {
        let mut converted = Vec::new();
        let mut reports = Vec::new();
        for PushedSociIndex {
            target: t,
            index,
            digest: soci_digest,
            ztocs,
        } in soci
        {
            let annotated = soci_index::annotate_image_manifest(&t.manifest, &soci_digest);
            let blob = &annotated.blob;
            pusher
                .push(
                    Store::Manifests,
                    "manifest",
                    &blob.digest,
                    &blob.media_type,
                    Bytes::from(blob.bytes.clone()),
                )
                .await?;
            reports.push(SociIndexReport {
                platform: t.platform.display_name(),
                image_manifest: t.descriptor.digest.clone(),
                soci_index: soci_digest,
                annotated_manifest: Some(blob.digest.clone()),
                ztocs,
            });
            converted.push(ConvertedPlatform {
                original_manifest_digest: t.descriptor.digest.clone(),
                annotated_manifest: annotated,
                soci_index: index,
                platform: t.platform.clone(),
            });
        }
        Ok((converted, reports))
    }
}

/// A tag write the registry refused for good (a 4xx other than 429: immutable tags, a policy)
/// is the in-place mode's answer, not the run's failure: the index is pushed and tagged
/// `<tag><suffix>`. `None` for anything else, which fails the run (retried).
fn refusal(e: &PipelineError, repo: &str, tag: &str, index_tag: &str) -> Option<String> {
    match e {
        PipelineError::Registry {
            source: RegistryError::Status { status, body, .. },
            ..
        } if (400..500).contains(status) && *status != 429 => Some(format!(
            "refused: {repo} did not let {tag} move (answered {status}: {body}; ECR repositories with immutable tags refuse it); {tag} stays on the original: deploy {index_tag}"
        )),
        _ => None,
    }
}
