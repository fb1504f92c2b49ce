//! The indexing pipeline: image in, zTOCs + SOCI indexes (+ v2 conversion and tag) out.
//!
//! Push order: zTOC blobs, the `{}` config, the SOCI index manifests, the annotated image
//! manifests, the OCI index (by digest), and the `<tag><suffix>` tag last, so that a failure at
//! any point never leaves a tag pointing at something incomplete. Every blob and manifest is
//! checked with `HEAD` first and not sent again when the registry already has it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use soci_core::Compression;
use soci_core::index::{self as soci_index, ConversionSource, ConvertedPlatform, ZtocLayer};
use soci_core::oci::{self, Descriptor, ImageDocument, Manifest, OciError, Platform};
use tokio::sync::{Mutex, Semaphore};

use crate::config::{Config, IndexVersion};
use crate::layer::{self, LayerError, LayerOutcome, LayerPlan};
use crate::media;
use crate::registry::{self, RegistryClient, RegistryError};

/// The image to index.
#[derive(Clone, Debug)]
pub struct ImageRef {
    pub repository: String,
    /// The pushed manifest's digest (`sha256:...`); when `None`, the tag is resolved.
    pub digest: Option<String>,
    /// The pushed tag (`None` or empty: untagged).
    pub tag: Option<String>,
}

/// A failure that retrying the invocation may fix (registry or AWS trouble, a broken layer
/// download), or that needs a person (a corrupt layer). Messages name the step, the layer and
/// the registry's answer.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{step}: {source}")]
    Registry {
        step: String,
        #[source]
        source: RegistryError,
    },
    #[error("{step}: {source}")]
    Layer {
        step: String,
        #[source]
        source: LayerError,
    },
    #[error("{step}: {detail}")]
    Invalid { step: String, detail: String },
    #[error("{step}: {source}")]
    Document {
        step: String,
        #[source]
        source: OciError,
    },
}

type Result<T, E = PipelineError> = std::result::Result<T, E>;

fn reg(step: impl Into<String>) -> impl FnOnce(RegistryError) -> PipelineError {
    let step = step.into();
    move |source| PipelineError::Registry { step, source }
}

fn doc(step: impl Into<String>) -> impl FnOnce(OciError) -> PipelineError {
    let step = step.into();
    move |source| PipelineError::Document { step, source }
}

fn platform_name(p: &Platform) -> String {
    p.display_name()
}

/// What one layer came to.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// `indexed`, or why it was left out.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ztoc_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ztoc_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// One artifact the pipeline pushed (or, in a dry run, would push).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Pushed {
    /// `ztoc`, `config`, `soci-index`, `manifest`, `index`, `tag`.
    pub kind: String,
    /// Digest, or tag for `tag`.
    pub reference: String,
    pub media_type: String,
    pub size: u64,
}

/// One SOCI index produced.
#[derive(Clone, Debug, Serialize)]
pub struct SociIndexReport {
    pub platform: String,
    pub image_manifest: String,
    pub soci_index: String,
    /// v2: the annotated manifest's digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotated_manifest: Option<String>,
    pub ztocs: usize,
}

/// The outcome of an invocation that retrying could not change. Serialized with a `status`
/// field (`indexed`, `skipped`, `already_indexed`, `no_eligible_layers`).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Indexed {
        repository: String,
        image_digest: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        /// v2: `<tag><suffix>`.
        #[serde(skip_serializing_if = "Option::is_none")]
        index_tag: Option<String>,
        /// v2: the OCI index digest; v1: the SOCI index digest.
        index_digest: String,
        soci_indexes: Vec<SociIndexReport>,
        layers: Vec<LayerReport>,
        pushed: Vec<Pushed>,
        dry_run: bool,
    },
    Skipped {
        repository: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        image_digest: Option<String>,
        reason: String,
    },
    AlreadyIndexed {
        repository: String,
        image_digest: String,
        index_tag: String,
        index_digest: String,
    },
    NoEligibleLayers {
        repository: String,
        image_digest: String,
        message: String,
        layers: Vec<LayerReport>,
    },
}

impl Outcome {
    pub fn status(&self) -> &'static str {
        match self {
            Self::Indexed { .. } => "indexed",
            Self::Skipped { .. } => "skipped",
            Self::AlreadyIndexed { .. } => "already_indexed",
            Self::NoEligibleLayers { .. } => "no_eligible_layers",
        }
    }
}

