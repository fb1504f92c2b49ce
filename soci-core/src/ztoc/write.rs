//! The byte-exact flatbuffer writer: fields are added in the reference's builder call order,
//! which fixes the bytes.

use flatbuffers::{FlatBufferBuilder, Push, WIPOffset};

use super::budget::FLATBUFFER_MAX_BYTES;
use super::packed::PackedToc;
use super::{ALGORITHM_GZIP, FileMetadata, TarZinfo, Ztoc};
use crate::zinfo::{BLOB_HEADER_SIZE, CHECKPOINT_SIZE, CheckpointRecords};
use crate::{Error, Result};

/// Where the writer takes TOC entries from: the last one first (FORMAT.md section 4, step 2),
/// each freed once written.
pub(crate) trait EntrySource {
    fn len(&self) -> usize;
    fn pop(&mut self) -> Result<Option<FileMetadata>>;
}

impl EntrySource for Vec<FileMetadata> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn pop(&mut self) -> Result<Option<FileMetadata>> {
        let entry = Vec::pop(self);
        if Vec::len(self) < self.capacity() / 2 {
            self.shrink_to_fit();
        }
        Ok(entry)
    }
}

impl EntrySource for PackedToc {
    fn len(&self) -> usize {
        PackedToc::len(self)
    }

    fn pop(&mut self) -> Result<Option<FileMetadata>> {
        PackedToc::pop(self)
    }
}

/// `CompressionInfo.checkpoints`: a finished blob, or gzip checkpoint records still in chunks.
pub(crate) enum CheckpointBytes {
    Flat(Vec<u8>),
    Records(CheckpointRecords),
}

impl CheckpointBytes {
    fn len(&self) -> usize {
        match self {
            Self::Flat(bytes) => bytes.len(),
            Self::Records(records) => records.blob_len(),
        }
    }
}

/// The zTOC fields besides the TOC entries and the checkpoints.
pub(crate) struct ZtocFields<'a> {
    pub version: &'a [u8],
    pub build_tool_identifier: &'a [u8],
    pub compressed_archive_size: i64,
    pub uncompressed_archive_size: i64,
    pub compression_algorithm: i8,
    pub max_span_id: i32,
    pub span_digests: &'a [Vec<u8>],
}

/// The bytes a string (or byte vector) takes: length prefix, bytes, NUL, padding to 4. The
/// writer keeps the builder 4-aligned between strings (every table, vtable and vector it
/// writes in the TOC is a multiple of 4 bytes).
fn string_size(len: usize) -> u64 {
    (len as u64 + 1).next_multiple_of(4) + 4
}

/// An upper bound of the flatbuffer bytes of the TOC, entry by entry: the unit of the TOC memory
/// budget, and the builder's capacity (so it never regrows and leaves little unused space).
#[derive(Clone)]
pub(crate) struct TocSize {
    pub bytes: u64,
    /// Vtables written so far per scalar-presence shape: the builder writes a vtable once per
    /// distinct layout and points later tables at it, and a shape has at most two layouts (the
    /// table starting 8-aligned or not).
    vtables: [u8; 1 << 7],
    xattr_vtables: u8,
}

impl Default for TocSize {
    fn default() -> Self {
        Self {
            bytes: 0,
            vtables: [0; 1 << 7],
            xattr_vtables: 0,
        }
    }
}

impl TocSize {
    /// Adds one entry; returns its upper bound.
    pub(crate) fn add(&mut self, e: &FileMetadata) -> u64 {
        let strings: u64 = [
            &e.name,
            &e.file_type,
            &e.linkname,
            &e.uname,
            &e.gname,
            &e.mod_time,
        ]
        .iter()
        .map(|s| string_size(s.len()))
        .sum();
        let wide = [
            e.uncompressed_offset,
            e.uncompressed_size,
            e.mode,
            e.devmajor,
            e.devminor,
        ];
        let shape = wide
            .iter()
            .map(|&v| v != 0)
            .chain([e.uid != 0, e.gid != 0])
            .enumerate()
            .fold(0usize, |bits, (i, set)| bits | (usize::from(set) << i));
        let scalars = wide.iter().filter(|&&v| v != 0).count() as u64 * 8
            + u64::from(e.uid != 0) * 4
            + u64::from(e.gid != 0) * 4;
        // Offset to the vtable, 7 offset slots, the scalars, up to 16 bytes of alignment for the
        // 8-byte scalars; the slot in the metadata vector; the xattrs vector.
        let mut size = strings + 4 + 7 * 4 + scalars + 16 + 4 + 4 + 4 * e.xattrs.len() as u64;
        if self.vtables[shape] < 2 {
            self.vtables[shape] += 1;
            size += 4 + 2 * 14;
        }
        for (key, value) in &e.xattrs {
            size += string_size(key.len()) + string_size(value.len()) + 4 + 2 * 4;
            if self.xattr_vtables < 2 {
                self.xattr_vtables += 1;
                size += 4 + 2 * 2;
            }
        }
        self.bytes += size;
        size
    }

