//! The checks of `cargo xtask e2e` on what the generator pushed: the whole v2 graph from the
//! `<tag>-soci` index down to every zTOC, each verified against its layer by `soci_core::verify`,
//! every JSON document canonical (re-encoded by soci-core to the same bytes).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail, ensure};
use soci_core::index::{SociIndexVersion, unmarshal_soci_index};
use soci_core::oci::{
    ANNOTATION_BUILD_TOOL_IDENTIFIER, ANNOTATION_IMAGE_LAYER_DIGEST,
    ANNOTATION_IMAGE_MANIFEST_DIGEST, ANNOTATION_SOCI_INDEX_DIGEST, ANNOTATION_SPAN_SIZE,
    EMPTY_JSON_CONFIG, Index, MEDIA_TYPE_OCI_IMAGE_CONFIG, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_SOCI_INDEX_V2, MEDIA_TYPE_ZTOC, Manifest, Platform,
    normalize_platform,
};
use soci_index_generator::RegistryClient;

use super::image::Image;

/// What the graph check found (for the summary line).
#[derive(Debug, Default)]
pub struct GraphReport {
    pub index_digest: String,
    pub platforms: usize,
    pub ztocs: usize,
    pub spans_checked: usize,
    pub entries_checked: usize,
}

/// The normalized `os/arch[/variant]` of a generated platform image.
fn platform_name(image: &super::image::PlatformImage) -> String {
    normalize_platform(&Platform {
        os: image.os.to_string(),
        architecture: image.architecture.to_string(),
        variant: image.variant.unwrap_or_default().to_string(),
        ..Platform::default()
    })
    .display_name()
}

