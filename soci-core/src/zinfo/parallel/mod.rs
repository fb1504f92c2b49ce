//! Inflating one gzip stream on two cores, with the same output and the same block boundaries
//! as the sequential inflater (so the sequential checkpoint rule picks the same checkpoints).
//!
//! This thread inflates with zlib-rs as before (raw deflate, gzip headers and trailers checked
//! here), while a second thread speculates ahead (`speculate.rs`): it finds a block start some
//! MiB further on and inflates from there without the history. When this thread reaches that
//! bit offset exactly at a block boundary, the speculation is proven to start right; this thread
//! then inflates on only until the output no longer depends on the unknown history, takes the
//! speculated bytes and boundaries from there to the speculation's end, and restarts zlib-rs at
//! that boundary with the last 32 KiB of output as dictionary (what a zran consumer does). A
//! speculation that is late, wrong or failed is simply not used: this thread never waits for it.

mod direct;
mod finder;
mod gzip;
mod speculate;

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use libz_rs_sys as zlib;

use super::WINDOW_SIZE;
use super::inflater::{InflateStep, Inflater};
use super::span_hash::{Chunk, HashMessage, SpanHasherThread};
use super::{HASH_BATCH, HASH_QUEUE};
use crate::{Error, Result};
use speculate::{Job, Resolver, START_NONE, START_UNKNOWN, Speculation};

/// How the parallel inflate splits the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParallelTuning {
    /// No speculation before this compressed offset: small layers do not pay for the thread.
    pub start_after: u64,
    /// Compressed bytes this thread inflates itself between two speculated stretches.
    pub direct: u64,
    /// Compressed bytes per speculated stretch.
    pub speculative: u64,
}

impl ParallelTuning {
    /// Measured on the `bench ztoc` layer (two cores, one also hashing the compressed bytes):
    /// of 4/1, 4/4, 8/4, 12/6, 16/4, 16/8, 24/8 and 24/12 MiB, 16/8 was fastest. Long
    /// stretches, because the start of each one depends on the unknown history for a long while
    /// (on that layer ~60% of a 1 MiB stretch's output, ~22% of an 8 MiB one's) and the
    /// speculating core inflates that part twice.
    pub const DEFAULT: Self = Self {
        start_after: 16 << 20,
        direct: 16 << 20,
        speculative: 8 << 20,
    };
}

/// Uncompressed bytes taken from speculations, in this process (tests check that the parallel
/// path really splices; nothing else reads it).
static SPLICED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Uncompressed bytes the parallel inflate has taken from speculations so far, process-wide.
pub fn spliced_bytes() -> u64 {
    SPLICED_BYTES.load(Ordering::Relaxed)
}

/// Compressed bytes read from the source at a time: every segment but the last is full. Below
/// malloc's mmap threshold, so recycled buffers do not page-fault afresh.
const SEGMENT: usize = 64 << 10;
/// Compressed bytes beyond a job's end it may use to reach its last block boundary.
const OVERFLOW: u64 = 512 << 10;
/// Within this many compressed bytes of a speculation's start, stop at every block boundary.
const NEAR: u64 = 64 << 10;
/// Compressed bytes the block finder searches at most.
const MAX_SEARCH: u64 = 128 << 10;
/// Speculations queued ahead.
const JOBS_AHEAD: usize = 2;
/// Hash batches of read-ahead the work queue makes room for at most (512 MiB of chunks).
const MAX_READ_AHEAD_BATCHES: u64 = 1024;

/// What the speculating thread is asked to do, in stream order.
pub(in crate::zinfo) enum Work {
    /// Hash these compressed chunks and span boundaries (see `span_hash`).
    Hash(Vec<HashMessage>),
    /// Speculate this stretch.
    Speculate(Arc<Job>),
    /// End the thread (whoever still sends then gets an error, never a hang).
    Stop,
}

