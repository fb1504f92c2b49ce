//! The checkpoint blob as the indexer builds it: records kept in chunks, so that the zTOC writer
//! can copy them into the flatbuffer and free each chunk as it goes instead of holding the
//! blob twice (checkpoints are most of the zTOC of a large layer with few files).

use super::{BLOB_HEADER_SIZE, CHECKPOINT_SIZE, Checkpoint};

/// Records per chunk: ~1 MiB.
const RECORDS_PER_CHUNK: usize = 32;

/// The checkpoint blob of FORMAT.md section 3, header apart, in chunks of whole records.
pub struct CheckpointRecords {
    span_size: i64,
    count: usize,
    chunks: Vec<Vec<u8>>,
}

impl CheckpointRecords {
    pub fn new(span_size: i64) -> Self {
        Self {
            span_size,
            count: 0,
            chunks: Vec::new(),
        }
    }

    /// Checkpoints in the blob.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The blob's length, header included.
    pub fn blob_len(&self) -> usize {
        BLOB_HEADER_SIZE + self.count * CHECKPOINT_SIZE
    }

    pub(crate) fn push(&mut self, checkpoint: &Checkpoint, window: &[u8]) {
        let chunk = match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < RECORDS_PER_CHUNK * CHECKPOINT_SIZE => chunk,
            _ => {
                self.chunks
                    .push(Vec::with_capacity(RECORDS_PER_CHUNK * CHECKPOINT_SIZE));
                let last = self.chunks.len() - 1;
                &mut self.chunks[last]
            }
        };
        chunk.extend_from_slice(&(checkpoint.input as i64).to_le_bytes());
        chunk.extend_from_slice(&(checkpoint.output as i64).to_le_bytes());
        chunk.push(checkpoint.bits);
        chunk.extend_from_slice(window);
        self.count += 1;
    }

    /// The blob header: the count (int32; `None` beyond) and the span size.
    pub fn header(&self) -> Option<[u8; BLOB_HEADER_SIZE]> {
        let count = i32::try_from(self.count).ok()?;
        let mut header = [0u8; BLOB_HEADER_SIZE];
        header[..4].copy_from_slice(&count.to_le_bytes());
        header[4..].copy_from_slice(&self.span_size.to_le_bytes());
        Some(header)
    }

    /// Takes the last chunk (whole records) out.
    pub(crate) fn pop_chunk(&mut self) -> Option<Vec<u8>> {
        self.chunks.pop()
    }

    /// The whole blob in one buffer.
    pub fn to_vec(&self) -> Option<Vec<u8>> {
        let mut blob = Vec::with_capacity(self.blob_len());
        blob.extend_from_slice(&self.header()?);
        for chunk in &self.chunks {
            blob.extend_from_slice(chunk);
        }
        Some(blob)
    }
}
