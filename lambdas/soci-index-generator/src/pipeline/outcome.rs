//! What indexing an image came to: the invocation's JSON answer.

use serde::Serialize;

use super::ImageRef;

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
    /// Indexed: the layer's tar size (what the builder inflated in `seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncompressed_size: Option<u64>,
    /// Left out: why, as a fixed word (`result` has the details).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_out: Option<LeftOut>,
    /// Indexed with a zTOC cache configured: whether the zTOC came from it (`hit`: the layer
    /// was not downloaded) or was built (`miss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ztoc_cache: Option<super::CacheUse>,
}

impl LayerReport {
    /// A layer that was not indexed, and why.
    pub fn left_out(
        digest: &str,
        media_type: &str,
        size: u64,
        why: LeftOut,
        reason: String,
    ) -> Self {
        Self {
            digest: digest.into(),
            media_type: media_type.into(),
            size,
            result: reason,
            ztoc_digest: None,
            ztoc_size: None,
            seconds: None,
            uncompressed_size: None,
            left_out: Some(why),
            ztoc_cache: None,
        }
    }
}

/// Why a layer got no zTOC: few fixed values, so that metrics can count layers by reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftOut {
    /// Smaller than the minimum layer size.
    TooSmall,
    /// Not a media type SOCI indexes (zstd, encrypted, non-distributable, unknown).
    UnsupportedMediaType,
    /// soci-core: a zTOC of it would be useless to consumers, or over the memory budget.
    Unindexable,
    /// The reference would refuse it too (not a tar the Go reader accepts, bad gzip).
    Rejected,
}

impl LeftOut {
    /// Every reason, in a fixed order.
    pub const ALL: [LeftOut; 4] = [
        LeftOut::TooSmall,
        LeftOut::UnsupportedMediaType,
        LeftOut::Unindexable,
        LeftOut::Rejected,
    ];

    /// The word it serializes as.
    pub fn as_str(self) -> &'static str {
        match self {
            LeftOut::TooSmall => "too_small",
            LeftOut::UnsupportedMediaType => "unsupported_media_type",
            LeftOut::Unindexable => "unindexable",
            LeftOut::Rejected => "rejected",
        }
    }
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

/// The outcome of indexing one image, for every case retrying could not change. Serialized with
/// a `status` field (`indexed`, `skipped`, `already_indexed`, `no_eligible_layers`,
/// `superseded`).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IndexingOutcome {
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
        /// In-place mode: what became of `<tag>` (moved to the SOCI-enabled index, or why not).
        #[serde(skip_serializing_if = "Option::is_none")]
        in_place: Option<String>,
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
    /// The pushed tag names another image now (a later push moved it, and this event arrived
    /// late): `<tag><suffix>` is left to that image's own event.
    Superseded {
        repository: String,
        image_digest: String,
        tag: String,
        /// What the tag names now (`None`: it was deleted).
        #[serde(skip_serializing_if = "Option::is_none")]
        current_digest: Option<String>,
        message: String,
    },
    /// Cleanup (`pipeline::cleanup`): `<tag>` was deleted and `<tag><suffix>` still pointed at
    /// a conversion of its image, so the index tag was deleted.
    IndexTagDeleted {
        repository: String,
        /// The deleted image.
        image_digest: String,
        tag: String,
        index_tag: String,
        index_digest: String,
        /// `ecr_batch_delete_image` (the tag only) or `registry_manifest_delete` (by digest).
        method: String,
    },
    /// Cleanup: `<tag><suffix>` left as it is, and why.
    IndexTagKept {
        repository: String,
        image_digest: String,
        tag: String,
        index_tag: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        index_digest: Option<String>,
        reason: String,
    },
}

impl IndexingOutcome {
    pub fn status(&self) -> &'static str {
        match self {
            Self::Indexed { .. } => "indexed",
            Self::Skipped { .. } => "skipped",
            Self::AlreadyIndexed { .. } => "already_indexed",
            Self::NoEligibleLayers { .. } => "no_eligible_layers",
            Self::Superseded { .. } => "superseded",
            Self::IndexTagDeleted { .. } => "index_tag_deleted",
            Self::IndexTagKept { .. } => "index_tag_kept",
        }
    }

    /// `image` is not indexed, for `reason` (logged).
    pub(super) fn skipped(image: &ImageRef, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        tracing::info!(repository = %image.repository, reason = %reason, "skipped");
        Self::Skipped {
            repository: image.repository.clone(),
            image_digest: image.digest.clone(),
            reason,
        }
    }

    /// No layer of `image` got a zTOC, because `why` (logged).
    pub(super) fn no_eligible(
        image: &ImageRef,
        layers: Vec<LayerReport>,
        why: &str,
        min_layer_size: u64,
    ) -> Self {
        let message = format!(
            "nothing to index: {why} (minimum layer size {min_layer_size} bytes; zstd and other unsupported layers are left out); not retried"
        );
        tracing::info!(repository = %image.repository, digest = ?image.digest, message = %message, "no eligible layers");
        Self::NoEligibleLayers {
            repository: image.repository.clone(),
            image_digest: image.digest.clone().unwrap_or_default(),
            message,
            layers,
        }
    }
}
