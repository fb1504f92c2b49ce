//! One streaming pass over a layer blob: zTOC bytes, digest and statistics out.

use std::io::Read;

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
pub fn build_ztoc<R: Read>(layer: R, options: &BuildOptions) -> Result<BuiltZtoc> {
    let _ = (layer, options);
    Err(Error::InvalidArgument("build_ztoc: not implemented yet".into()))
}
