//! Stage 4, build: each planned layer streamed once through soci-core, layers concurrently, and
//! each zTOC pushed as soon as it is built.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use soci_core::BuiltZtoc;
use soci_core::index::ZtocLayer;

use super::cache::{CacheKey, CacheUse, ZtocCache};
use super::layer::{self, LayerBuild, LayerOptions, LayerPlan};
use super::outcome::{LayerReport, LeftOut};
use super::pusher::{Pusher, Store};
use super::{Indexer, PipelineError, Result};
use crate::config::Config;
use crate::media;
use crate::registry::{self, RegistryClient, RetryPolicy};

/// A built (and pushed) zTOC.
#[derive(Clone, Debug)]
pub(super) struct BuiltLayer {
    pub ztoc: ZtocLayer,
    pub seconds: f64,
    /// The layer's tar size.
    pub uncompressed_size: u64,
    /// With a zTOC cache: whether the zTOC came from it.
    pub cache: Option<CacheUse>,
}

/// Why a layer was left out: the reason and its details.
pub(super) type LeftOutLayer = (LeftOut, String);

/// Every planned layer by digest: its zTOC, or why it was left out.
pub(super) type BuiltLayers =
    BTreeMap<String, (LayerPlan, std::result::Result<BuiltLayer, LeftOutLayer>)>;

impl Indexer {
    /// Builds (and pushes) the zTOCs of `layers`, at most `config.concurrency` at a time,
    /// largest first. The first error stops the other layers.
    ///
    /// Largest first because the image is done when its last layer is: a large layer started
    /// last (tasks used to start in whatever order the runtime polled them) runs on alone
    /// while the other slots sit idle. `concurrency` workers take the next layer from one
    /// queue, so the start order is the queue's.
    pub(super) async fn build_all(
        &self,
        repo: &str,
        layers: Vec<LayerPlan>,
        pusher: Arc<Pusher>,
    ) -> Result<BuiltLayers> {
        let workers = self.config.concurrency.clamp(1, layers.len().max(1));
        let queue = Arc::new(std::sync::Mutex::new(largest_first(layers)));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let queue = queue.clone();
            let registry = self.registry.clone();
            let repo = repo.to_string();
            let config = self.config.clone();
            let pusher = pusher.clone();
            set.spawn(async move {
                let mut built = Vec::new();
                while let Some(plan) = next_layer(&queue) {
                    let res = build_and_push(&registry, &repo, &plan, &config, &pusher).await?;
                    built.push((plan, res));
                }
                Ok::<_, PipelineError>(built)
            });
        }
        let mut out = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            // The first error aborts the other layers (dropping the set cancels them).
            let built = joined.map_err(|e| PipelineError::Invalid {
                step: "layer task".into(),
                detail: e.to_string(),
            })??;
            for (plan, res) in built {
                out.insert(plan.digest.clone(), (plan, res));
            }
        }
        Ok(out)
    }
}

/// The order layers are built in: largest first; equal sizes keep the manifest's order.
fn largest_first(mut layers: Vec<LayerPlan>) -> VecDeque<LayerPlan> {
    layers.sort_by_key(|plan| std::cmp::Reverse(plan.size));
    layers.into()
}

/// The next layer to build, if any is left.
fn next_layer(queue: &std::sync::Mutex<VecDeque<LayerPlan>>) -> Option<LayerPlan> {
    // A worker that panicked while holding the lock cannot have left the queue half-changed.
    let mut queue = queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    queue.pop_front()
}

/// What each built layer came to, in digest order.
pub(super) fn layer_reports(built: &BuiltLayers) -> impl Iterator<Item = LayerReport> + '_ {
    built.values().map(|(plan, res)| match res {
        Ok(z) => LayerReport {
            digest: plan.digest.clone(),
            media_type: plan.media_type.clone(),
            size: plan.size,
            result: "indexed".into(),
            ztoc_digest: Some(z.ztoc.ztoc_digest.clone()),
            ztoc_size: u64::try_from(z.ztoc.ztoc_size).ok(),
            seconds: Some(z.seconds),
            uncompressed_size: Some(z.uncompressed_size),
            left_out: None,
            ztoc_cache: z.cache,
        },
        Err((why, reason)) => LayerReport::left_out(
            &plan.digest,
            &plan.media_type,
            plan.size,
            *why,
            reason.clone(),
        ),
    })
}

/// The zTOCs of each target's planned layers (parallel to `per_target`), in layer order.
pub(super) fn ztocs_per_target(
    per_target: &[Vec<LayerPlan>],
    built: &BuiltLayers,
) -> Vec<Vec<ZtocLayer>> {
    per_target
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
        .collect()
}

/// The zTOC cache of `plan`, when one is configured and the layer's digest fits a tag.
fn cache_for(
    registry: &Arc<RegistryClient>,
    plan: &LayerPlan,
    config: &Config,
) -> Option<(ZtocCache, CacheKey)> {
    let repo = config.ztoc_cache_repository.as_deref()?;
    let key = CacheKey {
        layer_digest: plan.digest.clone(),
        span_size: config.span_size,
        compression: plan.compression,
        build_tool: config.build_tool.clone(),
    };
    key.tag()?;
    Some((ZtocCache::new(registry.clone(), repo), key))
}

