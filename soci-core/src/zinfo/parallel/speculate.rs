//! The speculative side of the parallel inflate: on a second thread, find a deflate block start
//! some way ahead of the sequential inflater and inflate from there without knowing the 32 KiB
//! of history before it.
//!
//! Instead of a second deflate decoder emitting window markers (rapidgzip), the chunk is
//! inflated by zlib-rs itself, twice, with two dictionaries that differ at every position and
//! together name it: position `i` holds `a = i & 0xff` in the first and `a ^ ((i >> 8) + 1)` in
//! the second. A byte that comes out the same both times was built from literals only and is
//! right whatever the real history is; a byte that differs was copied (maybe through other
//! copies) from history position `((a ^ b) - 1) << 8 | a`, so once the history is known the
//! sequential side replaces it (`resolve`). The second run stops after 32 KiB of agreeing
//! output, since nothing later can reach back past that.
//!
//! Nothing produced here is trusted on its own: the sequential inflater must reach the start
//! bit offset exactly at a block boundary (else the start was a false positive), and every
//! error just ends the speculation early (the sequential inflater then meets the same bytes and
//! reports what zlib says about them).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, mpsc};

use libz_rs_sys as zlib;

use super::super::WINDOW_SIZE;
use super::super::inflater::Inflater;
use super::Work;
use super::finder::plausible_dynamic;
use crate::zinfo::span_hash::SpanHashes;

/// `Job::start` while the finder runs.
pub(super) const START_UNKNOWN: u64 = u64::MAX;
/// `Job::start` when no block start was found (or the job was cancelled).
pub(super) const START_NONE: u64 = u64::MAX - 1;

/// Output bytes per zlib call.
const STEP_OUT: usize = 1 << 18;

/// A stretch of the compressed stream to inflate speculatively.
pub(in crate::zinfo) struct Job {
    /// Blob offset of `input[0]`.
    pub base: u64,
    pub input: Vec<u8>,
    /// Blob offset where the block finder gives up (exclusive).
    pub search_end: u64,
    /// Stop at the first block boundary at or after this blob offset (in bytes)...
    pub end: u64,
    /// ...or once this much output has been produced (bounded memory on high ratios).
    pub max_output: usize,
    /// The bit offset of the block start found, or one of the sentinels above; published as
    /// soon as it is known so the sequential inflater can aim at it.
    pub start: AtomicU64,
    pub cancelled: AtomicBool,
    /// The speculation, once `done` (`None` then: nothing usable).
    pub result: Mutex<Option<Speculation>>,
    pub done: AtomicBool,
    /// Signalled (with `result`'s lock) when `start` is published and when `done` is set.
    pub signal: Condvar,
}

impl Job {
    /// Wakes the sequential side if it waits for this job.
    fn notify(&self) {
        // Taking the lock orders the store before a waiter's check.
        drop(self.result.lock());
        self.signal.notify_all();
    }

    /// Waits until `ready` holds or the speculating thread is gone (`alive` false).
    pub(super) fn wait(&self, ready: impl Fn(&Self) -> bool, alive: impl Fn() -> bool) {
        let Ok(mut guard) = self.result.lock() else {
            return;
        };
        while !ready(self) && alive() {
            match self
                .signal
                .wait_timeout(guard, std::time::Duration::from_millis(2))
            {
                Ok((next, _)) => guard = next,
                Err(_) => return,
            }
        }
    }
}

/// Block boundaries as (bit offset, output offset).
type Boundaries = Vec<(u64, usize)>;

/// A speculative inflate from a block start.
pub(in crate::zinfo) struct Speculation {
    /// The blob bit offset the inflate started at.
    pub start: u64,
    /// The output from `start` of the first run.
    pub bytes: Vec<u8>,
    /// The output of the second run, as far as it went (at least `dirty_end` bytes).
    pub alternate: Vec<u8>,
    /// Block boundaries as (blob bit offset, offset in `bytes`), the start first; the last one
    /// is where the speculation ends. Every block before each of them was not a final block.
    pub boundaries: Vec<(u64, usize)>,
    /// Output from this offset on does not depend on the history.
    pub dirty_end: usize,
}