/// One image manifest to index (a platform).
struct Target {
    /// `{mediaType, digest, size}` as pulled.
    descriptor: Descriptor,
    manifest: Manifest,
    platform: Platform,
}

/// Runs the pipeline against one registry.
pub struct Indexer {
    registry: Arc<RegistryClient>,
    config: Config,
    dry_run: bool,
}

/// Records pushes in order.
#[derive(Default)]
struct PushLog(Mutex<Vec<Pushed>>);

impl PushLog {
    async fn add(&self, kind: &str, reference: &str, media_type: &str, size: u64) {
        self.0.lock().await.push(Pushed {
            kind: kind.into(),
            reference: reference.into(),
            media_type: media_type.into(),
            size,
        });
    }
}

impl Indexer {
    pub fn new(registry: Arc<RegistryClient>, config: Config) -> Self {
        Self {
            registry,
            config,
            dry_run: false,
        }
    }

    /// Builds everything, pushes nothing (registry reads and `HEAD`s only).
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn skipped(image: &ImageRef, reason: impl Into<String>) -> Outcome {
        let reason = reason.into();
        tracing::info!(repository = %image.repository, reason = %reason, "skipped");
        Outcome::Skipped {
            repository: image.repository.clone(),
            image_digest: image.digest.clone(),
            reason,
        }
    }

