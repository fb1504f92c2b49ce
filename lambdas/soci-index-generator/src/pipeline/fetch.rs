//! Downloading one layer blob into the builder's channel: exactly the descriptor's `size` bytes,
//! in order, its digest checked over the whole stream.
//!
//! Two ways, one contract ([`fetch`]):
//!
//! - **One stream**: one `GET`; a body that breaks off is continued from the current offset
//!   with `Range` (a store that answers `200` instead gets the bytes already read skipped).
//! - **Parallel ranges** (layers of at least [`ParallelFetch::min_size`]): one connection to S3
//!   carries far less than the function's network, so the blob is fetched as fixed-size chunks,
//!   [`ParallelFetch::concurrency`] `Range` requests at a time. At most that many chunks are in
//!   flight or buffered (a chunk's slot is reused only once its bytes are in the channel), so
//!   memory is bounded by `(concurrency + 2) x chunk_size` whatever the layer's size (the
//!   window, and at most two chunks whose last parts wait in the builder's channel). Bytes go
//!   to the builder strictly in order, the first chunk of the window as it arrives, and are
//!   hashed there, as in one stream. The first request is
//!   sent to the registry and its redirect (ECR: a presigned S3 URL) is followed once; the
//!   other chunks go straight to that URL, and it is resolved again when it answers `403`
//!   (expired). Every answer must be `206` with the `Content-Range` asked for: a `200` to the
//!   first request is read as the whole blob by one stream (nothing read twice); any other
//!   answer ends parallel mode, and one stream continues from the first byte not yet handed
//!   on. A chunk that breaks off is continued by itself, from where it stopped
//!   ([`RetryPolicy`]), while the others go on. A `Content-Range` total that differs from the
//!   descriptor's size is a wrong blob, never a reason to fall back.
//!
//! Chunk tasks are [`AbortOnDropHandle`]s owned by the fetch: when the layer fails or passes
//! its deadline, the fetch future is dropped and every request stops.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::{Response, StatusCode, header};
use tokio::sync::{Mutex, mpsc};
use tokio_util::task::AbortOnDropHandle;

pub use crate::config::ParallelFetch;
use crate::registry::{BlobLocation, DigestHasher, RegistryClient, RegistryError, RetryPolicy};

/// What the download hands the reader: bytes, then (sent by the caller) `None` once every
/// byte of the blob arrived and matched its digest, or the error that stopped it.
pub type Chunk = std::io::Result<Option<Bytes>>;

/// The blob to fetch.
#[derive(Clone, Debug)]
pub struct Blob {
    pub repo: String,
    pub digest: String,
    pub size: u64,
    /// The reader checks sha256 itself (soci-core does, before it refuses a layer): hashing
    /// it here too would cost a second pass over every byte. Other algorithms are always
    /// checked here.
    pub sha256_checked_by_reader: bool,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Registry(RegistryError),
    /// The bytes served are not the blob the descriptor names (size, digest), or the download
    /// kept breaking off.
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    Task(String),
}

/// How a fetch went (for logs, tests and benchmarks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Chunks whose bytes came from parallel `Range` requests and were handed on.
    pub ranged_chunks: u64,
    /// Why parallel mode was left for one stream, when it was.
    pub fallback: Option<String>,
    /// The most chunk bytes held at once (received, not yet handed to the reader).
    pub max_buffered: u64,
    /// Chunk requests sent again after a break (each continues its own chunk).
    pub chunk_retries: u32,
    /// Times the redirect was resolved again after its URL was refused.
    pub reresolved: u32,
}

