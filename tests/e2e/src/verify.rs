//! The checks of `cargo xtask e2e` on what the generator pushed: the whole v2 graph from the
//! `<tag>-soci` index down to every zTOC, read and checked by `soci_core::inspect` (every document
//! canonical and matching its descriptor, every pairing annotation, every zTOC verified against
//! its layer), then compared with what this run pushed and configured.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};
use soci_core::inspect::{PlatformReport, Root, inspect};
use soci_core::oci::{Platform, normalize_platform};
use soci_index_generator::RegistryClient;
use soci_index_generator::registry::RepositoryGraph;

use super::image::{Image, PlatformImage};

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
fn platform_name(image: &PlatformImage) -> String {
    normalize_platform(&Platform {
        os: image.os.to_string(),
        architecture: image.architecture.to_string(),
        variant: image.variant.unwrap_or_default().to_string(),
        ..Platform::default()
    })
    .display_name()
}

/// Checks everything under `<repository>:<index_tag>` against the pushed `image`: the one
/// SOCI-graph checker (`soci_core::inspect`) must find no problem, and what it read must be
/// exactly what this run pushed and configured.
pub async fn check_graph(
    client: &RegistryClient,
    repository: &str,
    tag: &str,
    index_tag: &str,
    image: &Image,
    min_layer_size: u64,
    span_size: u64,
) -> anyhow::Result<GraphReport> {
    let graph = RepositoryGraph { client, repository };
    let report = inspect(&graph, &Root::v2(index_tag).with_original(tag))
        .await
        .with_context(|| format!("inspecting {repository}:{index_tag}"))?;
    let problems = report.problems();
    ensure!(
        problems.is_empty(),
        "{repository}:{index_tag}: {}",
        problems.join("; ")
    );
    let original = report.original.as_ref().context("the original tag")?;
    ensure!(
        original.digest == image.index_digest,
        "{repository}:{tag} now points at {}, not the pushed index {}",
        original.digest,
        image.index_digest
    );
    // Every image manifest of the pushed index is indexed: none is carried over as is.
    ensure!(
        report.left_as_is.is_empty(),
        "{index_tag}: entries without a SOCI index: {:?}",
        report
            .left_as_is
            .iter()
            .map(|l| &l.descriptor.digest)
            .collect::<Vec<_>>()
    );
    let want: BTreeSet<String> = image.platforms.iter().map(platform_name).collect();
    let got: BTreeSet<String> = report.platforms.iter().map(|p| p.name()).collect();
    ensure!(
        got == want,
        "{index_tag}: indexed platforms {got:?}, want {want:?}"
    );
    let mut summary = GraphReport {
        index_digest: report.root.digest.clone(),
        ..GraphReport::default()
    };
    for source in &image.platforms {
        let name = platform_name(source);
        let platform = report
            .platform(&name)
            .with_context(|| format!("{name} not indexed"))?;
        let checked = check_platform(
            client,
            repository,
            source,
            platform,
            min_layer_size,
            span_size,
        )
        .await
        .with_context(|| name.clone())?;
        summary.ztocs += checked.ztocs;
        summary.spans_checked += checked.spans_checked;
        summary.entries_checked += checked.entries_checked;
        summary.platforms += 1;
    }
    Ok(summary)
}

/// One platform against what was pushed: the same config and layers, zTOCs for exactly the
/// layers at or above the minimum size with the configured span, each layer served as pushed.
async fn check_platform(
    client: &RegistryClient,
    repository: &str,
    source: &PlatformImage,
    platform: &PlatformReport,
    min_layer_size: u64,
    span_size: u64,
) -> anyhow::Result<GraphReport> {
    let pushed_config = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&source.config))
    );
    ensure!(
        platform.image_manifest.config.digest == pushed_config,
        "the annotated manifest changed the config"
    );
    let layers: Vec<&str> = platform
        .layers
        .iter()
        .map(|l| l.descriptor.digest.as_str())
        .collect();
    let pushed: Vec<&str> = source.layers.iter().map(|l| l.digest.as_str()).collect();
    ensure!(
        layers == pushed,
        "the annotated manifest changed the layers"
    );
    let expected: Vec<&str> = source
        .layers
        .iter()
        .filter(|l| l.gzip.len() as u64 >= min_layer_size)
        .map(|l| l.digest.as_str())
        .collect();
    ensure!(
        platform.indexed_layers() == expected,
        "zTOCs for layers {:?}, want {expected:?} (layers >= {min_layer_size} bytes)",
        platform.indexed_layers()
    );
    let mut checked = GraphReport::default();
    for (layer, ztoc) in platform.ztocs() {
        let span = ztoc.span_size_annotation().unwrap_or("");
        ensure!(
            span == span_size.to_string(),
            "span size annotation {span:?}, want {span_size}"
        );
        let pushed = source
            .layers
            .iter()
            .find(|l| l.digest == layer.digest)
            .with_context(|| {
                format!(
                    "zTOC {} names unknown layer {}",
                    ztoc.descriptor.digest, layer.digest
                )
            })?;
        // The layer as the registry serves it (the generator read the same bytes).
        let served = client.get_blob_bytes(repository, &layer.digest).await?;
        ensure!(
            served.as_ref() == pushed.gzip.as_slice(),
            "layer {} differs from what was pushed",
            layer.digest
        );
        ensure!(
            ztoc.verify.spans_checked > 0 && ztoc.verify.entries_checked > 0,
            "verify of zTOC {} checked nothing",
            ztoc.descriptor.digest
        );
        checked.ztocs += 1;
        checked.spans_checked += ztoc.verify.spans_checked;
        checked.entries_checked += ztoc.verify.entries_checked;
    }
    Ok(checked)
}
