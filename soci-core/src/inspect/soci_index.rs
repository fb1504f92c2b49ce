//! One SOCI index manifest and its zTOCs: the index as a consumer decodes it, then each zTOC
//! fetched, matched to its image layer and verified against it (FORMAT.md section 9).

use std::time::Instant;

use super::report::{Document, InspectedLayer, SociIndexReport, ZtocReport};
use super::walk::{check_canonical, decoded};
use super::{GraphSource, InspectError};
use crate::index::{SociIndexVersion, sha256_digest, unmarshal_soci_index};
use crate::oci::{
    ANNOTATION_BUILD_TOOL_IDENTIFIER, ANNOTATION_IMAGE_LAYER_DIGEST,
    ANNOTATION_IMAGE_LAYER_MEDIA_TYPE, ANNOTATION_SPAN_SIZE, Descriptor, EMPTY_JSON_CONFIG,
    EMPTY_JSON_CONFIG_DIGEST, MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_ZTOC, Manifest,
};
use crate::ztoc::Ztoc;

/// A SOCI index read back, with the image layers it covers.
pub(super) struct CheckedIndex {
    pub report: SociIndexReport,
    pub layers: Vec<InspectedLayer>,
    pub stray: Vec<Descriptor>,
}

/// Checks the SOCI index `bytes` (already fetched as `document`) built for `image`.
pub(super) async fn check_soci_index<S: GraphSource>(
    source: &S,
    document: Document,
    bytes: &[u8],
    version: SociIndexVersion,
    image: &Manifest,
    problems: &mut Vec<String>,
) -> Result<CheckedIndex, InspectError> {
    let what = "SOCI index";
    let reference = document.reference.clone();
    if document.media_type != MEDIA_TYPE_OCI_MANIFEST {
        problems.push(format!(
            "{what} {reference}: served as {}, not an OCI manifest",
            document.media_type
        ));
    }
    let index = decoded(what, &reference, unmarshal_soci_index(bytes))?;
    check_canonical(what, &reference, bytes, &index.to_go_json(), problems);
    if index.version != version {
        problems.push(format!(
            "{what} {reference} is {:?}, want {version:?}",
            index.version
        ));
    }
    match (version, &index.subject) {
        (SociIndexVersion::V2, Some(_)) => {
            problems.push(format!(
                "{what} {reference}: a v2 index must have no subject"
            ));
        }
        (SociIndexVersion::V1, None) => {
            problems.push(format!("{what} {reference}: a v1 index needs a subject"));
        }
        _ => {}
    }
    if !index
        .annotations
        .contains_key(ANNOTATION_BUILD_TOOL_IDENTIFIER)
    {
        problems.push(format!(
            "{what} {reference} lacks {ANNOTATION_BUILD_TOOL_IDENTIFIER}"
        ));
    }
    check_config(source, &index.config, version, problems).await?;
    let blobs = index.blobs.as_deref().unwrap_or_default();
    if blobs.is_empty() {
        problems.push(format!("{what} {reference} lists no zTOC"));
    }
    let (layers, stray) = check_ztocs(source, blobs, image, problems).await?;
    Ok(CheckedIndex {
        report: SociIndexReport {
            document,
            version: index.version,
            config: index.config,
            subject: index.subject,
            annotations: index.annotations,
        },
        layers,
        stray,
    })
}

/// The config is the 2-byte `{}` blob typed with the version's media type.
async fn check_config<S: GraphSource>(
    source: &S,
    config: &Descriptor,
    version: SociIndexVersion,
    problems: &mut Vec<String>,
) -> Result<(), InspectError> {
    if config.media_type != version.media_type() {
        problems.push(format!(
            "SOCI index config media type {}, want {}",
            config.media_type,
            version.media_type()
        ));
    }
    if config.digest != EMPTY_JSON_CONFIG_DIGEST || config.size != 2 {
        problems.push(format!(
            "SOCI index config is {} ({} bytes), want the {{}} blob",
            config.digest, config.size
        ));
    }
    let bytes = fetch_blob(source, "SOCI index config", &config.digest).await?;
    if bytes != EMPTY_JSON_CONFIG {
        problems.push(format!(
            "SOCI index config blob {} is not {{}}",
            config.digest
        ));
    }
    Ok(())
}

async fn fetch_blob<S: GraphSource>(
    source: &S,
    what: &'static str,
    digest: &str,
) -> Result<Vec<u8>, InspectError> {
    source
        .blob(digest)
        .await
        .map_err(InspectError::fetch(what, digest))
}