/// Fetches `blob` into `tx`, in parallel when `parallel` applies to its size (module docs).
/// When the reader goes away early (it refused the layer), the rest is still read and hashed
/// if the digest is checked here, so that a refusal only counts for bytes that are the blob.
pub async fn fetch(
    registry: &Arc<RegistryClient>,
    blob: &Blob,
    parallel: &ParallelFetch,
    retry: RetryPolicy,
    tx: &mpsc::Sender<Chunk>,
) -> Result<FetchReport, FetchError> {
    let mut sink = Sink {
        tx,
        hasher: DigestHasher::for_digest(&blob.digest).map_err(FetchError::Corrupt)?,
        hashing: !(blob.sha256_checked_by_reader && blob.digest.starts_with("sha256:")),
        offset: 0,
        size: blob.size,
        reader_alive: true,
    };
    let mut report = FetchReport::default();
    let mut first = None;
    if parallel.applies_to(blob.size) {
        let shared = Arc::new(Shared {
            registry: registry.clone(),
            blob: blob.clone(),
            retry,
            location: Mutex::new((BlobLocation::Registry, 0)),
            reresolved: AtomicU32::new(0),
            retries: AtomicU32::new(0),
            buffered: AtomicU64::new(0),
            max_buffered: AtomicU64::new(0),
        });
        let outcome = fetch_parallel(&shared, parallel, &mut sink, &mut report).await;
        report.max_buffered = shared.max_buffered.load(Ordering::SeqCst);
        report.chunk_retries = shared.retries.load(Ordering::SeqCst);
        report.reresolved = shared.reresolved.load(Ordering::SeqCst);
        match outcome? {
            Parallel::Done => return sink.finish(&blob.digest).map(|()| report),
            Parallel::Fallback { whole, reason } => {
                tracing::warn!(layer = %blob.digest, offset = sink.offset, reason = %reason, "parallel ranged fetch not possible, continuing with one stream");
                report.fallback = Some(reason);
                first = whole;
            }
        }
    }
    if one_stream(registry, blob, retry, &mut sink, first).await? == Flow::Continue {
        sink.finish(&blob.digest)?;
    }
    Ok(report)
}

/// The ordered end of the download: size bound, hash, hand-over to the reader.
struct Sink<'a> {
    tx: &'a mpsc::Sender<Chunk>,
    hasher: DigestHasher,
    hashing: bool,
    /// Bytes handed on so far: where the blob continues.
    offset: u64,
    size: u64,
    reader_alive: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The reader is done and checks (or reports) what it read itself: stop downloading.
    Stop,
}

impl Sink<'_> {
    async fn deliver(&mut self, piece: Bytes) -> Result<Flow, FetchError> {
        if piece.is_empty() {
            return Ok(Flow::Continue);
        }
        if self.offset + piece.len() as u64 > self.size {
            return Err(FetchError::Corrupt(format!(
                "more than the descriptor's {} bytes",
                self.size
            )));
        }
        if self.hashing {
            self.hasher.update(&piece);
        }
        self.offset += piece.len() as u64;
        if self.reader_alive && self.tx.send(Ok(Some(piece))).await.is_err() {
            self.reader_alive = false;
        }
        if !self.reader_alive && !self.hashing {
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }

    /// Every byte handed on: the digest, when it is checked here.
    fn finish(self, digest: &str) -> Result<(), FetchError> {
        if !self.hashing {
            return Ok(());
        }
        let actual = self.hasher.finish();
        if actual != digest {
            return Err(FetchError::Corrupt(format!(
                "the {} bytes served have digest {actual}",
                self.size
            )));
        }
        Ok(())
    }
}

/// One stream from `sink.offset` to the end: `first`, when given, is an answer already
/// received for the blob from byte 0 (a `200` to a ranged request). A body that breaks off
/// (reset, timeout, or an early end of a close-delimited body) is continued from the current
/// offset with `Range`; a store that answers `200` instead gets its first bytes skipped.
async fn one_stream(
    registry: &RegistryClient,
    blob: &Blob,
    retry: RetryPolicy,
    sink: &mut Sink<'_>,
    mut first: Option<Response>,
) -> Result<Flow, FetchError> {
    let mut breaks = 0u32;
    while sink.offset < blob.size {
        let offset = sink.offset;
        let resp = match first.take() {
            Some(resp) => resp,
            None => registry
                .get_blob_from(&blob.repo, &blob.digest, offset)
                .await
                .map_err(FetchError::Registry)?,
        };
        let mut skip = body_start(&resp, offset).map_err(FetchError::Corrupt)?;
        let mut body = resp.bytes_stream();
        let broke = loop {
            let chunk = match body.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => break e.without_url().to_string(),
                None => break format!("the body ended at byte {} of {}", sink.offset, blob.size),
            };
            let chunk = skip_prefix(chunk, &mut skip);
            if sink.deliver(chunk).await? == Flow::Stop {
                return Ok(Flow::Stop);
            }
            if sink.offset == blob.size {
                break String::new();
            }
        };
        if sink.offset == blob.size {
            break;
        }
        if !retry.allows_another(breaks) {
            return Err(FetchError::Corrupt(format!(
                "download broke off {} times, last at byte {}: {broke}",
                breaks + 1,
                sink.offset
            )));
        }
        tracing::warn!(layer = %blob.digest, offset = sink.offset, error = %broke, attempt = breaks, "layer download broke off, continuing it");
        tokio::time::sleep(retry.delay(breaks, None)).await;
        breaks += 1;
    }
    Ok(Flow::Continue)
}

