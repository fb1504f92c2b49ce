//! SOCI index manifests (v1 with `subject`, v2 without) and the v2 image conversion, as pure
//! functions over bytes: what `soci create` / `soci convert` of `awslabs/soci-snapshotter` write,
//! byte for byte (FORMAT.md sections 1, 6 and 7).
//!
//! Typical generator flow (V2), with the registry I/O done by the caller:
//! 1. [`crate::oci::parse_image_document`] on the pulled manifest/index bytes + Content-Type;
//! 2. for an index: [`index_platform_manifests`] lists the platform manifests to index; for a
//!    single manifest: [`crate::oci::platform_from_image_config`] on its config blob;
//! 3. per platform: build zTOCs for `Manifest::layers()`, then [`build_soci_index_v2`] from the
//!    [`ZtocLayer`]s; push the zTOCs, [`EMPTY_JSON_CONFIG`](crate::oci::EMPTY_JSON_CONFIG) and
//!    the SOCI index blob;
//! 4. [`annotate_image_manifest`] with the SOCI index digest; push the annotated manifest;
//! 5. [`build_converted_index`] from a [`ConversionSource`] and the [`ConvertedPlatform`]s; push
//!    it under `<tag>-soci`.
//!
//! V1: [`build_soci_index_v1`] with the image manifest descriptor as subject.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::oci::{
    self, ANNOTATION_BUILD_TOOL_IDENTIFIER, ANNOTATION_DISABLE_XATTRS,
    ANNOTATION_DOCKER_REFERENCE_TYPE, ANNOTATION_IMAGE_LAYER_DIGEST,
    ANNOTATION_IMAGE_LAYER_MEDIA_TYPE, ANNOTATION_IMAGE_MANIFEST_DIGEST,
    ANNOTATION_SOCI_INDEX_DIGEST, ANNOTATION_SPAN_SIZE, DOCKER_REFERENCE_TYPE_ATTESTATION,
    Descriptor, EMPTY_JSON_CONFIG_DIGEST, Index, MEDIA_TYPE_OCI_IMAGE_CONFIG, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_SOCI_INDEX_V1, MEDIA_TYPE_SOCI_INDEX_V2, MEDIA_TYPE_ZTOC,
    Manifest, OciError, Platform,
};

/// `"sha256:" + lowercase hex` of `bytes` (an OCI digest).
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A serialized JSON object ready to push: its bytes, digest, size and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonBlob {
    /// Media type to push it with (Content-Type).
    pub media_type: String,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    /// `bytes.len()`.
    pub size: i64,
    /// The exact bytes.
    pub bytes: Vec<u8>,
}

impl JsonBlob {
    /// Wraps bytes, computing digest and size.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest: sha256_digest(&bytes),
            size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            bytes,
        }
    }

    /// `{mediaType, digest, size}` of this blob.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(&self.media_type, &self.digest, self.size)
    }
}

/// SOCI index format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SociIndexVersion {
    /// `application/vnd.amazon.soci.index.v1+json`: has `subject`, found via the referrers API.
    V1,
    /// `application/vnd.amazon.soci.index.v2+json`: no `subject`, found via the image manifest's
    /// `com.amazon.soci.index-digest` annotation.
    V2,
}

impl SociIndexVersion {
    /// The `config.mediaType` (and descriptor `artifactType`) of this version.
    pub fn media_type(self) -> &'static str {
        match self {
            SociIndexVersion::V1 => MEDIA_TYPE_SOCI_INDEX_V1,
            SociIndexVersion::V2 => MEDIA_TYPE_SOCI_INDEX_V2,
        }
    }

    /// The version whose media type is `media_type`.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            MEDIA_TYPE_SOCI_INDEX_V1 => Some(SociIndexVersion::V1),
            MEDIA_TYPE_SOCI_INDEX_V2 => Some(SociIndexVersion::V2),
            _ => None,
        }
    }

    /// The config descriptor: the 2-byte `{}` blob typed with this version's media type.
    pub fn config_descriptor(self) -> Descriptor {
        Descriptor::new(self.media_type(), EMPTY_JSON_CONFIG_DIGEST, 2)
    }
}

