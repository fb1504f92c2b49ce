//! One layer: streamed from the registry through `soci_core::build_ztoc` once, never stored;
//! its bytes checked against the descriptor's size and digest before any result counts.
//!
//! The HTTP body is pulled by an async task into a small bounded channel that the blocking
//! builder reads (`std::io::Read`), so the download of the next bytes overlaps the inflate of
//! the previous ones while memory stays bounded (at most [`CHANNEL_CHUNKS`] body chunks). How
//! the bytes are downloaded (one stream, or parallel `Range` requests for a large layer, each
//! with its bounded window) is [`super::fetch`]'s business.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use soci_core::{BuildOptions, BuiltZtoc, Compression};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use super::fetch::{self, Blob, Chunk, FetchError, ParallelFetch};
use crate::registry::{RegistryClient, RegistryError, RetryPolicy};

/// Body chunks buffered between the download and the builder (hyper chunks are at most a few
/// hundred KiB, so this stays within a few MiB per layer).
pub const CHANNEL_CHUNKS: usize = 32;

/// A layer the pipeline will index.
#[derive(Clone, Debug)]
pub struct LayerPlan {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub compression: Compression,
}

/// What building a layer's zTOC came to.
#[derive(Debug)]
pub enum LayerBuild {
    Built {
        ztoc: BuiltZtoc,
        elapsed: Duration,
    },
    /// soci-core says a zTOC of this layer would be useless (`soci-core/FORMAT.md` section 8).
    Unindexable(String),
    /// The reference would refuse this layer too (not a tar the Go reader accepts, bad gzip):
    /// retrying cannot change it, and the image is still pulled normally.
    Rejected(String),
}

/// Why a layer could not be indexed.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {digest}: download: {source}")]
    Download {
        digest: String,
        #[source]
        source: RegistryError,
    },
    /// The bytes served are not the blob the descriptor names (wrong size or digest).
    #[error("layer {digest}: download: {detail}")]
    Corrupt { digest: String, detail: String },
    #[error("layer {digest}: building the zTOC: {source}")]
    Build {
        digest: String,
        #[source]
        source: soci_core::Error,
    },
    #[error("layer {digest}: builder task failed: {detail}")]
    Task { digest: String, detail: String },
    #[error(
        "layer {digest}: not done within its deadline of {seconds} s (derived from its size, {size} bytes)"
    )]
    Deadline {
        digest: String,
        size: u64,
        seconds: u64,
    },
}

// The download task hands the builder bytes, then `None` once every byte of the blob arrived
// and matched its digest (`Chunk`). A channel that closes without that `None` is a download
// that stopped, which the builder must never take for the end of the layer.

/// `Read` over the chunks the download task sends.
struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    current: Bytes,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while !self.current.has_remaining() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(Some(chunk))) => self.current = chunk,
                Some(Ok(None)) => self.done = true,
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the download stopped",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.remaining());
        self.current.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

/// How long one layer may take: `base` plus its size at `min_bytes_per_second`.
pub fn layer_deadline(size: u64, base: Duration, min_bytes_per_second: u64) -> Duration {
    base + Duration::from_secs(size / min_bytes_per_second.max(1))
}

/// Builds the zTOC of `layer` within its deadline. A download that breaks off is continued
/// where it stopped (see [`pump`]); bytes that turn out not to be the blob (wrong size or
/// digest) restart the layer, up to `retry.attempts` times. Only a layer whose bytes matched
/// its digest is ever `Rejected` or `Unindexable`.
pub async fn build_layer(
    registry: &Arc<RegistryClient>,
    repo: &str,
    layer: &LayerPlan,
    options: &LayerOptions<'_>,
) -> Result<LayerBuild, LayerError> {
    let deadline = layer_deadline(
        layer.size,
        options.deadline_base,
        options.min_bytes_per_second,
    );
    let attempts = build_attempts(registry, repo, layer, options);
    match tokio::time::timeout(deadline, attempts).await {
        Ok(result) => result,
        Err(_) => Err(LayerError::Deadline {
            digest: layer.digest.clone(),
            size: layer.size,
            seconds: deadline.as_secs(),
        }),
    }
}

/// What [`build_layer`] needs besides the layer.
pub struct LayerOptions<'a> {
    pub span_size: u64,
    pub budget: soci_core::MemoryBudget,
    pub build_tool: &'a str,
    pub retry: RetryPolicy,
    pub deadline_base: Duration,
    pub min_bytes_per_second: u64,
    /// How a large layer is fetched (several `Range` requests at once).
    pub parallel_fetch: ParallelFetch,
}

