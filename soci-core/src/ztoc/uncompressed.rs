//! Uncompressed layers (FORMAT.md section 5): the blob is its own uncompressed stream, spans are
//! fixed-size slices of it, and the zTOC's checkpoints field holds a nested TarZinfo.

use std::io::{BufReader, Read};

use sha2::{Digest, Sha256};

use super::budget::MemoryBudget;
use super::build::{LayerPass, refused};
use super::toc::TocCollector;
use super::write::CheckpointBytes;
use super::{ALGORITHM_UNCOMPRESSED, TAR_ZINFO_VERSION, TarZinfo};
use crate::tar::TarReader;
use crate::{Error, Result};

/// Reads an uncompressed layer once: its TOC into `toc`, the digests of the blob and its spans.
pub(super) fn uncompressed_pass<R: Read>(
    layer: R,
    span_size: u64,
    budget: &MemoryBudget,
    expected: Option<&str>,
    toc: &mut TocCollector,
) -> Result<LayerPass> {
    if span_size == 0 {
        return Err(Error::InvalidArgument(
            "span size 0 is not valid for an uncompressed layer (it crashes the reference)".into(),
        ));
    }
    let zinfo_span_size = i64::try_from(span_size)
        .map_err(|_| Error::InvalidArgument(format!("span size {span_size} is too large")))?;
    let mut hashing = SpanHasher::new(layer, span_size);
    let mut tar = TarReader::new(BufReader::with_capacity(1 << 18, &mut hashing));
    let collected = toc.collect(&mut tar, budget);
    let uncompressed_archive_size = tar.position();
    let mut rest = tar.into_inner();
    // The reference hashes the whole blob, including what follows the tar end-of-archive. A
    // refused layer is read to its end only when its digest has to be checked.
    let mut drained = Ok(());
    if collected.is_ok() || expected.is_some() {
        drained = std::io::copy(&mut rest, &mut std::io::sink())
            .map(drop)
            .map_err(|source| Error::Io {
                offset: uncompressed_archive_size,
                source,
            });
    }
    drop(rest);
    if let Err(err) = collected {
        return Err(refused(err, expected, || {
            drained.map(|()| hashing.finish().1)
        }));
    }
    drained?;
    let (size, layer_digest, span_digests) = hashing.finish();
    let zinfo = TarZinfo {
        version: TAR_ZINFO_VERSION,
        span_size: zinfo_span_size,
        size: size as i64,
    };
    Ok(LayerPass {
        compression_algorithm: ALGORITHM_UNCOMPRESSED,
        compressed_size: size,
        uncompressed_archive_size,
        layer_digest,
        spans: span_digests.len(),
        span_digests,
        checkpoints: CheckpointBytes::Flat(zinfo.to_bytes()),
    })
}

/// Passes an uncompressed layer through, hashing the whole blob and each fixed-size span.
struct SpanHasher<R> {
    inner: R,
    span_size: u64,
    total: u64,
    blob: Sha256,
    span: Sha256,
    span_digests: Vec<String>,
}

impl<R: Read> SpanHasher<R> {
    fn new(inner: R, span_size: u64) -> Self {
        Self {
            inner,
            span_size,
            total: 0,
            blob: Sha256::new(),
            span: Sha256::new(),
            span_digests: Vec::new(),
        }
    }

    fn finish(mut self) -> (u64, String, Vec<String>) {
        if !self.total.is_multiple_of(self.span_size) {
            let digest = std::mem::take(&mut self.span).finalize();
            self.span_digests
                .push(format!("sha256:{}", hex::encode(digest)));
        }
        (
            self.total,
            format!("sha256:{}", hex::encode(self.blob.finalize())),
            self.span_digests,
        )
    }
}

impl<R: Read> Read for SpanHasher<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut data = &buf[..n];
        self.blob.update(data);
        while !data.is_empty() {
            let room = (self.span_size - self.total % self.span_size) as usize;
            let take = room.min(data.len());
            self.span.update(&data[..take]);
            self.total += take as u64;
            data = &data[take..];
            if self.total.is_multiple_of(self.span_size) {
                let digest = std::mem::take(&mut self.span).finalize();
                self.span_digests
                    .push(format!("sha256:{}", hex::encode(digest)));
            }
        }
        Ok(n)
    }
}
