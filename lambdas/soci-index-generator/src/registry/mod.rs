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
use sha2::{Digest as _, Sha256};

pub use auth::{Credentials, EcrCredentials};
pub use client::RegistryClient;
pub use graph::RepositoryGraph;
pub use retry::{RetryPolicy, is_transient_status};

/// What a registry call failed with. Every variant names the operation and the URL; HTTP
/// answers carry the status and the start of the body.
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
