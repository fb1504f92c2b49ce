//! The builder's memory budget: how large a zTOC (and the model behind it) one layer may make
//! the builder hold before the layer is refused as [`Error::Unindexable`].
//!
//! A hostile layer can ask for far more memory than its own size: ~1 MiB PAX records on
//! thousands of entries, millions of empty files, or a gzip bomb whose zeros become a checkpoint
//! (32 KiB window) every span. The reference builds whatever it is given; a Lambda with a fixed
//! memory size must refuse such a layer with a reason instead of being killed on every retry.

use crate::Error;

/// The flatbuffers builder cannot address more than this (it panics beyond).
pub const FLATBUFFER_MAX_BYTES: u64 = flatbuffers::FLATBUFFERS_MAX_BUFFER_SIZE as u64;

/// Go's `archive/tar` stops reading a GNU sparse 1.0 map after this many bytes (the fix for
/// CVE-2022-2879); the same limit as for PAX records and GNU long names.
pub const GNU_SPARSE_MAP_MAX_BYTES: u64 = 1 << 20;
/// Go's limit for a PAX header or GNU long-name payload.
pub const PAX_RECORD_MAX_BYTES: u64 = 1 << 20;

/// The smallest TOC entry the writer can produce (six empty strings, a table and its slot): the
/// entry limit is derived from the TOC-byte limit with it.
const MIN_ENTRY_BYTES: u64 = 64;

/// Limits on what one layer's build may hold in memory. Every limit is checked before the
/// memory it guards is allocated; a layer over any of them is [`Error::Unindexable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Upper estimate of the serialized TOC (every entry, its strings and PAX records).
    pub max_toc_bytes: u64,
    /// TOC entries.
    pub max_entries: u64,
    /// The gzip checkpoint blob (32,785 bytes per span).
    pub max_checkpoint_bytes: u64,
}

impl MemoryBudget {
    /// The budget for a process with `memory_mib` MiB (the Lambda's memory size): a build's
    /// peak is about 1.5x its zTOC plus a constant, and a few layers may be built at once, so
    /// one zTOC gets a quarter of the memory for its TOC and an eighth for its checkpoints
    /// (a 1,024 MiB Lambda: 256 MiB of TOC, 128 MiB of checkpoints, enough for ~16 GB of
    /// uncompressed data at the default 4 MiB span). Never beyond what a flatbuffer can hold.
    pub fn for_memory_mib(memory_mib: u64) -> Self {
        let memory = memory_mib.saturating_mul(1 << 20);
        let max_toc_bytes = (memory / 4).min(FLATBUFFER_MAX_BYTES / 2);
        Self {
            max_toc_bytes,
            max_entries: max_toc_bytes / MIN_ENTRY_BYTES,
            max_checkpoint_bytes: (memory / 8).min(FLATBUFFER_MAX_BYTES / 4),
        }
    }

    /// No limit but the flatbuffer's own (2 GiB): what the reference would attempt.
    pub fn unlimited() -> Self {
        Self {
            max_toc_bytes: FLATBUFFER_MAX_BYTES,
            max_entries: FLATBUFFER_MAX_BYTES / MIN_ENTRY_BYTES,
            max_checkpoint_bytes: FLATBUFFER_MAX_BYTES,
        }
    }
}

impl Default for MemoryBudget {
    /// The budget of a 2,048 MiB process.
    fn default() -> Self {
        Self::for_memory_mib(2048)
    }
}

/// A limit a layer went over, carried through `std::io::Error` from the inflater to the tar
/// reader and turned back into [`Error::Unindexable`] there.
#[derive(Debug, thiserror::Error)]
#[error("the layer is over the builder's memory budget: {0}")]
pub(crate) struct OverBudget(pub(crate) String);

impl OverBudget {
    pub(crate) fn limit(name: &str, limit: u64, value: u64, at: impl std::fmt::Display) -> Self {
        Self(format!(
            "{name} = {limit}, the layer needs at least {value} ({at})"
        ))
    }

    pub(crate) fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// The crate error for an I/O error that carries an [`OverBudget`], if it does.
    pub(crate) fn from_io(err: &std::io::Error) -> Option<Error> {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<OverBudget>())
            .map(|over| Error::Unindexable(over.to_string()))
    }
}

impl From<OverBudget> for Error {
    fn from(over: OverBudget) -> Self {
        Error::Unindexable(over.to_string())
    }
}
