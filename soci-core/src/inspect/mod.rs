//! One checker for a pushed SOCI graph: it walks from the root a consumer starts from down to
//! every zTOC, checks each document the way a consumer would read it (FORMAT.md sections 7 and
//! 9), runs [`crate::verify()`] on every zTOC against its layer, and returns a [`GraphReport`] a
//! tool can print and a test can assert on.
//!
//! The roots (FORMAT.md section 7):
//! - v2: the OCI index tagged `<tag><suffix>`: the original manifests (image manifests annotated
//!   with `com.amazon.soci.index-digest`, attestations and platforms left out kept as they were)
//!   plus one SOCI index descriptor per indexed platform;
//! - v1: a SOCI index manifest whose `subject` is the image manifest.
//!
//! There is no I/O here: the caller implements [`GraphSource`] over its registry client (or over
//! bytes in memory). Its methods return futures so that async clients plug in directly; a source
//! with everything at hand returns ready futures.
//!
//! What the walk cannot go on without (a fetch failing, a document missing or not parsing, a
//! zTOC `verify` cannot read) is an [`InspectError`] naming the document. Every other finding is
//! a problem recorded where it was found, and the walk goes on, so one run lists them all
//! ([`GraphReport::problems`]).

mod report;
mod soci_index;
mod walk;

#[cfg(test)]
mod tests;

use std::future::Future;

pub use report::{
    Document, GraphReport, ImageManifestReport, InspectedLayer, LeftAsIs, LeftAsIsReason,
    PlatformReport, SociIndexReport, ZtocReport,
};

use crate::LayerSource;
use crate::index::SociIndexVersion;
use crate::oci::OciError;

/// The error type a [`GraphSource`] reports, boxed so any client's error fits.
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A manifest as a registry serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceManifest {
    /// `sha256:<hex>` the registry gives for it (`Docker-Content-Digest`).
    pub digest: String,
    /// The media type it was served with (`Content-Type`).
    pub media_type: String,
    /// The exact bytes.
    pub bytes: Vec<u8>,
}

/// Where the walk reads documents from: a registry client, or bytes in memory.
pub trait GraphSource {
    /// The client's error (anything that converts into a boxed error, `anyhow::Error` included).
    type Error: Into<SourceError>;
    /// A layer blob, read at random by [`crate::verify()`].
    type Layer: LayerSource;

    /// The manifest at `reference` (a tag or a digest), `None` when the registry has none.
    fn manifest(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<SourceManifest>, Self::Error>>;

    /// The blob with `digest` (a config or a zTOC).
    fn blob(&self, digest: &str) -> impl Future<Output = Result<Vec<u8>, Self::Error>>;

    /// The layer blob with `digest`.
    fn layer(&self, digest: &str) -> impl Future<Output = Result<Self::Layer, Self::Error>>;
}

/// Where the walk starts, and (optionally) the image the SOCI index was built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// v2: `reference` is the OCI index (usually the tag `<tag>-soci`); v1: the SOCI index
    /// manifest (its digest).
    pub version: SociIndexVersion,
    pub reference: String,
    /// The image as it was pushed (a tag or a digest). When given, the report records what it
    /// resolves to, and every indexed manifest must have the config and layers of one of its
    /// image manifests (v2) or be it (v1).
    pub original: Option<String>,
}

impl Root {
    /// A v2 walk from the OCI index at `reference`.
    pub fn v2(reference: impl Into<String>) -> Self {
        Self {
            version: SociIndexVersion::V2,
            reference: reference.into(),
            original: None,
        }
    }

    /// A v1 walk from the SOCI index manifest `digest`.
    pub fn v1(digest: impl Into<String>) -> Self {
        Self {
            version: SociIndexVersion::V1,
            reference: digest.into(),
            original: None,
        }
    }

    /// Also compares the graph with the image at `reference`.
    pub fn with_original(mut self, reference: impl Into<String>) -> Self {
        self.original = Some(reference.into());
        self
    }
}

/// Why the walk could not go on.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The source failed to deliver a document.
    #[error("fetching {what} {reference}")]
    Fetch {
        /// What the document is (`SOCI index`, `zTOC`, `layer`, ...).
        what: &'static str,
        reference: String,
        #[source]
        source: SourceError,
    },
    /// The registry has no manifest at this reference.
    #[error("{what} {reference} is not in the registry")]
    Missing {
        what: &'static str,
        reference: String,
    },
    /// A document does not decode as its type (Go's rules).
    #[error("{what} {reference} does not decode")]
    Decode {
        what: &'static str,
        reference: String,
        #[source]
        source: OciError,
    },
    /// `verify` could not read a zTOC or its layer.
    #[error("verifying zTOC {ztoc} against layer {layer}")]
    Verify {
        ztoc: String,
        layer: String,
        #[source]
        source: crate::Error,
    },
}

impl InspectError {
    /// Wraps a source error, naming what was being fetched.
    fn fetch<E: Into<SourceError>>(what: &'static str, reference: &str) -> impl FnOnce(E) -> Self {
        let reference = reference.to_string();
        move |err| Self::Fetch {
            what,
            reference,
            source: err.into(),
        }
    }
}

/// Walks the SOCI graph from `root` and checks everything under it.
pub async fn inspect<S: GraphSource>(source: &S, root: &Root) -> Result<GraphReport, InspectError> {
    match root.version {
        SociIndexVersion::V2 => walk::inspect_v2(source, root).await,
        SociIndexVersion::V1 => walk::inspect_v1(source, root).await,
    }
}
