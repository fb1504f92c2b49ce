//! The zTOC cache: a zTOC is a function of (layer digest, span size, compression, build tool),
//! so a layer already indexed anywhere in the account need not be downloaded and inflated again.
//!
//! The store is a repository of the same registry (`ztoc_cache_repository`; ECR: one per
//! account and region, created by the Terraform module), so no other AWS service or permission
//! model is involved. An entry is a small OCI artifact manifest tagged with [`CacheKey::tag`],
//! whose one layer is the zTOC blob and whose annotations repeat the key and the xattr decision.
//!
//! Nothing read from the cache is trusted: the blob's digest is checked against the manifest's
//! descriptor, the zTOC is decoded and must record the layer's compressed size, compression
//! and the configured build tool, and every field of the build result is derived from the zTOC
//! itself. Any failure (no entry, registry error, wrong or corrupt entry) is a miss, logged, and
//! the layer is built as without a cache; a failed write is logged and ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use soci_core::oci::{EMPTY_JSON_CONFIG, EMPTY_JSON_CONFIG_DIGEST, MEDIA_TYPE_ZTOC};
use soci_core::ztoc::{ALGORITHM_GZIP, ALGORITHM_UNCOMPRESSED, TarZinfo, ZTOC_VERSION, Ztoc};
use soci_core::{BuiltZtoc, Compression, MemoryBudget};

use super::layer::LayerPlan;
use crate::registry::{MANIFEST_LIMIT, RegistryClient, RegistryError, sha256_digest};

/// `artifactType` of a cache entry.
pub const ARTIFACT_TYPE: &str = "application/vnd.soci-lambda.ztoc-cache.v1";
/// OCI 1.1's empty config, for artifacts that have no config of their own.
const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub const ANNOTATION_LAYER_DIGEST: &str = "dev.soci-lambda.ztoc-cache.layer-digest";
pub const ANNOTATION_SPAN_SIZE: &str = "dev.soci-lambda.ztoc-cache.span-size";
pub const ANNOTATION_COMPRESSION: &str = "dev.soci-lambda.ztoc-cache.compression";
pub const ANNOTATION_BUILD_TOOL: &str = "dev.soci-lambda.ztoc-cache.build-tool";
pub const ANNOTATION_XATTRS_DISABLEABLE: &str = "dev.soci-lambda.ztoc-cache.xattrs-disableable";

/// OCI tags: at most 128 characters of `[A-Za-z0-9_][A-Za-z0-9._-]*`.
pub const MAX_TAG_LEN: usize = 128;

/// Whether a layer's zTOC came from the cache (`None` in reports when no cache is configured).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheUse {
    Hit,
    Miss,
}

/// Why a cache entry was not used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("cache entry {tag}: {detail}")]
    Invalid { tag: String, detail: String },
}

/// What a zTOC is a function of, and the tag it is cached under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheKey {
    pub layer_digest: String,
    pub span_size: u64,
    pub compression: Compression,
    pub build_tool: String,
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::Gzip => "gzip",
        Compression::Uncompressed => "tar",
    }
}

impl CacheKey {
    /// `z1-<algorithm>-<hex>-s<span>-<gzip|tar>-<16 hex of sha256(build tool)>`: at most 116
    /// characters for a sha256 layer (the tool is hashed because it is free text). `None` when
    /// the layer's digest would not fit in a tag (sha512) or is not a plain `algo:hex`.
    pub fn tag(&self) -> Option<String> {
        let (algorithm, hex) = self.layer_digest.split_once(':')?;
        let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !plain(algorithm) || !plain(hex) {
            return None;
        }
        let tool = hex::encode(Sha256::digest(self.build_tool.as_bytes()));
        let tag = format!(
            "z1-{algorithm}-{hex}-s{}-{}-{}",
            self.span_size,
            compression_name(self.compression),
            &tool[..16]
        );
        (tag.len() <= MAX_TAG_LEN).then_some(tag)
    }
}

