//! `cargo xtask doctor REF`: "why is my task still on overlayfs?"
//!
//! Fargate lazy-loads an image only when the reference a deployment resolves is a SOCI-enabled
//! image index (v2) or, for accounts that used them before, an image with a v1 SOCI index. This
//! reads the registry the way a deployment would and says which case applies:
//! - whether `REF` resolves to a SOCI-enabled index, or only `<tag><suffix>` does (and whether
//!   that is a conversion of the image `<tag>` names now, or of an older push); `REF` may be
//!   `REPO@DIGEST`, the digest `DescribeTasks` says a task ran;
//! - per platform, which layers have a zTOC and why the others were left out (below
//!   `min_layer_size`, zstd, or content no consumer can use);
//! - whether only a v1 index exists (found through the referrers tag schema `sha256-<hex>`);
//! - with `--task-metadata FILE` (the JSON of `${ECS_CONTAINER_METADATA_URI_V4}/task` from
//!   inside a task), the snapshotter each container reports.
//!
//! Every check reads; nothing is written. The exit status is 0 when `REF` lazy-loads.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use soci_core::inspect::{GraphReport, Root, inspect};
use soci_core::oci::{
    Index, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_SOCI_INDEX_V1, MEDIA_TYPE_SOCI_INDEX_V2,
};
use soci_index_generator::RegistryClient;
use soci_index_generator::config::Config;
use soci_index_generator::registry::RepositoryGraph;

#[derive(clap::Args)]
pub struct Args {
    /// Image reference: `host[:port]/repository[:tag]`, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1`.
    reference: String,
    /// Talk HTTP instead of HTTPS to the registry.
    #[arg(long)]
    plain_http: bool,
    /// The JSON of `${ECS_CONTAINER_METADATA_URI_V4}/task` from a running task, to report the
    /// snapshotter its containers used.
    #[arg(long)]
    task_metadata: Option<PathBuf>,
}

/// What the doctor concluded, one line each, and whether `REF` lazy-loads.
struct Diagnosis {
    lines: Vec<String>,
    lazy_loads: bool,
}

