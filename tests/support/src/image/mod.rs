//! OCI images generated in code, for the demo, the benchmarks, the end-to-end harness and the
//! generator's tests: deterministic file contents, gzip tar layers (directories, files,
//! symlinks, hard links), OCI image configs with their `diff_ids`, image manifests, attestation
//! manifests and OCI indexes. The documents are built as values; with the `push` feature they
//! are pushed with the generator's own registry client.

use std::io::{Read, Write};

use sha2::{Digest as _, Sha256};
use soci_core::oci::{MEDIA_TYPE_OCI_IMAGE_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST};

use crate::{Context, Result};

#[cfg(feature = "push")]
mod push;
#[cfg(feature = "push")]
pub use push::{IndexEntry, push_attestation, push_blob, push_image, push_index, push_manifest};

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Deterministic file content from a xorshift generator: blocks of text-like bytes (words, which
/// gzip compresses well) and blocks of noise (which it cannot compress), so gzip gets a known
/// share of it and inflate does real work.
pub struct Content {
    x: u64,
    produced: u64,
    /// Bytes per block; at most one block per `read`.
    block: u64,
    /// Block `n` is noise when `n % noise_period == 1`.
    noise_period: u64,
}

impl Content {
    /// 1 MiB blocks, every third noise: gzip gets it to about 45 %. For large layers.
    pub fn new(seed: u64) -> Self {
        Self::with_blocks(seed, 1 << 20, 3)
    }

    /// 4 KiB blocks, every second noise: gzip gets even a few KiB to a bit over half, so a
    /// small layer's compressed size is predictable from its file sizes.
    pub fn half_noise(seed: u64) -> Self {
        Self::with_blocks(seed, 4096, 2)
    }

    fn with_blocks(seed: u64, block: u64, noise_period: u64) -> Self {
        Self {
            x: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            produced: 0,
            block,
            noise_period,
        }
    }

    fn next(&mut self) -> u64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x
    }
}

impl Read for Content {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        const WORDS: [&[u8]; 8] = [
            b"seekable ",
            b"oci ",
            b"layer ",
            b"lazy ",
            b"loading ",
            b"container ",
            b"image\n",
            b"zran ",
        ];
        let in_block = (self.block - (self.produced % self.block)) as usize;
        let n = buf.len().min(in_block).min(64 * 1024);
        let noisy = (self.produced / self.block) % self.noise_period == 1;
        let mut i = 0;
        while i < n {
            let x = self.next();
            let bytes = x.to_le_bytes();
            let chunk: &[u8] = if noisy {
                &bytes
            } else {
                WORDS[(x % 8) as usize]
            };
            let k = (n - i).min(chunk.len());
            buf[i..i + k].copy_from_slice(&chunk[..k]);
            i += k;
        }
        self.produced += n as u64;
        Ok(n)
    }
}

/// `len` bytes of [`Content::half_noise`].
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    // Reading from an in-memory generator cannot fail.
    let _ = Content::half_noise(seed)
        .take(len as u64)
        .read_to_end(&mut out);
    out
}

/// One entry of a generated layer.
pub enum Entry {
    Dir(String),
    /// Path, size, content seed: [`Content::new`] bytes, streamed (for large files).
    File(String, u64, u64),
    /// Path, contents.
    Bytes(String, Vec<u8>),
    /// Path, target.
    Symlink(String, String),
    /// Path, target.
    HardLink(String, String),
}

/// Appends `entries` to `tar` with ustar headers, root-owned, with a fixed mtime.
fn append_entries<W: Write>(tar: &mut tar::Builder<W>, entries: &[Entry]) -> Result<()> {
    for entry in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let (path, kind, mode, size) = match entry {
            Entry::Dir(path) => (path, tar::EntryType::Directory, 0o755, 0),
            Entry::File(path, size, _) => (path, tar::EntryType::Regular, 0o644, *size),
            Entry::Bytes(path, data) => (path, tar::EntryType::Regular, 0o644, data.len() as u64),
            Entry::Symlink(path, _) => (path, tar::EntryType::Symlink, 0o777, 0),
            Entry::HardLink(path, _) => (path, tar::EntryType::Link, 0o644, 0),
        };
        h.set_entry_type(kind);
        h.set_path(path)
            .with_context(|| format!("tar path {path}"))?;
        if let Entry::Symlink(_, target) | Entry::HardLink(_, target) = entry {
            h.set_link_name(target)
                .with_context(|| format!("tar link {target}"))?;
        }
        h.set_mode(mode);
        h.set_size(size);
        h.set_cksum();
        match entry {
            Entry::File(_, size, seed) => tar.append(&h, Content::new(*seed).take(*size)),
            Entry::Bytes(_, data) => tar.append(&h, data.as_slice()),
            _ => tar.append(&h, std::io::empty()),
        }
        .context("writing the tar")?;
    }
    Ok(())
}

