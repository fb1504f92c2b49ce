//! zran-style gzip checkpoints: one streaming pass that inflates a (multi-member) gzip blob,
//! hands the uncompressed bytes to a reader, and records where a consumer can restart inflation
//! (format doc section 3). Also the reverse: inflating one span from its checkpoint.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::sync::{Arc, mpsc};

use libz_rs_sys as zlib;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Bytes of history deflate may refer back to.
pub const WINDOW_SIZE: usize = 32768;
/// Bytes per checkpoint in the blob: in (8), out (8), bits (1), window.
pub const CHECKPOINT_SIZE: usize = 8 + 8 + 1 + WINDOW_SIZE;
/// Bytes before the checkpoints in the blob: count (4) and span size (8).
pub const BLOB_HEADER_SIZE: usize = 4 + 8;

const INPUT_CHUNK: usize = 1 << 16;
const OUTPUT_CHUNK: usize = 1 << 18;

/// Messages (nearly all compressed chunks) per batch to the hashing thread: one wake-up per
/// batch, not per chunk (a wake-up per 64 KiB chunk cost the build ~3% against a bare inflate).
const HASH_BATCH: usize = 8;
/// Batches in flight to the hashing thread (with the batch being filled, ~8.5 MiB of chunks).
/// Through incompressible stretches inflate outruns the two sha256 passes; with 8 batches the
/// queue filled and inflate waited (~15 ms per 700 MB layer), with 16 it never fills.
const HASH_QUEUE: usize = 16;

/// A compressed chunk read from the source. Its buffer goes back to the indexer when the last
/// holder (inflate or the hashing thread) drops it, so the pass reuses a few dozen buffers
/// instead of allocating (and page-faulting) a fresh one per chunk.
struct Chunk {
    bytes: Vec<u8>,
    len: usize,
    spare: mpsc::Sender<Vec<u8>>,
}

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // The indexer may be gone already; then the buffer is simply freed.
        let _ = self.spare.send(std::mem::take(&mut self.bytes));
    }
}

enum HashMessage {
    /// The next compressed chunk, and how far inflate has consumed the blob: bytes before
    /// `consumed - 1` can only belong to the current span.
    Data { chunk: Arc<Chunk>, consumed: u64 },
    /// The current span ends at `end` (exclusive); the next starts at `restart` (<= end).
    Boundary { end: u64, restart: u64 },
    /// The blob ends at `end`: reply with the blob digest and all span digests.
    Finish {
        end: u64,
        reply: mpsc::SyncSender<(String, Vec<String>)>,
    },
}

/// Hashes the blob and its spans on a second thread, so sha256 runs beside inflate instead of
/// after it (span boundaries are only known as inflate reaches the checkpoints).
struct SpanHasherThread {
    sender: mpsc::SyncSender<Vec<HashMessage>>,
    /// Messages not sent yet.
    batch: Vec<HashMessage>,
}

fn hasher_stopped() -> std::io::Error {
    std::io::Error::other("the span hashing thread stopped")
}

