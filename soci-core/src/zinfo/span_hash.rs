//! The span and blob digests, computed on a second thread from the compressed chunks while
//! the first inflates: sha256 of the compressed bytes of each span and of the whole blob.

use std::collections::VecDeque;
use std::sync::{Arc, mpsc};

use sha2::{Digest, Sha256};

use super::{HASH_BATCH, HASH_QUEUE};
use crate::{Error, Result};

/// A compressed chunk read from the source. Its buffer goes back to the indexer when the last
/// holder (inflate or the hashing thread) drops it, so the pass reuses a few dozen buffers
/// instead of allocating (and page-faulting) a fresh one per chunk.
pub(super) struct Chunk {
    pub(super) bytes: Vec<u8>,
    pub(super) len: usize,
    pub(super) spare: mpsc::Sender<Vec<u8>>,
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
pub(super) struct SpanHasherThread {
    sender: mpsc::SyncSender<Vec<HashMessage>>,
    /// Messages not sent yet.
    batch: Vec<HashMessage>,
}

fn hasher_stopped() -> std::io::Error {
    std::io::Error::other("the span hashing thread stopped")
}

impl SpanHasherThread {
    pub(super) fn spawn() -> Result<Self> {
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

    pub(super) fn data(&mut self, chunk: Arc<Chunk>, consumed: u64) -> std::io::Result<()> {
        self.batch.push(HashMessage::Data { chunk, consumed });
        if self.batch.len() >= HASH_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    pub(super) fn boundary(&mut self, end: u64, restart: u64) {
        self.batch.push(HashMessage::Boundary { end, restart });
    }

    pub(super) fn finish(&mut self, end: u64) -> Result<(String, Vec<String>)> {
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
