//! The OCI image layout (image-spec v1.1, `image-layout.md`) as a store the indexing pipeline
//! reads and writes: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`, tags as the
//! `org.opencontainers.image.ref.name` annotation of `index.json` entries.
//!
//! The pipeline speaks the distribution API through the generator's `RegistryClient`; rather than
//! a second code path for every request it makes, [`server::LayoutServer`] serves this layout as a
//! registry on 127.0.0.1, so the same pipeline writes here exactly the bytes it would push.
//!
//! Writes are crash-safe and content-addressed: a blob goes to a temporary file in its own
//! `blobs/<alg>/` directory and is renamed into place only once its digest is verified;
//! `index.json` is rewritten to a temporary file and renamed, under an exclusive `flock` of the
//! `oci-layout` file (so two processes indexing into one layout do not lose each other's tags).
//! Every size read from the layout is bounded before it sizes a buffer.
//!
//! Which manifests get an `index.json` entry: every tag (one entry per tag: a new push of the tag
//! replaces the old entry, as a registry moves a tag), and every manifest pushed by digest that
//! has a `subject` (a referrer, such as a V1 SOCI index). A manifest pushed by digest without a
//! `subject` is reachable from a tagged index that names it (the pipeline pushes children before
//! their parent), so it is a blob only, as in a registry. Referrers get an entry without
//! `ref.name` so they stay findable: the server answers the referrers API
//! (`GET /v2/<name>/referrers/<digest>`) and the referrers tag schema (`sha256-<hex>`) from them,
//! and tools that list a layout's manifests (skopeo, oras) see them.

pub mod server;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256, Sha512};

pub use server::LayoutServer;

/// The file naming the layout version.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The layout's entry point, an image index.
pub const INDEX_FILE: &str = "index.json";
/// The annotation of an `index.json` entry that holds its tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_VERSION: &str = "1.0.0";
const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Largest `oci-layout` file read (it holds one short JSON object).
const OCI_LAYOUT_LIMIT: u64 = 4 << 10;
/// Largest `index.json` read: tens of thousands of entries.
const INDEX_LIMIT: u64 = 16 << 20;
/// Largest manifest read or accepted (the generator's registry client reads at most as much).
pub const MANIFEST_LIMIT: u64 = soci_index_generator::registry::MANIFEST_LIMIT as u64;
/// Largest blob accepted in one upload. Uploads go to disk, not memory; the bound keeps a
/// runaway client from filling the disk.
pub const UPLOAD_LIMIT: u64 = 64 << 30;

/// What went wrong with a layout, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
    #[error("{0:?}: not a digest this layout can hold (sha256:<64 hex> or sha512:<128 hex>)")]
    BadDigest(String),
    #[error("{what}: content has digest {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("{}: tag {tag:?} names {} different manifests ({})", path.display(), digests.len(), digests.join(", "))]
    AmbiguousTag {
        path: PathBuf,
        tag: String,
        digests: Vec<String>,
    },
}

type Result<T, E = LayoutError> = std::result::Result<T, E>;

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One entry of `index.json`: a descriptor. Fields this code does not use (`platform`, `urls`,
/// `data`, ...) are kept as they were, so rewriting `index.json` loses nothing another tool wrote.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

impl Entry {
    /// The tag this entry carries, if any.
    pub fn tag(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }
}

/// `index.json`, unknown top-level fields kept.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    manifests: Vec<Entry>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

/// A digest split into the directory and file name of its blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobDigest {
    pub algorithm: &'static str,
    pub hex: String,
}

impl BlobDigest {
    /// Accepts only what the layout can name safely: `sha256:` or `sha512:` and lowercase hex
    /// of the algorithm's length (the digest becomes a path: nothing else may reach it).
    pub fn parse(digest: &str) -> Result<Self> {
        let bad = || LayoutError::BadDigest(digest.to_string());
        let (algorithm, hex) = digest.split_once(':').ok_or_else(bad)?;
        let (algorithm, len) = match algorithm {
            "sha256" => ("sha256", 64),
            "sha512" => ("sha512", 128),
            _ => return Err(bad()),
        };
        if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        Ok(Self {
            algorithm,
            hex: hex.to_string(),
        })
    }

