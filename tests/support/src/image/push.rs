//! Pushing generated images with the generator's registry client (so the same code talks to
//! docker-registry, LocalStack or ECR).

use bytes::Bytes;
use soci_core::oci::{
    MEDIA_TYPE_OCI_IMAGE_CONFIG, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_MANIFEST,
};
use soci_index_generator::RegistryClient;

use super::{Image, Layer, Pushed, image_config, image_index, image_manifest, index_descriptor};
use crate::{Context, Error, Result};

pub async fn push_blob(
    client: &RegistryClient,
    repo: &str,
    media_type: &str,
    blob: Bytes,
) -> Result<Pushed> {
    let pushed = Pushed::of(media_type, &blob);
    client
        .push_blob(repo, &pushed.digest, blob)
        .await
        .map_err(Error::other)
        .with_context(|| format!("pushing blob {} to {repo}", pushed.digest))?;
    Ok(pushed)
}

/// Pushes `document` by digest, or under `tag`.
pub async fn push_manifest(
    client: &RegistryClient,
    repo: &str,
    tag: Option<&str>,
    document: &serde_json::Value,
) -> Result<Pushed> {
    let media_type = document["mediaType"]
        .as_str()
        .context("document without mediaType")?;
    let bytes = Bytes::from(serde_json::to_vec(document)?);
    let pushed = Pushed::of(media_type, &bytes);
    let reference = tag.unwrap_or(&pushed.digest);
    client
        .put_manifest(repo, reference, media_type, bytes)
        .await
        .map_err(Error::other)
        .with_context(|| format!("pushing manifest {repo}:{reference}"))?;
    Ok(pushed)
}

/// Pushes the layers, an OCI config for `linux/architecture` and the image manifest (by digest,
/// or tagged). Returns the manifest.
pub async fn push_image(
    client: &RegistryClient,
    repo: &str,
    tag: Option<&str>,
    architecture: &str,
    layers: &[&Layer],
) -> Result<Pushed> {
    let mut descriptors = Vec::new();
    for layer in layers {
        let blob = Bytes::from(layer.gzip.clone());
        let pushed = push_blob(client, repo, MEDIA_TYPE_OCI_LAYER_GZIP, blob).await?;
        descriptors.push(pushed.descriptor());
    }
    let config = image_config(architecture, None, layers);
    let config = Bytes::from(serde_json::to_vec(&config)?);
    let config = push_blob(client, repo, MEDIA_TYPE_OCI_IMAGE_CONFIG, config).await?;
    push_manifest(client, repo, tag, &image_manifest(&config, &descriptors)).await
}

/// Pushes a BuildKit-style attestation manifest (an in-toto layer, `unknown/unknown` platform in
/// the index) for `subject`.
pub async fn push_attestation(
    client: &RegistryClient,
    repo: &str,
    subject: &Pushed,
) -> Result<Pushed> {
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "demo", "digest": {"sha256": subject.digest.trim_start_matches("sha256:")}}],
        "predicate": {"spdxVersion": "SPDX-2.3", "name": "demo"},
    });
    let statement = Bytes::from(serde_json::to_vec(&statement)?);
    let layer = push_blob(client, repo, "application/vnd.in-toto+json", statement).await?;
    let config = serde_json::json!({
        "architecture": "unknown", "os": "unknown", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
    });
    let config = Bytes::from(serde_json::to_vec(&config)?);
    let config = push_blob(client, repo, MEDIA_TYPE_OCI_IMAGE_CONFIG, config).await?;
    let mut layer_descriptor = layer.descriptor();
    layer_descriptor["annotations"] =
        serde_json::json!({"in-toto.io/predicate-type": "https://spdx.dev/Document"});
    let manifest = image_manifest(&config, &[layer_descriptor]);
    push_manifest(client, repo, None, &manifest).await
}

/// One entry of an OCI index: the manifest, its platform `(os, architecture)` and annotations.
pub struct IndexEntry<'a> {
    pub manifest: &'a Pushed,
    pub platform: (&'a str, &'a str),
    pub annotations: serde_json::Value,
}

/// Pushes an OCI index over `entries`, tagged `tag`.
pub async fn push_index(
    client: &RegistryClient,
    repo: &str,
    tag: &str,
    entries: &[IndexEntry<'_>],
) -> Result<Pushed> {
    let descriptors = entries
        .iter()
        .map(|e| index_descriptor(e.manifest, e.platform.0, e.platform.1, None, &e.annotations))
        .collect();
    push_manifest(client, repo, Some(tag), &image_index(descriptors)).await
}

impl Image {
    /// Pushes every blob (shared ones once), the platform manifests by digest and the index
    /// under `tag`.
    pub async fn push(&self, client: &RegistryClient, repo: &str, tag: &str) -> Result<()> {
        let mut pushed = std::collections::BTreeSet::new();
        for platform in &self.platforms {
            let config = (MEDIA_TYPE_OCI_IMAGE_CONFIG, &platform.config);
            let layers = platform
                .layers
                .iter()
                .map(|l| (MEDIA_TYPE_OCI_LAYER_GZIP, &l.gzip));
            for (media_type, blob) in std::iter::once(config).chain(layers) {
                if pushed.insert(super::digest(blob)) {
                    push_blob(client, repo, media_type, Bytes::from(blob.clone())).await?;
                }
            }
            let manifest = Bytes::from(platform.manifest.clone());
            client
                .put_manifest(
                    repo,
                    &platform.manifest_digest,
                    MEDIA_TYPE_OCI_MANIFEST,
                    manifest,
                )
                .await
                .map_err(Error::other)
                .with_context(|| {
                    format!("pushing manifest {} to {repo}", platform.manifest_digest)
                })?;
        }
        client
            .put_manifest(
                repo,
                tag,
                soci_core::oci::MEDIA_TYPE_OCI_INDEX,
                Bytes::from(self.index.clone()),
            )
            .await
            .map_err(Error::other)
            .with_context(|| format!("pushing the index to {repo}:{tag}"))?;
        Ok(())
    }
}
