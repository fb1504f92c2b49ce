//! One streaming pass over a layer blob: zTOC bytes, digest and statistics out.

use std::io::Read;

use super::budget::MemoryBudget;
use super::toc::TocCollector;
use super::uncompressed::uncompressed_pass;
use super::write::{CheckpointBytes, ZtocFields, write_ztoc};
use super::{ALGORITHM_GZIP, ZTOC_VERSION};
use crate::tar::TarReader;
use crate::zinfo::{DEFAULT_INFLATION, GzipIndexer, Inflation};
use crate::{Error, Result};

/// The reference's default span size (4 MiB).
pub const DEFAULT_SPAN_SIZE: u64 = 4 << 20;

/// How the layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Uncompressed,
}

impl Compression {
    /// The compression of a layer media type SOCI can index, `None` for the ones it leaves out
    /// (zstd, encrypted, non-distributable, anything unknown).
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Some(Self::Gzip),
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Self::Uncompressed),
            _ => None,
        }
    }
}

/// What to build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub span_size: u64,
    /// Written into the zTOC (`build_tool_identifier`); part of its bytes.
    pub build_tool: String,
    pub compression: Compression,
    /// `sha256:<hex>` the blob must have; checked at the end of the pass (and before a layer
    /// refused part-way is reported as `Rejected` or `Unindexable`).
    pub expected_digest: Option<String>,
    /// What one build may hold in memory; over it, the layer is [`Error::Unindexable`]. For a
    /// Lambda: `MemoryBudget::for_memory_mib(memory_size_mib)`.
    pub budget: MemoryBudget,
}

/// The result of [`build_ztoc`].
#[derive(Clone, Debug)]
pub struct BuiltZtoc {
    /// The zTOC flatbuffer, exactly as the reference would write it.
    pub ztoc: Vec<u8>,
    /// `sha256:<hex>` of the layer blob.
    pub layer_digest: String,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub entries: usize,
    pub spans: usize,
    /// True when no entry has a `SCHILY.xattr.*` record and no name ends in `.wh..wh..opq`:
    /// the index may carry `com.amazon.soci.disable-xattrs: "true"` for this layer.
    pub xattrs_disableable: bool,
}

/// Builds the zTOC of one layer in a single pass over `layer`.
///
/// Fails with [`Error::Unindexable`] when the reference would write a zTOC no consumer can use
/// (FORMAT.md section 8) or when the layer is over the memory budget, so the caller can leave
/// the layer out and index the rest. With `expected_digest` set, a layer refused part-way is
/// read to its end first: bytes that are not the expected ones give
/// [`Error::DigestMismatch`], never `Rejected` or `Unindexable`.
pub fn build_ztoc<R: Read>(layer: R, options: &BuildOptions) -> Result<BuiltZtoc> {
    let build = build_reference_ztoc(layer, options)?;
    match build.unindexable.first() {
        Some(reason) => Err(Error::Unindexable(reason.clone())),
        None => Ok(build.ztoc),
    }
}

/// What the reference implementation writes for a layer, with the reasons (if any) why no
/// consumer could use it.
#[derive(Clone, Debug)]
pub struct ReferenceBuild {
    pub ztoc: BuiltZtoc,
    /// Why a consumer would reject some file of this layer; empty when the zTOC is usable.
    pub unindexable: Vec<String>,
}

/// What a pass over one layer yields besides its TOC: the zTOC fields that depend on the
/// compression, and the blob's digest.
pub(super) struct LayerPass {
    pub compression_algorithm: i8,
    pub compressed_size: u64,
    pub uncompressed_archive_size: u64,
    pub layer_digest: String,
    pub spans: usize,
    pub span_digests: Vec<String>,
    /// `CompressionInfo.checkpoints`: the gzip checkpoint blob or a nested TarZinfo.
    pub checkpoints: CheckpointBytes,
}

/// Like [`build_ztoc`], but returns the reference's bytes even for layers no consumer can read
/// (still within the memory budget).
pub fn build_reference_ztoc<R: Read>(layer: R, options: &BuildOptions) -> Result<ReferenceBuild> {
    build_reference_ztoc_with(layer, options, DEFAULT_INFLATION)
}

