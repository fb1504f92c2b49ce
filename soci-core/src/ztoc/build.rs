//! One streaming pass over a layer blob: zTOC bytes, digest and statistics out.

use std::io::Read;

use super::toc::TocCollector;
use super::uncompressed::uncompressed_pass;
use super::{ALGORITHM_GZIP, ZTOC_VERSION, Ztoc};
use crate::tar::TarReader;
use crate::zinfo::GzipIndexer;
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
    /// `sha256:<hex>` the blob must have; checked at the end of the pass.
    pub expected_digest: Option<String>,
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
/// (FORMAT.md section 8), so the caller can leave the layer out and index the rest.
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
    pub checkpoints: Vec<u8>,
}

/// Like [`build_ztoc`], but returns the reference's bytes even for layers no consumer can read.
pub fn build_reference_ztoc<R: Read>(layer: R, options: &BuildOptions) -> Result<ReferenceBuild> {
    if i64::try_from(options.span_size).is_err() {
        return Err(Error::InvalidArgument(format!(
            "span size {} is too large",
            options.span_size
        )));
    }
    let mut toc = TocCollector::default();
    let pass = match options.compression {
        Compression::Gzip => gzip_pass(layer, options.span_size, &mut toc)?,
        Compression::Uncompressed => uncompressed_pass(layer, options.span_size, &mut toc)?,
    };
    if let Some(expected) = &options.expected_digest
        && expected != &pass.layer_digest
    {
        return Err(Error::DigestMismatch {
            expected: expected.clone(),
            actual: pass.layer_digest,
        });
    }
    let ztoc = Ztoc {
        version: ZTOC_VERSION.into(),
        build_tool_identifier: options.build_tool.clone().into_bytes(),
        compressed_archive_size: pass.compressed_size as i64,
        uncompressed_archive_size: pass.uncompressed_archive_size as i64,
        toc: std::mem::take(&mut toc.entries),
        compression_algorithm: pass.compression_algorithm,
        max_span_id: pass.spans as i32 - 1,
        span_digests: pass
            .span_digests
            .into_iter()
            .map(String::into_bytes)
            .collect(),
        checkpoints: pass.checkpoints,
    };
    let built = BuiltZtoc {
        entries: ztoc.toc.len(),
        uncompressed_size: ztoc.uncompressed_archive_size as u64,
        ztoc: ztoc.to_bytes(),
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

/// Inflates a gzip layer once: its TOC into `toc`, checkpoints and digests from the inflater.
fn gzip_pass<R: Read>(layer: R, span_size: u64, toc: &mut TocCollector) -> Result<LayerPass> {
    let indexer = GzipIndexer::new(layer, span_size)?;
    let mut tar = TarReader::new(indexer);
    toc.collect(&mut tar)?;
    let uncompressed_archive_size = tar.position();
    let index = tar.into_inner().finish()?;
    Ok(LayerPass {
        compression_algorithm: ALGORITHM_GZIP,
        compressed_size: index.compressed_size,
        uncompressed_archive_size,
        layer_digest: index.blob_digest,
        spans: index.checkpoints.len(),
        span_digests: index.span_digests,
        checkpoints: index.blob,
    })
}