/// One indexed image layer: its zTOC blob and what the index says about the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZtocLayer {
    /// `sha256:<hex>` of the zTOC bytes.
    pub ztoc_digest: String,
    /// Size of the zTOC bytes.
    pub ztoc_size: i64,
    /// Digest of the image layer the zTOC indexes.
    pub layer_digest: String,
    /// Media type of that image layer (as in the image manifest).
    pub layer_media_type: String,
    /// Span size the zTOC was built with.
    pub span_size: u64,
    /// Add `com.amazon.soci.disable-xattrs: "true"` (no entry has a `SCHILY.xattr.*` record and
    /// no name ends in `.wh..wh..opq`).
    pub disable_xattrs: bool,
}

impl ZtocLayer {
    /// The zTOC descriptor as the reference writes it in the SOCI index's `layers`.
    pub fn descriptor(&self) -> Descriptor {
        let mut descriptor = Descriptor::new(MEDIA_TYPE_ZTOC, &self.ztoc_digest, self.ztoc_size);
        let annotations = &mut descriptor.annotations;
        annotations.insert(
            ANNOTATION_IMAGE_LAYER_DIGEST.to_string(),
            self.layer_digest.clone(),
        );
        annotations.insert(
            ANNOTATION_IMAGE_LAYER_MEDIA_TYPE.to_string(),
            self.layer_media_type.clone(),
        );
        annotations.insert(ANNOTATION_SPAN_SIZE.to_string(), self.span_size.to_string());
        if self.disable_xattrs {
            annotations.insert(ANNOTATION_DISABLE_XATTRS.to_string(), "true".to_string());
        }
        descriptor
    }
}

/// The soci package's `soci.Index`: a SOCI index manifest as `soci.UnmarshalIndex` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SociIndex {
    /// From `config.mediaType`.
    pub version: SociIndexVersion,
    /// The config descriptor, kept as decoded (unknown fields dropped).
    pub config: Descriptor,
    /// The zTOC (and other, e.g. prefetch) descriptors: the manifest's `layers`.
    pub blobs: Option<Vec<Descriptor>>,
    /// The image manifest (v1).
    pub subject: Option<Descriptor>,
    /// Index annotations (the build tool identifier).
    pub annotations: BTreeMap<String, String>,
}

impl SociIndex {
    /// `soci.MarshalIndex`: Go's `json.Marshal` of an `ocispec.Manifest` with `schemaVersion` 2,
    /// the OCI manifest media type, this config, `layers` = blobs, subject and annotations (no
    /// top-level `artifactType`).
    pub fn to_go_json(&self) -> Vec<u8> {
        Manifest {
            schema_version: 2,
            media_type: MEDIA_TYPE_OCI_MANIFEST.to_string(),
            artifact_type: String::new(),
            config: self.config.clone(),
            layers: self.blobs.clone(),
            subject: self.subject.clone(),
            annotations: self.annotations.clone(),
        }
        .to_go_json()
    }

    /// The serialized index with its digest (media type: OCI image manifest).
    pub fn to_blob(&self) -> JsonBlob {
        JsonBlob::new(MEDIA_TYPE_OCI_MANIFEST, self.to_go_json())
    }

    /// The descriptor of this index in an OCI index or referrers list (`artifactType` set).
    pub fn descriptor(&self) -> Descriptor {
        let mut descriptor = self.to_blob().descriptor();
        descriptor.artifact_type = self.version.media_type().to_string();
        descriptor
    }
}

fn new_soci_index(
    version: SociIndexVersion,
    ztocs: &[ZtocLayer],
    subject: Option<Descriptor>,
    build_tool_identifier: &str,
) -> Result<SociIndex, OciError> {
    if ztocs.is_empty() {
        return Err(OciError::EmptySociIndex);
    }
    for (position, ztoc) in ztocs.iter().enumerate() {
        if ztoc.ztoc_size < 0 {
            return Err(OciError::InvalidArgument {
                what: "zTOC size",
                detail: format!(
                    "zTOC #{position} ({}) has size {}",
                    ztoc.ztoc_digest, ztoc.ztoc_size
                ),
            });
        }
    }
    let mut annotations = BTreeMap::new();
    annotations.insert(
        ANNOTATION_BUILD_TOOL_IDENTIFIER.to_string(),
        build_tool_identifier.to_string(),
    );
    Ok(SociIndex {
        version,
        config: version.config_descriptor(),
        blobs: Some(ztocs.iter().map(ZtocLayer::descriptor).collect()),
        subject,
        annotations,
    })
}

