//! The checkpoint writer: one streaming pass that inflates a (multi-member) gzip blob, hands
//! the uncompressed bytes on through `BufRead`, and records a checkpoint at each span boundary.

use std::io::{BufRead, Read};
use std::sync::{Arc, mpsc};

use libz_rs_sys as zlib;

use super::inflater::Inflater;
use super::parallel::ParallelInflate;
use super::records::CheckpointRecords;
use super::span_hash::{Chunk, SpanHasherThread};
use super::{
    ActiveIndexer, CHECKPOINT_SIZE, Checkpoint, DEFAULT_INFLATION, INPUT_CHUNK, Inflation,
    OUTPUT_CHUNK, WINDOW_SIZE,
};
use crate::ztoc::OverBudget;
use crate::{Error, Result};

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
    /// The checkpoint blob may not grow beyond this (the memory budget).
    max_blob_bytes: u64,
    pub(crate) checkpoints: Vec<Checkpoint>,
    /// The checkpoint blob under construction.
    pub(crate) blob: CheckpointRecords,

    hasher: SpanHasherThread,
    /// Set when the stream is inflated on two cores (`parallel/`); the fields above that
    /// describe the sequential inflater's input are then unused.
    parallel: Option<ParallelInflate>,
    _active: ActiveIndexer,
}

impl<R: Read> GzipIndexer<R> {
    pub fn new(source: R, span_size: u64) -> Result<Self> {
        Self::with_inflation(source, span_size, u64::MAX, Inflation::Sequential)
    }

    /// Like [`GzipIndexer::new`], failing (with an error that becomes [`Error::Unindexable`])
    /// before the checkpoint blob would grow beyond `max_blob_bytes`.
    pub fn with_budget(source: R, span_size: u64, max_blob_bytes: u64) -> Result<Self> {
        Self::with_inflation(source, span_size, max_blob_bytes, DEFAULT_INFLATION)
    }