/// Bytes to skip at the start of the answer to a request for the blob from `offset`: 0 for
/// a `206` starting there, `offset` for a `200` (the whole blob again).
fn body_start(resp: &Response, offset: u64) -> Result<u64, String> {
    if offset == 0 || resp.status() == StatusCode::OK {
        return Ok(offset);
    }
    let range = content_range(resp);
    match (
        resp.status().as_u16(),
        range.as_deref().and_then(parse_content_range),
    ) {
        (206, Some((start, _, _))) if start == offset => Ok(0),
        (status, _) => Err(format!(
            "asked for bytes from {offset}, got status {status} with Content-Range {range:?}"
        )),
    }
}

/// `chunk` without its first `*skip` bytes (counted down).
fn skip_prefix(mut chunk: Bytes, skip: &mut u64) -> Bytes {
    let n = usize::try_from(*skip)
        .unwrap_or(usize::MAX)
        .min(chunk.len());
    *skip -= n as u64;
    chunk.advance(n);
    chunk
}

fn content_range(resp: &Response) -> Option<String> {
    resp.headers()
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// `bytes <first>-<last>/<total or *>` as (first, last, total).
fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let (span, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (first <= last).then_some((first, last, total))
}

/// What the state shared by the chunk tasks holds.
struct Shared {
    registry: Arc<RegistryClient>,
    blob: Blob,
    retry: RetryPolicy,
    /// Where chunk requests go, and how many times it was resolved (so that tasks refused by
    /// the same expired URL resolve it once).
    location: Mutex<(BlobLocation, u32)>,
    reresolved: AtomicU32,
    retries: AtomicU32,
    buffered: AtomicU64,
    max_buffered: AtomicU64,
}

/// Why a chunk has no bytes.
enum ChunkError {
    /// The answer was not the range asked for: parallel mode ends, one stream continues.
    Unusable(String),
    Failed(FetchError),
}

impl Shared {
    fn hold(&self, n: usize) {
        let now = self.buffered.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        self.max_buffered.fetch_max(now, Ordering::SeqCst);
    }

    fn release(&self, n: usize) {
        self.buffered.fetch_sub(n as u64, Ordering::SeqCst);
    }

    /// The bytes `range`, from the current location; a redirect target that answers `403`
    /// (its signature expired) is resolved again, a few times per layer at most.
    async fn request(&self, range: Range<u64>) -> Result<Response, ChunkError> {
        loop {
            let (location, generation) = self.location.lock().await.clone();
            let sent = self
                .registry
                .get_blob_range_at(&self.blob.repo, &self.blob.digest, &location, range.clone())
                .await;
            match sent {
                Ok(resp) => return Ok(resp),
                Err(e)
                    if e.status() == Some(403)
                        && matches!(location, BlobLocation::Redirected(_)) =>
                {
                    self.resolve_again(generation, e).await?;
                }
                Err(e) => return Err(ChunkError::Failed(FetchError::Registry(e))),
            }
        }
    }

    async fn resolve_again(&self, seen: u32, refused: RegistryError) -> Result<(), ChunkError> {
        let mut location = self.location.lock().await;
        if location.1 != seen {
            return Ok(()); // another chunk already did
        }
        if !self.retry.allows_another(location.1) {
            return Err(ChunkError::Failed(FetchError::Registry(refused)));
        }
        tracing::warn!(layer = %self.blob.digest, error = %refused, "the blob URL was refused, resolving the registry's redirect again");
        let (_, fresh) = self
            .registry
            .get_blob_range(&self.blob.repo, &self.blob.digest, 0..1)
            .await
            .map_err(|e| ChunkError::Failed(FetchError::Registry(e)))?;
        *location = (fresh, location.1 + 1);
        self.reresolved.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Checks that `resp` is the answer to a request for `range` of a blob of `size` bytes.
fn check_partial(resp: &Response, range: &Range<u64>, size: u64) -> Result<(), ChunkError> {
    let value = content_range(resp);
    let parsed = value.as_deref().and_then(parse_content_range);
    if let Some((_, _, Some(total))) = parsed
        && total != size
    {
        return Err(ChunkError::Failed(FetchError::Corrupt(format!(
            "the blob store says the blob has {total} bytes, the descriptor {size}"
        ))));
    }
    match (resp.status().as_u16(), parsed) {
        (206, Some((first, last, _))) if first == range.start && last + 1 == range.end => Ok(()),
        (status, _) => Err(ChunkError::Unusable(format!(
            "asked for bytes {}-{}, got status {status} with Content-Range {value:?}",
            range.start,
            range.end - 1
        ))),
    }
}

/// One chunk's bytes, sent to `out` as they arrive (the head chunk streams into the builder
/// while the others buffer). `first` is an answer already received for it. A body that breaks
/// off is continued from where it stopped, this chunk only; what was sent stays valid.
///
/// The body's pieces are copied into one buffer of the chunk's size, and sent as parts of it:
/// each piece hyper hands out shares (and keeps alive) a read buffer of up to ~400 KiB, so
/// holding a window of them could hold several times their bytes; one copy costs far less.
async fn fetch_chunk(
    shared: Arc<Shared>,
    index: u64,
    range: Range<u64>,
    mut first: Option<Response>,
    out: mpsc::UnboundedSender<Bytes>,
) -> Result<(), ChunkError> {
    let len = range.end - range.start;
    // `len` is at most the configured chunk size (bounded by the configuration).
    let capacity = usize::try_from(len)
        .map_err(|_| ChunkError::Failed(FetchError::Task(format!("chunk {index}: {len} bytes"))))?;
    let mut buf = BytesMut::with_capacity(capacity);
    let mut got = 0u64;
    let mut breaks = 0u32;
    loop {
        let rest = range.start + got..range.end;
        let resp = match first.take() {
            Some(resp) => resp,
            None => shared.request(rest.clone()).await?,
        };
        check_partial(&resp, &rest, shared.blob.size)?;
        let mut body = resp.bytes_stream();
        let broke = loop {
            match body.next().await {
                Some(Ok(piece)) => {
                    if got + piece.len() as u64 > len {
                        return Err(ChunkError::Unusable(format!(
                            "chunk {index} (bytes {}-{}): the answer is longer than asked",
                            range.start,
                            range.end - 1
                        )));
                    }
                    got += piece.len() as u64;
                    shared.hold(piece.len());
                    buf.extend_from_slice(&piece);
                    // The receiver is gone only when the fetch ended, which aborts this task.
                    let _ = out.send(buf.split().freeze());
                    if got == len {
                        return Ok(());
                    }
                }
                Some(Err(e)) => break e.without_url().to_string(),
                None => break format!("the body ended after {got} of {len} bytes"),
            }
        };
        if !shared.retry.allows_another(breaks) {
            return Err(ChunkError::Failed(FetchError::Corrupt(format!(
                "chunk {index} (bytes {}-{}) broke off {} times, last at byte {}: {broke}",
                range.start,
                range.end - 1,
                breaks + 1,
                range.start + got
            ))));
        }
        tracing::warn!(layer = %shared.blob.digest, chunk = index, offset = range.start + got, error = %broke, attempt = breaks, "chunk download broke off, continuing it");
        shared.retries.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(shared.retry.delay(breaks, None)).await;
        breaks += 1;
    }
}

/// How parallel mode ended.
enum Parallel {
    Done,
    /// One stream continues from the sink's offset; `whole` is a `200` answer from byte 0 to
    /// read instead of asking again.
    Fallback {
        whole: Option<Response>,
        reason: String,
    },
}

/// A chunk being fetched: its bytes so far, and how it ended. The channel is unbounded, but
/// what it holds is bounded by the chunk's size.
struct ChunkTask {
    bytes: mpsc::UnboundedReceiver<Bytes>,
    task: AbortOnDropHandle<Result<(), ChunkError>>,
}

async fn fetch_parallel(
    shared: &Arc<Shared>,
    settings: &ParallelFetch,
    sink: &mut Sink<'_>,
    report: &mut FetchReport,
) -> Result<Parallel, FetchError> {
    let size = shared.blob.size;
    let chunk_size = settings.chunk_size.max(1);
    let chunk = |i: u64| i * chunk_size..((i + 1) * chunk_size).min(size);
    let (probe, location) = shared
        .registry
        .get_blob_range(&shared.blob.repo, &shared.blob.digest, chunk(0))
        .await
        .map_err(FetchError::Registry)?;
    if probe.status() == StatusCode::OK {
        return Ok(Parallel::Fallback {
            whole: Some(probe),
            reason: "the blob store answered a ranged request with the whole blob (200)".into(),
        });
    }
    match check_partial(&probe, &chunk(0), size) {
        Ok(()) => {}
        Err(ChunkError::Unusable(reason)) => {
            return Ok(Parallel::Fallback {
                whole: None,
                reason,
            });
        }
        Err(ChunkError::Failed(e)) => return Err(e),
    }
    *shared.location.lock().await = (location, 0);
    let chunks = size.div_ceil(chunk_size);
    let spawn = |i: u64, first: Option<Response>| -> ChunkTask {
        let (tx, bytes) = mpsc::unbounded_channel();
        let task = tokio::spawn(fetch_chunk(shared.clone(), i, chunk(i), first, tx));
        ChunkTask {
            bytes,
            task: AbortOnDropHandle::new(task),
        }
    };
    let mut window: VecDeque<ChunkTask> = VecDeque::new();
    window.push_back(spawn(0, Some(probe)));
    let mut next = 1u64;
    let window_size = settings.concurrency.max(1);
    loop {
        // A slot is taken again only once the chunk that held it is in the channel.
        while next < chunks && window.len() < window_size {
            window.push_back(spawn(next, None));
            next += 1;
        }
        let Some(mut head) = window.pop_front() else {
            break;
        };
        // The head chunk's bytes go on as they arrive; the channel closes when its task ends.
        while let Some(piece) = head.bytes.recv().await {
            shared.release(piece.len());
            if sink.deliver(piece).await? == Flow::Stop {
                return Ok(Parallel::Done);
            }
        }
        match head.task.await {
            Ok(Ok(())) => {}
            // Dropping the window aborts the chunks still in flight.
            Ok(Err(ChunkError::Unusable(reason))) => {
                return Ok(Parallel::Fallback {
                    whole: None,
                    reason,
                });
            }
            Ok(Err(ChunkError::Failed(e))) => return Err(e),
            Err(e) => return Err(FetchError::Task(format!("chunk task: {e}"))),
        }
        report.ranged_chunks += 1;
    }
    Ok(Parallel::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_a_restarted_body() {
        let mut skip = 5;
        assert!(skip_prefix(Bytes::from_static(b"abc"), &mut skip).is_empty());
        assert_eq!(
            &skip_prefix(Bytes::from_static(b"defgh"), &mut skip)[..],
            b"fgh"
        );
        assert_eq!(skip, 0);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some((0, 99, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-5/*"), Some((5, 5, None)));
        for bad in [
            "",
            "bytes */1000",
            "bytes 9-3/10",
            "items 0-1/2",
            "bytes 0-x/2",
            "bytes 0-1/y",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }
}