/// Checks everything under `<repository>:<index_tag>` against the pushed `image`.
pub async fn check_graph(
    client: &RegistryClient,
    repository: &str,
    tag: &str,
    index_tag: &str,
    image: &Image,
    min_layer_size: u64,
    span_size: u64,
) -> anyhow::Result<GraphReport> {
    // The original tag is untouched.
    let original = client
        .get_manifest(repository, tag)
        .await?
        .with_context(|| format!("{repository}:{tag} is gone"))?;
    ensure!(
        original.digest == image.index_digest,
        "{repository}:{tag} now points at {}, not the pushed index {}",
        original.digest,
        image.index_digest
    );

    let soci = client
        .get_manifest(repository, index_tag)
        .await?
        .with_context(|| format!("{repository}:{index_tag} does not exist"))?;
    ensure!(
        soci.media_type == MEDIA_TYPE_OCI_INDEX,
        "{index_tag} is a {}, not an OCI index",
        soci.media_type
    );
    let index = Index::from_json(&soci.bytes)
        .map_err(|e| anyhow::anyhow!("{index_tag}: {}", e.go_message()))?;
    ensure!(
        index.to_go_json() == soci.bytes.as_ref(),
        "{index_tag}: the index JSON is not canonical (soci-core re-encodes it to other bytes)"
    );

    let mut report = GraphReport {
        index_digest: soci.digest.clone(),
        ..GraphReport::default()
    };
    // Annotated image manifests and SOCI descriptors, by platform.
    let mut manifests: BTreeMap<String, (String, String)> = BTreeMap::new(); // platform -> (manifest digest, soci index digest)
    let mut soci_descriptors: BTreeMap<String, (String, String)> = BTreeMap::new(); // platform -> (soci digest, manifest digest)
    for descriptor in index.manifests() {
        // By the normalized platform (containerd's `platforms.Normalize`: the SOCI descriptor of
        // linux/arm64/v8 says linux/arm64, as the reference writes it).
        let platform = descriptor
            .platform
            .as_ref()
            .map(|p| normalize_platform(p).display_name())
            .with_context(|| {
                format!(
                    "{index_tag}: descriptor {} has no platform",
                    descriptor.digest
                )
            })?;
        ensure!(
            descriptor.media_type == MEDIA_TYPE_OCI_MANIFEST,
            "{index_tag}: descriptor {} is a {}",
            descriptor.digest,
            descriptor.media_type
        );
        if descriptor.artifact_type == MEDIA_TYPE_SOCI_INDEX_V2 {
            let manifest_digest = descriptor
                .annotations
                .get(ANNOTATION_IMAGE_MANIFEST_DIGEST)
                .with_context(|| {
                    format!(
                        "SOCI descriptor {} lacks {ANNOTATION_IMAGE_MANIFEST_DIGEST}",
                        descriptor.digest
                    )
                })?;
            ensure!(
                soci_descriptors
                    .insert(
                        platform.clone(),
                        (descriptor.digest.clone(), manifest_digest.clone())
                    )
                    .is_none(),
                "{index_tag}: two SOCI indexes for {platform}"
            );
        } else {
            let soci_digest = descriptor
                .annotations
                .get(ANNOTATION_SOCI_INDEX_DIGEST)
                .with_context(|| {
                    format!(
                        "manifest {} in {index_tag} lacks {ANNOTATION_SOCI_INDEX_DIGEST}",
                        descriptor.digest
                    )
                })?;
            ensure!(
                manifests
                    .insert(
                        platform.clone(),
                        (descriptor.digest.clone(), soci_digest.clone())
                    )
                    .is_none(),
                "{index_tag}: two image manifests for {platform}"
            );
        }
    }
    let want: BTreeSet<String> = image.platforms.iter().map(platform_name).collect();
    ensure!(
        manifests.keys().cloned().collect::<BTreeSet<_>>() == want,
        "{index_tag}: annotated manifests for {:?}, want {want:?}",
        manifests.keys().collect::<Vec<_>>()
    );
    ensure!(
        soci_descriptors.keys().cloned().collect::<BTreeSet<_>>() == want,
        "{index_tag}: SOCI indexes for {:?}, want {want:?}",
        soci_descriptors.keys().collect::<Vec<_>>()
    );

    for source in &image.platforms {
        let platform = platform_name(source);
        let (manifest_digest, annotated_soci) = &manifests[&platform];
        let (soci_digest, soci_manifest_ref) = &soci_descriptors[&platform];
        ensure!(
            annotated_soci == soci_digest,
            "{platform}: the manifest names SOCI index {annotated_soci}, the index lists {soci_digest}"
        );
        ensure!(
            soci_manifest_ref == manifest_digest,
            "{platform}: the SOCI descriptor names manifest {soci_manifest_ref}, the index lists {manifest_digest}"
        );

        // The annotated manifest: same config and layers as the pushed one, canonical JSON.
        let annotated = client
            .get_manifest(repository, manifest_digest)
            .await?
            .with_context(|| format!("{platform}: manifest {manifest_digest} is missing"))?;
        let manifest = Manifest::from_json(&annotated.bytes)
            .map_err(|e| anyhow::anyhow!("{platform}: {}", e.go_message()))?;
        ensure!(
            manifest.to_go_json() == annotated.bytes.as_ref(),
            "{platform}: annotated manifest JSON is not canonical"
        );
        ensure!(
            manifest.media_type == MEDIA_TYPE_OCI_MANIFEST,
            "{platform}: annotated manifest type {}",
            manifest.media_type
        );
        ensure!(
            manifest.config.media_type == MEDIA_TYPE_OCI_IMAGE_CONFIG,
            "{platform}: config type {}",
            manifest.config.media_type
        );
        ensure!(
            manifest.annotations.get(ANNOTATION_SOCI_INDEX_DIGEST) == Some(soci_digest),
            "{platform}: manifest annotation {ANNOTATION_SOCI_INDEX_DIGEST} is not {soci_digest}"
        );
        let pushed_config = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&source.config))
        );
        ensure!(
            manifest.config.digest == pushed_config,
            "{platform}: the annotated manifest changed the config"
        );
        let layer_digests: Vec<&str> = manifest
            .layers()
            .iter()
            .map(|l| l.digest.as_str())
            .collect();
        let source_digests: Vec<&str> = source.layers.iter().map(|l| l.digest.as_str()).collect();
        ensure!(
            layer_digests == source_digests,
            "{platform}: the annotated manifest changed the layers"
        );

        // The SOCI index.
        let soci_manifest = client
            .get_manifest(repository, soci_digest)
            .await?
            .with_context(|| format!("{platform}: SOCI index {soci_digest} is missing"))?;
        let soci_index = unmarshal_soci_index(&soci_manifest.bytes)
            .map_err(|e| anyhow::anyhow!("{platform}: {}", e.go_message()))?;
        ensure!(
            soci_index.to_go_json() == soci_manifest.bytes.as_ref(),
            "{platform}: SOCI index JSON is not canonical"
        );
        ensure!(
            soci_index.version == SociIndexVersion::V2,
            "{platform}: SOCI index is {:?}, want V2",
            soci_index.version
        );
        ensure!(
            soci_index.subject.is_none(),
            "{platform}: a v2 SOCI index must have no subject"
        );
        ensure!(
            soci_index
                .annotations
                .contains_key(ANNOTATION_BUILD_TOOL_IDENTIFIER),
            "{platform}: SOCI index lacks {ANNOTATION_BUILD_TOOL_IDENTIFIER}"
        );
        let config = client
            .get_blob_bytes(repository, &soci_index.config.digest)
            .await?;
        ensure!(
            config.as_ref() == EMPTY_JSON_CONFIG,
            "{platform}: SOCI index config blob is not {{}}"
        );

        // zTOCs: exactly the gzip layers at or above the minimum size, in layer order.
        let expected: Vec<&str> = source
            .layers
            .iter()
            .filter(|l| l.gzip.len() as u64 >= min_layer_size)
            .map(|l| l.digest.as_str())
            .collect();
        let blobs = soci_index.blobs.as_deref().unwrap_or_default();
        let indexed: Vec<&str> = blobs
            .iter()
            .map(|b| {
                b.annotations
                    .get(ANNOTATION_IMAGE_LAYER_DIGEST)
                    .map(String::as_str)
                    .unwrap_or("")
            })
            .collect();
        ensure!(
            indexed == expected,
            "{platform}: zTOCs for layers {indexed:?}, want {expected:?} (layers >= {min_layer_size} bytes)"
        );
        for blob in blobs {
            ensure!(
                blob.media_type == MEDIA_TYPE_ZTOC,
                "{platform}: zTOC media type {}",
                blob.media_type
            );
            let span = blob
                .annotations
                .get(ANNOTATION_SPAN_SIZE)
                .map(String::as_str)
                .unwrap_or("");
            ensure!(
                span == span_size.to_string(),
                "{platform}: span size annotation {span:?}, want {span_size}"
            );
            let layer_digest = blob
                .annotations
                .get(ANNOTATION_IMAGE_LAYER_DIGEST)
                .map(String::as_str)
                .unwrap_or("");
            let Some(layer) = source.layers.iter().find(|l| l.digest == layer_digest) else {
                bail!(
                    "{platform}: zTOC {} names unknown layer {layer_digest}",
                    blob.digest
                );
            };
            let ztoc = client.get_blob_bytes(repository, &blob.digest).await?;
            ensure!(
                ztoc.len() as i64 == blob.size,
                "{platform}: zTOC {} size differs from its descriptor",
                blob.digest
            );
            // The layer as the registry serves it (the generator read the same bytes).
            let served = client.get_blob_bytes(repository, layer_digest).await?;
            ensure!(
                served.as_ref() == layer.gzip.as_slice(),
                "{platform}: layer {layer_digest} differs from what was pushed"
            );
            let verdict = soci_core::verify(&ztoc, served.as_ref()).with_context(|| {
                format!(
                    "{platform}: verifying zTOC {} against layer {layer_digest}",
                    blob.digest
                )
            })?;
            ensure!(
                verdict.is_ok(),
                "{platform}: zTOC {} does not verify against layer {layer_digest}: {}",
                blob.digest,
                verdict.problems.join("; ")
            );
            ensure!(
                verdict.spans_checked > 0 && verdict.entries_checked > 0,
                "{platform}: verify checked nothing"
            );
            report.ztocs += 1;
            report.spans_checked += verdict.spans_checked;
            report.entries_checked += verdict.entries_checked;
        }
        report.platforms += 1;
    }
    Ok(report)
}
