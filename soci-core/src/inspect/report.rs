//! What [`super::inspect`] found, structured for printing and for assertions.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::VerifyReport;
use crate::index::SociIndexVersion;
use crate::oci::{ANNOTATION_IMAGE_LAYER_DIGEST, ANNOTATION_SPAN_SIZE, Descriptor, Platform};

/// A JSON document as fetched: where from, what it is, how big.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The reference it was fetched by (a tag or a digest).
    pub reference: String,
    /// The digest the registry gave for it.
    pub digest: String,
    /// The media type it was served with.
    pub media_type: String,
    /// Its length in bytes.
    pub size: usize,
}

/// The whole graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphReport {
    pub version: SociIndexVersion,
    /// The document the walk started from (the v2 OCI index or the v1 SOCI index).
    pub root: Document,
    /// What [`super::Root::original`] resolved to.
    pub original: Option<Document>,
    /// One entry per indexed platform, in the order the root lists them.
    pub platforms: Vec<PlatformReport>,
    /// v2: entries of the OCI index carried over without a SOCI index.
    pub left_as_is: Vec<LeftAsIs>,
    /// Problems with the root itself, or between platforms.
    pub problems: Vec<String>,
}

/// An OCI index entry with no SOCI index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftAsIs {
    pub descriptor: Descriptor,
    pub reason: LeftAsIsReason,
}

/// Why an OCI index entry has no SOCI index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftAsIsReason {
    /// A BuildKit attestation manifest: never indexed.
    Attestation,
    /// An image manifest without the index-digest annotation: a platform left out (filtered,
    /// or with no layer worth indexing).
    NotIndexed,
}

/// One indexed image manifest with its SOCI index.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformReport {
    /// Normalized, as the SOCI descriptor carries it; `None` for v1 (its index names no
    /// platform).
    pub platform: Option<Platform>,
    pub image_manifest: ImageManifestReport,
    pub soci_index: SociIndexReport,
    /// Every layer of the image manifest, in order, with its zTOC when it has one.
    pub layers: Vec<InspectedLayer>,
    /// zTOC descriptors whose layer is not in the image manifest (each also a problem).
    pub stray_ztocs: Vec<Descriptor>,
    /// What is wrong with this platform's documents (zTOC verify problems are in
    /// [`ZtocReport::verify`]).
    pub problems: Vec<String>,
}

/// The image manifest a SOCI index belongs to (v2: the annotated copy; v1: the subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifestReport {
    pub document: Document,
    pub config: Descriptor,
    pub annotations: BTreeMap<String, String>,
    /// The digest of the original image manifest with the same config and layers, when the
    /// walk was given the original image.
    pub original: Option<String>,
}

/// A SOCI index manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SociIndexReport {
    pub document: Document,
    pub version: SociIndexVersion,
    pub config: Descriptor,
    pub subject: Option<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

/// One layer of an image manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectedLayer {
    /// As the image manifest lists it.
    pub descriptor: Descriptor,
    /// `None`: no zTOC, the layer is pulled whole.
    pub ztoc: Option<ZtocReport>,
}

/// One zTOC, read back and verified against its layer.
#[derive(Debug, Clone, PartialEq)]
pub struct ZtocReport {
    /// As the SOCI index lists it (digest, size, annotations).
    pub descriptor: Descriptor,
    /// The zTOC's own header.
    pub build_tool: String,
    pub spans: usize,
    pub entries: usize,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// The consumer's checks against the layer.
    pub verify: VerifyReport,
    /// How long `verify` took.
    pub verify_time: Duration,
}

impl GraphReport {
    /// Every problem found, each naming where it was found: the root's, each platform's, and
    /// each zTOC's verify problems. Empty: a consumer accepts the whole graph.
    pub fn problems(&self) -> Vec<String> {
        let mut all = self.problems.clone();
        for platform in &self.platforms {
            let name = platform.name();
            all.extend(platform.problems.iter().map(|p| format!("{name}: {p}")));
            for (layer, ztoc) in platform.ztocs() {
                all.extend(ztoc.verify.problems.iter().map(|p| {
                    format!(
                        "{name}: zTOC {} (layer {}): {p}",
                        ztoc.descriptor.digest, layer.digest
                    )
                }));
            }
        }
        all
    }

    /// No problem anywhere.
    pub fn is_ok(&self) -> bool {
        self.problems().is_empty()
    }

    /// The platform whose normalized `os/arch[/variant]` is `name`.
    pub fn platform(&self, name: &str) -> Option<&PlatformReport> {
        self.platforms.iter().find(|p| p.name() == name)
    }

    /// zTOCs verified across all platforms.
    pub fn ztoc_count(&self) -> usize {
        self.platforms.iter().map(|p| p.ztocs().count()).sum()
    }

    /// Spans checked by `verify`, across all zTOCs.
    pub fn spans_checked(&self) -> usize {
        self.all_ztocs().map(|z| z.verify.spans_checked).sum()
    }

    /// Entries checked by `verify`, across all zTOCs.
    pub fn entries_checked(&self) -> usize {
        self.all_ztocs().map(|z| z.verify.entries_checked).sum()
    }

    fn all_ztocs(&self) -> impl Iterator<Item = &ZtocReport> {
        self.platforms
            .iter()
            .flat_map(|p| p.ztocs().map(|(_, z)| z))
    }
}

impl PlatformReport {
    /// `os/arch[/variant]`, or `v1` for a v1 index (which names no platform).
    pub fn name(&self) -> String {
        self.platform
            .as_ref()
            .map_or_else(|| "v1".to_string(), Platform::display_name)
    }

    /// The layers with a zTOC, in image layer order, with their zTOCs.
    pub fn ztocs(&self) -> impl Iterator<Item = (&Descriptor, &ZtocReport)> {
        self.layers
            .iter()
            .filter_map(|l| l.ztoc.as_ref().map(|z| (&l.descriptor, z)))
    }

    /// The digests of the indexed layers, in image layer order.
    pub fn indexed_layers(&self) -> Vec<&str> {
        self.ztocs().map(|(l, _)| l.digest.as_str()).collect()
    }
}

impl ZtocReport {
    /// The `com.amazon.soci.span-size` annotation of the zTOC descriptor.
    pub fn span_size_annotation(&self) -> Option<&str> {
        self.annotation(ANNOTATION_SPAN_SIZE)
    }

    /// The `com.amazon.soci.image-layer-digest` annotation of the zTOC descriptor.
    pub fn layer_digest_annotation(&self) -> Option<&str> {
        self.annotation(ANNOTATION_IMAGE_LAYER_DIGEST)
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.descriptor.annotations.get(key).map(String::as_str)
    }
}