    /// Indexes `image`. `Ok` for every outcome retrying cannot change; `Err` for the rest.
    pub async fn run(&self, image: &ImageRef) -> Result<Outcome> {
        let repo = image.repository.as_str();
        let tag = image.tag.as_deref().filter(|t| !t.is_empty());
        if self.config.index_version == IndexVersion::V2 {
            match tag {
                None => {
                    return Ok(Self::skipped(
                        image,
                        "untagged push: V2 indexes tagged images only",
                    ));
                }
                Some(t) if self.config.is_index_tag(t) => {
                    return Ok(Self::skipped(
                        image,
                        format!(
                            "tag {t:?} ends with {:?}: it is a SOCI index tag",
                            self.config.index_tag_suffix
                        ),
                    ));
                }
                _ => {}
            }
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

        // The image manifests to index.
        let document = match oci::parse_image_document(&top.bytes, &top.content_type) {
            Ok(d) => d,
            Err(OciError::UnsupportedMediaType { media_type }) => {
                return Ok(Self::skipped(
                    &image,
                    format!("not an image: media type {media_type:?}"),
                ));
            }
            Err(e) => return Err(doc("decode the pushed manifest")(e)),
        };
        let top_descriptor = Descriptor::new(
            &document_media_type(&document),
            &top.digest,
            i64::try_from(top.bytes.len()).unwrap_or(i64::MAX),
        );
        let mut targets = Vec::new();
        let source = match document {
            ImageDocument::Index { index, .. } => {
                if self.config.index_version == IndexVersion::V1 {
                    return Ok(Self::skipped(
                        &image,
                        "V1 indexes a single image manifest; this is an index (use V2)",
                    ));
                }
                for entry in soci_index::index_platform_manifests(&index) {
                    if !self.platform_selected(&entry.platform) {
                        tracing::info!(manifest = %entry.descriptor.digest, platform = %platform_name(&entry.platform), "platform not selected");
                        continue;
                    }
                    if let Some(t) = self.target_from_index_entry(repo, entry).await? {
                        targets.push(t);
                    }
                }
                ConversionSource::Index(index)
            }
            ImageDocument::Manifest { manifest, .. } => {
                if !media::is_image_config(&manifest.config.media_type) {
                    return Ok(Self::skipped(
                        &image,
                        format!(
                            "not an image: config media type {:?}",
                            manifest.config.media_type
                        ),
                    ));
                }
                let platform = self.platform_from_config(repo, &manifest).await?;
                if !self.platform_selected(&platform) {
                    return Ok(Self::skipped(
                        &image,
                        format!(
                            "platform {} is not in the platforms to index",
                            platform_name(&platform)
                        ),
                    ));
                }
                targets.push(Target {
                    descriptor: top_descriptor.clone(),
                    manifest,
                    platform: platform.clone(),
                });
                ConversionSource::SingleManifest {
                    descriptor: top_descriptor.clone(),
                    platform,
                }
            }
        };
        if targets.is_empty() {
            return Ok(Self::skipped(
                &image,
                "no image manifest of a selected platform in the index",
            ));
        }

        // Eligible layers per target.
        let mut reports: Vec<LayerReport> = Vec::new();
        let mut plans: Vec<Vec<LayerPlan>> = Vec::new();
        let mut seen = HashSet::new();
        for t in &targets {
            let mut list = Vec::new();
            for l in t.manifest.layers() {
                match self.eligibility(l) {
                    Ok(plan) => list.push(plan),
                    Err(reason) => {
                        if seen.insert(l.digest.clone()) {
                            tracing::info!(layer = %l.digest, size = l.size, media_type = %l.media_type, reason = %reason, "layer left out");
                            reports.push(LayerReport {
                                digest: l.digest.clone(),
                                media_type: l.media_type.clone(),
                                size: u64::try_from(l.size).unwrap_or(0),
                                result: reason,
                                ztoc_digest: None,
                                ztoc_size: None,
                                seconds: None,
                            });
                        }
                    }
                }
            }
            plans.push(list);
        }
        let image_digest = top.digest.clone();
        if plans.iter().all(Vec::is_empty) {
            return Ok(self.no_eligible(
                &image,
                reports,
                "no layer is large enough and of an indexable type",
            ));
        }

        // A re-delivered event: nothing to do when `<tag><suffix>` already covers these manifests.
        let index_tag = tag.map(|t| format!("{t}{}", self.config.index_tag_suffix));
        if self.config.index_version == IndexVersion::V2
            && let Some(index_tag) = &index_tag
        {
            let wanted: Vec<&Target> = targets
                .iter()
                .zip(&plans)
                .filter(|(_, p)| !p.is_empty())
                .map(|(t, _)| t)
                .collect();
            if let Some(existing) = self.already_indexed(repo, index_tag, &wanted).await? {
                tracing::info!(repository = repo, digest = %image_digest, index_tag = %index_tag, index_digest = %existing, "already indexed");
                return Ok(Outcome::AlreadyIndexed {
                    repository: repo.into(),
                    image_digest,
                    index_tag: index_tag.clone(),
                    index_digest: existing,
                });
            }
        }

        // Build (and push) the zTOCs, layers concurrently.
        let pushes = Arc::new(PushLog::default());
        let unique: Vec<LayerPlan> = {
            let mut seen = HashSet::new();
            plans
                .iter()
                .flatten()
                .filter(|p| seen.insert(p.digest.clone()))
                .cloned()
                .collect()
        };
        let built = self.build_all(repo, unique, pushes.clone()).await?;
        for (plan, res) in built.values() {
            reports.push(match res {
                Ok(z) => LayerReport {
                    digest: plan.digest.clone(),
                    media_type: plan.media_type.clone(),
                    size: plan.size,
                    result: "indexed".into(),
                    ztoc_digest: Some(z.ztoc.ztoc_digest.clone()),
                    ztoc_size: u64::try_from(z.ztoc.ztoc_size).ok(),
                    seconds: Some(z.seconds),
                },
                Err(reason) => LayerReport {
                    digest: plan.digest.clone(),
                    media_type: plan.media_type.clone(),
                    size: plan.size,
                    result: reason.clone(),
                    ztoc_digest: None,
                    ztoc_size: None,
                    seconds: None,
                },
            });
        }
        let per_target: Vec<Vec<ZtocLayer>> = plans
            .iter()
            .map(|list| {
                list.iter()
                    .filter_map(|p| {
                        built
                            .get(&p.digest)
                            .and_then(|(_, r)| r.as_ref().ok())
                            .map(|z| z.ztoc.clone())
                    })
                    .collect()
            })
            .collect();
        if per_target.iter().all(Vec::is_empty) {
            return Ok(self.no_eligible(&image, reports, "every eligible layer is unindexable"));
        }

        // The `{}` config, then the SOCI indexes.
        self.push_blob(
            repo,
            "config",
            oci::EMPTY_JSON_CONFIG_DIGEST,
            Bytes::from_static(oci::EMPTY_JSON_CONFIG),
            &pushes,
        )
        .await?;
        let mut soci = Vec::new();
        for (t, ztocs) in targets.iter().zip(&per_target) {
            if ztocs.is_empty() {
                tracing::warn!(platform = %platform_name(&t.platform), manifest = %t.descriptor.digest, "no layer of this platform was indexed: left as is");
                continue;
            }
            let index = match self.config.index_version {
                IndexVersion::V1 => {
                    soci_index::build_soci_index_v1(ztocs, &t.descriptor, &self.config.build_tool)
                }
                IndexVersion::V2 => soci_index::build_soci_index_v2(ztocs, &self.config.build_tool),
            }
            .map_err(doc(format!(
                "build the SOCI index of {}",
                t.descriptor.digest
            )))?;
            let blob = index.to_blob();
            self.push_manifest(
                repo,
                "soci-index",
                &blob.digest,
                &blob.media_type,
                Bytes::from(blob.bytes.clone()),
                &pushes,
            )
            .await?;
            tracing::info!(platform = %platform_name(&t.platform), manifest = %t.descriptor.digest, soci_index = %blob.digest, ztocs = ztocs.len(), "SOCI index pushed");
            soci.push((t, index, blob.digest, ztocs.len()));
        }

        if self.config.index_version == IndexVersion::V1 {
            let (t, _, digest, n) =
                soci.into_iter()
                    .next()
                    .ok_or_else(|| PipelineError::Invalid {
                        step: "V1 index".into(),
                        detail: "no SOCI index built".into(),
                    })?;
            let pushed = pushes.0.lock().await.clone();
            tracing::info!(repository = repo, digest = %image_digest, index_digest = %digest, "indexed (V1)");
            return Ok(Outcome::Indexed {
                repository: repo.into(),
                image_digest,
                tag: tag.map(String::from),
                index_tag: None,
                index_digest: digest.clone(),
                soci_indexes: vec![SociIndexReport {
                    platform: platform_name(&t.platform),
                    image_manifest: t.descriptor.digest.clone(),
                    soci_index: digest,
                    annotated_manifest: None,
                    ztocs: n,
                }],
                layers: reports,
                pushed,
                dry_run: self.dry_run,
            });
        }

        // V2: annotated manifests, the OCI index by digest, the tag last.
        let mut converted = Vec::new();
        let mut soci_reports = Vec::new();
        for (t, index, soci_digest, n) in soci {
            let annotated = soci_index::annotate_image_manifest(&t.manifest, &soci_digest);
            self.push_manifest(
                repo,
                "manifest",
                &annotated.blob.digest,
                &annotated.blob.media_type,
                Bytes::from(annotated.blob.bytes.clone()),
                &pushes,
            )
            .await?;
            soci_reports.push(SociIndexReport {
                platform: platform_name(&t.platform),
                image_manifest: t.descriptor.digest.clone(),
                soci_index: soci_digest.clone(),
                annotated_manifest: Some(annotated.blob.digest.clone()),
                ztocs: n,
            });
            converted.push(ConvertedPlatform {
                original_manifest_digest: t.descriptor.digest.clone(),
                annotated_manifest: annotated,
                soci_index: index,
                platform: t.platform.clone(),
            });
        }
        let index_blob = soci_index::build_converted_index(source, &converted)
            .map_err(doc("build the converted OCI index"))?;
        let index_digest = index_blob.digest.clone();
        let index_bytes = Bytes::from(index_blob.bytes);
        self.push_manifest(
            repo,
            "index",
            &index_digest,
            &index_blob.media_type,
            index_bytes.clone(),
            &pushes,
        )
        .await?;
        let index_tag = index_tag.unwrap_or_default();
        if !self.dry_run {
            self.registry
                .put_manifest(
                    repo,
                    &index_tag,
                    &index_blob.media_type,
                    index_bytes.clone(),
                )
                .await
                .map_err(reg(format!(
                    "tag the OCI index {index_digest} as {index_tag}"
                )))?;
        }
        pushes
            .add(
                "tag",
                &index_tag,
                &index_blob.media_type,
                index_bytes.len() as u64,
            )
            .await;
        tracing::info!(repository = repo, digest = %image_digest, tag = tag.unwrap_or_default(), index_tag = %index_tag, index_digest = %index_digest, dry_run = self.dry_run, "indexed");
        let pushed = pushes.0.lock().await.clone();
        Ok(Outcome::Indexed {
            repository: repo.into(),
            image_digest,
            tag: tag.map(String::from),
            index_tag: Some(index_tag),
            index_digest,
            soci_indexes: soci_reports,
            layers: reports,
            pushed,
            dry_run: self.dry_run,
        })
    }

    fn no_eligible(&self, image: &ImageRef, layers: Vec<LayerReport>, why: &str) -> Outcome {
        let message = format!(
            "nothing to index: {why} (minimum layer size {} bytes; zstd and other unsupported layers are left out); not retried",
            self.config.min_layer_size
        );
        tracing::info!(repository = %image.repository, digest = ?image.digest, message = %message, "no eligible layers");
        Outcome::NoEligibleLayers {
            repository: image.repository.clone(),
            image_digest: image.digest.clone().unwrap_or_default(),
            message,
            layers,
        }
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

    fn eligibility(&self, l: &Descriptor) -> std::result::Result<LayerPlan, String> {
        let Some(compression) = Compression::from_media_type(&l.media_type) else {
            return Err(format!(
                "left out: unsupported media type {:?}",
                l.media_type
            ));
        };
        let size = u64::try_from(l.size).unwrap_or(0);
        if size < self.config.min_layer_size {
            return Err(format!(
                "left out: smaller than the minimum layer size ({size} < {})",
                self.config.min_layer_size
            ));
        }
        Ok(LayerPlan {
            digest: l.digest.clone(),
            media_type: l.media_type.clone(),
            size,
            compression,
        })
    }

    async fn platform_from_config(&self, repo: &str, m: &Manifest) -> Result<Platform> {
        let bytes = self
            .registry
            .get_blob_bytes(repo, &m.config.digest)
            .await
            .map_err(reg("fetch the image config"))?;
        oci::platform_from_image_config(&bytes).map_err(doc(format!(
            "read the platform from the image config {}",
            m.config.digest
        )))
    }

    async fn target_from_index_entry(
        &self,
        repo: &str,
        entry: soci_index::PlatformManifest,
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

    /// `Some(index digest)` when `<tag><suffix>` is an OCI index that already holds, for every
    /// wanted manifest, an annotated copy (same config and layers) and its SOCI index.
    async fn already_indexed(
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
        for t in wanted {
            let mut found = false;
            for d in index.manifests().iter().filter(|d| {
                soci_for.contains(d.digest.as_str())
                    && d.annotations
                        .contains_key(media::ANNOTATION_SOCI_INDEX_DIGEST)
            }) {
                let Some(m) = self
                    .registry
                    .get_manifest(repo, &d.digest)
                    .await
                    .map_err(reg(step.clone()))?
                else {
                    continue;
                };
                let Ok(view) = Manifest::from_json(&m.bytes) else {
                    continue;
                };
                let same_layers = view.layers().len() == t.manifest.layers().len()
                    && view
                        .layers()
                        .iter()
                        .zip(t.manifest.layers())
                        .all(|(a, b)| a.digest == b.digest);
                if view.config.digest == t.manifest.config.digest && same_layers {
                    found = true;
                    break;
                }
            }
            if !found {
                return Ok(None);
            }
        }
        Ok(Some(existing.digest))
    }

    async fn build_all(
        &self,
        repo: &str,
        layers: Vec<LayerPlan>,
        pushes: Arc<PushLog>,
    ) -> Result<BTreeMap<String, (LayerPlan, std::result::Result<BuiltLayer, String>)>> {
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for plan in layers {
            let permits = permits.clone();
            let registry = self.registry.clone();
            let repo = repo.to_string();
            let config = self.config.clone();
            let pushes = pushes.clone();
            let dry_run = self.dry_run;
            set.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let res = build_and_push(&registry, &repo, &plan, &config, dry_run, &pushes).await;
                (plan, res)
            });
        }
        let mut out = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            let (plan, res) = joined.map_err(|e| PipelineError::Invalid {
                step: "layer task".into(),
                detail: e.to_string(),
            })?;
            // The first error aborts the other layers (dropping the set cancels them).
            let res = res?;
            out.insert(plan.digest.clone(), (plan, res));
        }
        Ok(out)
    }

