//! zran-style gzip checkpoints: one streaming pass that inflates a (multi-member) gzip blob,
//! hands the uncompressed bytes to a reader, and records where a consumer can restart inflation
//! (FORMAT.md section 3). Also the reverse: inflating one span from its checkpoint.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of history deflate may refer back to.
pub const WINDOW_SIZE: usize = 32768;
/// Bytes per checkpoint in the blob: in (8), out (8), bits (1), window.
pub const CHECKPOINT_SIZE: usize = 8 + 8 + 1 + WINDOW_SIZE;
/// Bytes before the checkpoints in the blob: count (4) and span size (8).
pub const BLOB_HEADER_SIZE: usize = 4 + 8;

/// Deflate's largest expansion: a 258-byte match per 2 bits at best, plus block overhead
/// (zlib's technical details put it at 1032:1). A zTOC claiming more uncompressed bytes from a
/// compressed range than this is wrong, and is refused before anything is sized from it.
pub const MAX_DEFLATE_RATIO: u64 = 1032;

/// The most uncompressed bytes `compressed` bytes of gzip can yield (a small allowance for
/// the bits a checkpoint borrows from the byte before it).
pub fn max_inflated_len(compressed: u64) -> u64 {
    compressed
        .saturating_add(1)
        .saturating_mul(MAX_DEFLATE_RATIO)
}

const INPUT_CHUNK: usize = 1 << 16;
const OUTPUT_CHUNK: usize = 1 << 18;

/// Messages (nearly all compressed chunks) per batch to the hashing thread: one wake-up per
/// batch, not per chunk (a wake-up per 64 KiB chunk cost the build ~3% against a bare inflate).
const HASH_BATCH: usize = 8;
/// Batches in flight to the hashing thread (with the batch being filled, ~8.5 MiB of chunks).
/// Through incompressible stretches inflate outruns the two sha256 passes; with 8 batches the
/// queue filled and inflate waited (~15 ms per 700 MB layer), with 16 it never fills.
const HASH_QUEUE: usize = 16;

/// How the gzip stream of a layer is inflated. The zTOC is the same either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inflation {
    /// Two cores when there are two, else one.
    Auto,
    /// One core (zlib-rs in block mode).
    Sequential,
    /// Two cores: zlib-rs on the caller's thread, speculation on a second one.
    Parallel(ParallelTuning),
}

/// How [`GzipIndexer::with_budget`] and `build_ztoc` inflate. Sequential: the parallel inflate
/// spends ~20% more CPU in all (the start of a speculated stretch is inflated twice) and holds
/// more memory; on the 2-core bench machine it beats one core on a 700 MB layer but not on an
/// 80 MB one (`bench ztoc`: 0.695 vs 0.762 s, and 0.254 vs 0.207 s; 193 vs 22 MiB peak RSS).
/// `Inflation::Auto` opts in.
pub const DEFAULT_INFLATION: Inflation = Inflation::Sequential;

/// Gzip indexers alive in this process (a caller may index several layers at once).
static ACTIVE_INDEXERS: AtomicUsize = AtomicUsize::new(0);

/// Counts one live indexer in [`ACTIVE_INDEXERS`].
pub(crate) struct ActiveIndexer(());

impl ActiveIndexer {
    /// Registers an indexer; returns the guard and how many are alive with it.
    pub(crate) fn register() -> (Self, usize) {
        let alive = ACTIVE_INDEXERS.fetch_add(1, Ordering::Relaxed) + 1;
        (Self(()), alive)
    }
}

impl Drop for ActiveIndexer {
    fn drop(&mut self) {
        ACTIVE_INDEXERS.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Inflation {
    /// The parallel tuning to use, `None` for the sequential inflate. `alive`: indexers in the
    /// process, this one included. The parallel inflate spends about a fifth more CPU in all
    /// to finish sooner, so `Auto` uses it only when every indexer alive can have two cores.
    fn resolve(self, alive: usize) -> Option<ParallelTuning> {
        match self {
            Self::Sequential => None,
            Self::Parallel(tuning) => Some(tuning),
            Self::Auto => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                (cores >= 2 * alive.max(1)).then_some(ParallelTuning::DEFAULT)
            }
        }
    }
}

/// A restart point: inflation can resume at compressed byte `input` (with `bits` bits of the
/// byte before it) producing uncompressed byte `output`, given the preceding 32 KiB of output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub input: u64,
    pub output: u64,
    pub bits: u8,
}

impl Checkpoint {
    /// Where the compressed bytes of the span starting at this checkpoint begin.
    pub fn span_start(&self) -> u64 {
        // Saturating: a zTOC may claim bits at input offset 0 (the header check reports it).
        self.input.saturating_sub(u64::from(self.bits != 0))
    }
}

mod inflater;
mod parallel;
mod records;
mod span;
mod span_hash;
mod writer;

pub use parallel::{ParallelTuning, spliced_bytes};
pub use records::CheckpointRecords;
pub use span::{CheckpointBlob, bare_inflate, gzip_header_len, inflate_span};
pub use writer::{GzipIndex, GzipIndexer};