    /// The whole zTOC's upper bound, given the other fields and the checkpoint blob's length.
    fn total(&self, fields: &ZtocFields<'_>, checkpoints: usize) -> u64 {
        let digests: u64 = fields
            .span_digests
            .iter()
            .map(|d| string_size(d.len()) + 4)
            .sum();
        // The tables around the TOC (TOC, CompressionInfo, Ztoc with their vtables and
        // alignment), the vectors' length prefixes and the root offset: under 256 bytes.
        256 + string_size(fields.version.len())
            + string_size(fields.build_tool_identifier.len())
            + self.bytes
            + digests
            + string_size(checkpoints)
    }
}

impl Ztoc {
    /// The flatbuffer bytes, exactly as the reference's `ztoc.Marshal` writes them; an error
    /// (instead of the flatbuffers builder's panic) when they would not fit in 2 GiB.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.clone().into_bytes()
    }

    /// [`Ztoc::to_bytes`] consuming the model, each entry freed once written.
    pub fn into_bytes(mut self) -> Result<Vec<u8>> {
        let mut size = TocSize::default();
        for entry in &self.toc {
            size.add(entry);
        }
        let fields = ZtocFields {
            version: &self.version,
            build_tool_identifier: &self.build_tool_identifier,
            compressed_archive_size: self.compressed_archive_size,
            uncompressed_archive_size: self.uncompressed_archive_size,
            compression_algorithm: self.compression_algorithm,
            max_span_id: self.max_span_id,
            span_digests: &self.span_digests,
        };
        let checkpoints = CheckpointBytes::Flat(std::mem::take(&mut self.checkpoints));
        write_ztoc(&fields, &size, &mut self.toc, checkpoints)
    }
}

/// Writes a zTOC in the reference's builder call order (FORMAT.md section 4). Entries are freed
/// as they are written and checkpoint chunks as they are copied, the builder gets the capacity
/// `size` bounds (it never regrows) and its buffer becomes the result: the zTOC is never held
/// twice. An error, not the flatbuffers builder's panic, when it would not fit in 2 GiB.
pub(crate) fn write_ztoc(
    fields: &ZtocFields<'_>,
    size: &TocSize,
    entries: &mut impl EntrySource,
    checkpoints: CheckpointBytes,
) -> Result<Vec<u8>> {
    let estimate = size.total(fields, checkpoints.len());
    if estimate > FLATBUFFER_MAX_BYTES {
        return Err(Error::Unindexable(format!(
            "the zTOC would take up to {estimate} bytes, over the {FLATBUFFER_MAX_BYTES}-byte \
             limit of a flatbuffer ({} entries, {} checkpoint bytes)",
            entries.len(),
            checkpoints.len()
        )));
    }
    let mut b = FlatBufferBuilder::with_capacity(estimate as usize);
    let version = b.create_byte_string(fields.version);
    let build_tool = b.create_byte_string(fields.build_tool_identifier);

    let mut offsets: Vec<WIPOffset<flatbuffers::TableFinishedWIPOffset>> =
        Vec::with_capacity(entries.len());
    while let Some(entry) = entries.pop()? {
        offsets.push(write_entry(&mut b, &entry));
    }
    offsets.reverse();
    let metadata = b.create_vector(&offsets);
    drop(offsets);
    let start = b.start_table();
    b.push_slot_always(slot(0), metadata);
    let toc = b.end_table(start);

    let checkpoints = write_checkpoints(&mut b, checkpoints)?;
    let digests: Vec<_> = fields
        .span_digests
        .iter()
        .map(|d| b.create_byte_string(d))
        .collect();
    let digests = b.create_vector(&digests);
    let start = b.start_table();
    b.push_slot(slot(1), fields.max_span_id, 0);
    b.push_slot_always(slot(2), digests);
    b.push_slot_always(slot(3), checkpoints);
    b.push_slot(slot(0), fields.compression_algorithm, ALGORITHM_GZIP);
    let compression_info = b.end_table(start);

    let start = b.start_table();
    b.push_slot_always(slot(0), version);
    b.push_slot_always(slot(1), build_tool);
    b.push_slot_always(slot(4), toc);
    b.push_slot(slot(2), fields.compressed_archive_size, 0);
    b.push_slot(slot(3), fields.uncompressed_archive_size, 0);
    b.push_slot_always(slot(5), compression_info);
    let root = b.end_table(start);
    b.finish_minimal(root);
    debug_assert!(
        b.finished_data().len() as u64 <= estimate,
        "{} bytes, estimated {estimate}",
        b.finished_data().len()
    );
    // The builder filled its buffer from the end: move the bytes to the front, in place.
    let (mut bytes, head) = b.collapse();
    bytes.drain(..head);
    Ok(bytes)
}

