//! The two roots (FORMAT.md section 7): the v2 OCI index, paired entry by entry into image
//! manifests and SOCI indexes, and the v1 SOCI index with its subject. Also the fetch helpers
//! and the comparison with the original image.

use std::collections::BTreeMap;

use super::report::{Document, GraphReport, ImageManifestReport, LeftAsIs, LeftAsIsReason};
use super::soci_index::check_soci_index;
use super::{GraphSource, InspectError, PlatformReport, Root, SourceManifest};
use crate::index::{SociIndexVersion, is_attestation_manifest, is_soci_index_descriptor};
use crate::oci::{
    ANNOTATION_IMAGE_MANIFEST_DIGEST, ANNOTATION_SOCI_INDEX_DIGEST, Descriptor, ImageDocument,
    Index, MEDIA_TYPE_OCI_IMAGE_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_SOCI_INDEX_V2, Manifest, OciError, Platform, is_image_manifest_media_type,
    normalize_platform, parse_image_document,
};

/// Fetches the manifest at `reference`; absent is an error (the walk needs it).
pub(super) async fn fetch_manifest<S: GraphSource>(
    source: &S,
    what: &'static str,
    reference: &str,
) -> Result<(Document, Vec<u8>), InspectError> {
    let fetched = source
        .manifest(reference)
        .await
        .map_err(InspectError::fetch(what, reference))?
        .ok_or_else(|| InspectError::Missing {
            what,
            reference: reference.to_string(),
        })?;
    let SourceManifest {
        digest,
        media_type,
        bytes,
    } = fetched;
    let document = Document {
        reference: reference.to_string(),
        digest,
        media_type,
        size: bytes.len(),
    };
    Ok((document, bytes))
}

/// Content addressing: the bytes hash to the digest the registry gave, which is the digest asked
/// for (when a digest was asked for) and, when a descriptor points at them, its digest and size.
pub(super) fn check_content(
    what: &str,
    document: &Document,
    bytes: &[u8],
    expected: Option<&Descriptor>,
    problems: &mut Vec<String>,
) {
    let actual = crate::index::sha256_digest(bytes);
    if actual != document.digest {
        problems.push(format!(
            "{what} {}: served with digest {} but its bytes hash to {actual}",
            document.reference, document.digest
        ));
    }
    if document.reference.starts_with("sha256:") && document.reference != document.digest {
        problems.push(format!(
            "{what} {}: the registry answered with {}",
            document.reference, document.digest
        ));
    }
    if let Some(descriptor) = expected
        && i64::try_from(bytes.len()).ok() != Some(descriptor.size)
    {
        problems.push(format!(
            "{what} {}: {} bytes, its descriptor says {}",
            document.reference,
            bytes.len(),
            descriptor.size
        ));
    }
}

/// A decode failure as the walk's error, naming the document.
pub(super) fn decoded<T>(
    what: &'static str,
    reference: &str,
    result: Result<T, OciError>,
) -> Result<T, InspectError> {
    result.map_err(|source| InspectError::Decode {
        what,
        reference: reference.to_string(),
        source,
    })
}

/// A document must be what Go's encoder writes for it, or a consumer's digest would not match.
pub(super) fn check_canonical(
    what: &str,
    reference: &str,
    bytes: &[u8],
    reencoded: &[u8],
    problems: &mut Vec<String>,
) {
    if bytes != reencoded {
        problems.push(format!(
            "{what} {reference}: the JSON is not canonical (Go re-encodes it to other bytes)"
        ));
    }
}

