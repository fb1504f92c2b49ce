//! One streaming pass over a layer blob: zTOC bytes, digest and statistics out.

use std::io::{BufReader, Read};

use sha2::{Digest, Sha256};

use crate::tar::{self, TarReader};
use crate::zran::GzipIndexer;
use crate::ztoc::{
    ALGORITHM_GZIP, ALGORITHM_UNCOMPRESSED, FileMetadata, TAR_ZINFO_VERSION, TarZinfo,
    ZTOC_VERSION, Ztoc,
};
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
/// (format doc section 8), so the caller can leave the layer out and index the rest.
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

/// Like [`build_ztoc`], but returns the reference's bytes even for layers no consumer can read.
pub fn build_reference_ztoc<R: Read>(layer: R, options: &BuildOptions) -> Result<ReferenceBuild> {
    let span_size = i64::try_from(options.span_size).map_err(|_| {
        Error::InvalidArgument(format!("span size {} is too large", options.span_size))
    })?;
    let mut toc = TocCollector::default();
    let (ztoc, compressed_size, layer_digest, spans) = match options.compression {
        Compression::Gzip => {
            let indexer = GzipIndexer::new(layer, options.span_size)?;
            let mut tar = TarReader::new(indexer);
            toc.collect(&mut tar)?;
            let uncompressed_archive_size = tar.position();
            let index = tar.into_inner().finish()?;
            let spans = index.checkpoints.len();
            let ztoc = Ztoc {
                version: ZTOC_VERSION.into(),
                build_tool_identifier: options.build_tool.clone().into_bytes(),
                compressed_archive_size: index.compressed_size as i64,
                uncompressed_archive_size: uncompressed_archive_size as i64,
                toc: std::mem::take(&mut toc.entries),
                compression_algorithm: ALGORITHM_GZIP,
                max_span_id: spans as i32 - 1,
                span_digests: index
                    .span_digests
                    .into_iter()
                    .map(String::into_bytes)
                    .collect(),
                checkpoints: index.blob,
            };
            (ztoc, index.compressed_size, index.blob_digest, spans)
        }
        Compression::Uncompressed => {
            if options.span_size == 0 {
                return Err(Error::InvalidArgument(
                    "span size 0 is not valid for an uncompressed layer (it crashes the reference)"
                        .into(),
                ));
            }
            let mut hashing = SpanHasher::new(layer, options.span_size);
            let mut tar = TarReader::new(BufReader::with_capacity(1 << 18, &mut hashing));
            toc.collect(&mut tar)?;
            let uncompressed_archive_size = tar.position();
            let mut rest = tar.into_inner();
            std::io::copy(&mut rest, &mut std::io::sink()).map_err(|source| Error::Io {
                offset: uncompressed_archive_size,
                source,
            })?;
            drop(rest);
            let (size, blob_digest, span_digests) = hashing.finish();
            let spans = span_digests.len();
            let zinfo = TarZinfo {
                version: TAR_ZINFO_VERSION,
                span_size,
                size: size as i64,
            };
            let ztoc = Ztoc {
                version: ZTOC_VERSION.into(),
                build_tool_identifier: options.build_tool.clone().into_bytes(),
                compressed_archive_size: size as i64,
                uncompressed_archive_size: uncompressed_archive_size as i64,
                toc: std::mem::take(&mut toc.entries),
                compression_algorithm: ALGORITHM_UNCOMPRESSED,
                max_span_id: spans as i32 - 1,
                span_digests: span_digests.into_iter().map(String::into_bytes).collect(),
                checkpoints: zinfo.to_bytes(),
            };
            (ztoc, size, blob_digest, spans)
        }
    };
    if let Some(expected) = &options.expected_digest
        && expected != &layer_digest
    {
        return Err(Error::DigestMismatch {
            expected: expected.clone(),
            actual: layer_digest,
        });
    }
    let built = BuiltZtoc {
        entries: ztoc.toc.len(),
        uncompressed_size: ztoc.uncompressed_archive_size as u64,
        ztoc: ztoc.to_bytes(),
        layer_digest,
        compressed_size,
        spans,
        xattrs_disableable: toc.xattrs_disableable,
    };
    Ok(ReferenceBuild {
        ztoc: built,
        unindexable: toc.unindexable,
    })
}

/// The reference's name for a tar type, or the error it fails the layer with.
pub(crate) fn type_name(typeflag: u8) -> Result<&'static str> {
    Ok(match typeflag {
        tar::TYPE_LINK => "hardlink",
        tar::TYPE_SYMLINK => "symlink",
        tar::TYPE_DIR => "dir",
        tar::TYPE_REG => "reg",
        tar::TYPE_CHAR => "char",
        tar::TYPE_BLOCK => "block",
        tar::TYPE_FIFO => "fifo",
        other => {
            return Err(Error::Rejected(format!(
                "unsupported input tar entry {:?}",
                char::from(other)
            )));
        }
    })
}

/// Turns tar entries into TOC entries, noting what a consumer could not read.
#[derive(Default)]
struct TocCollector {
    entries: Vec<FileMetadata>,
    unindexable: Vec<String>,
    xattrs_disableable: bool,
}

impl TocCollector {
    fn collect<R: std::io::BufRead>(&mut self, tar: &mut TarReader<R>) -> Result<()> {
        self.xattrs_disableable = true;
        while let Some(entry) = tar.next_entry()? {
            let file_type = type_name(entry.typeflag)?;
            let name = String::from_utf8_lossy(&entry.name).into_owned();
            let mod_time = entry.mod_time.to_rfc3339_utc();
            if entry.sparse {
                self.unindexable
                    .push(format!("{name:?} is a GNU sparse file"));
            }
            if entry.is_header_only() && entry.size != 0 {
                self.unindexable.push(format!(
                    "{name:?} is a {file_type} entry with a non-zero size field ({})",
                    entry.size
                ));
            }
            if mod_time.is_none() {
                self.unindexable.push(format!(
                    "{name:?} has a modification time outside years 0..9999"
                ));
            }
            for (what, id) in [("uid", entry.uid), ("gid", entry.gid)] {
                if u32::try_from(id).is_err() {
                    self.unindexable
                        .push(format!("{name:?} has {what} {id}, outside 0..2^32-1"));
                }
            }
            if entry.name.ends_with(b".wh..wh..opq")
                || entry
                    .pax_records
                    .keys()
                    .any(|k| k.starts_with(b"SCHILY.xattr."))
            {
                self.xattrs_disableable = false;
            }
            self.entries.push(FileMetadata {
                name: entry.name,
                file_type: file_type.as_bytes().to_vec(),
                uncompressed_offset: entry.data_offset as i64,
                uncompressed_size: entry.size,
                linkname: entry.linkname,
                mode: entry.mode,
                uid: entry.uid as u32,
                gid: entry.gid as u32,
                uname: entry.uname,
                gname: entry.gname,
                mod_time: mod_time.unwrap_or_default().into_bytes(),
                devmajor: entry.devmajor,
                devminor: entry.devminor,
                xattrs: entry.pax_records.into_iter().collect(),
            });
        }
        Ok(())
    }
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