/// Matches each zTOC descriptor to its image layer (in layer order, at most one per layer) and
/// verifies it. Returns every image layer with its zTOC, and the zTOCs naming no image layer.
async fn check_ztocs<S: GraphSource>(
    source: &S,
    blobs: &[Descriptor],
    image: &Manifest,
    problems: &mut Vec<String>,
) -> Result<(Vec<InspectedLayer>, Vec<Descriptor>), InspectError> {
    let image_layers = image.layers();
    let mut ztocs: Vec<Option<ZtocReport>> = vec![None; image_layers.len()];
    let mut stray = Vec::new();
    let mut last_position = None;
    for blob in blobs {
        let Some(layer_digest) = ztoc_descriptor_problems(blob, problems) else {
            continue;
        };
        let Some(position) = image_layers.iter().position(|l| l.digest == layer_digest) else {
            problems.push(format!(
                "zTOC {} names layer {layer_digest}, which is not in the image manifest",
                blob.digest
            ));
            stray.push(blob.clone());
            continue;
        };
        let layer = &image_layers[position];
        if ztocs[position].is_some() {
            problems.push(format!("two zTOCs for layer {layer_digest}"));
            continue;
        }
        if last_position.is_some_and(|last| position < last) {
            problems.push(format!("zTOC {} is out of image layer order", blob.digest));
        }
        last_position = Some(position);
        let media_type = blob.annotations.get(ANNOTATION_IMAGE_LAYER_MEDIA_TYPE);
        if media_type != Some(&layer.media_type) {
            problems.push(format!(
                "zTOC {}: layer media type annotation {media_type:?}, the manifest says {}",
                blob.digest, layer.media_type
            ));
        }
        ztocs[position] = Some(check_ztoc(source, blob, layer_digest, problems).await?);
    }
    let layers = image_layers
        .iter()
        .zip(ztocs)
        .map(|(descriptor, ztoc)| InspectedLayer {
            descriptor: descriptor.clone(),
            ztoc,
        })
        .collect();
    Ok((layers, stray))
}

/// The problems of a zTOC descriptor on its own; its layer digest when it names one.
fn ztoc_descriptor_problems<'d>(
    blob: &'d Descriptor,
    problems: &mut Vec<String>,
) -> Option<&'d str> {
    if blob.media_type != MEDIA_TYPE_ZTOC {
        problems.push(format!(
            "zTOC {} has media type {}",
            blob.digest, blob.media_type
        ));
    }
    let span = blob.annotations.get(ANNOTATION_SPAN_SIZE);
    if span.and_then(|s| s.parse::<u64>().ok()).is_none() {
        problems.push(format!(
            "zTOC {}: span size annotation {span:?} is not a number",
            blob.digest
        ));
    }
    let layer = blob.annotations.get(ANNOTATION_IMAGE_LAYER_DIGEST);
    if layer.is_none() {
        problems.push(format!(
            "zTOC {} lacks {ANNOTATION_IMAGE_LAYER_DIGEST}",
            blob.digest
        ));
    }
    layer.map(String::as_str)
}

/// Fetches one zTOC and its layer and runs the consumer's checks.
async fn check_ztoc<S: GraphSource>(
    source: &S,
    blob: &Descriptor,
    layer_digest: &str,
    problems: &mut Vec<String>,
) -> Result<ZtocReport, InspectError> {
    let bytes = fetch_blob(source, "zTOC", &blob.digest).await?;
    if i64::try_from(bytes.len()).ok() != Some(blob.size) {
        problems.push(format!(
            "zTOC {}: {} bytes, its descriptor says {}",
            blob.digest,
            bytes.len(),
            blob.size
        ));
    }
    let actual = sha256_digest(&bytes);
    if actual != blob.digest {
        problems.push(format!("zTOC {}: its bytes hash to {actual}", blob.digest));
    }
    let layer = source
        .layer(layer_digest)
        .await
        .map_err(InspectError::fetch("layer", layer_digest))?;
    let verify_error = |source| InspectError::Verify {
        ztoc: blob.digest.clone(),
        layer: layer_digest.to_string(),
        source,
    };
    let started = Instant::now();
    let verify = crate::verify(&bytes, &layer).map_err(verify_error)?;
    let verify_time = started.elapsed();
    let ztoc = Ztoc::from_bytes(&bytes).map_err(verify_error)?;
    Ok(ZtocReport {
        descriptor: blob.clone(),
        build_tool: String::from_utf8_lossy(&ztoc.build_tool_identifier).into_owned(),
        spans: usize::try_from(i64::from(ztoc.max_span_id) + 1).unwrap_or(0),
        entries: ztoc.toc.len(),
        compressed_size: u64::try_from(ztoc.compressed_archive_size).unwrap_or(0),
        uncompressed_size: u64::try_from(ztoc.uncompressed_archive_size).unwrap_or(0),
        verify,
        verify_time,
    })
}