    async fn push_blob(
        &self,
        repo: &str,
        kind: &str,
        digest: &str,
        body: Bytes,
        pushes: &PushLog,
    ) -> Result<()> {
        push_blob(
            &self.registry,
            repo,
            kind,
            digest,
            body,
            self.dry_run,
            pushes,
        )
        .await
    }

    async fn push_manifest(
        &self,
        repo: &str,
        kind: &str,
        digest: &str,
        media_type: &str,
        body: Bytes,
        pushes: &PushLog,
    ) -> Result<()> {
        let step = format!("push {kind} {digest}");
        if self
            .registry
            .head_manifest(repo, digest)
            .await
            .map_err(reg(step.clone()))?
            .is_some()
        {
            tracing::debug!(kind, digest, "already in the registry");
            return Ok(());
        }
        if !self.dry_run {
            self.registry
                .put_manifest(repo, digest, media_type, body.clone())
                .await
                .map_err(reg(step))?;
        }
        pushes
            .add(kind, digest, media_type, body.len() as u64)
            .await;
        Ok(())
    }
}

fn document_media_type(d: &ImageDocument) -> String {
    match d {
        ImageDocument::Manifest { media_type, .. } | ImageDocument::Index { media_type, .. } => {
            media_type.clone()
        }
    }
}

