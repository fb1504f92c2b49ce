//! Images generated in code for `cargo xtask demo` and `cargo xtask bench index`: deterministic
//! gzip tar layers (directories, files, a symlink), OCI image configs with their `diff_ids`, image
//! manifests, attestation manifests and OCI indexes, pushed with the generator's own registry
//! client.

use std::io::Read;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use soci_core::oci::{
    MEDIA_TYPE_OCI_IMAGE_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
};
use soci_index_generator::RegistryClient;
use soci_index_generator::registry::{Bytes, sha256_digest};

/// Deterministic file content: 1 MiB blocks, two text-like (compressible) for one of xorshift
/// noise (incompressible), so gzip gets it to about 45 % and inflate does real work.
pub(crate) struct Content {
    x: u64,
    produced: u64,
}

impl Content {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            x: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            produced: 0,
        }
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
        let block = 1 << 20;
        let in_block = (block - (self.produced % block)) as usize;
        let n = buf.len().min(in_block).min(64 * 1024);
        let noisy = (self.produced / block) % 3 == 1;
        let mut i = 0;
        while i < n {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            if noisy {
                let bytes = self.x.to_le_bytes();
                let k = (n - i).min(8);
                buf[i..i + k].copy_from_slice(&bytes[..k]);
                i += k;
            } else {
                let w = WORDS[(self.x % 8) as usize];
                let k = (n - i).min(w.len());
                buf[i..i + k].copy_from_slice(&w[..k]);
                i += k;
            }
        }
        self.produced += n as u64;
        Ok(n)
    }
}

/// One entry of a generated layer.
pub(crate) enum Entry {
    Dir(String),
    /// Path, size, content seed.
    File(String, u64, u64),
    /// Path, target.
    Symlink(String, String),
}

/// A gzip tar layer.
pub(crate) struct Layer {
    pub gzip: Vec<u8>,
    pub digest: String,
    /// sha256 of the uncompressed tar (the config's `diff_ids`).
    pub diff_id: String,
    pub uncompressed: u64,
}

/// Counts and hashes the uncompressed tar on its way into gzip.
struct DiffId<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: std::io::Write> std::io::Write for DiffId<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Builds a gzip tar layer from `entries`, at gzip's default level (6), as `docker build` and
/// BuildKit compress layers (zlib-rs' level 1 writes few, huge deflate blocks, which leaves
/// the zTOC few places for checkpoints: not what real layers look like).
pub(crate) fn gzip_tar_layer(entries: &[Entry]) -> anyhow::Result<Layer> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(DiffId {
        inner: gz,
        hash: Sha256::new(),
        len: 0,
    });
    for entry in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match entry {
            Entry::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_path(path)
                    .with_context(|| format!("tar path {path}"))?;
                h.set_mode(0o755);
                h.set_size(0);
                h.set_cksum();
                tar.append(&h, std::io::empty())
            }
            Entry::File(path, size, seed) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_path(path)
                    .with_context(|| format!("tar path {path}"))?;
                h.set_mode(0o644);
                h.set_size(*size);
                h.set_cksum();
                tar.append(&h, Content::new(*seed).take(*size))
            }
            Entry::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_path(path)
                    .with_context(|| format!("tar path {path}"))?;
                h.set_link_name(target)
                    .with_context(|| format!("tar link {target}"))?;
                h.set_mode(0o777);
                h.set_size(0);
                h.set_cksum();
                tar.append(&h, std::io::empty())
            }
        }
        .context("writing the tar")?;
    }
    let counted = tar.into_inner().context("finishing the tar")?;
    let diff_id = format!("sha256:{}", hex::encode(counted.hash.finalize()));
    let gzip = counted.inner.finish().context("finishing the gzip")?;
    Ok(Layer {
        digest: sha256_digest(&gzip),
        diff_id,
        uncompressed: counted.len,
        gzip,
    })
}

