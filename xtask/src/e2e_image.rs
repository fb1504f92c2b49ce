//! Test images for `cargo xtask e2e`, generated in code: real gzip tar layers (directories,
//! regular files, a symlink, a hard link), OCI configs with the right `diff_ids`, one OCI image
//! manifest per platform and an OCI index over them, pushed with the generator's own registry
//! client (so the same code talks to docker-registry, LocalStack or ECR).

use std::io::Write as _;

use anyhow::Context;
use sha2::{Digest, Sha256};
use soci_core::oci::{
    MEDIA_TYPE_OCI_IMAGE_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
};
use soci_index_generator::RegistryClient;
use soci_index_generator::registry::Bytes;

/// A deterministic xorshift generator (no `rand` dependency; the bytes only need to be varied).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// `len` bytes from a 16-letter alphabet: gzip gets them to about half, so a layer's
    /// compressed size is predictable (and above the minimum layer size when asked to be).
    fn text(&mut self, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8; 16] = b"abcdefghijklmnop";
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let mut word = self.next();
            for _ in 0..16 {
                if out.len() == len {
                    break;
                }
                out.push(ALPHABET[(word & 15) as usize]);
                word >>= 4;
            }
        }
        out
    }
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One gzip tar layer.
pub struct Layer {
    pub gzip: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
}

/// Builds a gzip tar layer from `(path, contents)` files plus a directory, a symlink and a hard
/// link to the first file.
fn layer(files: &[(String, Vec<u8>)]) -> anyhow::Result<Layer> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(1_700_000_000);
    tar.append_data(&mut dir, "data/", std::io::empty())
        .context("tar: directory")?;
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(contents.len() as u64);
        header.set_mtime(1_700_000_000);
        tar.append_data(&mut header, path, contents.as_slice())
            .with_context(|| format!("tar: {path}"))?;
    }
    if let Some((first, _)) = files.first() {
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_mode(0o777);
        link.set_size(0);
        link.set_mtime(1_700_000_000);
        tar.append_link(&mut link, "data/symlink", first)
            .context("tar: symlink")?;
        let mut hard = tar::Header::new_gnu();
        hard.set_entry_type(tar::EntryType::Link);
        hard.set_mode(0o644);
        hard.set_size(0);
        hard.set_mtime(1_700_000_000);
        tar.append_link(&mut hard, "data/hardlink", first)
            .context("tar: hard link")?;
    }
    let raw = tar.into_inner().context("tar: finishing")?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&raw).context("gzip")?;
    let gzip = gz.finish().context("gzip: finishing")?;
    Ok(Layer {
        digest: digest(&gzip),
        diff_id: digest(&raw),
        gzip,
    })
}

/// One platform's image.
pub struct PlatformImage {
    pub os: &'static str,
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
    pub config: Vec<u8>,
    pub layers: Vec<Layer>,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

/// A two-platform image.
pub struct Image {
    pub platforms: Vec<PlatformImage>,
    pub index: Vec<u8>,
    pub index_digest: String,
}

impl Image {
    /// Layers (shared ones once), for size statistics.
    pub fn layer_count(&self) -> usize {
        let mut digests: Vec<&str> = self
            .platforms
            .iter()
            .flat_map(|p| p.layers.iter().map(|l| l.digest.as_str()))
            .collect();
        digests.sort_unstable();
        digests.dedup();
        digests.len()
    }
}

/// Generates an image for linux/amd64 and linux/arm64/v8. Per platform: a big shared base layer
/// (compressed size >= `big_layer_min`), a small shared layer, and a platform layer of about
/// `big_layer_min` too. `seed` makes every run's bytes (and digests) distinct.
pub fn generate(seed: u64, big_layer_min: usize) -> anyhow::Result<Image> {
    let mut rng = Rng(seed | 1);
    // The 16-letter text compresses to a bit over half; 2.2x the target is comfortably above it.
    let big = big_layer_min * 22 / 10;
    let base = layer(&[
        ("data/base/a.txt".into(), rng.text(big / 2)),
        ("data/base/b.txt".into(), rng.text(big / 2)),
        ("data/base/empty".into(), Vec::new()),
    ])?;
    anyhow::ensure!(
        base.gzip.len() >= big_layer_min,
        "generated base layer is only {} bytes",
        base.gzip.len()
    );
    let small = layer(&[("data/etc/config.txt".into(), rng.text(4096))])?;
    let mut platforms = Vec::new();
    for (architecture, variant) in [("amd64", None), ("arm64", Some("v8"))] {
        let own = layer(&[(format!("data/{architecture}/binary"), rng.text(big))])?;
        let layers = vec![
            Layer {
                gzip: base.gzip.clone(),
                digest: base.digest.clone(),
                diff_id: base.diff_id.clone(),
            },
            Layer {
                gzip: small.gzip.clone(),
                digest: small.digest.clone(),
                diff_id: small.diff_id.clone(),
            },
            own,
        ];
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": architecture,
            "os": "linux",
            "variant": variant,
            "config": { "Env": ["PATH=/usr/bin"], "Cmd": ["/data/symlink"] },
            "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>() },
            "history": [],
        }))?;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_OCI_MANIFEST,
            "config": { "mediaType": MEDIA_TYPE_OCI_IMAGE_CONFIG, "digest": digest(&config), "size": config.len() },
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": MEDIA_TYPE_OCI_LAYER_GZIP, "digest": l.digest, "size": l.gzip.len(),
            })).collect::<Vec<_>>(),
            "annotations": { "org.opencontainers.image.title": "soci-lambda e2e" },
        }))?;
        platforms.push(PlatformImage {
            os: "linux",
            architecture,
            variant,
            manifest_digest: digest(&manifest),
            config,
            layers,
            manifest,
        });
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": platforms.iter().map(|p| {
            let mut platform = serde_json::json!({ "architecture": p.architecture, "os": p.os });
            if let Some(variant) = p.variant {
                platform["variant"] = variant.into();
            }
            serde_json::json!({
                "mediaType": MEDIA_TYPE_OCI_MANIFEST,
                "digest": p.manifest_digest,
                "size": p.manifest.len(),
                "platform": platform,
            })
        }).collect::<Vec<_>>(),
    }))?;
    Ok(Image {
        index_digest: digest(&index),
        index,
        platforms,
    })
}