/// One checkpoint record, pushed whole into the builder (alignment 1, like the bytes of a
/// `[ubyte]` vector).
struct Record<'a>(&'a [u8]);

impl Push for Record<'_> {
    type Output = [u8; CHECKPOINT_SIZE];

    unsafe fn push(&self, dst: &mut [u8], _written_len: usize) {
        dst[..CHECKPOINT_SIZE].copy_from_slice(self.0);
    }
}

/// The blob header, pushed last (it comes first).
struct Header([u8; BLOB_HEADER_SIZE]);

impl Push for Header {
    type Output = [u8; BLOB_HEADER_SIZE];

    unsafe fn push(&self, dst: &mut [u8], _written_len: usize) {
        dst[..BLOB_HEADER_SIZE].copy_from_slice(&self.0);
    }
}

/// The checkpoints byte vector: the same bytes `create_vector` writes (same alignment, bytes,
/// length prefix), copied chunk by chunk from the end so each chunk is freed once copied.
fn write_checkpoints<'b>(
    b: &mut FlatBufferBuilder<'b>,
    checkpoints: CheckpointBytes,
) -> Result<WIPOffset<flatbuffers::Vector<'b, u8>>> {
    let mut records = match checkpoints {
        CheckpointBytes::Flat(bytes) => return Ok(b.create_vector(&bytes)),
        CheckpointBytes::Records(records) => records,
    };
    let header = records
        .header()
        .ok_or_else(|| Error::Unindexable(format!("{} checkpoints", records.count())))?;
    let len = records.blob_len();
    b.start_vector::<u8>(len);
    while let Some(chunk) = records.pop_chunk() {
        for record in chunk.chunks_exact(CHECKPOINT_SIZE).rev() {
            b.push(Record(record));
        }
    }
    b.push(Header(header));
    Ok(b.end_vector::<u8>(len))
}

/// One `FileMetadata` table with its strings and PAX records (FORMAT.md section 4, step 2).
fn write_entry(
    b: &mut FlatBufferBuilder<'_>,
    entry: &FileMetadata,
) -> WIPOffset<flatbuffers::TableFinishedWIPOffset> {
    let name = b.create_byte_string(&entry.name);
    let file_type = b.create_byte_string(&entry.file_type);
    let linkname = b.create_byte_string(&entry.linkname);
    let uname = b.create_byte_string(&entry.uname);
    let gname = b.create_byte_string(&entry.gname);
    let mod_time = b.create_byte_string(&entry.mod_time);
    let mut xattrs = Vec::with_capacity(entry.xattrs.len());
    for (key, value) in &entry.xattrs {
        let key = b.create_byte_string(key);
        let value = b.create_byte_string(value);
        let start = b.start_table();
        b.push_slot_always(slot(0), key);
        b.push_slot_always(slot(1), value);
        xattrs.push(b.end_table(start));
    }
    let xattrs = b.create_vector(&xattrs);
    let start = b.start_table();
    b.push_slot_always(slot(0), name);
    b.push_slot_always(slot(1), file_type);
    b.push_slot(slot(2), entry.uncompressed_offset, 0);
    b.push_slot(slot(3), entry.uncompressed_size, 0);
    b.push_slot_always(slot(4), linkname);
    b.push_slot(slot(5), entry.mode, 0);
    b.push_slot(slot(6), entry.uid, 0);
    b.push_slot(slot(7), entry.gid, 0);
    b.push_slot_always(slot(8), uname);
    b.push_slot_always(slot(9), gname);
    b.push_slot_always(slot(10), mod_time);
    b.push_slot(slot(11), entry.devmajor, 0);
    b.push_slot(slot(12), entry.devminor, 0);
    b.push_slot_always(slot(13), xattrs);
    b.end_table(start)
}

impl TarZinfo {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = FlatBufferBuilder::with_capacity(64);
        let start = b.start_table();
        b.push_slot(slot(0), self.version, 0);
        b.push_slot(slot(1), self.span_size, 0);
        b.push_slot(slot(2), self.size, 0);
        let root = b.end_table(start);
        b.finish_minimal(root);
        b.finished_data().to_vec()
    }
}

/// The vtable offset of field number `n`.
fn slot(n: u16) -> flatbuffers::VOffsetT {
    4 + 2 * n
}