/// The first dictionary's byte at history position `i`.
fn first_dictionary(i: usize) -> u8 {
    i as u8
}

/// The second dictionary's byte at history position `i`: differs from the first everywhere.
fn second_dictionary(i: usize) -> u8 {
    (i as u8) ^ ((i >> 8) as u8 + 1)
}

/// The history position a byte that came out as `a` and `b` (`a != b`) was copied from.
fn history_position(a: u8, b: u8) -> usize {
    (((usize::from(a ^ b)).wrapping_sub(1) << 8) | usize::from(a)) & (WINDOW_SIZE - 1)
}

/// What a byte that came out as `a` in the first run and `b` in the second really is, for every
/// pair, given the history: one lookup per byte instead of a branch and a second lookup.
pub(super) struct Resolver(Box<[u8; 1 << 16]>);

impl Resolver {
    /// `window`: the 32 KiB of output before the speculation's start.
    pub(super) fn new(window: &[u8; WINDOW_SIZE]) -> Self {
        let mut table = Box::new([0u8; 1 << 16]);
        for (pair, entry) in table.iter_mut().enumerate() {
            let (a, b) = ((pair >> 8) as u8, pair as u8);
            *entry = if a == b {
                a
            } else {
                window[history_position(a, b)]
            };
        }
        Self(table)
    }

    /// Writes the true output for `first` / `second` (equal lengths) into `out`.
    pub(super) fn resolve(&self, first: &[u8], second: &[u8], out: &mut [u8]) {
        for ((a, b), o) in first.iter().zip(second).zip(out.iter_mut()) {
            *o = self.0[usize::from(*a) << 8 | usize::from(*b)];
        }
    }
}

/// The bits of `input` from bit `bit` on (LSB first), up to 56 of them; missing bytes are 0.
/// `None` when `bit` itself is past the end.
pub(super) fn peek_bits(input: &[u8], bit: u64) -> Option<u64> {
    let byte = usize::try_from(bit / 8).ok()?;
    let rest = input.get(byte..).filter(|rest| !rest.is_empty())?;
    let mut word = [0u8; 8];
    let n = rest.len().min(8);
    word[..n].copy_from_slice(&rest[..n]);
    Some(u64::from_le_bytes(word) >> (bit % 8))
}

/// True when a non-final stored block whose LEN/NLEN agree could start at `bit`.
fn plausible_stored(input: &[u8], bit: u64) -> bool {
    match (peek_bits(input, bit), stored_len_at(input, bit)) {
        (Some(header), Some(_)) => header & 7 == 0,
        _ => false,
    }
}

/// The LEN of a stored block whose header starts at `bit`, when NLEN is its complement.
fn stored_len_at(input: &[u8], bit: u64) -> Option<u16> {
    let aligned = (bit + 3).div_ceil(8);
    let bytes = input.get(usize::try_from(aligned).ok()?..)?.get(..4)?;
    let len = u16::from_le_bytes([bytes[0], bytes[1]]);
    let nlen = u16::from_le_bytes([bytes[2], bytes[3]]);
    (len == !nlen).then_some(len)
}

/// Whether decoding from `a` and from `b` (bit offsets in `input`) is the same decode: equal,
/// or both a stored block header whose padding leads to the same aligned LEN.
pub(super) fn same_start(input: &[u8], a: u64, b: u64) -> bool {
    a == b
        || ((a + 3).div_ceil(8) == (b + 3).div_ceil(8)
            && plausible_stored(input, a)
            && plausible_stored(input, b))
}

/// The two dictionaries, built once.
fn dictionaries() -> &'static [Vec<u8>; 2] {
    static DICTIONARIES: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    DICTIONARIES.get_or_init(|| {
        [
            (0..WINDOW_SIZE).map(first_dictionary).collect(),
            (0..WINDOW_SIZE).map(second_dictionary).collect(),
        ]
    })
}

