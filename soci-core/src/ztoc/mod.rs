//! The zTOC: its model, the byte-exact flatbuffer writer (`write.rs`), a bounds-checked reader
//! (`read.rs`), the one-pass builder (`build.rs`, with the TOC collector in `toc.rs` and the
//! uncompressed-layer pass in `uncompressed.rs`) and the consumer's checks (`verify.rs`).
//!
//! The writer drives the `flatbuffers` builder in the reference's call order (FORMAT.md
//! section 4), which fixes the bytes; the generated `create()` helpers would reorder fields.

/// The only zTOC version the reference writes.
pub const ZTOC_VERSION: &str = "0.9";
/// `CompressionInfo.compression_algorithm` values.
pub const ALGORITHM_GZIP: i8 = 1;
pub const ALGORITHM_UNCOMPRESSED: i8 = 2;
/// The TarZinfo version the reference writes for uncompressed layers.
pub const TAR_ZINFO_VERSION: i32 = 2;

/// One TOC entry. Byte strings are raw (tar names need not be UTF-8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileMetadata {
    pub name: Vec<u8>,
    pub file_type: Vec<u8>,
    pub uncompressed_offset: i64,
    pub uncompressed_size: i64,
    pub linkname: Vec<u8>,
    pub mode: i64,
    pub uid: u32,
    pub gid: u32,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub mod_time: Vec<u8>,
    pub devmajor: i64,
    pub devminor: i64,
    /// All PAX records, sorted bytewise by key.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Whether a tar entry rules out soci's xattr optimisation for its layer: an opaque whiteout,
/// or an entry with `SCHILY.xattr.*` PAX records (`record_keys`, the keys of its PAX records).
pub fn needs_xattr_lookups<'k>(
    name: &[u8],
    mut record_keys: impl Iterator<Item = &'k [u8]>,
) -> bool {
    name.ends_with(b".wh..wh..opq") || record_keys.any(|k| k.starts_with(b"SCHILY.xattr."))
}

impl FileMetadata {
    /// [`needs_xattr_lookups`] for an entry of a zTOC's TOC (whose `xattrs` are its PAX
    /// records).
    pub fn needs_xattr_lookups(&self) -> bool {
        needs_xattr_lookups(&self.name, self.xattrs.iter().map(|(k, _)| k.as_slice()))
    }
}

/// A whole zTOC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ztoc {
    pub version: Vec<u8>,
    pub build_tool_identifier: Vec<u8>,
    pub compressed_archive_size: i64,
    pub uncompressed_archive_size: i64,
    pub toc: Vec<FileMetadata>,
    pub compression_algorithm: i8,
    pub max_span_id: i32,
    pub span_digests: Vec<Vec<u8>>,
    /// The gzip checkpoint blob, or a nested TarZinfo flatbuffer for uncompressed layers.
    pub checkpoints: Vec<u8>,
}

/// The nested TarZinfo flatbuffer of an uncompressed layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TarZinfo {
    pub version: i32,
    pub span_size: i64,
    pub size: i64,
}

mod budget;
mod build;
mod packed;
mod read;
mod toc;
mod uncompressed;
pub mod verify;
mod write;

pub(crate) use budget::OverBudget;
pub use budget::{
    FLATBUFFER_MAX_BYTES, GNU_SPARSE_MAP_MAX_BYTES, MemoryBudget, PAX_RECORD_MAX_BYTES,
};
pub use build::{
    BuildOptions, BuiltZtoc, Compression, DEFAULT_SPAN_SIZE, ReferenceBuild, build_reference_ztoc,
    build_reference_ztoc_with, build_ztoc,
};