/// The v2 walk: OCI index -> annotated image manifests and SOCI indexes -> zTOCs.
pub(super) async fn inspect_v2<S: GraphSource>(
    source: &S,
    root: &Root,
) -> Result<GraphReport, InspectError> {
    let (document, bytes) = fetch_manifest(source, "OCI index", &root.reference).await?;
    let mut problems = Vec::new();
    check_content("OCI index", &document, &bytes, None, &mut problems);
    if document.media_type != MEDIA_TYPE_OCI_INDEX {
        problems.push(format!(
            "{}: served as {}, not an OCI index",
            root.reference, document.media_type
        ));
    }
    let index = decoded("OCI index", &root.reference, Index::from_json(&bytes))?;
    check_canonical(
        "OCI index",
        &root.reference,
        &bytes,
        &index.to_go_json(),
        &mut problems,
    );
    let originals = match &root.original {
        Some(reference) => Some(Originals::fetch(source, reference).await?),
        None => None,
    };
    let entries = Entries::classify(&index, &mut problems);
    let mut platforms = Vec::new();
    for pair in entries.pairs(&mut problems) {
        platforms.push(platform_v2(source, &pair, originals.as_ref()).await?);
    }
    Ok(GraphReport {
        version: SociIndexVersion::V2,
        root: document,
        original: originals.map(|o| o.document),
        platforms,
        left_as_is: entries.left_as_is,
        problems,
    })
}

/// An annotated image manifest and its SOCI index descriptor, for one platform.
struct Pair<'i> {
    platform: Platform,
    image: &'i Descriptor,
    soci: &'i Descriptor,
}

/// The entries of a v2 OCI index, sorted by role.
#[derive(Default)]
struct Entries<'i> {
    /// By normalized platform name, in index order.
    images: Vec<(String, Platform, &'i Descriptor)>,
    soci: BTreeMap<String, &'i Descriptor>,
    left_as_is: Vec<LeftAsIs>,
}

impl<'i> Entries<'i> {
    fn classify(index: &'i Index, problems: &mut Vec<String>) -> Self {
        let mut entries = Entries::default();
        for descriptor in index.manifests() {
            let soci = is_soci_index_descriptor(descriptor);
            let reason = if soci {
                None
            } else if is_attestation_manifest(descriptor) {
                Some(LeftAsIsReason::Attestation)
            } else if !descriptor
                .annotations
                .contains_key(ANNOTATION_SOCI_INDEX_DIGEST)
            {
                Some(LeftAsIsReason::NotIndexed)
            } else {
                None
            };
            if let Some(reason) = reason {
                entries.left_as_is.push(LeftAsIs {
                    descriptor: descriptor.clone(),
                    reason,
                });
                continue;
            }
            entries.add(descriptor, soci, problems);
        }
        entries
    }

    fn add(&mut self, descriptor: &'i Descriptor, soci: bool, problems: &mut Vec<String>) {
        let role = if soci { "SOCI index" } else { "image manifest" };
        if descriptor.media_type != MEDIA_TYPE_OCI_MANIFEST {
            problems.push(format!(
                "{role} entry {} is a {}, not an OCI manifest",
                descriptor.digest, descriptor.media_type
            ));
        }
        let Some(platform) = descriptor.platform.as_ref().map(normalize_platform) else {
            problems.push(format!(
                "{role} entry {} has no platform",
                descriptor.digest
            ));
            return;
        };
        let name = platform.display_name();
        if soci {
            if descriptor.artifact_type != MEDIA_TYPE_SOCI_INDEX_V2 {
                problems.push(format!(
                    "{name}: SOCI index entry {} has artifactType {}, not v2",
                    descriptor.digest, descriptor.artifact_type
                ));
            }
            if self.soci.insert(name.clone(), descriptor).is_some() {
                problems.push(format!("{name}: two SOCI indexes"));
            }
        } else if self.images.iter().any(|(n, _, _)| *n == name) {
            problems.push(format!("{name}: two annotated image manifests"));
        } else {
            self.images.push((name, platform, descriptor));
        }
    }

    /// Each annotated manifest with the SOCI index of its platform; what does not pair up, or
    /// pairs up with annotations naming something else, is a problem.
    fn pairs(&self, problems: &mut Vec<String>) -> Vec<Pair<'i>> {
        let mut pairs = Vec::new();
        for (name, platform, image) in &self.images {
            let Some(soci) = self.soci.get(name).copied() else {
                problems.push(format!(
                    "{name}: image manifest {} has no SOCI index entry",
                    image.digest
                ));
                continue;
            };
            let names_soci = image.annotations.get(ANNOTATION_SOCI_INDEX_DIGEST);
            if names_soci != Some(&soci.digest) {
                problems.push(format!(
                    "{name}: the image manifest entry names SOCI index {}, the index lists {}",
                    names_soci.map_or("(none)", String::as_str),
                    soci.digest
                ));
            }
            let names_image = soci.annotations.get(ANNOTATION_IMAGE_MANIFEST_DIGEST);
            if names_image != Some(&image.digest) {
                problems.push(format!(
                    "{name}: the SOCI index entry names image manifest {}, the index lists {}",
                    names_image.map_or("(none)", String::as_str),
                    image.digest
                ));
            }
            pairs.push(Pair {
                platform: platform.clone(),
                image,
                soci,
            });
        }
        for (name, soci) in &self.soci {
            if !self.images.iter().any(|(n, _, _)| n == name) {
                problems.push(format!(
                    "{name}: SOCI index {} has no annotated image manifest",
                    soci.digest
                ));
            }
        }
        pairs
    }
}

