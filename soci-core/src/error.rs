//! Errors of the zTOC engine.

/// What went wrong with a layer, precise enough to name the layer part at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The reference implementation would refuse this layer too (bad tar, bad gzip, ...).
    #[error("layer rejected: {0}")]
    Rejected(String),
    /// The reference would write a zTOC for this layer that no consumer can use (FORMAT.md
    /// section 8). Leave this layer out of the index; the rest of the image can still be indexed.
    #[error("layer cannot be indexed usefully (it would be pulled in full anyway): {0}")]
    Unindexable(String),
    /// The layer's sha256 differs from the digest the caller expected.
    #[error("layer digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    /// Reading the layer failed.
    #[error("reading the layer at compressed offset {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// A zTOC that does not decode or is internally inconsistent.
    #[error("invalid zTOC: {0}")]
    InvalidZtoc(String),
    /// Bad arguments (span size 0 for an uncompressed layer, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