    /// Like [`GzipIndexer::with_budget`], inflating on one or two cores as told: the output,
    /// checkpoints and digests are the same either way.
    pub fn with_inflation(
        source: R,
        span_size: u64,
        max_blob_bytes: u64,
        inflation: Inflation,
    ) -> Result<Self> {
        let (active, alive) = ActiveIndexer::register();
        let parallel = match inflation.resolve(alive) {
            Some(tuning) => Some(ParallelInflate::new(tuning)?),
            None => None,
        };
        let hasher = match &parallel {
            Some(parallel) => parallel.hasher()?,
            None => SpanHasherThread::spawn()?,
        };
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
            max_blob_bytes,
            checkpoints: Vec::new(),
            blob: CheckpointRecords::new(i64::try_from(span_size).unwrap_or(i64::MAX)),
            hasher,
            parallel,
            _active: active,
        })
    }

    /// Uncompressed bytes produced so far.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    /// Reads and inflates whatever is left, then returns the finished index. Fails on trailing
    /// bytes after the last member, a truncated stream or a bad CRC, as the reference does.
    pub fn finish(mut self) -> Result<GzipIndex> {
        self.inflate_rest(u64::MAX)?;
        let blob_size = self.total_read;
        let (blob_digest, span_digests) = self.hasher.finish(blob_size)?;
        if self.blob.header().is_none() {
            return Err(Error::Rejected("too many checkpoints".into()));
        }
        Ok(GzipIndex {
            checkpoints: self.checkpoints,
            blob: self.blob,
            span_digests,
            compressed_size: blob_size,
            uncompressed_size: self.total_out,
            blob_digest,
        })
    }

    /// Inflates what is left of the blob (after the tar's end-of-archive: record padding,
    /// trailing members), refusing more than `max_out` uncompressed bytes of it: a consumer
    /// never reads them, and a gzip bomb there would otherwise be inflated to its end.
    pub fn inflate_rest(&mut self, max_out: u64) -> Result<()> {
        let start = self.total_out - (self.output_write - self.output_read) as u64;
        loop {
            let offset = self.total_in;
            let available = self.fill_buf().map_err(|e| into_error(e, offset))?.len();
            if available == 0 {
                return Ok(());
            }
            self.consume(available);
            let trailing = self.total_out - start;
            if trailing > max_out {
                return Err(OverBudget::limit(
                    "max_trailing_bytes",
                    max_out,
                    trailing,
                    format_args!(
                        "data after the tar end-of-archive at uncompressed offset {start}, \
                         compressed offset {}",
                        self.total_in
                    ),
                )
                .into());
            }
        }
    }

    /// The digest of the whole blob, reading (not inflating) what is left of the source: for a
    /// layer refused part-way, so the caller can still tell a corrupt download (digest
    /// mismatch) from a layer that is what it claims to be but cannot be indexed.
    pub fn drain_digest(mut self) -> Result<String> {
        // Let the hashing thread drop every chunk as soon as it has hashed it.
        self.hasher.boundary(self.total_read, self.total_read);
        let mut bytes = vec![0u8; INPUT_CHUNK];
        loop {
            match self.source.read(&mut bytes) {
                Ok(0) => break,
                Ok(n) => {
                    let chunk = Arc::new(Chunk {
                        bytes: std::mem::take(&mut bytes),
                        len: n,
                        spare: self.spare_sender.clone(),
                    });
                    let base = self.total_read;
                    self.total_read += n as u64;
                    self.hasher
                        .data(chunk, self.total_read)
                        .map_err(|source| Error::Io {
                            offset: base,
                            source,
                        })?;
                    bytes = self.spare.try_recv().unwrap_or_default();
                    bytes.resize(INPUT_CHUNK, 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Io {
                        offset: self.total_read,
                        source,
                    });
                }
            }
        }
        let (blob_digest, _) = self.hasher.finish(self.total_read)?;
        Ok(blob_digest)
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

    fn add_checkpoint(&mut self, bits: u8) -> std::io::Result<()> {
        let needed = (self.blob.blob_len() + CHECKPOINT_SIZE) as u64;
        if needed > self.max_blob_bytes {
            return Err(OverBudget::limit(
                "max_checkpoint_bytes",
                self.max_blob_bytes,
                needed,
                format_args!(
                    "checkpoint {} at compressed offset {}, uncompressed offset {}",
                    self.checkpoints.len(),
                    self.total_in,
                    self.total_out
                ),
            )
            .into_io());
        }
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
        self.blob.push(
            &checkpoint,
            &self.output[self.output_write - WINDOW_SIZE..self.output_write],
        );
        self.last_checkpoint_out = self.total_out;
        self.checkpoints.push(checkpoint);
        Ok(())
    }

    /// One step of the parallel inflate, with the same checkpoint rule as [`Self::step`].
    fn parallel_step(&mut self) -> std::io::Result<()> {
        let Some(parallel) = self.parallel.as_mut() else {
            return Ok(());
        };
        let since_last = self.total_out - self.last_checkpoint_out;
        let need =
            self.checkpoints.is_empty() || self.total_out == 0 || since_last >= self.span_size;
        let mut space = self.output.len() - self.output_write;
        if !need {
            space = space.min(usize::try_from(self.span_size - since_last).unwrap_or(usize::MAX));
        }
        let (history, rest) = self.output.split_at_mut(self.output_write);
        let history = &history[history.len() - WINDOW_SIZE..];
        let step = parallel.step(
            &mut self.source,
            &mut self.hasher,
            history,
            &mut rest[..space],
            need,
        );
        // Even on an error: `drain_digest` goes on from what was read.
        self.total_read = parallel.read_end();
        let step = step?;
        self.total_in = step.position;
        self.output_write += step.produced;
        self.total_out += step.produced as u64;
        if step.done {
            self.state = MemberState::Done;
            return Ok(());
        }
        if step.boundary.is_some()
            && (self.total_out == 0 || self.total_out - self.last_checkpoint_out > self.span_size)
        {
            self.add_checkpoint(step.boundary.unwrap_or(0))?;
        }
        Ok(())
    }

    /// One inflate call (Z_BLOCK), refilling input first if needed.
    fn step(&mut self) -> std::io::Result<()> {
        if self.parallel.is_some() {
            return self.parallel_step();
        }
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
            self.add_checkpoint((step.data_type & 7) as u8)?;
        }
        Ok(())
    }
}

fn gzip_error(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Maps an I/O error out of the indexer to the crate error: data errors reject the layer.
pub(crate) fn into_error(err: std::io::Error, offset: u64) -> Error {
    if let Some(over) = OverBudget::from_io(&err) {
        over
    } else if err.kind() == std::io::ErrorKind::InvalidData {
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
    /// `CompressionInfo.checkpoints`: every checkpoint with its window.
    pub blob: CheckpointRecords,
    pub span_digests: Vec<String>,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub blob_digest: String,
}
