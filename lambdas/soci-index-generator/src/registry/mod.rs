//! A small OCI distribution API client over `reqwest`: exactly the calls the pipeline needs,
//! with retries of transient failures and errors that carry the registry's answer.
//!
//! - [`client`]: [`RegistryClient`], the requests (manifests and blobs) and their error handling.
//! - [`auth`]: anonymous, basic, bearer tokens (the `WWW-Authenticate: Bearer realm=...`
//!   challenge, tokens cached per scope), and ECR (`GetAuthorizationToken`, sent as basic auth and
//!   refreshed when it expires or the registry refuses it).
//! - [`graph`]: a repository as the source `soci_core::inspect` walks to check a SOCI graph.
//! - [`retry`]: which failures are retried and how long to wait (one policy for every request
//!   and for restarting a broken layer stream).

pub mod auth;
pub mod client;
pub mod graph;
pub mod retry;

pub use bytes::Bytes;
pub use reqwest::Response;
use sha2::{Digest as _, Sha256, Sha512};
use url::Url;

pub use auth::{Credentials, EcrCredentials};
pub use client::{BlobLocation, RegistryClient};
pub use graph::RepositoryGraph;
pub use retry::{RetryPolicy, is_transient_status};

/// Largest manifest read (ECR's own limit is 4 MiB).
pub const MANIFEST_LIMIT: usize = 4 << 20;
/// Largest image config read.
pub const CONFIG_LIMIT: usize = 8 << 20;
/// Largest bearer-token answer read.
pub const TOKEN_LIMIT: usize = 1 << 20;
/// Bytes of an error answer read (the message keeps the first 512).
const ERROR_BODY_LIMIT: usize = 4 << 10;

/// What a registry call failed with. Every variant names the operation and the URL (its query
/// string redacted: presigned URLs carry credentials); HTTP answers carry the status and the
/// start of the body.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{op} {url}: registry answered {status}: {body}")]
    Status {
        op: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{op} {url}: {source}")]
    Transport {
        op: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{op}: {detail}")]
    Protocol { op: String, detail: String },
    #[error("ECR GetAuthorizationToken: {0}")]
    EcrAuth(String),
}

impl RegistryError {
    /// A transport error of `url`: URL redacted, and removed from reqwest's own message
    /// (which would print it whole).
    pub(crate) fn transport(op: &str, url: &Url, e: reqwest::Error) -> Self {
        Self::Transport {
            op: op.into(),
            url: redact(url),
            source: e.without_url(),
        }
    }

    pub(crate) fn protocol(op: &str, detail: impl Into<String>) -> Self {
        Self::Protocol {
            op: op.into(),
            detail: detail.into(),
        }
    }

    /// A non-success answer, its body read (at most a few KiB) into the message.
    pub(crate) async fn from_response(op: &str, resp: Response) -> Self {
        let url = redact(resp.url());
        let status = resp.status().as_u16();
        let body = read_some(resp, ERROR_BODY_LIMIT).await;
        Self::Status {
            op: op.into(),
            url,
            status,
            body: excerpt(&body),
        }
    }

    /// The HTTP status, when the registry answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// A manifest as fetched from the registry (bytes and how they were served), before parsing;
/// the parsed document is `soci_core::oci::Manifest` or `ImageIndex`.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    /// The document's own `mediaType`, or the Content-Type when it has none.
    pub media_type: String,
    /// The Content-Type the registry served it with (parameters stripped).
    pub content_type: String,
    pub digest: String,
}

/// Hex sha256 as an OCI digest.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `url` as printed in errors and logs: without its query string, which on a presigned URL
/// (ECR redirects blob downloads to S3) holds `X-Amz-Security-Token` and `X-Amz-Signature`.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    if had_query {
        format!("{shown}?(redacted)")
    } else {
        shown.to_string()
    }
}

/// A streaming hash of the algorithm a digest names (the registered OCI algorithms).
#[derive(Clone)]
pub enum DigestHasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl DigestHasher {
    /// The hasher for `digest` (`sha256:<64 hex>` or `sha512:<128 hex>`), or why it has none.
    pub fn for_digest(digest: &str) -> std::result::Result<Self, String> {
        match digest.split_once(':') {
            Some(("sha256", hex)) if hex.len() == 64 => Ok(Self::Sha256(Sha256::new())),
            Some(("sha512", hex)) if hex.len() == 128 => Ok(Self::Sha512(Sha512::new())),
            _ => Err(format!(
                "digest {digest:?} is not sha256:<64 hex> or sha512:<128 hex>"
            )),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    /// `<algorithm>:<hex>`.
    pub fn finish(self) -> String {
        match self {
            Self::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Self::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// Checks `bytes` against `digest` with the digest's own algorithm.
pub(crate) fn check_digest(op: &str, digest: &str, bytes: &[u8]) -> Result<()> {
    let mut hasher =
        DigestHasher::for_digest(digest).map_err(|e| RegistryError::protocol(op, e))?;
    hasher.update(bytes);
    let actual = hasher.finish();
    if actual != digest {
        return Err(RegistryError::protocol(
            op,
            format!("content digest is {actual}, expected {digest}"),
        ));
    }
    Ok(())
}

/// The whole body, refused (without reading further) when it is over `limit` bytes.
pub(crate) async fn read_capped(op: &str, mut resp: Response, limit: usize) -> Result<Bytes> {
    let url = resp.url().clone();
    let too_big = |len: u64| {
        RegistryError::protocol(
            op,
            format!(
                "{}: answer of {len}+ bytes is over the {limit}-byte limit",
                redact(&url)
            ),
        )
    };
    if let Some(len) = resp.content_length()
        && len > limit as u64
    {
        return Err(too_big(len));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| RegistryError::transport(op, &url, e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_big((body.len() + chunk.len()) as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The first `limit` bytes of a body (for error messages; the rest is not read).
async fn read_some(mut resp: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())])
            }
            _ => break,
        }
    }
    body
}

/// The start of an answer's body, on one line, for error messages and logs.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text.replace('\n', " ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_queries_and_passwords() {
        let url = Url::parse(
            "https://s3.amazonaws.com/b/k?X-Amz-Security-Token=SECRET&X-Amz-Signature=SIG",
        )
        .unwrap();
        let shown = redact(&url);
        assert_eq!(shown, "https://s3.amazonaws.com/b/k?(redacted)");
        let url = Url::parse("https://user:pw@registry.example/v2/").unwrap();
        assert!(!redact(&url).contains("pw"), "{}", redact(&url));
        assert_eq!(
            redact(&Url::parse("http://127.0.0.1:5000/v2/a/blobs/x").unwrap()),
            "http://127.0.0.1:5000/v2/a/blobs/x"
        );
    }

    #[test]
    fn digests_of_both_registered_algorithms() {
        let sha512 = format!("sha512:{}", hex::encode(Sha512::digest(b"abc")));
        assert!(check_digest("t", &sha512, b"abc").is_ok());
        assert!(check_digest("t", &sha512, b"abd").is_err());
        assert!(check_digest("t", &sha256_digest(b"abc"), b"abc").is_ok());
        let err = check_digest("t", "md5:900150983cd24fb0d6963f7d28e17f72", b"abc").unwrap_err();
        assert!(err.to_string().contains("md5"), "{err}");
    }
}
