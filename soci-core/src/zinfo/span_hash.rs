//! The span and blob digests, computed on a second thread from the compressed chunks while
//! the first inflates: sha256 of the compressed bytes of each span and of the whole blob.

use std::collections::VecDeque;
use std::sync::{Arc, mpsc};

use sha2::{Digest, Sha256};

use super::parallel::Work;
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

pub(super) enum HashMessage {
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

/// Where the batches of hash messages go.
enum Route {
    /// A hashing thread of its own.
    Own(mpsc::SyncSender<Vec<HashMessage>>),
    /// The parallel inflate's speculating thread, which hashes between speculations: on two
    /// cores, two busy threads instead of three (a third took the inflating thread's core a
    /// third of the time).
    Shared(mpsc::SyncSender<Work>),
}

/// Hashes the blob and its spans on a second thread, so sha256 runs beside inflate instead of
/// after it (span boundaries are only known as inflate reaches the checkpoints).
pub(super) struct SpanHasherThread {
    route: Route,
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
            route: Route::Own(sender),
            batch: Vec::with_capacity(HASH_BATCH),
        })
    }

    /// Hashing on the thread that receives `sender`'s work ([`SpanHashes::handle`] on each
    /// [`Work::Hash`] message, in order).
    pub(super) fn shared(sender: mpsc::SyncSender<Work>) -> Self {
        Self {
            route: Route::Shared(sender),
            batch: Vec::with_capacity(HASH_BATCH),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(HASH_BATCH));
        let sent = match &self.route {
            Route::Own(sender) => sender.send(batch).is_ok(),
            Route::Shared(sender) => sender.send(Work::Hash(batch)).is_ok(),
        };
        sent.then_some(()).ok_or_else(hasher_stopped)
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
    let mut hashes = SpanHashes::default();
    for message in receiver.iter().flatten() {
        if hashes.handle(message) {
            return;
        }
    }
}

/// The hashing side: the blob digest and the span digests, fed in stream order.
#[derive(Default)]
pub(super) struct SpanHashes {
    blob: Sha256,
    span: Sha256,
    digests: Vec<String>,
    /// Chunks whose bytes a span may still need, with their blob offsets.
    pending: VecDeque<(u64, Arc<Chunk>)>,
    received: u64,
    span_start: u64,
    in_span: bool,
}

impl SpanHashes {
    /// Handles one message; true once the digests have been sent (nothing more is expected).
    pub(super) fn handle(&mut self, message: HashMessage) -> bool {
        match message {
            HashMessage::Data { chunk, consumed } => {
                self.blob.update(&chunk[..]);
                let len = chunk.len() as u64;
                self.pending.push_back((self.received, chunk));
                self.received += len;
                let settled = consumed.saturating_sub(1);
                if self.in_span && settled > self.span_start {
                    feed_span(&mut self.span, &self.pending, self.span_start, settled);
                    self.span_start = settled;
                }
                let keep_from = if self.in_span { self.span_start } else { 0 };
                self.drop_pending_before(keep_from);
                false
            }
            HashMessage::Boundary { end, restart } => {
                self.close_span(end);
                self.in_span = true;
                self.span_start = restart;
                self.drop_pending_before(restart);
                false
            }
            HashMessage::Finish { end, reply } => {
                self.close_span(end);
                let blob = hex_digest(std::mem::take(&mut self.blob));
                let _ = reply.send((blob, std::mem::take(&mut self.digests)));
                true
            }
        }
    }

    /// Ends the current span (if one has started) at blob offset `end`.
    fn close_span(&mut self, end: u64) {
        if self.in_span {
            feed_span(&mut self.span, &self.pending, self.span_start, end);
            self.digests
                .push(hex_digest(std::mem::take(&mut self.span)));
        }
    }

    fn drop_pending_before(&mut self, offset: u64) {
        while self
            .pending
            .front()
            .is_some_and(|(base, chunk)| base + chunk.len() as u64 <= offset)
        {
            self.pending.pop_front();
        }
    }
}