/// Pushes every blob, the manifests by digest and the index under `tag`.
pub async fn push(
    client: &RegistryClient,
    repository: &str,
    tag: &str,
    image: &Image,
) -> anyhow::Result<()> {
    let mut pushed = std::collections::BTreeSet::new();
    for platform in &image.platforms {
        let blobs =
            std::iter::once(&platform.config).chain(platform.layers.iter().map(|l| &l.gzip));
        for blob in blobs {
            let blob_digest = digest(blob);
            if pushed.insert(blob_digest.clone()) {
                client
                    .push_blob(repository, &blob_digest, Bytes::from(blob.clone()))
                    .await
                    .with_context(|| format!("pushing blob {blob_digest} to {repository}"))?;
            }
        }
        client
            .put_manifest(
                repository,
                &platform.manifest_digest,
                MEDIA_TYPE_OCI_MANIFEST,
                Bytes::from(platform.manifest.clone()),
            )
            .await
            .with_context(|| {
                format!(
                    "pushing manifest {} to {repository}",
                    platform.manifest_digest
                )
            })?;
    }
    client
        .put_manifest(
            repository,
            tag,
            MEDIA_TYPE_OCI_INDEX,
            Bytes::from(image.index.clone()),
        )
        .await
        .with_context(|| format!("pushing the index to {repository}:{tag}"))?;
    Ok(())
}

/// The event EventBridge delivers for a successful push of `tag` (an index: no artifact type).
pub fn push_event(
    account: &str,
    region: &str,
    repository: &str,
    digest: &str,
    tag: &str,
    media_type: &str,
) -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    serde_json::json!({
        "version": "0",
        "id": format!("e2e00000-0000-4000-8000-{:012x}", now ^ (digest.len() as u64) ^ u64::from(std::process::id())),
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": account,
        "time": rfc3339(now),
        "region": region,
        "resources": [format!("arn:aws:ecr:{region}:{account}:repository/{repository}")],
        "detail": {
            "result": "SUCCESS",
            "repository-name": repository,
            "image-digest": digest,
            "action-type": "PUSH",
            "image-tag": tag,
            "manifest-media-type": media_type,
        }
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as EventBridge writes event times.
fn rfc3339(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    soci_core::tar::GoTime::unix(secs, 0)
        .to_rfc3339_utc()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_481_921_385), "2016-12-16T20:49:45Z");
    }

    #[test]
    fn image_shape() {
        let image = generate(7, 64 * 1024).unwrap();
        assert_eq!(image.platforms.len(), 2);
        assert_eq!(image.layer_count(), 4);
        for p in &image.platforms {
            assert!(p.layers[0].gzip.len() >= 64 * 1024);
            assert!(p.layers[1].gzip.len() < 64 * 1024);
            assert!(p.layers[2].gzip.len() >= 64 * 1024);
        }
        assert_ne!(
            generate(8, 64 * 1024).unwrap().index_digest,
            image.index_digest
        );
    }
}