/// Like [`build_reference_ztoc`], inflating a gzip layer on one or two cores as told (the bytes
/// are the same either way; the choice exists for tests and benchmarks).
pub fn build_reference_ztoc_with<R: Read>(
    layer: R,
    options: &BuildOptions,
    inflation: Inflation,
) -> Result<ReferenceBuild> {
    let budget = &options.budget;
    if i64::try_from(options.span_size).is_err() {
        return Err(Error::InvalidArgument(format!(
            "span size {} is too large",
            options.span_size
        )));
    }
    let mut toc = TocCollector::default();
    let expected = options.expected_digest.as_deref();
    let pass = match options.compression {
        Compression::Gzip => gzip_pass(
            layer,
            options.span_size,
            budget,
            expected,
            &mut toc,
            inflation,
        )?,
        Compression::Uncompressed => {
            uncompressed_pass(layer, options.span_size, budget, expected, &mut toc)?
        }
    };
    if let Some(expected) = expected
        && expected != pass.layer_digest
    {
        return Err(Error::DigestMismatch {
            expected: expected.to_string(),
            actual: pass.layer_digest,
        });
    }
    let entries = toc.entries.len();
    let span_digests: Vec<Vec<u8>> = pass
        .span_digests
        .into_iter()
        .map(String::into_bytes)
        .collect();
    let fields = ZtocFields {
        version: ZTOC_VERSION.as_bytes(),
        build_tool_identifier: options.build_tool.as_bytes(),
        compressed_archive_size: pass.compressed_size as i64,
        uncompressed_archive_size: pass.uncompressed_archive_size as i64,
        compression_algorithm: pass.compression_algorithm,
        max_span_id: pass.spans as i32 - 1,
        span_digests: &span_digests,
    };
    let ztoc = write_ztoc(&fields, &toc.size, &mut toc.entries, pass.checkpoints)?;
    let built = BuiltZtoc {
        entries,
        uncompressed_size: pass.uncompressed_archive_size,
        ztoc,
        layer_digest: pass.layer_digest,
        compressed_size: pass.compressed_size,
        spans: pass.spans,
        xattrs_disableable: toc.xattrs_disableable,
    };
    Ok(ReferenceBuild {
        ztoc: built,
        unindexable: toc.unindexable,
    })
}

/// The error for a layer refused part-way. When the caller knows the digest the bytes must
/// have, the rest of the blob is read (`digest`) first: a refusal of bytes that are not the
/// expected ones is a download failure (the caller retries), not a property of the layer.
pub(super) fn refused(
    err: Error,
    expected: Option<&str>,
    digest: impl FnOnce() -> Result<String>,
) -> Error {
    let Some(expected) = expected else {
        return err;
    };
    if !matches!(err, Error::Rejected(_) | Error::Unindexable(_)) {
        return err;
    }
    match digest() {
        Ok(actual) if actual != expected => Error::DigestMismatch {
            expected: expected.to_string(),
            actual,
        },
        Ok(_) => err,
        Err(read_error) => read_error,
    }
}

/// Inflates a gzip layer once: its TOC into `toc`, checkpoints and digests from the inflater.
fn gzip_pass<R: Read>(
    layer: R,
    span_size: u64,
    budget: &MemoryBudget,
    expected: Option<&str>,
    toc: &mut TocCollector,
    inflation: Inflation,
) -> Result<LayerPass> {
    let indexer =
        GzipIndexer::with_inflation(layer, span_size, budget.max_checkpoint_bytes, inflation)?;
    let mut tar = TarReader::new(indexer);
    let collected = toc.collect(&mut tar, budget);
    let uncompressed_archive_size = tar.position();
    let mut indexer = tar.into_inner();
    // What follows the end-of-archive (record padding, usually under 10 KiB) is inflated for
    // the checkpoints and digests the reference writes over it, but no more than a span of it.
    let rest = collected.and_then(|()| indexer.inflate_rest(span_size.max(1 << 20)));
    if let Err(err) = rest {
        return Err(refused(err, expected, || indexer.drain_digest()));
    }
    let index = indexer.finish()?;
    Ok(LayerPass {
        compression_algorithm: ALGORITHM_GZIP,
        compressed_size: index.compressed_size,
        uncompressed_archive_size,
        layer_digest: index.blob_digest,
        spans: index.checkpoints.len(),
        span_digests: index.span_digests,
        checkpoints: CheckpointBytes::Records(index.blob),
    })
}