impl SpanHasherThread {
    fn spawn() -> Result<Self> {
        let (sender, receiver) = mpsc::sync_channel(HASH_QUEUE);
        std::thread::Builder::new()
            .name("soci-span-hasher".into())
            .spawn(move || hash_worker(receiver))
            .map_err(|source| Error::Io { offset: 0, source })?;
        Ok(Self {
            sender,
            batch: Vec::with_capacity(HASH_BATCH),
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(HASH_BATCH));
        self.sender.send(batch).map_err(|_| hasher_stopped())
    }

    fn data(&mut self, chunk: Arc<Chunk>, consumed: u64) -> std::io::Result<()> {
        self.batch.push(HashMessage::Data { chunk, consumed });
        if self.batch.len() >= HASH_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn boundary(&mut self, end: u64, restart: u64) {
        self.batch.push(HashMessage::Boundary { end, restart });
    }

    fn finish(&mut self, end: u64) -> Result<(String, Vec<String>)> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.batch.push(HashMessage::Finish { end, reply });
        self.flush().map_err(|source| Error::Io {
            offset: end,
            source,
        })?;
        answer.recv().map_err(|_| Error::Io {
            offset: end,
            source: hasher_stopped(),
        })
    }
}

fn hex_digest(hasher: Sha256) -> String {
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Feeds blob bytes `[from, to)` held in `pending` to `span`.
fn feed_span(span: &mut Sha256, pending: &VecDeque<(u64, Arc<Chunk>)>, from: u64, to: u64) {
    for (base, chunk) in pending {
        let chunk_end = base + chunk.len() as u64;
        let (start, end) = (from.max(*base), to.min(chunk_end));
        if start < end {
            span.update(&chunk[(start - base) as usize..(end - base) as usize]);
        }
    }
}

fn hash_worker(receiver: mpsc::Receiver<Vec<HashMessage>>) {
    let mut blob = Sha256::new();
    let mut span = Sha256::new();
    let mut digests = Vec::new();
    // Chunks whose bytes a span may still need, with their blob offsets.
    let mut pending: VecDeque<(u64, Arc<Chunk>)> = VecDeque::new();
    let mut received = 0u64;
    let mut span_start = 0u64;
    let mut in_span = false;
    for message in receiver.iter().flatten() {
        match message {
            HashMessage::Data { chunk, consumed } => {
                blob.update(&chunk[..]);
                let len = chunk.len() as u64;
                pending.push_back((received, chunk));
                received += len;
                let settled = consumed.saturating_sub(1);
                if in_span && settled > span_start {
                    feed_span(&mut span, &pending, span_start, settled);
                    span_start = settled;
                }
                let keep_from = if in_span { span_start } else { 0 };
                while pending
                    .front()
                    .is_some_and(|(base, chunk)| base + chunk.len() as u64 <= keep_from)
                {
                    pending.pop_front();
                }
            }
            HashMessage::Boundary { end, restart } => {
                if in_span {
                    feed_span(&mut span, &pending, span_start, end);
                    digests.push(hex_digest(std::mem::take(&mut span)));
                }
                in_span = true;
                span_start = restart;
                while pending
                    .front()
                    .is_some_and(|(base, chunk)| base + chunk.len() as u64 <= restart)
                {
                    pending.pop_front();
                }
            }
            HashMessage::Finish { end, reply } => {
                if in_span {
                    feed_span(&mut span, &pending, span_start, end);
                    digests.push(hex_digest(std::mem::take(&mut span)));
                }
                let blob = hex_digest(std::mem::take(&mut blob));
                let _ = reply.send((blob, std::mem::take(&mut digests)));
                return;
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
        self.input - u64::from(self.bits != 0)
    }
}

/// An owned zlib inflate stream.
pub(crate) struct Inflater {
    // Boxed: zlib keeps a pointer from its state back to the stream, so it must not move.
    stream: Box<zlib::z_stream>,
}

/// What one call to [`Inflater::inflate`] did.
pub(crate) struct InflateStep {
    pub code: i32,
    pub consumed: usize,
    pub produced: usize,
    pub data_type: i32,
}

impl Inflater {
    /// `window_bits`: 31 for gzip only, -15 for raw deflate.
    pub(crate) fn new(window_bits: i32) -> Result<Self> {
        let mut stream = Box::new(zlib::z_stream::default());
        // SAFETY: `stream` is a zeroed, boxed z_stream; the version and size are the library's own.
        let code = unsafe {
            zlib::inflateInit2_(
                &mut *stream,
                window_bits,
                zlib::zlibVersion(),
                std::mem::size_of::<zlib::z_stream>() as i32,
            )
        };
        if code != zlib::Z_OK {
            return Err(Error::Rejected(format!(
                "inflateInit2 failed with zlib code {code}"
            )));
        }
        Ok(Self { stream })
    }

    pub(crate) fn inflate(&mut self, input: &[u8], output: &mut [u8], flush: i32) -> InflateStep {
        let avail_in = input.len().min(u32::MAX as usize);
        let avail_out = output.len().min(u32::MAX as usize);
        self.stream.next_in = input.as_ptr();
        self.stream.avail_in = avail_in as u32;
        self.stream.next_out = output.as_mut_ptr();
        self.stream.avail_out = avail_out as u32;
        // SAFETY: next_in/next_out point into live slices of at least avail_in/avail_out bytes
        // for the duration of the call; the stream was initialised by inflateInit2_.
        let code = unsafe { zlib::inflate(&mut *self.stream, flush) };
        let consumed = avail_in - self.stream.avail_in as usize;
        let produced = avail_out - self.stream.avail_out as usize;
        self.stream.next_in = std::ptr::null();
        self.stream.next_out = std::ptr::null_mut();
        InflateStep {
            code,
            consumed,
            produced,
            data_type: self.stream.data_type,
        }
    }

    pub(crate) fn reset(&mut self) -> Result<()> {
        // SAFETY: initialised stream.
        let code = unsafe { zlib::inflateReset(&mut *self.stream) };
        zlib_ok(code, "inflateReset")
    }

    pub(crate) fn prime(&mut self, bits: u8, value: u8) -> Result<()> {
        // SAFETY: initialised stream; bits is 1..=7.
        let code =
            unsafe { zlib::inflatePrime(&mut *self.stream, i32::from(bits), i32::from(value)) };
        zlib_ok(code, "inflatePrime")
    }

    pub(crate) fn set_dictionary(&mut self, window: &[u8]) -> Result<()> {
        // SAFETY: initialised raw stream; the pointer/length describe a live slice.
        let code = unsafe {
            zlib::inflateSetDictionary(&mut *self.stream, window.as_ptr(), window.len() as u32)
        };
        zlib_ok(code, "inflateSetDictionary")
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by inflateInit2_ and is ended exactly once.
        unsafe {
            zlib::inflateEnd(&mut *self.stream);
        }
    }
}

fn zlib_ok(code: i32, what: &str) -> Result<()> {
    if code == zlib::Z_OK {
        Ok(())
    } else {
        Err(Error::Rejected(format!(
            "{what} failed with zlib code {code}"
        )))
    }
}

/// Where the inflater is between members.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MemberState {
    Inside,
    Ended,
    Done,
}

/// Inflates a gzip blob from `source` in one pass, exposing the uncompressed bytes through
/// [`BufRead`] and recording checkpoints, span digests and the blob digest on the way.
pub struct GzipIndexer<R> {
    source: R,
    source_eof: bool,
    inflater: Inflater,
    state: MemberState,
    span_size: u64,

    /// The compressed chunk being inflated (shared with the hashing thread).
    input: Arc<Chunk>,
    /// Buffers of chunks everyone is done with, ready for reuse.
    spare: mpsc::Receiver<Vec<u8>>,
    spare_sender: mpsc::Sender<Vec<u8>>,
    input_pos: usize,
    /// Compressed bytes read from the source so far.
    total_read: u64,

    /// The last WINDOW_SIZE bytes of output (zeros before the start) followed by new output.
    output: Vec<u8>,
    output_read: usize,
    output_write: usize,

    total_in: u64,
    total_out: u64,
    last_checkpoint_out: u64,
    pub(crate) checkpoints: Vec<Checkpoint>,
    /// The checkpoint blob under construction (header written at the end).
    pub(crate) blob: Vec<u8>,

    hasher: SpanHasherThread,
}

impl<R: Read> GzipIndexer<R> {
    pub fn new(source: R, span_size: u64) -> Result<Self> {
        let mut blob = Vec::with_capacity(BLOB_HEADER_SIZE + CHECKPOINT_SIZE);
        blob.resize(BLOB_HEADER_SIZE, 0);
        let (spare_sender, spare) = mpsc::channel();
        Ok(Self {
            source,
            source_eof: false,
            inflater: Inflater::new(31)?,
            state: MemberState::Inside,
            span_size,
            input: Arc::new(Chunk {
                bytes: Vec::new(),
                len: 0,
                spare: spare_sender.clone(),
            }),
            spare,
            spare_sender,
            input_pos: 0,
            total_read: 0,
            output: vec![0; WINDOW_SIZE + OUTPUT_CHUNK],
            output_read: WINDOW_SIZE,
            output_write: WINDOW_SIZE,
            total_in: 0,
            total_out: 0,
            last_checkpoint_out: 0,
            checkpoints: Vec::new(),
            blob,
            hasher: SpanHasherThread::spawn()?,
        })
    }

    /// Uncompressed bytes produced so far.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    /// Reads and inflates whatever is left, then returns the finished index. Fails on trailing
    /// bytes after the last member, a truncated stream or a bad CRC, as the reference does.
    pub fn finish(mut self) -> Result<GzipIndex> {
        loop {
            let offset = self.total_in;
            let available = self.fill_buf().map_err(|e| into_error(e, offset))?.len();
            if available == 0 {
                break;
            }
            self.consume(available);
        }
        let blob_size = self.total_read;
        let (blob_digest, span_digests) = self.hasher.finish(blob_size)?;
        let count = i32::try_from(self.checkpoints.len())
            .map_err(|_| Error::Rejected("too many checkpoints".into()))?;
        self.blob[0..4].copy_from_slice(&count.to_le_bytes());
        self.blob[4..12].copy_from_slice(&(self.span_size as i64).to_le_bytes());
        Ok(GzipIndex {
            checkpoints: self.checkpoints,
            blob: self.blob,
            span_digests,
            compressed_size: blob_size,
            uncompressed_size: self.total_out,
            blob_digest,
        })
    }

    /// Reads the next compressed chunk and hands it to the hashing thread.
    fn refill(&mut self) -> std::io::Result<()> {
        let mut bytes = self.spare.try_recv().unwrap_or_default();
        bytes.resize(INPUT_CHUNK, 0);
        while !self.source_eof {
            match self.source.read(&mut bytes) {
                Ok(0) => self.source_eof = true,
                Ok(n) => {
                    let chunk = Arc::new(Chunk {
                        bytes,
                        len: n,
                        spare: self.spare_sender.clone(),
                    });
                    self.hasher.data(Arc::clone(&chunk), self.total_in)?;
                    self.total_read += n as u64;
                    self.input = chunk;
                    self.input_pos = 0;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn add_checkpoint(&mut self, bits: u8) {
        let checkpoint = Checkpoint {
            input: self.total_in,
            output: self.total_out,
            bits,
        };
        // A span ends at the next checkpoint's first whole byte; when that checkpoint has bits,
        // the byte holding them also starts the next span (spans overlap by one byte). The gzip
        // header before checkpoint 0 belongs to no span.
        self.hasher
            .boundary(checkpoint.input, checkpoint.span_start());
        self.blob
            .extend_from_slice(&(checkpoint.input as i64).to_le_bytes());
        self.blob
            .extend_from_slice(&(checkpoint.output as i64).to_le_bytes());
        self.blob.push(bits);
        self.blob
            .extend_from_slice(&self.output[self.output_write - WINDOW_SIZE..self.output_write]);
        self.last_checkpoint_out = self.total_out;
        self.checkpoints.push(checkpoint);
    }

    /// One inflate call (Z_BLOCK), refilling input first if needed.
    fn step(&mut self) -> std::io::Result<()> {
        if self.input_pos == self.input.len() {
            self.refill()?;
            if self.input_pos == self.input.len() {
                return if self.state == MemberState::Ended {
                    self.state = MemberState::Done;
                    Ok(())
                } else {
                    Err(gzip_error(format!(
                        "the gzip stream is truncated at compressed offset {}",
                        self.total_in
                    )))
                };
            }
        }
        if self.state == MemberState::Ended {
            // More bytes after a member: they must be another gzip member.
            self.inflater.reset().map_err(std::io::Error::other)?;
            self.state = MemberState::Inside;
        }
        // Block boundaries matter only once more than a span has been produced since the last
        // checkpoint (and before the first): until then inflate without stopping at every
        // block, capping the output so that no boundary that could qualify is passed. zlib only
        // stops at block ends in Z_BLOCK mode, and each stop costs an internal window copy.
        let since_last = self.total_out - self.last_checkpoint_out;
        let space = self.output.len() - self.output_write;
        let (flush, space) =
            if self.checkpoints.is_empty() || self.total_out == 0 || since_last >= self.span_size {
                (zlib::Z_BLOCK, space)
            } else {
                let cap = usize::try_from(self.span_size - since_last).unwrap_or(usize::MAX);
                (zlib::Z_NO_FLUSH, space.min(cap))
            };
        let step = self.inflater.inflate(
            &self.input[self.input_pos..],
            &mut self.output[self.output_write..self.output_write + space],
            flush,
        );
        self.input_pos += step.consumed;
        self.total_in += step.consumed as u64;
        self.output_write += step.produced;
        self.total_out += step.produced as u64;
        match step.code {
            zlib::Z_STREAM_END => {
                self.state = MemberState::Ended;
                return Ok(());
            }
            zlib::Z_OK => {}
            zlib::Z_BUF_ERROR if step.consumed > 0 || step.produced > 0 => {}
            code => {
                return Err(gzip_error(format!(
                    "gzip data error (zlib code {code}) at compressed offset {}",
                    self.total_in
                )));
            }
        }
        let at_block_end = step.data_type & 128 != 0;
        let in_last_block = step.data_type & 64 != 0;
        if at_block_end
            && !in_last_block
            && (self.total_out == 0 || self.total_out - self.last_checkpoint_out > self.span_size)
        {
            self.add_checkpoint((step.data_type & 7) as u8);
        }
        Ok(())
    }
}

fn gzip_error(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Maps an I/O error out of the indexer to the crate error: data errors reject the layer.
pub(crate) fn into_error(err: std::io::Error, offset: u64) -> Error {
    if err.kind() == std::io::ErrorKind::InvalidData {
        Error::Rejected(err.to_string())
    } else {
        Error::Io {
            offset,
            source: err,
        }
    }
}

impl<R: Read> Read for GzipIndexer<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for GzipIndexer<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.output_read == self.output_write && self.state != MemberState::Done {
            if self.output_write == self.output.len() {
                self.output
                    .copy_within(self.output_write - WINDOW_SIZE..self.output_write, 0);
                self.output_write = WINDOW_SIZE;
                self.output_read = WINDOW_SIZE;
            }
            self.step()?;
        }
        Ok(&self.output[self.output_read..self.output_write])
    }

    fn consume(&mut self, amount: usize) {
        self.output_read = (self.output_read + amount).min(self.output_write);
    }
}

/// The finished checkpoint index of a gzip blob.
pub struct GzipIndex {
    pub checkpoints: Vec<Checkpoint>,
    /// `CompressionInfo.checkpoints`: header and every checkpoint with its window.
    pub blob: Vec<u8>,
    pub span_digests: Vec<String>,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub blob_digest: String,
}

/// A decoded checkpoint blob (borrowing the windows).
pub struct CheckpointBlob<'a> {
    pub span_size: i64,
    pub checkpoints: Vec<Checkpoint>,
    windows: Vec<&'a [u8]>,
}

impl<'a> CheckpointBlob<'a> {
    pub fn parse(blob: &'a [u8]) -> Result<Self> {
        let invalid = |what: &str| Error::InvalidZtoc(format!("gzip checkpoint blob: {what}"));
        let count = blob
            .get(0..4)
            .ok_or_else(|| invalid("shorter than its header"))?;
        let count = i32::from_le_bytes(count.try_into().map_err(|_| invalid("header"))?);
        let span = blob
            .get(4..12)
            .ok_or_else(|| invalid("shorter than its header"))?;
        let span_size = i64::from_le_bytes(span.try_into().map_err(|_| invalid("header"))?);
        let count = usize::try_from(count).map_err(|_| invalid("negative checkpoint count"))?;
        let expected = count
            .checked_mul(CHECKPOINT_SIZE)
            .and_then(|n| n.checked_add(BLOB_HEADER_SIZE))
            .ok_or_else(|| invalid("checkpoint count overflows"))?;
        if blob.len() != expected {
            return Err(invalid(&format!(
                "{} bytes for {count} checkpoints, expected {expected}",
                blob.len()
            )));
        }
        let mut checkpoints = Vec::with_capacity(count);
        let mut windows = Vec::with_capacity(count);
        for record in blob[BLOB_HEADER_SIZE..].chunks_exact(CHECKPOINT_SIZE) {
            let input = i64::from_le_bytes(record[0..8].try_into().map_err(|_| invalid("in"))?);
            let output = i64::from_le_bytes(record[8..16].try_into().map_err(|_| invalid("out"))?);
            let bits = record[16];
            if input < 0 || output < 0 || bits > 7 {
                return Err(invalid(
                    "a checkpoint has a negative offset or more than 7 bits",
                ));
            }
            checkpoints.push(Checkpoint {
                input: input as u64,
                output: output as u64,
                bits,
            });
            windows.push(&record[17..]);
        }
        Ok(Self {
            span_size,
            checkpoints,
            windows,
        })
    }

    pub fn window(&self, index: usize) -> Option<&'a [u8]> {
        self.windows.get(index).copied()
    }
}

/// Inflates the span starting at `checkpoint`, given `compressed` = the blob bytes from
/// `checkpoint.span_start()` on (at least up to the span's end), until `out_len` bytes are
/// produced or the deflate stream of that member ends.
pub fn inflate_span(
    checkpoint: &Checkpoint,
    window: &[u8],
    compressed: &[u8],
    out_len: usize,
) -> Result<Vec<u8>> {
    let mut inflater = Inflater::new(-15)?;
    let mut input = compressed;
    if checkpoint.bits != 0 {
        let (&first, rest) = input
            .split_first()
            .ok_or_else(|| Error::InvalidZtoc("span has no compressed bytes".into()))?;
        inflater.prime(checkpoint.bits, first >> (8 - checkpoint.bits))?;
        input = rest;
    }
    inflater.set_dictionary(window)?;
    let mut output = vec![0u8; out_len];
    let mut produced = 0;
    while produced < out_len {
        let step = inflater.inflate(input, &mut output[produced..], zlib::Z_NO_FLUSH);
        input = &input[step.consumed..];
        produced += step.produced;
        match step.code {
            zlib::Z_OK => {}
            zlib::Z_STREAM_END if produced < out_len && input.len() > GZIP_TRAILER_SIZE => {
                // The span crosses into the next gzip member: skip the trailer and its header.
                let header = gzip_header_len(&input[GZIP_TRAILER_SIZE..])?;
                input = &input[GZIP_TRAILER_SIZE + header..];
                inflater = Inflater::new(-15)?;
            }
            zlib::Z_STREAM_END => break,
            zlib::Z_BUF_ERROR if step.consumed > 0 || step.produced > 0 => {}
            code => {
                return Err(Error::InvalidZtoc(format!(
                    "span at compressed offset {} does not inflate from its checkpoint (zlib code {code})",
                    checkpoint.input
                )));
            }
        }
    }
    output.truncate(produced);
    Ok(output)
}

const GZIP_TRAILER_SIZE: usize = 8;

/// The length of the gzip member header at the start of `data` (RFC 1952: FEXTRA, FNAME,
/// FCOMMENT, FHCRC), or an error naming what is wrong with it.
pub fn gzip_header_len(data: &[u8]) -> Result<usize> {
    let invalid = |what: &str| Error::InvalidZtoc(format!("invalid gzip header: {what}"));
    let fixed = data
        .get(0..10)
        .ok_or_else(|| invalid("shorter than 10 bytes"))?;
    if fixed[0] != 0x1f || fixed[1] != 0x8b {
        return Err(invalid("bad magic"));
    }
    if fixed[2] != 8 {
        return Err(invalid("compression method is not deflate"));
    }
    let flags = fixed[3];
    if flags & 0xe0 != 0 {
        return Err(invalid("reserved flag bits set"));
    }
    let mut pos = 10usize;
    if flags & 0x04 != 0 {
        let xlen = data
            .get(pos..pos + 2)
            .ok_or_else(|| invalid("truncated FEXTRA"))?;
        pos += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for (flag, what) in [(0x08u8, "FNAME"), (0x10, "FCOMMENT")] {
        if flags & flag != 0 {
            let rest = data.get(pos..).ok_or_else(|| invalid(what))?;
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| invalid(what))?;
            pos += nul + 1;
        }
    }
    if flags & 0x02 != 0 {
        pos += 2;
    }
    if pos > data.len() {
        return Err(invalid("truncated"));
    }
    Ok(pos)
}

/// Inflates a whole (multi-member) gzip stream with no checkpointing and no hashing, and returns
/// the number of uncompressed bytes: the baseline the zTOC build is measured against.
pub fn bare_inflate<R: Read>(mut source: R) -> Result<u64> {
    let mut inflater = Inflater::new(31)?;
    let mut input = vec![0u8; INPUT_CHUNK];
    let mut output = vec![0u8; OUTPUT_CHUNK];
    let (mut total_in, mut total_out) = (0u64, 0u64);
    let mut member_ended = false;
    loop {
        let n = source.read(&mut input).map_err(|source| Error::Io {
            offset: total_in,
            source,
        })?;
        if n == 0 {
            return if member_ended {
                Ok(total_out)
            } else {
                Err(Error::Rejected("the gzip stream is truncated".into()))
            };
        }
        let mut pending = &input[..n];
        while !pending.is_empty() {
            if member_ended {
                inflater.reset()?;
                member_ended = false;
            }
            let step = inflater.inflate(pending, &mut output, zlib::Z_NO_FLUSH);
            pending = &pending[step.consumed..];
            total_in += step.consumed as u64;
            total_out += step.produced as u64;
            match step.code {
                zlib::Z_OK => {}
                zlib::Z_STREAM_END => member_ended = true,
                zlib::Z_BUF_ERROR if step.consumed > 0 || step.produced > 0 => {}
                code => {
                    return Err(Error::Rejected(format!(
                        "gzip data error (zlib code {code}) at compressed offset {total_in}"
                    )));
                }
            }
        }
    }
}