/// A document or blob in the registry: `{mediaType, digest, size}`.
#[derive(Clone, Debug)]
pub(crate) struct Pushed {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Pushed {
    pub(crate) fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

pub(crate) async fn push_blob(
    client: &RegistryClient,
    repo: &str,
    media_type: &str,
    blob: Bytes,
) -> anyhow::Result<Pushed> {
    let digest = sha256_digest(&blob);
    let size = blob.len() as u64;
    client
        .push_blob(repo, &digest, blob)
        .await
        .with_context(|| format!("pushing blob {digest} to {repo}"))?;
    Ok(Pushed {
        media_type: media_type.into(),
        digest,
        size,
    })
}

pub(crate) async fn push_manifest(
    client: &RegistryClient,
    repo: &str,
    tag: Option<&str>,
    document: &serde_json::Value,
) -> anyhow::Result<Pushed> {
    let media_type = document["mediaType"]
        .as_str()
        .context("document without mediaType")?
        .to_string();
    let bytes = Bytes::from(serde_json::to_vec(document)?);
    let digest = sha256_digest(&bytes);
    let reference = tag.unwrap_or(&digest);
    client
        .put_manifest(repo, reference, &media_type, bytes.clone())
        .await
        .with_context(|| format!("pushing manifest {repo}:{reference}"))?;
    Ok(Pushed {
        media_type,
        digest,
        size: bytes.len() as u64,
    })
}

/// Pushes the layers, an OCI config for `os/architecture` and the image manifest (by digest, or
/// tagged). Returns the manifest.
pub(crate) async fn push_image(
    client: &RegistryClient,
    repo: &str,
    tag: Option<&str>,
    architecture: &str,
    layers: &[&Layer],
) -> anyhow::Result<Pushed> {
    let mut descriptors = Vec::new();
    for layer in layers {
        let pushed = push_blob(
            client,
            repo,
            MEDIA_TYPE_OCI_LAYER_GZIP,
            Bytes::from(layer.gzip.clone()),
        )
        .await?;
        descriptors.push(pushed.descriptor());
    }
    let config = serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/app/bin/server"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>()},
    });
    let config = push_blob(
        client,
        repo,
        MEDIA_TYPE_OCI_IMAGE_CONFIG,
        Bytes::from(serde_json::to_vec(&config)?),
    )
    .await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": descriptors,
    });
    push_manifest(client, repo, tag, &manifest).await
}

/// Pushes a BuildKit-style attestation manifest (an in-toto layer, `unknown/unknown` platform in
/// the index) for `subject`.
pub(crate) async fn push_attestation(
    client: &RegistryClient,
    repo: &str,
    subject: &Pushed,
) -> anyhow::Result<Pushed> {
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "demo", "digest": {"sha256": subject.digest.trim_start_matches("sha256:")}}],
        "predicate": {"spdxVersion": "SPDX-2.3", "name": "demo"},
    });
    let layer = push_blob(
        client,
        repo,
        "application/vnd.in-toto+json",
        Bytes::from(serde_json::to_vec(&statement)?),
    )
    .await?;
    let config = serde_json::json!({
        "architecture": "unknown", "os": "unknown", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
    });
    let config = push_blob(
        client,
        repo,
        MEDIA_TYPE_OCI_IMAGE_CONFIG,
        Bytes::from(serde_json::to_vec(&config)?),
    )
    .await?;
    let mut layer_descriptor = layer.descriptor();
    layer_descriptor["annotations"] =
        serde_json::json!({"in-toto.io/predicate-type": "https://spdx.dev/Document"});
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer_descriptor],
    });
    push_manifest(client, repo, None, &manifest).await
}

/// One entry of an OCI index: the manifest, its platform `(os, architecture)` and annotations.
pub(crate) struct IndexEntry<'a> {
    pub manifest: &'a Pushed,
    pub platform: (&'a str, &'a str),
    pub annotations: serde_json::Value,
}

/// Pushes an OCI index over `entries`, tagged `tag`.
pub(crate) async fn push_index(
    client: &RegistryClient,
    repo: &str,
    tag: &str,
    entries: &[IndexEntry<'_>],
) -> anyhow::Result<Pushed> {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            let mut d = e.manifest.descriptor();
            if e.annotations.is_object() {
                d["annotations"] = e.annotations.clone();
            }
            d["platform"] = serde_json::json!({"architecture": e.platform.1, "os": e.platform.0});
            d
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": manifests,
    });
    push_manifest(client, repo, Some(tag), &index).await
}