/// A raw inflater positioned at `bit` of `input` with dictionary `which` (0 or 1); returns it
/// with the input byte to feed from.
fn inflater_at(input: &[u8], bit: u64, which: usize) -> Option<(Inflater, usize)> {
    let mut inflater = Inflater::new(-15).ok()?;
    let byte = usize::try_from(bit / 8).ok()?;
    let used = (bit % 8) as u8;
    let from = if used == 0 {
        byte
    } else {
        let value = *input.get(byte)?;
        inflater.prime(8 - used, value >> used).ok()?;
        byte + 1
    };
    inflater.set_dictionary(dictionaries().get(which)?).ok()?;
    Some((inflater, from))
}

/// Inflates from `bit` (relative to `input`) with the first dictionary, block by block, until
/// the job's end; returns the output and the boundaries (relative bit offsets), or `None`
/// when not even the first block inflates.
fn first_run(job: &Job, bit: u64, mut out: Vec<u8>) -> Option<(Vec<u8>, Boundaries)> {
    let (mut inflater, mut fed) = inflater_at(&job.input, bit, 0)?;
    let end_bit = job.end.saturating_sub(job.base).saturating_mul(8);
    let mut boundaries = vec![(bit, 0usize)];
    // Small steps first: most candidates fail within their first block.
    let mut step_out = 1 << 14;
    // `out` is a recycled buffer: grown (zero-filled) only past its old length.
    let mut filled = 0;
    loop {
        if job.cancelled.load(Ordering::Relaxed) {
            return None;
        }
        if out.len() < filled + step_out {
            out.resize(filled + step_out, 0);
        }
        let step = inflater.inflate(
            &job.input[fed..],
            &mut out[filled..filled + step_out],
            zlib::Z_BLOCK,
        );
        step_out = (step_out * 2).min(STEP_OUT);
        fed += step.consumed;
        filled += step.produced;
        let progress = step.consumed > 0 || step.produced > 0;
        let ok = step.code == zlib::Z_OK || (step.code == zlib::Z_BUF_ERROR && progress);
        if !ok || filled > job.max_output.saturating_add(STEP_OUT) {
            break;
        }
        if step.data_type & 128 != 0 && step.data_type & 64 == 0 {
            let at = (fed as u64) * 8 - (step.data_type & 7) as u64;
            boundaries.push((at, filled));
            // Stop before a final block (the member's end is the sequential side's business),
            // at the job's end, or when the next header is past the input.
            let last = peek_bits(&job.input, at).is_none_or(|bits| bits & 1 == 1);
            if last || at >= end_bit || filled >= job.max_output {
                break;
            }
        }
    }
    if boundaries.len() < 2 {
        return None;
    }
    let &(_, kept) = boundaries.last()?;
    out.truncate(kept);
    Some((out, boundaries))
}

/// The second run over the output of `first`, until 32 KiB of agreeing output: returns its
/// output and where the disagreement ends.
fn second_run(job: &Job, bit: u64, first: &[u8], mut second: Vec<u8>) -> (Vec<u8>, usize) {
    let everything = (Vec::new(), usize::MAX);
    let Some((mut inflater, mut fed)) = inflater_at(&job.input, bit, 1) else {
        return everything;
    };
    let (mut dirty, mut pos) = (0usize, 0usize);
    while pos < first.len() && pos - dirty < WINDOW_SIZE {
        if job.cancelled.load(Ordering::Relaxed) {
            return everything;
        }
        let want = (first.len() - pos).min(STEP_OUT);
        if second.len() < pos + want {
            second.resize(pos + want, 0);
        }
        let step = inflater.inflate(
            &job.input[fed..],
            &mut second[pos..pos + want],
            zlib::Z_NO_FLUSH,
        );
        fed += step.consumed;
        let theirs = &first[pos..pos + step.produced];
        // To the end of the last differing 32-byte piece: resolving an agreeing byte is a no-op.
        let ours = &second[pos..pos + step.produced];
        let mut pieces = theirs.chunks(32).zip(ours.chunks(32));
        if let Some(last) = pieces.rposition(|(x, y)| x != y) {
            dirty = (pos + (last + 1) * 32).min(pos + step.produced);
        }
        pos += step.produced;
        let progress = step.consumed > 0 || step.produced > 0;
        if !progress || (step.code != zlib::Z_OK && step.code != zlib::Z_BUF_ERROR) {
            // Cannot happen for the same bits as the first run; then nothing is usable.
            return everything;
        }
    }
    second.truncate(pos);
    (second, dirty)
}