async fn build_attempts(
    registry: &Arc<RegistryClient>,
    repo: &str,
    layer: &LayerPlan,
    options: &LayerOptions<'_>,
) -> Result<LayerBuild, LayerError> {
    let retry = options.retry;
    let mut attempt = 0;
    loop {
        let started = Instant::now();
        match build_once(registry, repo, layer, options).await {
            Ok(ztoc) => {
                return Ok(LayerBuild::Built {
                    ztoc,
                    elapsed: started.elapsed(),
                });
            }
            Err(LayerError::Build {
                source: soci_core::Error::Unindexable(reason),
                ..
            }) => return Ok(LayerBuild::Unindexable(reason)),
            Err(LayerError::Build {
                source: soci_core::Error::Rejected(reason),
                ..
            }) => return Ok(LayerBuild::Rejected(reason)),
            Err(e @ LayerError::Corrupt { .. }) if retry.allows_another(attempt) => {
                tracing::warn!(layer = %layer.digest, error = %e, attempt, "layer bytes were not the blob, downloading it again");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(retry.delay(attempt, None)).await;
        attempt += 1;
    }
}

/// One pass: the download task ([`pump`]) feeds the builder on a blocking thread. The pump is
/// aborted when this future is dropped (another layer failed, the deadline passed), which
/// closes the channel and so stops the builder at its next read.
async fn build_once(
    registry: &Arc<RegistryClient>,
    repo: &str,
    layer: &LayerPlan,
    options: &LayerOptions<'_>,
) -> Result<BuiltZtoc, LayerError> {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let download = Download {
        registry: registry.clone(),
        blob: Blob {
            repo: repo.to_string(),
            digest: layer.digest.clone(),
            size: layer.size,
            sha256_checked_by_reader: true,
        },
        parallel: options.parallel_fetch,
        retry: options.retry,
    };
    let pump = AbortOnDropHandle::new(tokio::spawn(pump(download, tx)));
    // soci-core checks sha256 itself; the pump checks every algorithm.
    let expected_digest = layer
        .digest
        .starts_with("sha256:")
        .then(|| layer.digest.clone());
    let build_options = BuildOptions {
        span_size: options.span_size,
        build_tool: options.build_tool.to_string(),
        compression: layer.compression,
        expected_digest,
        budget: options.budget,
    };
    let reader = ChannelReader {
        rx,
        current: Bytes::new(),
        done: false,
    };
    let built =
        tokio::task::spawn_blocking(move || soci_core::build_ztoc(reader, &build_options)).await;
    // Whatever the builder said, the bytes decide first: a layer that failed to build from
    // bytes that were not the blob is a download failure, not a bad layer.
    let downloaded = pump.await.map_err(|e| LayerError::Task {
        digest: layer.digest.clone(),
        detail: format!("download task: {e}"),
    })?;
    downloaded.map_err(|e| e.into_layer_error(&layer.digest))?;
    match built {
        Ok(Ok(ztoc)) => Ok(ztoc),
        Ok(Err(soci_core::Error::DigestMismatch { expected, actual })) => {
            Err(LayerError::Corrupt {
                digest: layer.digest.clone(),
                detail: format!("digest is {actual}, expected {expected}"),
            })
        }
        Ok(Err(source)) => Err(LayerError::Build {
            digest: layer.digest.clone(),
            source,
        }),
        Err(e) => Err(LayerError::Task {
            digest: layer.digest.clone(),
            detail: e.to_string(),
        }),
    }
}

/// What the download task needs.
struct Download {
    registry: Arc<RegistryClient>,
    blob: Blob,
    parallel: ParallelFetch,
    retry: RetryPolicy,
}

impl FetchError {
    fn into_layer_error(self, digest: &str) -> LayerError {
        match self {
            Self::Registry(source) => LayerError::Download {
                digest: digest.into(),
                source,
            },
            Self::Corrupt(detail) => LayerError::Corrupt {
                digest: digest.into(),
                detail,
            },
            Self::Task(detail) => LayerError::Task {
                digest: digest.into(),
                detail,
            },
        }
    }
}

/// Downloads the blob into `tx` ([`fetch::fetch`]: one stream, or parallel ranges for a large
/// layer), then tells the builder how it ended: `None` when every byte arrived and matched.
async fn pump(d: Download, tx: mpsc::Sender<Chunk>) -> Result<(), FetchError> {
    let result = fetch::fetch(&d.registry, &d.blob, &d.parallel, d.retry, &tx).await;
    let last = match &result {
        Ok(report) => {
            if report.ranged_chunks > 0 || report.fallback.is_some() {
                tracing::debug!(layer = %d.blob.digest, ?report, "layer fetched with ranges");
            }
            Ok(None)
        }
        Err(e) => Err(std::io::Error::other(e.to_string())),
    };
    let _ = tx.send(last).await;
    result.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_closed_early_is_an_error_not_the_end() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Some(Bytes::from_static(b"abc")))).unwrap();
        drop(tx);
        let mut reader = ChannelReader {
            rx,
            current: Bytes::new(),
            done: false,
        };
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(out, b"abc");

        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Some(Bytes::from_static(b"abc")))).unwrap();
        tx.try_send(Ok(None)).unwrap();
        let mut reader = ChannelReader {
            rx,
            current: Bytes::new(),
            done: false,
        };
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
    }

    #[test]
    fn deadlines_grow_with_the_size() {
        let base = Duration::from_secs(60);
        let rate = 2 << 20;
        assert_eq!(layer_deadline(0, base, rate), base);
        assert_eq!(
            layer_deadline(1 << 30, base, rate),
            Duration::from_secs(60 + 512)
        );
    }
}