/// Builds a v1 SOCI index (with `subject` = `{mediaType, digest, size}` of the image manifest).
/// `ztocs` in image layer order. No zTOC: [`OciError::EmptySociIndex`].
pub fn build_soci_index_v1(
    ztocs: &[ZtocLayer],
    image_manifest: &Descriptor,
    build_tool_identifier: &str,
) -> Result<SociIndex, OciError> {
    let subject = Descriptor::new(
        &image_manifest.media_type,
        &image_manifest.digest,
        image_manifest.size,
    );
    new_soci_index(
        SociIndexVersion::V1,
        ztocs,
        Some(subject),
        build_tool_identifier,
    )
}

/// Builds a v2 SOCI index (no `subject`). `ztocs` in image layer order. No zTOC:
/// [`OciError::EmptySociIndex`].
pub fn build_soci_index_v2(
    ztocs: &[ZtocLayer],
    build_tool_identifier: &str,
) -> Result<SociIndex, OciError> {
    new_soci_index(SociIndexVersion::V2, ztocs, None, build_tool_identifier)
}

/// `soci.UnmarshalIndex`: decodes the bytes with Go's rules (into the `soci.Index` struct first,
/// then into `ocispec.Manifest`) and requires a v1 or v2 `config.mediaType`
/// ("unknown index version: ..." otherwise).
pub fn unmarshal_soci_index(bytes: &[u8]) -> Result<SociIndex, OciError> {
    oci::decode_document(bytes, "SOCI index", oci::check_soci_index_struct)?;
    let manifest = Manifest::from_json(bytes)?;
    let version = SociIndexVersion::from_media_type(&manifest.config.media_type)
        .ok_or_else(|| OciError::UnknownSociIndexVersion(manifest.config.media_type.clone()))?;
    Ok(SociIndex {
        version,
        config: manifest.config,
        blobs: manifest.layers,
        subject: manifest.subject,
        annotations: manifest.annotations,
    })
}

/// An image manifest rewritten for a v2 conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotatedManifest {
    /// The manifest as rewritten.
    pub manifest: Manifest,
    /// Its Go serialization (media type OCI image manifest): push this.
    pub blob: JsonBlob,
}

/// Step 2 of the v2 conversion: the manifest re-typed as OCI (`mediaType` and `config.mediaType`
/// forced to the OCI types; layers and the config blob untouched) with annotation
/// `com.amazon.soci.index-digest` = `soci_index_digest`, marshalled the Go way.
pub fn annotate_image_manifest(manifest: &Manifest, soci_index_digest: &str) -> AnnotatedManifest {
    let mut annotated = manifest.clone();
    annotated.media_type = MEDIA_TYPE_OCI_MANIFEST.to_string();
    annotated.config.media_type = MEDIA_TYPE_OCI_IMAGE_CONFIG.to_string();
    annotated.annotations.insert(
        ANNOTATION_SOCI_INDEX_DIGEST.to_string(),
        soci_index_digest.to_string(),
    );
    let blob = JsonBlob::new(MEDIA_TYPE_OCI_MANIFEST, annotated.to_go_json());
    AnnotatedManifest {
        manifest: annotated,
        blob,
    }
}

/// [`annotate_image_manifest`] from the manifest bytes as pulled (decoded with Go's rules, as the
/// reference does).
pub fn annotate_image_manifest_bytes(
    manifest_bytes: &[u8],
    soci_index_digest: &str,
) -> Result<AnnotatedManifest, OciError> {
    let manifest = Manifest::from_json(manifest_bytes)?;
    Ok(annotate_image_manifest(&manifest, soci_index_digest))
}