/// One v2 platform: the annotated manifest, then its SOCI index and zTOCs.
async fn platform_v2<S: GraphSource>(
    source: &S,
    pair: &Pair<'_>,
    originals: Option<&Originals>,
) -> Result<PlatformReport, InspectError> {
    let mut problems = Vec::new();
    let what = "annotated image manifest";
    let (document, bytes) = fetch_manifest(source, what, &pair.image.digest).await?;
    check_content(what, &document, &bytes, Some(pair.image), &mut problems);
    let manifest = decoded(what, &pair.image.digest, Manifest::from_json(&bytes))?;
    check_canonical(
        what,
        &pair.image.digest,
        &bytes,
        &manifest.to_go_json(),
        &mut problems,
    );
    if manifest.media_type != MEDIA_TYPE_OCI_MANIFEST {
        problems.push(format!("{what} has media type {}", manifest.media_type));
    }
    if manifest.config.media_type != MEDIA_TYPE_OCI_IMAGE_CONFIG {
        problems.push(format!(
            "{what} has config media type {}",
            manifest.config.media_type
        ));
    }
    if manifest.annotations.get(ANNOTATION_SOCI_INDEX_DIGEST) != Some(&pair.soci.digest) {
        problems.push(format!(
            "{what} {}: its {ANNOTATION_SOCI_INDEX_DIGEST} is not {}",
            pair.image.digest, pair.soci.digest
        ));
    }
    if manifest.annotations != pair.image.annotations {
        problems.push(format!(
            "{what} {}: its annotations differ from its OCI index entry's",
            pair.image.digest
        ));
    }
    let original = originals.and_then(|o| o.matching(Some(&pair.platform), &manifest));
    if originals.is_some() && original.is_none() {
        problems.push(format!(
            "{what} {}: its config and layers match no image manifest of the original image",
            pair.image.digest
        ));
    }
    let (soci_document, soci_bytes) =
        fetch_manifest(source, "SOCI index", &pair.soci.digest).await?;
    check_content(
        "SOCI index",
        &soci_document,
        &soci_bytes,
        Some(pair.soci),
        &mut problems,
    );
    let checked = check_soci_index(
        source,
        soci_document,
        &soci_bytes,
        SociIndexVersion::V2,
        &manifest,
        &mut problems,
    )
    .await?;
    Ok(PlatformReport {
        platform: Some(pair.platform.clone()),
        image_manifest: ImageManifestReport {
            document,
            config: manifest.config,
            annotations: manifest.annotations,
            original,
        },
        soci_index: checked.report,
        layers: checked.layers,
        stray_ztocs: checked.stray,
        problems,
    })
}