/// The oldest history position (0 = 32 KiB back) the output of the two runs depends on,
/// `WINDOW_SIZE` when none.
pub(super) fn oldest_position(first: &[u8], second: &[u8]) -> usize {
    first
        .iter()
        .zip(second)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| history_position(*a, *b))
        .min()
        .unwrap_or(WINDOW_SIZE)
}

/// The first bit offset in `[from, end)` where a block zlib accepts could start.
fn next_candidate(input: &[u8], from: u64, end: u64) -> Option<u64> {
    let mut bit = from;
    while bit < end {
        // One load per byte; the cheap tests on the three header bits (and HLIT, HDIST) first.
        let word = peek_bits(input, bit - bit % 8)?;
        for shift in bit % 8..8 {
            let header = word >> shift;
            let at = bit - bit % 8 + shift;
            let candidate = match header & 7 {
                0b100 => {
                    (header >> 3) & 31 <= 29
                        && (header >> 8) & 31 <= 29
                        && plausible_dynamic(input, at)
                }
                0 => plausible_stored(input, at),
                _ => false,
            };
            if candidate && at < end {
                return Some(at);
            }
        }
        bit = bit - bit % 8 + 8;
    }
    None
}

/// Finds a block start in the job's search range and inflates from it.
fn speculate(job: &Job, recycled: &Recycled) -> Option<Speculation> {
    let search_end = job.search_end.saturating_sub(job.base).saturating_mul(8);
    let mut bit = 0u64;
    let (bytes, boundaries, start) = loop {
        bit = match next_candidate(&job.input, bit, search_end) {
            Some(candidate) if !job.cancelled.load(Ordering::Relaxed) => candidate,
            _ => return None,
        };
        if let Some((bytes, boundaries)) = first_run(job, bit, recycled.take()) {
            // Published once the first run went through, so the sequential side can aim at it
            // (it waits for this rather than inflating over the stretch itself).
            job.start.store(job.base * 8 + bit, Ordering::Release);
            job.notify();
            break (bytes, boundaries, bit);
        }
        bit += 1;
    };
    let (alternate, dirty_end) = second_run(job, start, &bytes, recycled.take());
    if dirty_end > alternate.len() {
        return None;
    }
    let base_bit = job.base * 8;
    Some(Speculation {
        start: base_bit + start,
        bytes,
        alternate,
        boundaries: boundaries
            .into_iter()
            .map(|(at, out)| (base_bit + at, out))
            .collect(),
        dirty_end,
    })
}

/// Output buffers handed back by the sequential side, for reuse (fresh ones cost page faults).
pub(super) struct Recycled(pub mpsc::Receiver<Vec<u8>>);

impl Recycled {
    fn take(&self) -> Vec<u8> {
        // Not cleared: the runs overwrite it, and zero-filling megabytes per job costs time.
        self.0.try_recv().unwrap_or_default()
    }
}

/// The speculating thread: jobs and hashing in stream order, each job answered once.
pub(super) fn worker(work: mpsc::Receiver<Work>, recycled: Recycled) {
    let mut hashes = SpanHashes::default();
    for item in work {
        match item {
            Work::Hash(batch) => {
                for message in batch {
                    hashes.handle(message);
                }
            }
            Work::Speculate(job) => answer(&job, &recycled),
            Work::Stop => return,
        }
    }
}

/// Speculates `job` (unless cancelled) and publishes the result.
fn answer(job: &Job, recycled: &Recycled) {
    let result = if job.cancelled.load(Ordering::Relaxed) {
        None
    } else {
        // A panic here would also end the hashing this thread does: a failed speculation is
        // only a speculation not used.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| speculate(job, recycled)))
            .ok()
            .flatten()
    };
    if result.is_none() {
        job.start.store(START_NONE, Ordering::Release);
    }
    if let Ok(mut slot) = job.result.lock() {
        *slot = result;
    }
    job.done.store(true, Ordering::Release);
    job.notify();
}