/// A platform manifest of an index, to be indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformManifest {
    /// Its descriptor in the index (digest to pull, media type, size).
    pub descriptor: Descriptor,
    /// Its platform, normalized as containerd does (the SOCI descriptor carries this one).
    pub platform: Platform,
}

/// A BuildKit attestation manifest: platform `unknown/unknown` or annotation
/// `vnd.docker.reference.type: attestation-manifest`.
pub fn is_attestation_manifest(descriptor: &Descriptor) -> bool {
    let unknown_platform = descriptor
        .platform
        .as_ref()
        .is_some_and(|platform| platform.os == "unknown" && platform.architecture == "unknown");
    let attestation_annotation = descriptor
        .annotations
        .get(ANNOTATION_DOCKER_REFERENCE_TYPE)
        .is_some_and(|value| value == DOCKER_REFERENCE_TYPE_ATTESTATION);
    unknown_platform || attestation_annotation
}

/// A SOCI index entry of an OCI index (v1 or v2 `artifactType`).
pub fn is_soci_index_descriptor(descriptor: &Descriptor) -> bool {
    SociIndexVersion::from_media_type(&descriptor.artifact_type).is_some()
}

/// The image manifests of `index` to build SOCI indexes for, one per platform, in index order:
/// image manifest media types only, skipping attestation manifests, SOCI index entries (from an
/// earlier conversion) and entries without a platform; when several manifests share a platform
/// the first one wins (as the reference's platform matcher picks the first match).
pub fn index_platform_manifests(index: &Index) -> Vec<PlatformManifest> {
    let mut selected: Vec<PlatformManifest> = Vec::new();
    for descriptor in index.manifests() {
        if !oci::is_image_manifest_media_type(&descriptor.media_type)
            || is_attestation_manifest(descriptor)
            || is_soci_index_descriptor(descriptor)
        {
            continue;
        }
        let Some(platform) = &descriptor.platform else {
            continue;
        };
        let platform = oci::normalize_platform(platform);
        if selected
            .iter()
            .any(|existing| same_platform(&existing.platform, &platform))
        {
            continue;
        }
        selected.push(PlatformManifest {
            descriptor: descriptor.clone(),
            platform,
        });
    }
    selected
}

/// containerd's strict platform match: same normalized OS, architecture and variant.
fn same_platform(left: &Platform, right: &Platform) -> bool {
    let left = oci::normalize_platform(left);
    let right = oci::normalize_platform(right);
    left.os == right.os && left.architecture == right.architecture && left.variant == right.variant
}

/// What the converted OCI index starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversionSource {
    /// An OCI index or Docker manifest list (it is re-typed to an OCI index).
    Index(Index),
    /// A single image manifest: a new OCI index wraps it.
    SingleManifest {
        /// The manifest's descriptor as pulled (media type, digest, size).
        descriptor: Descriptor,
        /// Its platform, from the image config ([`oci::platform_from_image_config`]).
        platform: Platform,
    },
}

/// One platform converted by the caller: the original manifest digest, the annotated manifest
/// (from [`annotate_image_manifest`]) and the v2 SOCI index (from [`build_soci_index_v2`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedPlatform {
    /// Digest of the image manifest before annotation (as listed in the source index).
    pub original_manifest_digest: String,
    /// The annotated manifest.
    pub annotated_manifest: AnnotatedManifest,
    /// The v2 SOCI index built for that manifest's layers.
    pub soci_index: SociIndex,
    /// The platform (normalized before use).
    pub platform: Platform,
}

/// Step 3 of the v2 conversion: the OCI index to push under `<tag>-soci`.
///
/// Each converted manifest's descriptor gets the annotated manifest's digest, size, OCI media
/// type and annotations; then each SOCI index descriptor (`mediaType` OCI manifest, digest, size,
/// annotation `com.amazon.soci.image-manifest-digest`, platform, `artifactType` v2) replaces the
/// existing v2 SOCI entry for that platform or is appended. Other entries (attestations,
/// platforms without an index) are left as they are.
pub fn build_converted_index(
    source: ConversionSource,
    converted: &[ConvertedPlatform],
) -> Result<JsonBlob, OciError> {
    build_converted_index_annotated(source, converted, BTreeMap::new())
}

