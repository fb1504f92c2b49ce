//! The images these tests push: layers of every media type the pipeline meets (the shared
//! generator's [`test_support::image::Layer`] is gzip-only), and pushes through the test's direct
//! registry client. The bytes come from the shared generator ([`test_support::image`]); only
//! the layers that exist to be refused are made here.

use bytes::Bytes;
use serde_json::{Value, json};
use test_support::image::{self, Entry, Pushed, content, data_tar, image_index, image_manifest};

use super::{
    DOCKER_CONFIG, DOCKER_GZIP, DOCKER_LIST, DOCKER_MANIFEST, Env, OCI_CONFIG, OCI_GZIP, OCI_INDEX,
    OCI_MANIFEST, OCI_TAR, OCI_ZSTD,
};

/// gzip level 1, as these tests have always compressed their layers: few, large deflate blocks.
const GZIP_LEVEL: u32 = 1;

/// A layer blob with the media type the image manifest lists it under.
#[derive(Clone)]
pub struct LayerBlob {
    pub media_type: String,
    pub blob: Vec<u8>,
}

impl LayerBlob {
    fn new(media_type: &str, blob: Vec<u8>) -> LayerBlob {
        LayerBlob {
            media_type: media_type.into(),
            blob,
        }
    }

    /// A gzip tar of a few files of `len` bytes in total (about `len / 2` compressed).
    pub fn gzip(seed: u64, len: usize) -> LayerBlob {
        Self::new(OCI_GZIP, gzip(&data_tar(seed, len).expect("tar")))
    }

    pub fn docker_gzip(seed: u64, len: usize) -> LayerBlob {
        Self::new(DOCKER_GZIP, gzip(&data_tar(seed, len).expect("tar")))
    }

    /// An uncompressed tar of a few files of `len` bytes in total.
    pub fn tar(seed: u64, len: usize) -> LayerBlob {
        Self::new(OCI_TAR, data_tar(seed, len).expect("tar"))
    }

    /// Labelled zstd (the pipeline never reads it: it is left out by media type).
    pub fn zstd(seed: u64, len: usize) -> LayerBlob {
        Self::new(OCI_ZSTD, content(seed, len))
    }

    /// A gzip tar with a directory entry whose size field is not 0 (and, as Go reads it, no
    /// data): the reference writes a zTOC for it that no consumer can read, so soci-core calls
    /// it unindexable.
    pub fn unindexable(seed: u64) -> LayerBlob {
        let mut h = tar::Header::new_ustar();
        h.set_path("weird/").expect("path");
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(4096);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        // The header goes in raw: the tar crate would write the 4096 data bytes it announces.
        let mut tar = h.as_bytes().to_vec();
        let file = Entry::Bytes("weird/file".into(), content(seed, 200 * 1024));
        tar.extend(image::tar(&[file]).expect("tar"));
        Self::new(OCI_GZIP, gzip(&tar))
    }

    /// Not a tar at all, labelled as one (the reference rejects the layer).
    pub fn garbage(seed: u64) -> LayerBlob {
        Self::new(OCI_TAR, content(seed, 200 * 1024))
    }

    pub fn digest(&self) -> String {
        image::digest(&self.blob)
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    image::gzip(data, GZIP_LEVEL).expect("gzip")
}

/// Pushes `blob` unless the registry has it.
pub async fn push_blob(env: &Env, repo: &str, media_type: &str, blob: &[u8]) -> Pushed {
    let pushed = Pushed::of(media_type, blob);
    let present = env
        .direct
        .blob_exists(repo, &pushed.digest)
        .await
        .expect("head blob");
    if !present {
        env.direct
            .push_blob(repo, &pushed.digest, Bytes::copy_from_slice(blob))
            .await
            .expect("push blob");
    }
    pushed
}

/// Pushes layers, a config and a manifest (OCI or Docker types); tags it when `tag` is given.
/// The manifest is pretty-printed and carries an annotation with `<`, `>` and `&`, so it is not
/// what Go would write: the pipeline must keep the original bytes and re-encode only its copy.
pub async fn push_image(
    env: &Env,
    repo: &str,
    tag: Option<&str>,
    layers: &[LayerBlob],
    arch: &str,
    docker: bool,
) -> Pushed {
    let (manifest_type, config_type) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    } else {
        (OCI_MANIFEST, OCI_CONFIG)
    };
    let config = image::image_config(arch, None, &[]);
    let config = serde_json::to_vec(&config).expect("config");
    let config = push_blob(env, repo, config_type, &config).await;
    let mut descriptors = Vec::new();
    for l in layers {
        let pushed = push_blob(env, repo, &l.media_type, &l.blob).await;
        descriptors.push(pushed.descriptor());
    }
    let mut manifest = image_manifest(&config, &descriptors);
    manifest["mediaType"] = manifest_type.into();
    manifest["annotations"] =
        json!({"org.opencontainers.image.source": "https://example.com/<app>&x"});
    let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest");
    put_manifest(env, repo, tag, manifest_type, bytes).await
}

/// Pushes a manifest by digest and, when `tag` is given, under `tag`.
pub async fn put_manifest(
    env: &Env,
    repo: &str,
    tag: Option<&str>,
    media_type: &str,
    bytes: Vec<u8>,
) -> Pushed {
    let pushed = Pushed::of(media_type, &bytes);
    let bytes = Bytes::from(bytes);
    env.direct
        .put_manifest(repo, &pushed.digest, media_type, bytes.clone())
        .await
        .expect("put manifest");
    if let Some(tag) = tag {
        env.direct
            .put_manifest(repo, tag, media_type, bytes)
            .await
            .expect("tag manifest");
    }
    pushed
}

/// An attestation manifest (BuildKit style) for the image manifest `subject`.
pub async fn push_attestation(env: &Env, repo: &str, subject: &str) -> Pushed {
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#;
    let statement = push_blob(env, repo, "application/vnd.in-toto+json", statement).await;
    let config = push_blob(env, repo, OCI_CONFIG, b"{}").await;
    let mut layer = statement.descriptor();
    layer["annotations"] = json!({"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"});
    let mut manifest = image_manifest(&config, &[layer]);
    manifest["annotations"] = attestation_annotations(subject);
    let bytes = serde_json::to_vec(&manifest).expect("json");
    put_manifest(env, repo, None, OCI_MANIFEST, bytes).await
}

/// The annotations BuildKit puts on an attestation manifest and on its index entry.
pub fn attestation_annotations(subject: &str) -> Value {
    json!({"vnd.docker.reference.digest": subject, "vnd.docker.reference.type": "attestation-manifest"})
}

/// Pushes an OCI index (or a Docker manifest list) over `descriptors`, tagged `tag`.
pub async fn push_index(
    env: &Env,
    repo: &str,
    tag: &str,
    descriptors: Vec<Value>,
    docker: bool,
) -> Pushed {
    let media_type = if docker { DOCKER_LIST } else { OCI_INDEX };
    let mut index = image_index(descriptors);
    index["mediaType"] = media_type.into();
    let bytes = serde_json::to_vec(&index).expect("json");
    put_manifest(env, repo, Some(tag), media_type, bytes).await
}
