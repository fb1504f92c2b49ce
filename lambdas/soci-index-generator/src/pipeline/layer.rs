//! One layer: streamed from the registry through `soci_core::build_ztoc` once, never stored.
//!
//! The HTTP body is pulled by an async task into a small bounded channel that the blocking
//! builder reads (`std::io::Read`), so the download of the next bytes overlaps the inflate of
//! the previous ones while memory stays bounded (at most [`CHANNEL_CHUNKS`] body chunks).

use std::io::Read;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use soci_core::{BuildOptions, BuiltZtoc, Compression};
use tokio::sync::mpsc;

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
    #[error("layer {digest}: building the zTOC: {source}")]
    Build {
        digest: String,
        #[source]
        source: soci_core::Error,
    },
    #[error("layer {digest}: builder task failed: {detail}")]
    Task { digest: String, detail: String },
}

/// `Read` over the chunks the download task sends.
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while !self.current.has_remaining() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.remaining());
        self.current.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

/// Builds the zTOC of `layer`, restarting the whole stream (up to `retry.attempts` times, with
/// the registry requests' backoff) when the download breaks off (connection reset, timeout).
pub async fn build_layer(
    registry: &RegistryClient,
    repo: &str,
    layer: &LayerPlan,
    span_size: u64,
    build_tool: &str,
    retry: RetryPolicy,
) -> Result<LayerBuild, LayerError> {
    let mut attempt = 0;
    loop {
        let started = Instant::now();
        let result = build_once(registry, repo, layer, span_size, build_tool).await;
        match result {
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
            Err(LayerError::Build {
                source: soci_core::Error::Io { offset, source },
                digest,
            }) if retry.allows_another(attempt) => {
                tracing::warn!(layer = %digest, offset, error = %source, attempt, "layer stream broke off, restarting it");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(retry.delay(attempt, None)).await;
        attempt += 1;
    }
}

async fn build_once(
    registry: &RegistryClient,
    repo: &str,
    layer: &LayerPlan,
    span_size: u64,
    build_tool: &str,
) -> Result<BuiltZtoc, LayerError> {
    let response = registry
        .get_blob(repo, &layer.digest)
        .await
        .map_err(|source| LayerError::Download {
            digest: layer.digest.clone(),
            source,
        })?;
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let pump = tokio::spawn(async move {
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(std::io::Error::other);
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    let options = BuildOptions {
        span_size,
        build_tool: build_tool.to_string(),
        compression: layer.compression,
        expected_digest: Some(layer.digest.clone()),
    };
    let reader = ChannelReader {
        rx,
        current: Bytes::new(),
    };
    let built = tokio::task::spawn_blocking(move || soci_core::build_ztoc(reader, &options)).await;
    pump.abort();
    match built {
        Ok(Ok(ztoc)) => Ok(ztoc),
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