/// [`build_converted_index`], with `annotations` added to the index's own (a caller's record
/// on the index, e.g. what it was converted from; readers ignore annotations they do not know).
pub fn build_converted_index_annotated(
    source: ConversionSource,
    converted: &[ConvertedPlatform],
    annotations: BTreeMap<String, String>,
) -> Result<JsonBlob, OciError> {
    let mut index = match source {
        ConversionSource::Index(mut index) => {
            // Some registries refuse Docker manifest lists mixed with OCI manifests.
            index.media_type = MEDIA_TYPE_OCI_INDEX.to_string();
            index
        }
        ConversionSource::SingleManifest {
            descriptor,
            platform,
        } => {
            let mut target = descriptor;
            target.platform = Some(oci::normalize_platform(&platform));
            Index {
                schema_version: 2,
                media_type: MEDIA_TYPE_OCI_INDEX.to_string(),
                manifests: Some(vec![target]),
                ..Index::default()
            }
        }
    };
    let mut manifests = index.manifests.take().unwrap_or_default();

    for platform in converted {
        if platform.soci_index.version != SociIndexVersion::V2 {
            return Err(OciError::InvalidArgument {
                what: "SOCI index",
                detail: format!(
                    "the conversion needs a v2 SOCI index, got {:?} for {}",
                    platform.soci_index.version,
                    platform.platform.display_name()
                ),
            });
        }
        let soci_digest = platform.soci_index.to_blob().digest;
        let annotated = &platform.annotated_manifest;
        let recorded = annotated
            .manifest
            .annotations
            .get(ANNOTATION_SOCI_INDEX_DIGEST);
        if recorded != Some(&soci_digest) {
            return Err(OciError::InvalidArgument {
                what: "annotated manifest",
                detail: format!(
                    "its {ANNOTATION_SOCI_INDEX_DIGEST} is {recorded:?}, the SOCI index for {} is {soci_digest}",
                    platform.platform.display_name()
                ),
            });
        }
        let mut replaced = false;
        for descriptor in manifests
            .iter_mut()
            .filter(|descriptor| descriptor.digest == platform.original_manifest_digest)
        {
            descriptor.digest = annotated.blob.digest.clone();
            descriptor.size = annotated.blob.size;
            descriptor.media_type = MEDIA_TYPE_OCI_MANIFEST.to_string();
            descriptor.annotations = annotated.manifest.annotations.clone();
            replaced = true;
        }
        if !replaced {
            return Err(OciError::InvalidArgument {
                what: "original manifest digest",
                detail: format!(
                    "{} ({}) is not in the image index",
                    platform.original_manifest_digest,
                    platform.platform.display_name()
                ),
            });
        }
    }

    for platform in converted {
        let normalized = oci::normalize_platform(&platform.platform);
        let mut soci_descriptor = platform.soci_index.descriptor();
        soci_descriptor.annotations.insert(
            ANNOTATION_IMAGE_MANIFEST_DIGEST.to_string(),
            platform.annotated_manifest.blob.digest.clone(),
        );
        let existing = manifests.iter_mut().find(|descriptor| {
            descriptor.artifact_type == MEDIA_TYPE_SOCI_INDEX_V2
                && descriptor
                    .platform
                    .as_ref()
                    .is_some_and(|existing| same_platform(existing, &normalized))
        });
        soci_descriptor.platform = Some(normalized);
        match existing {
            Some(slot) => *slot = soci_descriptor,
            None => manifests.push(soci_descriptor),
        }
    }

    index.manifests = Some(manifests);
    index.annotations.extend(annotations);
    Ok(JsonBlob::new(MEDIA_TYPE_OCI_INDEX, index.to_go_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_config_digest_matches() {
        assert_eq!(
            sha256_digest(crate::oci::EMPTY_JSON_CONFIG),
            EMPTY_JSON_CONFIG_DIGEST
        );
    }
}