/// An uncompressed tar of `entries`.
pub fn tar(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    append_entries(&mut tar, entries)?;
    tar.into_inner().context("finishing the tar")
}

/// A tar of a directory `data/` and three files of `len` bytes in total ([`content`] bytes,
/// seeded from `seed`): a small layer whose gzip size is about half of `len`.
pub fn data_tar(seed: u64, len: usize) -> Result<Vec<u8>> {
    let parts = 3;
    let mut entries = vec![Entry::Dir("data/".into())];
    entries.extend((0..parts).map(|i| {
        Entry::Bytes(
            format!("data/file{i}.bin"),
            content(seed * 31 + i as u64, len / parts),
        )
    }));
    tar(&entries)
}

/// `data` gzipped at `level` (0-9).
pub fn gzip(data: &[u8], level: u32) -> Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(data).context("gzip")?;
    e.finish().context("finishing the gzip")
}

/// A gzip tar layer.
#[derive(Clone)]
pub struct Layer {
    pub gzip: Vec<u8>,
    pub digest: String,
    /// sha256 of the uncompressed tar (the config's `diff_ids`).
    pub diff_id: String,
    pub uncompressed: u64,
}

/// A writer that hashes (sha256) and counts what passes through it: the uncompressed tar on its
/// way into gzip, or the blob on its way to disk.
pub struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer, the `sha256:<hex>` digest and the byte count of what was written.
    pub fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, digest, self.count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Builds a gzip tar layer from `entries`, streaming (the tar is never whole in memory), at
/// gzip's default level (6), as `docker build` and BuildKit compress layers (zlib-rs' level 1
/// writes few, huge deflate blocks, which leaves the zTOC few places for checkpoints: not what
/// real layers look like).
pub fn gzip_tar_layer(entries: &[Entry]) -> Result<Layer> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(Hashing::new(gz));
    append_entries(&mut tar, entries)?;
    let (gz, diff_id, uncompressed) = tar.into_inner().context("finishing the tar")?.finish();
    let gzip = gz.finish().context("finishing the gzip")?;
    Ok(Layer {
        digest: digest(&gzip),
        diff_id,
        uncompressed,
        gzip,
    })
}

/// A document or blob in the registry: `{mediaType, digest, size}`.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Pushed {
    /// The descriptor of `bytes` as a `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self {
            media_type: media_type.into(),
            digest: digest(bytes),
            size: bytes.len() as u64,
        }
    }

    pub fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// An OCI image config for `linux/<architecture>[/<variant>]` over `layers`.
pub fn image_config(
    architecture: &str,
    variant: Option<&str>,
    layers: &[&Layer],
) -> serde_json::Value {
    let mut config = serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/app/bin/server"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>()},
    });
    if let Some(variant) = variant {
        config["variant"] = variant.into();
    }
    config
}

/// An OCI image manifest over a config and layer descriptors.
pub fn image_manifest(config: &Pushed, layers: &[serde_json::Value]) -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": layers,
    })
}

/// The descriptor of `manifest` in an OCI index, with its platform and, when `annotations` is
/// an object, its annotations.
pub fn index_descriptor(
    manifest: &Pushed,
    os: &str,
    architecture: &str,
    variant: Option<&str>,
    annotations: &serde_json::Value,
) -> serde_json::Value {
    let mut d = manifest.descriptor();
    if annotations.is_object() {
        d["annotations"] = annotations.clone();
    }
    d["platform"] = serde_json::json!({"architecture": architecture, "os": os});
    if let Some(variant) = variant {
        d["platform"]["variant"] = variant.into();
    }
    d
}

/// An OCI index over `descriptors` (see [`index_descriptor`]).
pub fn image_index(descriptors: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": descriptors,
    })
}

