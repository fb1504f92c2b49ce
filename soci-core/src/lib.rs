//! # soci-core
//!
//! The SOCI (Seekable OCI) format engine: everything needed to make a container image layer
//! lazy-loadable, with no AWS, no network and no temporary files.
//!
//! The format it implements is written down in `soci-core/FORMAT.md`, rendered here as
//! [`format`](mod@format); comments cite its sections as "FORMAT.md section N".
//!
//! - [`build_ztoc`]: ONE streaming pass over a compressed layer blob (`Read` in) produces the
//!   zTOC bytes the reference implementation (`awslabs/soci-snapshotter`) would write, the blob's
//!   sha256 and statistics. Memory is bounded by the zTOC, not by the layer.
//! - [`tar`]: a tar reader with Go `archive/tar` semantics (what the reference uses).
//! - [`zinfo`]: gzip checkpoints: the one-pass checkpoint writer and the span inflater.
//! - [`ztoc`]: the zTOC flatbuffer model, its byte-exact writer, a reader, the builder, and
//!   [`ztoc::verify`]: the consumer's checks ([`verify()`]) and random-access extraction of one
//!   file ([`extract_file`]).
//! - [`gojson`], [`oci`], [`index`]: SOCI index manifests (v1, v2) and the v2 image conversion,
//!   serialized byte for byte as Go's `encoding/json` would.
//! - [`inspect`]: walks a pushed SOCI graph (v2 OCI index or v1 SOCI index) and checks every
//!   document and every zTOC, through a [`inspect::GraphSource`] the caller implements.
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
pub mod inspect;
pub mod oci;
pub mod tar;
pub mod zinfo;
pub mod ztoc;

/// The SOCI format as this crate implements it (`FORMAT.md`).
#[doc = include_str!("../FORMAT.md")]
pub mod format {}

pub use error::{Error, Result};
pub use zinfo::bare_inflate;
pub use ztoc::verify::{LayerSource, VerifyReport, extract_file, verify};
pub use ztoc::{
    BuildOptions, BuiltZtoc, Compression, DEFAULT_SPAN_SIZE, MemoryBudget, ReferenceBuild,
    build_reference_ztoc, build_reference_ztoc_with, build_ztoc,
};

/// Former module paths, kept so `soci_core::zran::...` and `soci_core::verify::...` keep working.
pub use zinfo as zran;
pub use ztoc::verify;