/// What one [`ParallelInflate::step`] did.
pub(crate) struct Produced {
    pub produced: usize,
    /// Compressed bytes consumed: the checkpoint's input offset when `boundary` is set.
    pub position: u64,
    /// At a block boundary outside a final block (or after a gzip header): the unused bits.
    pub boundary: Option<u8>,
    /// The stream ended cleanly.
    pub done: bool,
}

enum Member {
    Header,
    Deflate,
    /// Restart zlib at this blob bit offset (a block boundary) with the output's history.
    Restart(u64),
    Trailer,
    Done,
}

/// The speculated bytes being handed out.
struct Splice {
    spec: Speculation,
    /// Index in `spec.boundaries` of the next boundary to report.
    next: usize,
    /// Bytes of `spec.bytes` handed out.
    copied: usize,
    /// The 32 KiB of output before the speculation's start.
    window: Box<[u8; WINDOW_SIZE]>,
    /// Resolves the bytes copied from that history (built when first needed: a speculation
    /// without any costs nothing).
    resolver: Option<Resolver>,
}

/// A speculation this thread is heading for.
struct Target {
    job: Arc<Job>,
    /// (blob bit offset, total output) where this thread reached the job's start.
    landed: Option<(u64, u64)>,
    /// The 32 KiB of output before the landing point, and how much of it is in the member.
    window: Option<(Box<[u8; WINDOW_SIZE]>, usize)>,
    /// The job's speculation, once taken from it.
    spec: Option<Speculation>,
}

/// The state of the parallel inflate (the sequential side of it runs on the caller's thread).
pub(crate) struct ParallelInflate {
    tuning: ParallelTuning,
    inflater: Inflater,
    member: Member,
    crc: u32,
    member_out: u64,
    total_out: u64,
    /// The next blob byte zlib is fed.
    pos: u64,

    segments: VecDeque<Arc<Chunk>>,
    /// Blob offset of `segments[0]`.
    segments_base: u64,
    read_end: u64,
    eof: bool,
    spare: mpsc::Receiver<Vec<u8>>,
    spare_sender: mpsc::Sender<Vec<u8>>,

    targets: VecDeque<Target>,
    /// Blob offset where the next job's direct stretch begins.
    next_job_from: u64,
    /// The speculating thread's work queue (it hashes too: see [`ParallelInflate::hasher`]).
    jobs: Option<mpsc::SyncSender<Work>>,
    /// Speculation buffers going back to the speculating thread.
    recycle: mpsc::Sender<Vec<u8>>,
    /// True while the speculating thread runs.
    worker_running: Arc<AtomicBool>,
    worker: Option<std::thread::JoinHandle<()>>,
    splice: Option<Splice>,
}

