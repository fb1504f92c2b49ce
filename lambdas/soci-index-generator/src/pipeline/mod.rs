//! The indexing pipeline: image in, zTOCs + SOCI indexes (+ v2 conversion and tag) out.
//!
//! [`Indexer::run`] goes through five stages, one module each:
//!
//! 1. [`resolve`]: the tag rules, then the pushed manifest fetched and decoded;
//! 2. [`platforms`]: the image manifests of the selected platforms;
//! 3. [`plan`]: the layers worth a zTOC (pure), then [`redelivery`]: stop when a previous
//!    delivery of the same event already did the work;
//! 4. [`build`]: each layer streamed once through soci-core ([`layer`]), its zTOC pushed;
//! 5. [`push`]: the SOCI indexes, and for V2 the converted image and its tag.
//!
//! Push order: zTOC blobs, the `{}` config, the SOCI index manifests, the annotated image
//! manifests, the OCI index (by digest), and the `<tag><suffix>` tag last, so that a failure at
//! any point never leaves a tag pointing at something incomplete. Every blob and manifest is
//! checked with `HEAD` first and not sent again when the registry already has it ([`pusher`]).

mod build;
pub mod cache;
mod cleanup;
pub mod fetch;
pub mod layer;
mod outcome;
mod plan;
mod platforms;
mod push;
mod pusher;
mod redelivery;
mod resolve;

use std::ops::ControlFlow;
use std::sync::Arc;

use soci_core::oci::OciError;
use soci_lambda_contract::IndexVersion;

pub use self::cache::CacheUse;
pub use self::cleanup::TagRemover;
use self::layer::LayerError;
pub use self::outcome::{IndexingOutcome, LayerReport, LeftOut, Pushed, SociIndexReport};
use self::push::Finish;
use self::pusher::Pusher;
use crate::config::Config;
use crate::registry::{RegistryClient, RegistryError};

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

/// An image [`Indexer::prepare`] found work in.
struct Work {
    selected: platforms::Selected,
    plans: plan::LayerPlans,
    /// The layers left out by the plan (too small, zstd), reported with the built ones.
    left_out: Vec<LayerReport>,
    index_tag: Option<String>,
}

/// Runs the pipeline against one registry.
pub struct Indexer {
    registry: Arc<RegistryClient>,
    config: Config,
    dry_run: bool,
    /// Whether a tag that moved while `<tag><suffix>` was written gets the image it names now
    /// indexed again (off inside that repair, so it happens at most once per run).
    repair_tag_races: bool,
}