/// The zTOC of one layer, from the cache when it has a verified entry, else built (and then
/// cached), pushed to `repo`; `Ok(Err(reason))` when the layer is left out.
async fn build_and_push(
    registry: &Arc<RegistryClient>,
    repo: &str,
    plan: &LayerPlan,
    config: &Config,
    pusher: &Pusher,
) -> Result<std::result::Result<BuiltLayer, LeftOutLayer>> {
    let cache = cache_for(registry, plan, config);
    if let Some((cache, key)) = &cache {
        let started = Instant::now();
        if let Some(ztoc) = cache.lookup(key, plan, &config.memory_budget).await {
            let (bytes, built) = describe(plan, ztoc, started.elapsed(), config, CacheUse::Hit);
            push_ztoc(pusher, &built, bytes).await?;
            return Ok(Ok(built));
        }
    }
    let (ztoc, elapsed) = match build_layer(registry, repo, plan, config).await? {
        Ok(built) => built,
        Err(left_out) => return Ok(Err(left_out)),
    };
    let xattrs_disableable = ztoc.xattrs_disableable;
    let (bytes, built) = describe(plan, ztoc, elapsed, config, CacheUse::Miss);
    push_ztoc(pusher, &built, bytes.clone()).await?;
    if let Some((cache, key)) = &cache
        && !pusher.dry_run()
        && let Err(e) = cache.store(key, &bytes, xattrs_disableable).await
    {
        let error = crate::error_chain(&e);
        tracing::warn!(layer = %plan.digest, cache = cache.repository(), error = %error, "zTOC not cached");
    }
    Ok(Ok(built))
}

async fn push_ztoc(pusher: &Pusher, built: &BuiltLayer, bytes: Bytes) -> Result<()> {
    let digest = &built.ztoc.ztoc_digest;
    pusher
        .push(Store::Blobs, "ztoc", digest, media::MEDIA_TYPE_ZTOC, bytes)
        .await
}

/// Streams `plan` through soci-core: its zTOC and how long that took, or why it is left out.
async fn build_layer(
    registry: &Arc<RegistryClient>,
    repo: &str,
    plan: &LayerPlan,
    config: &Config,
) -> Result<std::result::Result<(BuiltZtoc, Duration), LeftOutLayer>> {
    let options = LayerOptions {
        span_size: config.span_size,
        budget: config.memory_budget,
        build_tool: &config.build_tool,
        retry: RetryPolicy {
            attempts: config.retry_attempts,
            base_delay: config.retry_base_delay,
        },
        deadline_base: config.layer_deadline_base,
        min_bytes_per_second: config.layer_min_bytes_per_second,
        parallel_fetch: config.parallel_fetch,
    };
    let build = layer::build_layer(registry, repo, plan, &options)
        .await
        .map_err(|source| PipelineError::Layer {
            step: "build zTOC".into(),
            source,
        })?;
    match build {
        LayerBuild::Unindexable(reason) => {
            tracing::warn!(layer = %plan.digest, size = plan.size, reason = %reason, "layer left out: unindexable");
            Ok(Err((
                LeftOut::Unindexable,
                format!("left out: unindexable: {reason}"),
            )))
        }
        LayerBuild::Rejected(reason) => {
            tracing::warn!(layer = %plan.digest, size = plan.size, reason = %reason, "layer left out: the reference would reject it too (pulled in full)");
            Ok(Err((
                LeftOut::Rejected,
                format!("left out: rejected: {reason}"),
            )))
        }
        LayerBuild::Built { ztoc, elapsed } => Ok(Ok((ztoc, elapsed))),
    }
}

/// The zTOC of `plan` as bytes and as the SOCI index will list it (logged).
fn describe(
    plan: &LayerPlan,
    ztoc: BuiltZtoc,
    elapsed: Duration,
    config: &Config,
    cache: CacheUse,
) -> (Bytes, BuiltLayer) {
    // Only the descriptor changes; the zTOC bytes are the same either way.
    let disable_xattrs = config.disable_xattrs && ztoc.xattrs_disableable;
    let uncompressed_size = ztoc.uncompressed_size;
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
        disable_xattrs,
        ztoc_cache = ?cache,
        "layer indexed"
    );
    let cache = config.ztoc_cache_repository.is_some().then_some(cache);
    let size = bytes.len() as u64;
    let built = BuiltLayer {
        ztoc: ZtocLayer {
            ztoc_digest: digest,
            ztoc_size: i64::try_from(size).unwrap_or(i64::MAX),
            layer_digest: plan.digest.clone(),
            layer_media_type: plan.media_type.clone(),
            span_size: config.span_size,
            disable_xattrs,
        },
        seconds: secs,
        uncompressed_size,
        cache,
    };
    (bytes, built)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(digest: &str, size: u64) -> LayerPlan {
        LayerPlan {
            digest: digest.into(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size,
            compression: soci_core::Compression::Gzip,
        }
    }

    #[test]
    fn layers_are_built_largest_first_and_ties_keep_the_manifest_order() {
        let order: Vec<_> = largest_first(vec![
            plan("small", 10),
            plan("large", 300),
            plan("tie-a", 50),
            plan("medium", 120),
            plan("tie-b", 50),
        ])
        .into_iter()
        .map(|p| p.digest)
        .collect();
        assert_eq!(order, ["large", "medium", "tie-a", "tie-b", "small"]);
    }
}