/// The v1 walk: SOCI index -> subject image manifest, and zTOCs.
pub(super) async fn inspect_v1<S: GraphSource>(
    source: &S,
    root: &Root,
) -> Result<GraphReport, InspectError> {
    let what = "SOCI index";
    let (document, bytes) = fetch_manifest(source, what, &root.reference).await?;
    let mut problems = Vec::new();
    check_content(what, &document, &bytes, None, &mut problems);
    let index = decoded(
        what,
        &root.reference,
        crate::index::unmarshal_soci_index(&bytes),
    )?;
    let original = match &root.original {
        Some(reference) => Some(fetch_manifest(source, "original image", reference).await?.0),
        None => None,
    };
    let Some(subject) = index.subject.clone() else {
        problems.push(format!(
            "{what} {}: a v1 index needs a subject",
            root.reference
        ));
        return Ok(GraphReport {
            version: SociIndexVersion::V1,
            root: document,
            original,
            platforms: Vec::new(),
            left_as_is: Vec::new(),
            problems,
        });
    };
    let subject_what = "image manifest (subject)";
    let (image_document, image_bytes) =
        fetch_manifest(source, subject_what, &subject.digest).await?;
    let mut platform_problems = Vec::new();
    check_content(
        subject_what,
        &image_document,
        &image_bytes,
        Some(&subject),
        &mut platform_problems,
    );
    if !is_image_manifest_media_type(&subject.media_type) {
        platform_problems.push(format!(
            "the subject is a {}, not an image manifest",
            subject.media_type
        ));
    }
    let manifest = decoded(
        subject_what,
        &subject.digest,
        Manifest::from_json(&image_bytes),
    )?;
    if let Some(original) = &original
        && original.digest != subject.digest
    {
        platform_problems.push(format!(
            "the subject is {}, the original image is {}",
            subject.digest, original.digest
        ));
    }
    let checked = check_soci_index(
        source,
        document.clone(),
        &bytes,
        SociIndexVersion::V1,
        &manifest,
        &mut platform_problems,
    )
    .await?;
    let platform = PlatformReport {
        platform: None,
        image_manifest: ImageManifestReport {
            original: original.as_ref().map(|o| o.digest.clone()),
            document: image_document,
            config: manifest.config,
            annotations: manifest.annotations,
        },
        soci_index: checked.report,
        layers: checked.layers,
        stray_ztocs: checked.stray,
        problems: platform_problems,
    };
    Ok(GraphReport {
        version: SociIndexVersion::V1,
        root: document,
        original,
        platforms: vec![platform],
        left_as_is: Vec::new(),
        problems,
    })
}

/// The image manifests of the original image, to compare annotated copies with.
struct Originals {
    document: Document,
    manifests: Vec<OriginalManifest>,
}

struct OriginalManifest {
    digest: String,
    /// Normalized; `None` for a single-manifest image.
    platform: Option<Platform>,
    manifest: Manifest,
}

impl Originals {
    async fn fetch<S: GraphSource>(source: &S, reference: &str) -> Result<Self, InspectError> {
        let what = "original image";
        let (document, bytes) = fetch_manifest(source, what, reference).await?;
        let parsed = decoded(
            what,
            reference,
            parse_image_document(&bytes, &document.media_type),
        )?;
        let mut manifests = Vec::new();
        match parsed {
            ImageDocument::Manifest { manifest, .. } => manifests.push(OriginalManifest {
                digest: document.digest.clone(),
                platform: None,
                manifest,
            }),
            ImageDocument::Index { index, .. } => {
                for descriptor in index.manifests().iter().filter(|d| {
                    is_image_manifest_media_type(&d.media_type)
                        && !is_attestation_manifest(d)
                        && !is_soci_index_descriptor(d)
                }) {
                    let what = "original image manifest";
                    let (_, bytes) = fetch_manifest(source, what, &descriptor.digest).await?;
                    let manifest = decoded(what, &descriptor.digest, Manifest::from_json(&bytes))?;
                    manifests.push(OriginalManifest {
                        digest: descriptor.digest.clone(),
                        platform: descriptor.platform.as_ref().map(normalize_platform),
                        manifest,
                    });
                }
            }
        }
        Ok(Self {
            document,
            manifests,
        })
    }

    /// The original manifest `annotated` was made from: same platform (when both name one),
    /// same config blob, same layers. The conversion re-types the manifest and its config as
    /// OCI (FORMAT.md section 7), so the config is compared by digest and size only.
    fn matching(&self, platform: Option<&Platform>, annotated: &Manifest) -> Option<String> {
        self.manifests
            .iter()
            .filter(|o| match (platform, &o.platform) {
                (Some(wanted), Some(original)) => wanted == original,
                _ => true,
            })
            .find(|o| {
                o.manifest.config.digest == annotated.config.digest
                    && o.manifest.config.size == annotated.config.size
                    && o.manifest.layers() == annotated.layers()
            })
            .map(|o| o.digest.clone())
    }
}