/// One platform's image, built in memory: its config and manifest documents and its layers.
pub struct PlatformImage {
    pub os: &'static str,
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
    pub config: Vec<u8>,
    pub layers: Vec<Layer>,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

impl PlatformImage {
    /// A `linux/<architecture>[/<variant>]` image of `layers` (gzip, OCI media types).
    pub fn new(
        architecture: &'static str,
        variant: Option<&'static str>,
        layers: Vec<Layer>,
    ) -> Result<Self> {
        let refs: Vec<&Layer> = layers.iter().collect();
        let config = serde_json::to_vec(&image_config(architecture, variant, &refs))?;
        let descriptors: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| Pushed::of(soci_core::oci::MEDIA_TYPE_OCI_LAYER_GZIP, &l.gzip).descriptor())
            .collect();
        let config_descriptor = Pushed::of(MEDIA_TYPE_OCI_IMAGE_CONFIG, &config);
        let manifest = serde_json::to_vec(&image_manifest(&config_descriptor, &descriptors))?;
        Ok(Self {
            os: "linux",
            architecture,
            variant,
            manifest_digest: digest(&manifest),
            config,
            layers,
            manifest,
        })
    }
}

/// A multi-platform image, built in memory: the platform images and the OCI index over them.
pub struct Image {
    pub platforms: Vec<PlatformImage>,
    pub index: Vec<u8>,
    pub index_digest: String,
}

impl Image {
    pub fn new(platforms: Vec<PlatformImage>) -> Result<Self> {
        let descriptors = platforms
            .iter()
            .map(|p| {
                let manifest = Pushed::of(MEDIA_TYPE_OCI_MANIFEST, &p.manifest);
                index_descriptor(
                    &manifest,
                    p.os,
                    p.architecture,
                    p.variant,
                    &serde_json::Value::Null,
                )
            })
            .collect();
        let index = serde_json::to_vec(&image_index(descriptors))?;
        Ok(Self {
            index_digest: digest(&index),
            index,
            platforms,
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_deterministic_and_about_half_compressible() {
        let a = content(5, 256 * 1024);
        assert_eq!(a, content(5, 256 * 1024));
        assert_ne!(a, content(6, 256 * 1024));
        let ratio = gzip(&a, 6).unwrap().len() as f64 / a.len() as f64;
        assert!((0.45..0.75).contains(&ratio), "{ratio}");
    }

    #[test]
    fn a_layer_reads_back_with_every_entry() {
        let entries = [
            Entry::Dir("d/".into()),
            Entry::File("d/big".into(), 100_000, 1),
            Entry::Bytes("d/small".into(), b"hello".to_vec()),
            Entry::Symlink("d/link".into(), "big".into()),
            Entry::HardLink("d/hard".into(), "d/big".into()),
        ];
        let layer = gzip_tar_layer(&entries).unwrap();
        let raw = tar(&entries).unwrap();
        assert_eq!(layer.uncompressed, raw.len() as u64);
        assert_eq!(layer.diff_id, digest(&raw));
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(layer.gzip.as_slice())
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, raw);
        let mut archive = ::tar::Archive::new(raw.as_slice());
        let kinds: Vec<(String, ::tar::EntryType, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                (path, e.header().entry_type(), e.size())
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("d/".to_string(), ::tar::EntryType::Directory, 0),
                ("d/big".to_string(), ::tar::EntryType::Regular, 100_000),
                ("d/small".to_string(), ::tar::EntryType::Regular, 5),
                ("d/link".to_string(), ::tar::EntryType::Symlink, 0),
                ("d/hard".to_string(), ::tar::EntryType::Link, 0),
            ]
        );
    }

    #[test]
    fn data_tar_holds_len_bytes_in_three_files() {
        let raw = data_tar(3, 30_000).unwrap();
        let mut archive = ::tar::Archive::new(raw.as_slice());
        let sizes: Vec<u64> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().size())
            .collect();
        assert_eq!(sizes, [0, 10_000, 10_000, 10_000]);
    }

    #[test]
    fn an_image_indexes_its_platforms_with_variants() {
        let layer = gzip_tar_layer(&[Entry::Bytes("a".into(), content(1, 1000))]).unwrap();
        let amd = PlatformImage::new("amd64", None, vec![layer.clone()]).unwrap();
        let arm = PlatformImage::new("arm64", Some("v8"), vec![layer]).unwrap();
        let image = Image::new(vec![amd, arm]).unwrap();
        assert_eq!(image.layer_count(), 1);
        let index: serde_json::Value = serde_json::from_slice(&image.index).unwrap();
        assert_eq!(index["manifests"][1]["platform"]["variant"], "v8");
        assert!(index["manifests"][0]["platform"].get("variant").is_none());
        assert_eq!(
            index["manifests"][0]["digest"],
            image.platforms[0].manifest_digest.as_str()
        );
        let config: serde_json::Value = serde_json::from_slice(&image.platforms[1].config).unwrap();
        assert_eq!(config["variant"], "v8");
    }
}