impl Indexer {
    pub fn new(registry: Arc<RegistryClient>, config: Config) -> Self {
        Self {
            registry,
            config,
            dry_run: false,
            repair_tag_races: true,
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

    /// Indexes `image`. `Ok` for every outcome retrying cannot change; `Err` for the rest.
    pub async fn run(&self, image: &ImageRef) -> Result<IndexingOutcome> {
        match self.prepare(image).await? {
            ControlFlow::Continue(work) => self.build_and_push(work).await,
            ControlFlow::Break(done) => Ok(done),
        }
    }

    /// What [`Indexer::run`] would do, reading the registry only: `Some(outcome)` when it would
    /// stop before building anything (already indexed, superseded, nothing to index, ...),
    /// `None` when it would build and push. A backfill asks this before invoking the generator.
    pub async fn pending(&self, image: &ImageRef) -> Result<Option<IndexingOutcome>> {
        Ok(match self.prepare(image).await? {
            ControlFlow::Continue(_) => None,
            ControlFlow::Break(done) => Some(done),
        })
    }

    /// Stages 1 to 3: every reason to stop before building.
    async fn prepare(&self, image: &ImageRef) -> Result<ControlFlow<IndexingOutcome, Work>> {
        let resolved = match self.resolve(image).await? {
            ControlFlow::Continue(resolved) => resolved,
            ControlFlow::Break(done) => return Ok(ControlFlow::Break(done)),
        };
        let selected = match self.select_platforms(resolved).await? {
            ControlFlow::Continue(selected) => selected,
            ControlFlow::Break(done) => return Ok(ControlFlow::Break(done)),
        };
        let (image, targets) = (&selected.image, selected.targets.as_slice());
        let plans = plan::plan_layers(targets, self.config.min_layer_size);
        let left_out = plans.left_out.clone();
        if plans.is_empty() {
            let why = "no layer is large enough and of an indexable type";
            return Ok(ControlFlow::Break(self.no_eligible(image, left_out, why)));
        }
        let index_tag = self.index_tag(image);
        if let Some(t) = &index_tag
            && !soci_lambda_contract::event::valid_tag(t)
        {
            return Err(PipelineError::Invalid {
                step: "index tag".into(),
                detail: format!("{t:?} (tag + index_tag_suffix) is not a valid tag"),
            });
        }
        if index_tag.is_some()
            && let Some(done) = self.superseded(image).await?
        {
            return Ok(ControlFlow::Break(done));
        }
        if let Some(index_tag) = &index_tag
            && let Some(done) = self
                .skip_redelivery(image, index_tag, &plans.with_layers(targets))
                .await?
        {
            return Ok(ControlFlow::Break(done));
        }
        Ok(ControlFlow::Continue(Work {
            selected,
            plans,
            left_out,
            index_tag,
        }))
    }

    /// Stages 4 and 5.
    async fn build_and_push(&self, work: Work) -> Result<IndexingOutcome> {
        let Work {
            selected,
            plans,
            left_out: mut layers,
            index_tag,
        } = work;
        let (image, targets) = (&selected.image, selected.targets.as_slice());
        let repo = image.repository.as_str();
        let pusher = Arc::new(Pusher::new(self.registry.clone(), repo, self.dry_run));
        let built = self.build_all(repo, plans.unique(), pusher.clone()).await?;
        layers.extend(build::layer_reports(&built));
        let ztocs = build::ztocs_per_target(&plans.per_target, &built);
        if ztocs.iter().all(Vec::is_empty) {
            let why = "every eligible layer is unindexable";
            return Ok(self.no_eligible(image, layers, why));
        }
        let soci = self.push_soci_indexes(&pusher, targets, &ztocs).await?;
        let finish = Finish { image, layers };
        match index_tag {
            None => self.finish_v1(&pusher, finish, soci).await,
            Some(index_tag) => {
                self.finish_v2(&pusher, finish, soci, selected.source, index_tag)
                    .await
            }
        }
    }

    /// V2: `<tag><suffix>`, the tag the converted image gets; V1 pushes untagged.
    fn index_tag(&self, image: &ImageRef) -> Option<String> {
        let tag = image.tag.as_deref().filter(|t| !t.is_empty())?;
        (self.config.index_version == IndexVersion::V2)
            .then(|| format!("{tag}{}", self.config.index_tag_suffix))
    }

    /// `Some(outcome)` when `index_tag` already covers every target with layers to index, and
    /// each with a zTOC for every layer planned (a layer an earlier run left out, whatever the
    /// reason, is tried again).
    async fn skip_redelivery(
        &self,
        image: &ImageRef,
        index_tag: &str,
        wanted: &[(&platforms::Target, &[layer::LayerPlan])],
    ) -> Result<Option<IndexingOutcome>> {
        let repo = image.repository.as_str();
        let image_digest = image.digest.clone().unwrap_or_default();
        let Some(existing) = self.already_indexed(repo, index_tag, wanted).await? else {
            return Ok(None);
        };
        tracing::info!(repository = repo, digest = %image_digest, index_tag = %index_tag, index_digest = %existing, "already indexed");
        Ok(Some(IndexingOutcome::AlreadyIndexed {
            repository: repo.into(),
            image_digest,
            index_tag: index_tag.into(),
            index_digest: existing,
        }))
    }

    fn no_eligible(
        &self,
        image: &ImageRef,
        layers: Vec<LayerReport>,
        why: &str,
    ) -> IndexingOutcome {
        IndexingOutcome::no_eligible(image, layers, why, self.config.min_layer_size)
    }
}