/// The cache repository of one registry.
pub struct ZtocCache {
    registry: Arc<RegistryClient>,
    repo: String,
}

#[derive(Deserialize)]
struct EntryManifest {
    #[serde(default)]
    layers: Vec<EntryDescriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct EntryDescriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
}

impl ZtocCache {
    pub fn new(registry: Arc<RegistryClient>, repo: &str) -> Self {
        Self {
            registry,
            repo: repo.into(),
        }
    }

    pub fn repository(&self) -> &str {
        &self.repo
    }

    /// The cached zTOC of `plan` under `key`, verified; `None` (logged) on any miss.
    pub async fn lookup(
        &self,
        key: &CacheKey,
        plan: &LayerPlan,
        budget: &MemoryBudget,
    ) -> Option<BuiltZtoc> {
        let tag = key.tag()?;
        match self.try_lookup(&tag, key, plan, budget).await {
            Ok(Some(ztoc)) => {
                tracing::info!(layer = %plan.digest, cache = %self.repo, tag = %tag, "zTOC cache hit");
                Some(ztoc)
            }
            Ok(None) => {
                tracing::debug!(layer = %plan.digest, cache = %self.repo, tag = %tag, "zTOC cache miss: no entry");
                None
            }
            Err(e) => {
                let error = crate::error_chain(&e);
                tracing::warn!(layer = %plan.digest, cache = %self.repo, tag = %tag, error = %error, "zTOC cache entry not used, building the zTOC");
                None
            }
        }
    }

    async fn try_lookup(
        &self,
        tag: &str,
        key: &CacheKey,
        plan: &LayerPlan,
        budget: &MemoryBudget,
    ) -> Result<Option<BuiltZtoc>, CacheError> {
        let invalid = |detail: String| CacheError::Invalid {
            tag: tag.into(),
            detail,
        };
        // get_manifest reads at most MANIFEST_LIMIT bytes.
        let Some(fetched) = self.registry.get_manifest(&self.repo, tag).await? else {
            return Ok(None);
        };
        let entry: EntryManifest = serde_json::from_slice(&fetched.bytes)
            .map_err(|e| invalid(format!("manifest: {e}")))?;
        check_annotations(&entry.annotations, key).map_err(invalid)?;
        let [layer] = entry.layers.as_slice() else {
            return Err(invalid(format!(
                "{} layers, expected 1",
                entry.layers.len()
            )));
        };
        let limit = max_ztoc_bytes(budget);
        // The zTOC pushed to the image's repository is named by its sha256 (as a build's is).
        if layer.media_type != MEDIA_TYPE_ZTOC
            || layer.size > limit as u64
            || !layer.digest.starts_with("sha256:")
        {
            return Err(invalid(format!(
                "layer {} {} of {} bytes (expected sha256, at most {limit} bytes of {MEDIA_TYPE_ZTOC})",
                layer.media_type, layer.digest, layer.size
            )));
        }
        // The digest is checked against the descriptor by the client: a changed blob is an error.
        let bytes = self
            .registry
            .get_blob_capped(&self.repo, &layer.digest, limit)
            .await?;
        if bytes.len() as u64 != layer.size {
            return Err(invalid(format!(
                "blob {} has {} bytes, the descriptor says {}",
                layer.digest,
                bytes.len(),
                layer.size
            )));
        }
        let recorded_xattrs = entry.annotations.get(ANNOTATION_XATTRS_DISABLEABLE);
        let built = built_from_ztoc(bytes, key, plan).map_err(invalid)?;
        if recorded_xattrs.map(String::as_str) != Some(bool_str(built.xattrs_disableable)) {
            return Err(invalid(format!(
                "{ANNOTATION_XATTRS_DISABLEABLE} is {recorded_xattrs:?}, the zTOC says {}",
                built.xattrs_disableable
            )));
        }
        Ok(Some(built))
    }