/// Clears the flag when dropped.
struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn data_error(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

impl ParallelInflate {
    pub(crate) fn new(tuning: ParallelTuning) -> Result<Self> {
        // Room for every hash batch of the compressed bytes read ahead for the queued jobs, on
        // top of the sequential hasher's queue: those bytes are held anyway (this thread
        // inflates them), and a smaller queue blocked this thread while the other speculated.
        // The channel's buffer is allocated up front: bounded whatever the tuning says.
        let read_ahead = tuning
            .direct
            .saturating_add(tuning.speculative)
            .saturating_add(OVERFLOW + SEGMENT as u64)
            .saturating_mul(JOBS_AHEAD as u64);
        let batches = read_ahead
            .div_ceil((HASH_BATCH * SEGMENT) as u64)
            .min(MAX_READ_AHEAD_BATCHES);
        let capacity = HASH_QUEUE + JOBS_AHEAD + usize::try_from(batches).unwrap_or(HASH_QUEUE);
        let (jobs, receiver) = mpsc::sync_channel(capacity);
        let (recycle, recycled) = mpsc::channel();
        let worker_running = Arc::new(AtomicBool::new(true));
        let running = Arc::clone(&worker_running);
        let worker = std::thread::Builder::new()
            .name("soci-speculate".into())
            .spawn(move || {
                // Cleared however the thread ends (a panic included): nobody waits for it then.
                let _running = ClearOnDrop(running);
                speculate::worker(receiver, speculate::Recycled(recycled));
            })
            .map_err(|source| Error::Io { offset: 0, source })?;
        let (spare_sender, spare) = mpsc::channel();
        Ok(Self {
            tuning,
            inflater: Inflater::new(-15)?,
            member: Member::Header,
            crc: 0,
            member_out: 0,
            total_out: 0,
            pos: 0,
            segments: VecDeque::new(),
            segments_base: 0,
            read_end: 0,
            eof: false,
            spare,
            spare_sender,
            targets: VecDeque::new(),
            next_job_from: 0,
            jobs: Some(jobs),
            recycle,
            worker_running,
            worker: Some(worker),
            splice: None,
        })
    }

    /// The hasher to use with this inflate: its batches go to the speculating thread, between
    /// the speculations, in the order they are sent.
    pub(crate) fn hasher(&self) -> Result<SpanHasherThread> {
        match &self.jobs {
            Some(jobs) => Ok(SpanHasherThread::shared(jobs.clone())),
            None => SpanHasherThread::spawn(),
        }
    }

    /// Compressed bytes read from the source.
    pub(crate) fn read_end(&self) -> u64 {
        self.read_end
    }

    /// Reads one more segment (hashed as it arrives); false at the end of the source.
    fn read_more<R: Read>(
        &mut self,
        source: &mut R,
        hasher: &mut SpanHasherThread,
    ) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let mut bytes = self.spare.try_recv().unwrap_or_default();
        bytes.resize(SEGMENT, 0);
        let mut len = 0;
        while len < SEGMENT {
            match source.read(&mut bytes[len..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if len == 0 {
            return Ok(false);
        }
        let chunk = Arc::new(Chunk {
            bytes,
            len,
            spare: self.spare_sender.clone(),
        });
        // `pos` is behind every checkpoint still to come: what the hasher needs to know.
        hasher.data(Arc::clone(&chunk), self.pos)?;
        self.segments.push_back(chunk);
        self.read_end += len as u64;
        Ok(true)
    }

    /// Ensures blob byte `offset` has been read; false when the blob is shorter.
    fn have<R: Read>(
        &mut self,
        offset: u64,
        source: &mut R,
        hasher: &mut SpanHasherThread,
    ) -> std::io::Result<bool> {
        while offset >= self.read_end {
            if !self.read_more(source, hasher)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The index of the read segment holding blob byte `offset`, and the offset in it.
    fn locate(&self, offset: u64) -> Option<(usize, usize)> {
        let relative = offset.checked_sub(self.segments_base)?;
        // Every segment but the last is SEGMENT bytes long.
        let index = usize::try_from(relative / SEGMENT as u64).ok()?;
        let within = (relative % SEGMENT as u64) as usize;
        let segment = self.segments.get(index)?;
        (within < segment.len()).then_some((index, within))
    }

    /// The read bytes from `offset` to the end of its segment.
    fn bytes_from(&self, offset: u64) -> &[u8] {
        match self.locate(offset) {
            Some((index, within)) => &self.segments[index][within..],
            None => &[],
        }
    }

    /// The read segment holding blob byte `offset`, and the offset in it.
    fn segment_at(&self, offset: u64) -> Option<(Arc<Chunk>, usize)> {
        let (index, within) = self.locate(offset)?;
        Some((Arc::clone(&self.segments[index]), within))
    }

    /// Read bytes `[from, to)` (as many as have been read) in one buffer.
    fn copy_range(&self, from: u64, to: u64) -> Vec<u8> {
        let available = to.min(self.read_end).saturating_sub(from);
        let mut out = Vec::with_capacity(usize::try_from(available).unwrap_or(0));
        self.for_each_slice(from, to, |bytes| out.extend_from_slice(bytes));
        out
    }

    /// Calls `f` on the read bytes `[from, to)` (as many as have been read), slice by slice.
    fn for_each_slice(&self, from: u64, to: u64, mut f: impl FnMut(&[u8])) {
        let mut at = from;
        while at < to {
            let bytes = self.bytes_from(at);
            if bytes.is_empty() {
                break;
            }
            let n = bytes
                .len()
                .min(usize::try_from(to - at).unwrap_or(usize::MAX));
            f(&bytes[..n]);
            at += n as u64;
        }
    }

    /// Drops segments nothing needs any more (a restart may need the byte before `pos`).
    fn trim(&mut self) {
        let keep_from = self.pos.saturating_sub(1);
        while let Some(first) = self.segments.front() {
            let end = self.segments_base + first.len() as u64;
            if end > keep_from {
                break;
            }
            self.segments_base = end;
            self.segments.pop_front();
        }
    }

    /// Queues speculations ahead, reading the compressed bytes they need.
    fn plan_jobs<R: Read>(
        &mut self,
        source: &mut R,
        hasher: &mut SpanHasherThread,
    ) -> std::io::Result<()> {
        while self.targets.len() < JOBS_AHEAD && !matches!(self.member, Member::Done) {
            let from = self
                .next_job_from
                .max(self.pos)
                .max(self.tuning.start_after);
            let search_from = from.saturating_add(self.tuning.direct.max(1));
            let end = search_from.saturating_add(self.tuning.speculative.max(1));
            let want = end.saturating_add(OVERFLOW);
            if !self.have(want - 1, source, hasher)?
                && self.read_end <= search_from.saturating_add(64)
            {
                return Ok(());
            }
            let input = self.copy_range(search_from, want);
            let job = Arc::new(Job {
                base: search_from,
                input,
                // Deflate blocks are rarely longer than this: searching further only delays
                // this thread, which waits for the start.
                search_end: search_from
                    .saturating_add((self.tuning.speculative / 2).clamp(1, MAX_SEARCH)),
                end,
                max_output: usize::try_from(self.tuning.speculative.saturating_mul(8))
                    .unwrap_or(usize::MAX)
                    .clamp(4 << 20, 64 << 20),
                start: AtomicU64::new(START_UNKNOWN),
                cancelled: AtomicBool::new(false),
                result: Mutex::new(None),
                done: AtomicBool::new(false),
                signal: Condvar::new(),
            });
            self.next_job_from = end;
            let Some(jobs) = &self.jobs else {
                return Ok(());
            };
            if jobs.send(Work::Speculate(Arc::clone(&job))).is_err() {
                self.jobs = None;
                return Ok(());
            }
            self.targets.push_back(Target {
                job,
                landed: None,
                window: None,
                spec: None,
            });
        }
        Ok(())
    }

    /// Whether the speculating thread still runs (waiting on a job it will never answer would
    /// hang).
    fn worker_alive(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.worker_running)
    }

    /// Gives up the speculation being aimed at.
    fn drop_target(&mut self) {
        if let Some(target) = self.targets.pop_front() {
            target.job.cancelled.store(true, Ordering::Relaxed);
        }
    }

    /// One step: some output, a boundary, or the end. `history` is the 32 KiB of output before
    /// `out` (for restarts); `need_boundaries` asks for a stop at every block boundary.
    pub(crate) fn step<R: Read>(
        &mut self,
        source: &mut R,
        hasher: &mut SpanHasherThread,
        history: &[u8],
        out: &mut [u8],
        need_boundaries: bool,
    ) -> std::io::Result<Produced> {
        if self.splice.is_some() {
            return Ok(self.splice_step(out));
        }
        match self.member {
            Member::Header => self.header_step(source, hasher),
            Member::Trailer => self.trailer_step(source, hasher),
            Member::Done => Ok(self.produced(0, None)),
            Member::Restart(bit) => {
                self.restart(bit, history, source, hasher)?;
                self.inflate_step(source, hasher, history, out, need_boundaries)
            }
            Member::Deflate => self.inflate_step(source, hasher, history, out, need_boundaries),
        }
    }

    fn produced(&self, produced: usize, boundary: Option<u8>) -> Produced {
        Produced {
            produced,
            position: self.pos,
            boundary,
            done: matches!(self.member, Member::Done),
        }
    }

    /// Counts output into the member's CRC and length.
    fn account(&mut self, bytes: &[u8]) {
        self.crc = zlib_rs::crc32::crc32(self.crc, bytes);
        self.member_out += bytes.len() as u64;
        self.total_out += bytes.len() as u64;
    }

    /// Restarts zlib at blob bit `bit` (a block boundary inside the member) with the history.
    fn restart<R: Read>(
        &mut self,
        bit: u64,
        history: &[u8],
        source: &mut R,
        hasher: &mut SpanHasherThread,
    ) -> std::io::Result<()> {
        self.inflater.reset().map_err(std::io::Error::other)?;
        self.pos = bit.div_ceil(8);
        let bits = (self.pos * 8 - bit) as u8;
        if bits != 0 {
            if !self.have(self.pos - 1, source, hasher)? {
                return Err(data_error("the gzip stream is truncated".into()));
            }
            let byte = self.bytes_from(self.pos - 1).first().copied().unwrap_or(0);
            self.inflater
                .prime(bits, byte >> (8 - bits))
                .map_err(std::io::Error::other)?;
        }
        let keep = usize::try_from(self.member_out)
            .unwrap_or(usize::MAX)
            .min(WINDOW_SIZE);
        let window = &history[history.len().saturating_sub(keep)..];
        if !window.is_empty() {
            self.inflater
                .set_dictionary(window)
                .map_err(std::io::Error::other)?;
        }
        self.member = Member::Deflate;
        Ok(())
    }

    /// Hands out speculated bytes up to the next boundary, or reports that boundary.
    fn splice_step(&mut self, out: &mut [u8]) -> Produced {
        let Some(mut splice) = self.splice.take() else {
            return self.produced(0, None);
        };
        let Some(&(bit, at)) = splice.spec.boundaries.get(splice.next) else {
            return self.produced(0, None);
        };
        if splice.copied < at {
            let n = (at - splice.copied).min(out.len());
            let range = splice.copied..splice.copied + n;
            let out = &mut out[..n];
            // Up to `dirty_end` some bytes come from the history; the rest are as speculated.
            let dirty = splice.spec.dirty_end.clamp(range.start, range.end);
            let mixed = range.start..dirty;
            if !mixed.is_empty() {
                // `speculate` made sure `alternate` reaches `dirty_end`.
                let second = splice.spec.alternate.get(mixed.clone()).unwrap_or_default();
                let window = &splice.window;
                let resolver = splice.resolver.get_or_insert_with(|| Resolver::new(window));
                resolver.resolve(
                    &splice.spec.bytes[mixed.clone()],
                    second,
                    &mut out[..mixed.len()],
                );
            }
            out[mixed.len()..].copy_from_slice(&splice.spec.bytes[dirty..range.end]);
            self.account(out);
            SPLICED_BYTES.fetch_add(n as u64, Ordering::Relaxed);
            splice.copied = range.end;
            self.splice = Some(splice);
            return self.produced(n, None);
        }
        self.pos = bit.div_ceil(8);
        let bits = (self.pos * 8 - bit) as u8;
        splice.next += 1;
        if splice.next == splice.spec.boundaries.len() {
            self.member = Member::Restart(bit);
            self.drop_target();
            // The thread may be gone; then the buffers are simply freed.
            let _ = self.recycle.send(splice.spec.bytes);
            let _ = self.recycle.send(splice.spec.alternate);
        } else {
            self.splice = Some(splice);
        }
        self.trim();
        self.produced(0, Some(bits))
    }
}

impl Drop for ParallelInflate {
    fn drop(&mut self) {
        for target in &self.targets {
            target.job.cancelled.store(true, Ordering::Relaxed);
        }
        if let Some(jobs) = self.jobs.take() {
            // The thread may be gone already.
            let _ = jobs.send(Work::Stop);
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Whether zlib's step made progress or stopped cleanly; anything else is a data error.
fn step_ok(step: &InflateStep) -> bool {
    step.code == zlib::Z_OK
        || step.code == zlib::Z_STREAM_END
        || (step.code == zlib::Z_BUF_ERROR && (step.consumed > 0 || step.produced > 0))
}