/// A built (and pushed) zTOC.
#[derive(Clone, Debug)]
struct BuiltLayer {
    ztoc: ZtocLayer,
    seconds: f64,
}

async fn push_blob(
    registry: &RegistryClient,
    repo: &str,
    kind: &str,
    digest: &str,
    body: Bytes,
    dry_run: bool,
    pushes: &PushLog,
) -> Result<()> {
    let step = format!("push {kind} {digest}");
    if registry
        .blob_exists(repo, digest)
        .await
        .map_err(reg(step.clone()))?
    {
        tracing::debug!(kind, digest, "already in the registry");
        return Ok(());
    }
    if !dry_run {
        registry
            .push_blob(repo, digest, body.clone())
            .await
            .map_err(reg(step))?;
    }
    pushes
        .add(kind, digest, media::MEDIA_TYPE_ZTOC, body.len() as u64)
        .await;
    Ok(())
}

async fn build_and_push(
    registry: &RegistryClient,
    repo: &str,
    plan: &LayerPlan,
    config: &Config,
    dry_run: bool,
    pushes: &PushLog,
) -> Result<std::result::Result<BuiltLayer, String>> {
    let outcome = layer::build_layer(
        registry,
        repo,
        plan,
        config.span_size,
        &config.build_tool,
        config.retry_attempts,
        config.retry_base_delay,
    )
    .await
    .map_err(|source| PipelineError::Layer {
        step: "build zTOC".into(),
        source,
    })?;
    match outcome {
        LayerOutcome::Unindexable(reason) => {
            tracing::warn!(layer = %plan.digest, size = plan.size, reason = %reason, "layer left out: unindexable");
            Ok(Err(format!("left out: unindexable: {reason}")))
        }
        LayerOutcome::Rejected(reason) => {
            tracing::warn!(layer = %plan.digest, size = plan.size, reason = %reason, "layer left out: the reference would reject it too (pulled in full)");
            Ok(Err(format!("left out: rejected: {reason}")))
        }
        LayerOutcome::Built { ztoc, elapsed } => {
            let bytes = Bytes::from(ztoc.ztoc);
            let digest = registry::sha256_digest(&bytes);
            let secs = elapsed.as_secs_f64().max(1e-9);
            tracing::info!(
                layer = %plan.digest,
                size = plan.size,
                uncompressed_size = ztoc.uncompressed_size,
                entries = ztoc.entries,
                spans = ztoc.spans,
                ztoc = %digest,
                ztoc_size = bytes.len(),
                seconds = secs,
                mib_per_s = plan.size as f64 / secs / 1048576.0,
                "layer indexed"
            );
            let size = bytes.len() as u64;
            push_blob(registry, repo, "ztoc", &digest, bytes, dry_run, pushes).await?;
            Ok(Ok(BuiltLayer {
                ztoc: ZtocLayer {
                    ztoc_digest: digest,
                    ztoc_size: i64::try_from(size).unwrap_or(i64::MAX),
                    layer_digest: plan.digest.clone(),
                    layer_media_type: plan.media_type.clone(),
                    span_size: config.span_size,
                    disable_xattrs: false,
                },
                seconds: secs,
            }))
        }
    }
}