impl Diagnosis {
    fn say(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::index::init_logs();
    let index_args = super::index::Args {
        reference: args.reference.clone(),
        plain_http: args.plain_http,
        v1: false,
        platforms: Vec::new(),
        dry_run: true,
        disable_xattrs: false,
        ztoc_cache: None,
        wait: Default::default(),
    };
    // `_layout` serves an `oci:DIR:TAG` reference for as long as the client is used.
    let super::index::Prepared {
        indexer,
        image,
        client,
        layout: _layout,
    } = super::index::prepare(&index_args)?;
    // A deployment references a tag; a running task, the digest ECS resolved it to.
    let reference = match (image.tag.as_deref(), image.digest.as_deref()) {
        (Some(tag), _) if !tag.is_empty() => Reference::Tag(tag.to_owned()),
        (_, Some(digest)) if !digest.is_empty() => Reference::Digest(digest.to_owned()),
        _ => bail!("doctor needs a tag or a digest: {}", args.reference),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let mut diagnosis = runtime.block_on(diagnose(
        &client,
        &image.repository,
        &reference,
        indexer.config(),
    ))?;
    if let Some(path) = &args.task_metadata {
        snapshotters(path, &mut diagnosis)?;
    }
    let mut out = std::io::stdout().lock();
    for line in &diagnosis.lines {
        writeln!(out, "{line}")?;
    }
    if diagnosis.lazy_loads {
        Ok(())
    } else {
        bail!("{} does not lazy-load (see above)", args.reference)
    }
}

/// What the doctor is asked about.
enum Reference {
    /// What a deployment references.
    Tag(String),
    /// What a task ran (`DescribeTasks`' `imageDigest`).
    Digest(String),
}

async fn diagnose(
    client: &RegistryClient,
    repository: &str,
    reference: &Reference,
    config: &Config,
) -> anyhow::Result<Diagnosis> {
    let mut diagnosis = Diagnosis {
        lines: Vec::new(),
        lazy_loads: false,
    };
    let (name, shown, who) = match reference {
        Reference::Tag(tag) => (
            tag,
            format!("{repository}:{tag}"),
            "a deployment of this tag",
        ),
        Reference::Digest(digest) => (
            digest,
            format!("{repository}@{digest}"),
            "a task that ran this digest",
        ),
    };
    let current = client
        .get_manifest(repository, name)
        .await?
        .with_context(|| format!("{shown} does not exist"))?;
    diagnosis.say(format!(
        "{shown} -> {} ({})",
        current.digest, current.media_type
    ));
    if current.media_type == MEDIA_TYPE_OCI_INDEX && is_soci_enabled(&current.bytes) {
        diagnosis.say(format!(
            "verdict: SOCI-enabled image index: {who} lazy-loads"
        ));
        let report = read_graph(client, repository, Root::v2(name)).await?;
        layers(&report, config, &mut diagnosis);
        diagnosis.lazy_loads = report.problems().is_empty();
        return Ok(diagnosis);
    }
    match reference {
        Reference::Tag(tag) => {
            tag_not_enabled(
                client,
                repository,
                tag,
                &current.digest,
                config,
                &mut diagnosis,
            )
            .await?
        }
        Reference::Digest(digest) => {
            digest_not_enabled(client, repository, digest, config, &mut diagnosis).await?
        }
    }
    Ok(diagnosis)
}

/// `tag` names a plain image: whether `<tag><suffix>` indexes it, an older push, or nothing.
async fn tag_not_enabled(
    client: &RegistryClient,
    repository: &str,
    tag: &str,
    digest: &str,
    config: &Config,
    diagnosis: &mut Diagnosis,
) -> anyhow::Result<()> {
    let index_tag = format!("{tag}{}", config.index_tag_suffix);
    match client.get_manifest(repository, &index_tag).await? {
        Some(_) => {
            let report =
                read_graph(client, repository, Root::v2(&index_tag).with_original(tag)).await?;
            // An annotated manifest that matches no manifest of what `tag` names now.
            let stale = report
                .platforms
                .iter()
                .any(|p| p.image_manifest.original.is_none());
            if stale {
                diagnosis.say(format!(
                    "verdict: {index_tag} indexes an older push of {tag}: {tag} moved after it was indexed (push again, or run the generator on {tag})"
                ));
            } else {
                diagnosis.say(format!(
                    "verdict: {tag} is not SOCI-enabled; {index_tag} is its SOCI-enabled index: deploy {repository}:{index_tag} (or its digest {}) to lazy-load",
                    report.root.digest
                ));
            }
            layers(&report, config, diagnosis);
        }
        None => {
            diagnosis.say(format!("no {index_tag}: this image has no v2 SOCI index"));
            v1_only(client, repository, digest, diagnosis).await?;
        }
    }
    Ok(())
}

/// A task ran the plain image `digest`: it did not lazy-load.
async fn digest_not_enabled(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
    config: &Config,
    diagnosis: &mut Diagnosis,
) -> anyhow::Result<()> {
    diagnosis.say(format!(
        "verdict: {digest} is not a SOCI-enabled image index: a task that ran it did not lazy-load; deploy {repository}:<tag>{suffix} (`cargo xtask doctor {repository}:<tag>` names it), or use index_in_place",
        suffix = config.index_tag_suffix
    ));
    let v1 = v1_soci_indexes(client, repository, digest).await?;
    if !v1.is_empty() {
        diagnosis.say(format!(
            "  a v1 SOCI index names it ({}): Fargate reads v1 indexes only in accounts that used them before v2",
            v1.join(", ")
        ));
    }
    Ok(())
}

/// An OCI index carrying SOCI index descriptors (the generator's v2 conversion).
fn is_soci_enabled(bytes: &[u8]) -> bool {
    Index::from_json(bytes).is_ok_and(|index| {
        index
            .manifests()
            .iter()
            .any(|d| d.artifact_type == MEDIA_TYPE_SOCI_INDEX_V2)
    })
}

async fn read_graph(
    client: &RegistryClient,
    repository: &str,
    root: Root,
) -> anyhow::Result<GraphReport> {
    let graph = RepositoryGraph { client, repository };
    let reference = root.reference.clone();
    inspect(&graph, &root)
        .await
        .with_context(|| format!("reading the SOCI graph of {repository}:{reference}"))
}

/// Per platform: the layers with a zTOC and why the others have none.
fn layers(report: &GraphReport, config: &Config, diagnosis: &mut Diagnosis) {
    for problem in report.problems() {
        diagnosis.say(format!("problem: {problem}"));
    }
    for platform in &report.platforms {
        let indexed = platform.ztocs().count();
        diagnosis.say(format!(
            "{}: {indexed} of {} layers have a zTOC",
            platform.name(),
            platform.layers.len()
        ));
        for layer in platform.layers.iter().filter(|l| l.ztoc.is_none()) {
            let d = &layer.descriptor;
            let size = u64::try_from(d.size).unwrap_or(0);
            let why = if d.media_type.contains("zstd") {
                "zstd: the snapshotter reads gzip and uncompressed layers only".to_string()
            } else if size < config.min_layer_size {
                format!(
                    "{size} bytes, below min_layer_size {}: pulled whole, as intended",
                    config.min_layer_size
                )
            } else {
                "left out when indexed (content no consumer can use); `cargo xtask ztoc build` on the blob names the reason".to_string()
            };
            diagnosis.say(format!("  layer {}: no zTOC: {why}", d.digest));
        }
    }
    for left in &report.left_as_is {
        diagnosis.say(format!(
            "entry {} ({:?}): kept as is, not indexed",
            left.descriptor.digest, left.reason
        ));
    }
}

/// Looks for a v1 SOCI index through the referrers tag schema (`sha256-<hex>`), which registries
/// without the referrers API (and clients pushing to them) use.
async fn v1_only(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
    diagnosis: &mut Diagnosis,
) -> anyhow::Result<()> {
    let v1 = v1_soci_indexes(client, repository, digest).await?;
    if v1.is_empty() {
        diagnosis.say(
            "verdict: no SOCI index at all: the generator never indexed this image (check the filter's repository:tag globs and its logs)",
        );
    } else {
        diagnosis.say(format!(
            "verdict: only a v1 SOCI index ({}): Fargate reads v1 indexes only in accounts that used them before v2; index in V2",
            v1.join(", ")
        ));
    }
    Ok(())
}

/// The v1 SOCI indexes whose subject is `digest`, found through the referrers tag schema
/// (`sha256-<hex>`), which registries without the referrers API (and clients pushing to them)
/// use.
pub(crate) async fn v1_soci_indexes(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
) -> anyhow::Result<Vec<String>> {
    let referrers_tag = digest.replacen(':', "-", 1);
    Ok(
        match client.get_manifest(repository, &referrers_tag).await? {
            Some(found) => Index::from_json(&found.bytes)
                .map(|index| {
                    index
                        .manifests()
                        .iter()
                        .filter(|d| d.artifact_type == MEDIA_TYPE_SOCI_INDEX_V1)
                        .map(|d| d.digest.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        },
    )
}

/// The snapshotter each container of a task reported (task metadata v4 `Containers[].Snapshotter`).
fn snapshotters(path: &PathBuf, diagnosis: &mut Diagnosis) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let task: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    let containers = task["Containers"]
        .as_array()
        .with_context(|| format!("{}: no Containers", path.display()))?;
    for container in containers {
        let name = container["Name"].as_str().unwrap_or("?");
        let snapshotter = container["Snapshotter"].as_str().unwrap_or("not reported");
        diagnosis.say(format!(
            "task container {name}: image {} snapshotter {snapshotter}",
            container["Image"].as_str().unwrap_or("?")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use soci_core::oci::ANNOTATION_IMAGE_MANIFEST_DIGEST;

    use super::*;

    #[test]
    fn an_index_with_a_soci_descriptor_is_soci_enabled() {
        let plain = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1}]}"#;
        assert!(!is_soci_enabled(plain));
        let enabled = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"{MEDIA_TYPE_SOCI_INDEX_V2}","digest":"sha256:bb","size":1,"annotations":{{"{ANNOTATION_IMAGE_MANIFEST_DIGEST}":"sha256:aa"}}}}]}}"#
        );
        assert!(is_soci_enabled(enabled.as_bytes()));
        assert!(!is_soci_enabled(b"not json"));
    }
}
