//! The test image of the end-to-end run, generated in code with `test_support::image`: real
//! gzip tar layers (directories, regular files, a symlink, a hard link), OCI configs with the
//! right `diff_ids`, one OCI image manifest per platform and an OCI index over them.

use soci_index_generator::RegistryClient;
use soci_lambda_contract::event::EcrImageActionEvent;
use test_support::image::{Entry, Layer, content, gzip_tar_layer};
pub use test_support::image::{Image, PlatformImage};

/// A layer of a directory `data/` and `files`, plus a symlink and a hard link to the first file.
fn layer(files: Vec<(String, Vec<u8>)>) -> anyhow::Result<Layer> {
    let first = files.first().map(|(path, _)| path.clone());
    let mut entries = vec![Entry::Dir("data/".into())];
    entries.extend(
        files
            .into_iter()
            .map(|(path, data)| Entry::Bytes(path, data)),
    );
    if let Some(first) = first {
        entries.push(Entry::Symlink("data/symlink".into(), first.clone()));
        entries.push(Entry::HardLink("data/hardlink".into(), first));
    }
    gzip_tar_layer(&entries).map_err(anyhow::Error::from)
}

/// Generates an image for linux/amd64 and linux/arm64/v8. Per platform: a big shared base layer
/// (compressed size >= `big_layer_min`), a small shared layer, and a platform layer of about
/// `big_layer_min` too. `seed` makes every run's bytes (and digests) distinct.
pub fn generate(seed: u64, big_layer_min: usize) -> anyhow::Result<Image> {
    // Half-noise content compresses to a bit over half; 2.2x the target is comfortably above it.
    let big = big_layer_min * 22 / 10;
    let seeds = seed.wrapping_mul(16);
    let base = layer(vec![
        ("data/base/a.txt".into(), content(seeds + 1, big / 2)),
        ("data/base/b.txt".into(), content(seeds + 2, big / 2)),
        ("data/base/empty".into(), Vec::new()),
    ])?;
    anyhow::ensure!(
        base.gzip.len() >= big_layer_min,
        "generated base layer is only {} bytes",
        base.gzip.len()
    );
    let small = layer(vec![(
        "data/etc/config.txt".into(),
        content(seeds + 3, 4096),
    )])?;
    let mut platforms = Vec::new();
    for (n, (architecture, variant)) in [("amd64", None), ("arm64", Some("v8"))]
        .into_iter()
        .enumerate()
    {
        let binary = content(seeds + 4 + n as u64, big);
        let own = layer(vec![(format!("data/{architecture}/binary"), binary)])?;
        let layers = vec![base.clone(), small.clone(), own];
        platforms
            .push(PlatformImage::new(architecture, variant, layers).map_err(anyhow::Error::from)?);
    }
    Image::new(platforms).map_err(anyhow::Error::from)
}

/// Pushes every blob, the manifests by digest and the index under `tag`.
pub async fn push(
    client: &RegistryClient,
    repository: &str,
    tag: &str,
    image: &Image,
) -> anyhow::Result<()> {
    image
        .push(client, repository, tag)
        .await
        .map_err(anyhow::Error::from)
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
    let mut event = EcrImageActionEvent {
        id: format!(
            "e2e00000-0000-4000-8000-{:012x}",
            now ^ (digest.len() as u64) ^ u64::from(std::process::id())
        ),
        time: rfc3339(now),
        ..EcrImageActionEvent::push(account, region, repository, digest, Some(tag))
    };
    event.detail.manifest_media_type = Some(media_type.into());
    serde_json::to_value(event).unwrap_or_default()
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
