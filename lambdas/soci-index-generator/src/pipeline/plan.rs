//! Stage 3, plan layers: which layers of each target get a zTOC (pure: no I/O).

use std::collections::HashSet;

use soci_core::Compression;
use soci_core::oci::Descriptor;

use super::layer::LayerPlan;
use super::outcome::{LayerReport, LeftOut};
use super::platforms::Target;

/// The layers to index, per target, and the ones left out.
pub(super) struct LayerPlans {
    /// Parallel to the targets.
    pub per_target: Vec<Vec<LayerPlan>>,
    /// Layers left out, each once however many targets share it.
    pub left_out: Vec<LayerReport>,
}

impl LayerPlans {
    /// True when no target has a layer to index.
    pub fn is_empty(&self) -> bool {
        self.per_target.iter().all(Vec::is_empty)
    }

    /// Every layer to index, once (platforms often share layers).
    pub fn unique(&self) -> Vec<LayerPlan> {
        let mut seen = HashSet::new();
        self.per_target
            .iter()
            .flatten()
            .filter(|p| seen.insert(p.digest.clone()))
            .cloned()
            .collect()
    }

    /// The targets that have a layer to index, each with those layers.
    pub fn with_layers<'t>(&'t self, targets: &'t [Target]) -> Vec<(&'t Target, &'t [LayerPlan])> {
        targets
            .iter()
            .zip(&self.per_target)
            .filter(|(_, p)| !p.is_empty())
            .map(|(t, p)| (t, p.as_slice()))
            .collect()
    }
}

/// Plans the layers of `targets`: indexable media types of at least `min_layer_size` bytes.
pub(super) fn plan_layers(targets: &[Target], min_layer_size: u64) -> LayerPlans {
    let mut left_out = Vec::new();
    let mut per_target = Vec::new();
    let mut seen = HashSet::new();
    for t in targets {
        let mut list = Vec::new();
        for l in t.manifest.layers() {
            match eligibility(l, min_layer_size) {
                Ok(plan) => list.push(plan),
                Err((why, reason)) => {
                    if seen.insert(l.digest.clone()) {
                        tracing::info!(layer = %l.digest, size = l.size, media_type = %l.media_type, reason = %reason, "layer left out");
                        let size = u64::try_from(l.size).unwrap_or(0);
                        left_out.push(LayerReport::left_out(
                            &l.digest,
                            &l.media_type,
                            size,
                            why,
                            reason,
                        ));
                    }
                }
            }
        }
        per_target.push(list);
    }
    LayerPlans {
        per_target,
        left_out,
    }
}

/// The plan of a layer worth indexing, or why it is left out.
fn eligibility(l: &Descriptor, min_layer_size: u64) -> Result<LayerPlan, (LeftOut, String)> {
    let Some(compression) = Compression::from_media_type(&l.media_type) else {
        return Err((
            LeftOut::UnsupportedMediaType,
            format!("left out: unsupported media type {:?}", l.media_type),
        ));
    };
    let size = u64::try_from(l.size).unwrap_or(0);
    if size < min_layer_size {
        return Err((
            LeftOut::TooSmall,
            format!("left out: smaller than the minimum layer size ({size} < {min_layer_size})"),
        ));
    }
    Ok(LayerPlan {
        digest: l.digest.clone(),
        media_type: l.media_type.clone(),
        size,
        compression,
    })
}