    pub fn hasher(&self) -> Hasher {
        match self.algorithm {
            "sha512" => Hasher::Sha512(Sha512::new()),
            _ => Hasher::Sha256(Sha256::new()),
        }
    }
}

impl std::fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

/// The hash of a digest's algorithm, fed as bytes arrive.
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    pub fn digest(self) -> String {
        match self {
            Self::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Self::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// The `sha256:` digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Whether `tag` is a valid tag (distribution spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
pub fn is_valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `oci:DIR[:TAG]` (TAG defaults to `latest`), as skopeo writes it: the tag is what follows the
/// last `:` when that is a valid tag; otherwise the whole rest is the directory. `None` when
/// `reference` does not start with `oci:`.
pub fn parse_reference(reference: &str) -> Option<(PathBuf, String)> {
    let rest = reference.strip_prefix("oci:")?;
    match rest.rsplit_once(':') {
        Some((dir, tag)) if !dir.is_empty() && is_valid_tag(tag) => {
            Some((PathBuf::from(dir), tag.to_string()))
        }
        _ => Some((PathBuf::from(rest), "latest".to_string())),
    }
}

/// Reads `path` whole, refusing more than `limit` bytes.
fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(io_error(path))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    if bytes.len() as u64 > limit {
        return Err(LayoutError::TooLarge {
            what: format!("{what} {}", path.display()),
            limit,
        });
    }
    Ok(bytes)
}

/// An OCI image layout directory.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens an existing layout, checking `oci-layout` and `index.json` now, so that a missing or
    /// malformed layout fails before any work with an error naming the file.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let layout = Self { root: root.into() };
        if !layout.root.is_dir() {
            return Err(LayoutError::Invalid {
                path: layout.root.clone(),
                detail:
                    "not a directory (expected an OCI image layout: oci-layout, index.json, blobs/)"
                        .into(),
            });
        }
        layout.check_version()?;
        layout.read_index()?;
        Ok(layout)
    }

    /// Opens the layout at `root`, creating an empty one when `root` is missing or an empty
    /// directory.
    pub fn open_or_create(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let empty = match std::fs::read_dir(&root) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(io_error(&root)(e)),
        };
        if !empty {
            return Self::open(root);
        }
        let layout = Self { root };
        std::fs::create_dir_all(layout.root.join("blobs").join("sha256"))
            .map_err(io_error(&layout.root))?;
        layout.write_atomically(
            &layout.root.join(OCI_LAYOUT_FILE),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        let index = IndexJson {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_OCI_INDEX.into()),
            manifests: Vec::new(),
            other: Default::default(),
        };
        layout.write_index(&index)?;
        Ok(layout)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    fn check_version(&self) -> Result<()> {
        let path = self.root.join(OCI_LAYOUT_FILE);
        let bytes = read_bounded(&path, OCI_LAYOUT_LIMIT, "the layout marker")?;
        let invalid = |detail: String| LayoutError::Invalid {
            path: path.clone(),
            detail,
        };
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
        match value.get("imageLayoutVersion").and_then(Value::as_str) {
            Some(LAYOUT_VERSION) => Ok(()),
            Some(other) => Err(invalid(format!(
                "imageLayoutVersion {other:?}, this tool reads {LAYOUT_VERSION:?}"
            ))),
            None => Err(invalid("no imageLayoutVersion".into())),
        }
    }

    fn read_index(&self) -> Result<IndexJson> {
        let path = self.index_path();
        let bytes = read_bounded(&path, INDEX_LIMIT, "the layout's index")?;
        let index: IndexJson =
            serde_json::from_slice(&bytes).map_err(|e| LayoutError::Invalid {
                path: path.clone(),
                detail: format!("not an image index: {e}"),
            })?;
        if index.schema_version != 2 {
            return Err(LayoutError::Invalid {
                path,
                detail: format!("schemaVersion {}, expected 2", index.schema_version),
            });
        }
        for entry in &index.manifests {
            BlobDigest::parse(&entry.digest).map_err(|e| LayoutError::Invalid {
                path: path.clone(),
                detail: format!("entry {}: {e}", entry.digest),
            })?;
        }
        Ok(index)
    }

    /// The entries of `index.json`.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        Ok(self.read_index()?.manifests)
    }

    /// The entry tagged `tag`; an error when the tag names two different manifests.
    pub fn find_tag(&self, tag: &str) -> Result<Option<Entry>> {
        let tagged: Vec<Entry> = self
            .entries()?
            .into_iter()
            .filter(|e| e.tag() == Some(tag))
            .collect();
        let mut digests: Vec<String> = tagged.iter().map(|e| e.digest.clone()).collect();
        digests.dedup();
        if digests.len() > 1 {
            return Err(LayoutError::AmbiguousTag {
                path: self.index_path(),
                tag: tag.into(),
                digests,
            });
        }
        Ok(tagged.into_iter().next())
    }

    /// The path of `digest`'s blob (which may not exist).
    pub fn blob_path(&self, digest: &BlobDigest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm)
            .join(&digest.hex)
    }

    pub fn has_blob(&self, digest: &BlobDigest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A manifest's bytes (at most [`MANIFEST_LIMIT`]), its digest checked: `None` when the
    /// layout does not hold the blob.
    pub fn read_manifest(&self, digest: &BlobDigest) -> Result<Option<Vec<u8>>> {
        let path = self.blob_path(digest);
        let bytes = match read_bounded(&path, MANIFEST_LIMIT, "manifest") {
            Err(LayoutError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            other => other?,
        };
        let mut hasher = digest.hasher();
        hasher.update(&bytes);
        let actual = hasher.digest();
        if actual != digest.to_string() {
            return Err(LayoutError::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(Some(bytes))
    }

    /// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let dir = path.parent().unwrap_or(&self.root);
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(io_error(dir))?;
        tmp.write_all(bytes).map_err(io_error(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io_error(tmp.path()))?;
        tmp.persist(path).map_err(|e| io_error(path)(e.error))?;
        Ok(())
    }

    /// A new temporary file for a blob of `digest`, in the directory it will be renamed into.
    pub fn blob_temp(&self, digest: &BlobDigest) -> Result<tempfile::NamedTempFile> {
        let dir = self.root.join("blobs").join(digest.algorithm);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(io_error(&dir))
    }

    /// Renames a temporary file whose content was hashed to `actual` into place as `expected`'s
    /// blob, or refuses it (and the temporary file is removed) when the digests differ.
    pub fn commit_blob(
        &self,
        tmp: tempfile::NamedTempFile,
        expected: &BlobDigest,
        actual: &str,
    ) -> Result<()> {
        if actual != expected.to_string() {
            return Err(LayoutError::DigestMismatch {
                what: "uploaded blob".into(),
                expected: expected.to_string(),
                actual: actual.into(),
            });
        }
        tmp.as_file().sync_all().map_err(io_error(tmp.path()))?;
        let path = self.blob_path(expected);
        // Content-addressed: a blob already there has these very bytes, and renaming over it
        // is atomic, so concurrent writers of one blob are harmless.
        tmp.persist(&path).map_err(|e| io_error(&path)(e.error))?;
        Ok(())
    }

    /// Writes a whole (small) blob, digest checked.
    pub fn write_blob(&self, digest: &BlobDigest, bytes: &[u8]) -> Result<()> {
        if self.has_blob(digest) {
            return Ok(());
        }
        let mut tmp = self.blob_temp(digest)?;
        tmp.write_all(bytes).map_err(io_error(tmp.path()))?;
        let mut hasher = digest.hasher();
        hasher.update(bytes);
        self.commit_blob(tmp, digest, &hasher.digest())
    }

    fn write_index(&self, index: &IndexJson) -> Result<()> {
        let bytes = serde_json::to_vec(index).map_err(|e| LayoutError::Invalid {
            path: self.index_path(),
            detail: format!("serializing: {e}"),
        })?;
        self.write_atomically(&self.index_path(), &bytes)
    }

    /// Reads, changes with `change` and rewrites `index.json`, holding an exclusive `flock` on
    /// `oci-layout` throughout so that concurrent writers (threads or processes) serialize.
    pub fn update_index(&self, change: impl FnOnce(&mut Vec<Entry>)) -> Result<()> {
        let lock_path = self.root.join(OCI_LAYOUT_FILE);
        let lock = File::open(&lock_path).map_err(io_error(&lock_path))?;
        // SAFETY: flock on a descriptor this function owns; released when `lock` is closed.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
            return Err(io_error(&lock_path)(io::Error::last_os_error()));
        }
        let mut index = self.read_index()?;
        change(&mut index.manifests);
        self.write_index(&index)?;
        drop(lock);
        Ok(())
    }

    /// Points `tag` at `entry` (replacing whatever the tag named before).
    pub fn set_tag(&self, tag: &str, mut entry: Entry) -> Result<()> {
        entry.annotations.insert(REF_NAME.into(), tag.into());
        self.update_index(|entries| {
            entries.retain(|e| e.tag() != Some(tag));
            entries.push(entry);
        })
    }

    /// Records an untagged entry (a referrer), once per digest.
    pub fn add_untagged(&self, entry: Entry) -> Result<()> {
        self.update_index(|entries| {
            if !entries
                .iter()
                .any(|e| e.digest == entry.digest && e.tag().is_none())
            {
                entries.push(entry);
            }
        })
    }

    /// The manifests in `index.json` whose `subject` is `digest`, as descriptors of a referrers
    /// list (`artifactType`: the manifest's, else its config's media type; its annotations).
    pub fn referrers(&self, digest: &str) -> Result<Vec<Value>> {
        let mut found = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for entry in self.entries()? {
            if !seen.insert(entry.digest.clone()) {
                continue;
            }
            let blob = BlobDigest::parse(&entry.digest)?;
            let Some(bytes) = self.read_manifest(&blob)? else {
                continue;
            };
            let Ok(manifest) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            if manifest.pointer("/subject/digest").and_then(Value::as_str) != Some(digest) {
                continue;
            }
            let artifact_type = manifest
                .get("artifactType")
                .or_else(|| manifest.pointer("/config/mediaType"))
                .cloned();
            let mut descriptor = serde_json::json!({
                "mediaType": manifest.get("mediaType").cloned().unwrap_or(Value::String(entry.media_type.clone())),
                "digest": entry.digest,
                "size": bytes.len(),
            });
            if let Some(artifact_type) = artifact_type {
                descriptor["artifactType"] = artifact_type;
            }
            if let Some(annotations) = manifest.get("annotations") {
                descriptor["annotations"] = annotations.clone();
            }
            found.push(descriptor);
        }
        Ok(found)
    }
}

/// The descriptor of a manifest about to be recorded in `index.json`. Its `artifactType` is the
/// manifest's, or for a referrer (a manifest with a `subject`) its config's media type, as the
/// referrers API reports it (a SOCI v1 index has only the latter).
pub fn manifest_entry(media_type: &str, digest: &str, bytes: &[u8], manifest: &Value) -> Entry {
    let artifact_type = manifest.get("artifactType").or_else(|| {
        manifest
            .get("subject")
            .and_then(|_| manifest.pointer("/config/mediaType"))
    });
    Entry {
        media_type: media_type.into(),
        artifact_type: artifact_type.and_then(Value::as_str).map(String::from),
        digest: digest.into(),
        size: bytes.len() as u64,
        annotations: BTreeMap::new(),
        other: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            parse_reference("oci:/tmp/l:v1"),
            Some((PathBuf::from("/tmp/l"), "v1".into()))
        );
        assert_eq!(
            parse_reference("oci:/tmp/l"),
            Some((PathBuf::from("/tmp/l"), "latest".into()))
        );
        // A `:` inside the directory, and no tag.
        assert_eq!(
            parse_reference("oci:/tmp/a:b/c"),
            Some((PathBuf::from("/tmp/a:b/c"), "latest".into()))
        );
        assert_eq!(parse_reference("127.0.0.1:5000/app:v1"), None);
    }

    #[test]
    fn digests_that_could_leave_the_blob_directory_are_refused() {
        let hex = "a".repeat(64);
        assert!(BlobDigest::parse(&format!("sha256:{hex}")).is_ok());
        for bad in [
            "sha256:../../etc/passwd".to_string(),
            format!("sha256:{}", "A".repeat(64)),
            format!("md5:{hex}"),
            format!("sha512:{hex}"),
            hex.clone(),
        ] {
            assert!(BlobDigest::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(is_valid_tag("v1-soci"));
        assert!(is_valid_tag("sha256-abc"));
        assert!(!is_valid_tag(".hidden"));
        assert!(!is_valid_tag("a/b"));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn a_missing_or_malformed_layout_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Layout::open(dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("nope") && missing.contains("not a directory"),
            "{missing}"
        );
        let no_marker = Layout::open(dir.path()).unwrap_err().to_string();
        assert!(no_marker.contains("oci-layout"), "{no_marker}");
        std::fs::write(
            dir.path().join(OCI_LAYOUT_FILE),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let no_index = Layout::open(dir.path()).unwrap_err().to_string();
        assert!(no_index.contains("index.json"), "{no_index}");
        std::fs::write(
            dir.path().join(INDEX_FILE),
            r#"{"schemaVersion":2,"manifests":{}}"#,
        )
        .unwrap();
        let bad_index = Layout::open(dir.path()).unwrap_err().to_string();
        assert!(
            bad_index.contains("index.json") && bad_index.contains("not an image index"),
            "{bad_index}"
        );
        std::fs::write(
            dir.path().join(OCI_LAYOUT_FILE),
            r#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .unwrap();
        let version = Layout::open(dir.path()).unwrap_err().to_string();
        assert!(
            version.contains("oci-layout") && version.contains("2.0.0"),
            "{version}"
        );
    }

    #[test]
    fn tags_move_and_unknown_fields_survive_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path().join("l")).unwrap();
        let a = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
        let digest = sha256_digest(a);
        layout
            .write_blob(&BlobDigest::parse(&digest).unwrap(), a)
            .unwrap();
        let mut entry = manifest_entry(
            "application/vnd.oci.image.manifest.v1+json",
            &digest,
            a,
            &Value::Null,
        );
        entry
            .other
            .insert("platform".into(), serde_json::json!({"os": "linux"}));
        layout.set_tag("v1", entry.clone()).unwrap();
        layout.set_tag("v1", entry.clone()).unwrap();
        layout.set_tag("v2", entry).unwrap();
        let entries = layout.entries().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].other["platform"]["os"], "linux");
        assert_eq!(layout.find_tag("v1").unwrap().unwrap().digest, digest);
        assert!(layout.find_tag("v3").unwrap().is_none());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(layout.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
    }

    #[test]
    fn concurrent_tag_writes_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let bytes = br#"{"schemaVersion":2}"#;
        let digest = sha256_digest(bytes);
        let entry = manifest_entry(
            "application/vnd.oci.image.manifest.v1+json",
            &digest,
            bytes,
            &Value::Null,
        );
        std::thread::scope(|scope| {
            for i in 0..8 {
                let (layout, entry) = (layout.clone(), entry.clone());
                scope.spawn(move || {
                    for j in 0..10 {
                        layout.set_tag(&format!("t{i}-{j}"), entry.clone()).unwrap();
                    }
                });
            }
        });
        assert_eq!(layout.entries().unwrap().len(), 80);
    }

    #[test]
    fn a_blob_whose_bytes_do_not_match_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let digest = BlobDigest::parse(&sha256_digest(b"right")).unwrap();
        assert!(matches!(
            layout.write_blob(&digest, b"wrong"),
            Err(LayoutError::DigestMismatch { .. })
        ));
        assert!(!layout.has_blob(&digest));
        let leftovers = std::fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 0);
    }
}
