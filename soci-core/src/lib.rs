//! # soci-core
//!
//! The SOCI (Seekable OCI) format engine: everything needed to make a container image layer
//! lazy-loadable, with no AWS, no network and no temporary files.
//!
//! - [`build_ztoc`]: ONE streaming pass over a compressed layer blob (`Read` in) produces the
//!   zTOC bytes the reference implementation (`awslabs/soci-snapshotter`) would write, the blob's
//!   sha256 and statistics. Memory is bounded by the zTOC, not by the layer.
//! - [`tar`]: a tar reader with Go `archive/tar` semantics (what the reference uses).
//! - [`ztoc`]: the zTOC flatbuffer model, its byte-exact writer and a reader.
//! - [`verify`]: the consumer's checks, and random-access extraction of one file.
//! - [`gojson`], [`oci`], [`index`]: SOCI index manifests (v1, v2) and the v2 image conversion,
//!   serialized byte for byte as Go's `encoding/json` would.
//!
//! ## Inflate
//!
//! Gzip checkpoints need zlib's block mode (`Z_BLOCK`, `data_type`, `inflatePrime`,
//! `inflateSetDictionary`), which flate2's safe API does not expose. We use `libz-rs-sys`, the C
//! API of zlib-rs: a memory-safe Rust zlib that inflates faster than the system zlib, needs no C
//! toolchain for cross builds (Lambda arm64), and behaves like zlib 1.2.13 (which the reference
//! links) at block boundaries.

pub mod error;
pub mod gojson;
pub mod index;
pub mod oci;
pub mod tar;
pub mod zran;
pub mod ztoc;

pub use error::{Error, Result};
mod build;
pub mod verify;

pub use build::{
    BuildOptions, BuiltZtoc, Compression, DEFAULT_SPAN_SIZE, ReferenceBuild, build_reference_ztoc,
    build_ztoc,
};
pub use verify::{LayerSource, VerifyReport, extract_file, verify};
pub use zran::bare_inflate;