    /// Writes the entry of `key`: the zTOC blob, the empty config, then the tagged manifest
    /// last, so that a half-written entry is never found.
    pub async fn store(
        &self,
        key: &CacheKey,
        ztoc: &Bytes,
        xattrs_disableable: bool,
    ) -> Result<(), CacheError> {
        let Some(tag) = key.tag() else {
            return Ok(());
        };
        let digest = sha256_digest(ztoc);
        let (registry, repo) = (&self.registry, self.repo.as_str());
        if !registry.blob_exists(repo, &digest).await? {
            registry.push_blob(repo, &digest, ztoc.clone()).await?;
        }
        if !registry.blob_exists(repo, EMPTY_JSON_CONFIG_DIGEST).await? {
            let config = Bytes::from_static(EMPTY_JSON_CONFIG);
            registry
                .push_blob(repo, EMPTY_JSON_CONFIG_DIGEST, config)
                .await?;
        }
        let manifest = entry_manifest(key, &digest, ztoc.len(), xattrs_disableable);
        let body = serde_json::to_vec(&manifest).map_err(|e| CacheError::Invalid {
            tag: tag.clone(),
            detail: e.to_string(),
        })?;
        if body.len() > MANIFEST_LIMIT {
            return Err(CacheError::Invalid {
                tag,
                detail: "manifest over the size limit".into(),
            });
        }
        registry
            .put_manifest(repo, &tag, MEDIA_TYPE_OCI_MANIFEST, Bytes::from(body))
            .await?;
        tracing::debug!(layer = %key.layer_digest, cache = repo, tag = %tag, "zTOC cached");
        Ok(())
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// The largest zTOC a function with `budget` builds (its TOC and checkpoint limits plus the
/// flatbuffer's own tables), so a cache entry never sizes a larger read.
fn max_ztoc_bytes(budget: &MemoryBudget) -> usize {
    let bytes = budget
        .max_toc_bytes
        .saturating_add(budget.max_checkpoint_bytes)
        .saturating_add(1 << 20);
    usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .min(crate::registry::client::BLOB_LIMIT)
}

fn check_annotations(a: &BTreeMap<String, String>, key: &CacheKey) -> Result<(), String> {
    let span = key.span_size.to_string();
    let expected = [
        (ANNOTATION_LAYER_DIGEST, key.layer_digest.as_str()),
        (ANNOTATION_SPAN_SIZE, span.as_str()),
        (ANNOTATION_COMPRESSION, compression_name(key.compression)),
        (ANNOTATION_BUILD_TOOL, key.build_tool.as_str()),
    ];
    for (name, want) in expected {
        let got = a.get(name).map(String::as_str);
        if got != Some(want) {
            return Err(format!("{name} is {got:?}, expected {want:?}"));
        }
    }
    Ok(())
}

/// The build result a fresh build of `plan` would give, read back from its zTOC, which must be
/// the zTOC of this layer: its compressed size, compression, build tool and span size.
fn built_from_ztoc(bytes: Bytes, key: &CacheKey, plan: &LayerPlan) -> Result<BuiltZtoc, String> {
    let z = Ztoc::from_bytes(&bytes).map_err(|e| format!("zTOC: {e}"))?;
    if z.version != ZTOC_VERSION.as_bytes() {
        return Err(format!(
            "zTOC version {:?}",
            String::from_utf8_lossy(&z.version)
        ));
    }
    if z.build_tool_identifier != key.build_tool.as_bytes() {
        return Err(format!(
            "zTOC built by {:?}, expected {:?}",
            String::from_utf8_lossy(&z.build_tool_identifier),
            key.build_tool
        ));
    }
    if u64::try_from(z.compressed_archive_size).ok() != Some(plan.size) {
        return Err(format!(
            "zTOC of a {}-byte layer, this layer has {} bytes",
            z.compressed_archive_size, plan.size
        ));
    }
    let algorithm = match key.compression {
        Compression::Gzip => ALGORITHM_GZIP,
        Compression::Uncompressed => ALGORITHM_UNCOMPRESSED,
    };
    if z.compression_algorithm != algorithm {
        return Err(format!("compression algorithm {}", z.compression_algorithm));
    }
    if key.compression == Compression::Uncompressed {
        let info = TarZinfo::from_bytes(&z.checkpoints).map_err(|e| format!("TarZinfo: {e}"))?;
        if u64::try_from(info.span_size).ok() != Some(key.span_size) {
            return Err(format!("span size {}", info.span_size));
        }
    }
    let uncompressed_size = u64::try_from(z.uncompressed_archive_size)
        .map_err(|_| format!("uncompressed size {}", z.uncompressed_archive_size))?;
    let spans = usize::try_from(i64::from(z.max_span_id) + 1)
        .map_err(|_| format!("max span id {}", z.max_span_id))?;
    // soci-core's rule, applied to the TOC the zTOC records.
    let xattrs_disableable = !z.toc.iter().any(|e| e.needs_xattr_lookups());
    Ok(BuiltZtoc {
        entries: z.toc.len(),
        ztoc: bytes.to_vec(),
        layer_digest: plan.digest.clone(),
        compressed_size: plan.size,
        uncompressed_size,
        spans,
        xattrs_disableable,
    })
}

fn entry_manifest(
    key: &CacheKey,
    ztoc_digest: &str,
    ztoc_size: usize,
    xattrs_disableable: bool,
) -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": MEDIA_TYPE_EMPTY,
            "digest": EMPTY_JSON_CONFIG_DIGEST,
            "size": EMPTY_JSON_CONFIG.len(),
        },
        "layers": [{
            "mediaType": MEDIA_TYPE_ZTOC,
            "digest": ztoc_digest,
            "size": ztoc_size,
        }],
        "annotations": {
            ANNOTATION_LAYER_DIGEST: key.layer_digest,
            ANNOTATION_SPAN_SIZE: key.span_size.to_string(),
            ANNOTATION_COMPRESSION: compression_name(key.compression),
            ANNOTATION_BUILD_TOOL: key.build_tool,
            ANNOTATION_XATTRS_DISABLEABLE: bool_str(xattrs_disableable),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(digest: &str, span: u64, compression: Compression, tool: &str) -> CacheKey {
        CacheKey {
            layer_digest: digest.into(),
            span_size: span,
            compression,
            build_tool: tool.into(),
        }
    }

    #[test]
    fn tags_are_valid_oci_tags_and_differ_by_every_key_part() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let longest = key(&d, u64::MAX, Compression::Uncompressed, &"x".repeat(5000));
        let tag = longest.tag().expect("a sha256 layer has a tag");
        assert!(tag.len() <= MAX_TAG_LEN, "{} characters", tag.len());
        let first = tag.as_bytes()[0];
        assert!(first.is_ascii_alphanumeric() || first == b'_');
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        );
        let base = key(&d, 4 << 20, Compression::Gzip, "soci-lambda v1");
        let variants = [
            key(
                &format!("sha256:{}", "cd".repeat(32)),
                4 << 20,
                Compression::Gzip,
                "soci-lambda v1",
            ),
            key(&d, 1 << 20, Compression::Gzip, "soci-lambda v1"),
            key(&d, 4 << 20, Compression::Uncompressed, "soci-lambda v1"),
            key(&d, 4 << 20, Compression::Gzip, "soci-lambda v2"),
        ];
        for v in variants {
            assert_ne!(v.tag(), base.tag(), "{v:?}");
        }
    }

    #[test]
    fn digests_that_do_not_fit_a_tag_are_not_cached() {
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        assert_eq!(key(&sha512, 1, Compression::Gzip, "t").tag(), None);
        assert_eq!(key("sha256:a/b", 1, Compression::Gzip, "t").tag(), None);
        assert_eq!(key("nodigest", 1, Compression::Gzip, "t").tag(), None);
    }
}
