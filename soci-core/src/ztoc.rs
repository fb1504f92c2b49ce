//! The zTOC: its model, the byte-exact flatbuffer writer and a bounds-checked reader.
//!
//! The writer drives the `flatbuffers` builder in the reference's call order (format doc
//! section 2), which fixes the bytes; the generated `create()` helpers would reorder fields.

use flatbuffers::{FlatBufferBuilder, WIPOffset};

use crate::{Error, Result};

/// The only zTOC version the reference writes.
pub const ZTOC_VERSION: &str = "0.9";
/// `CompressionInfo.compression_algorithm` values.
pub const ALGORITHM_GZIP: i8 = 1;
pub const ALGORITHM_UNCOMPRESSED: i8 = 2;
/// The TarZinfo version the reference writes for uncompressed layers.
pub const TAR_ZINFO_VERSION: i32 = 2;

/// One TOC entry. Byte strings are raw (tar names need not be UTF-8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileMetadata {
    pub name: Vec<u8>,
    pub file_type: Vec<u8>,
    pub uncompressed_offset: i64,
    pub uncompressed_size: i64,
    pub linkname: Vec<u8>,
    pub mode: i64,
    pub uid: u32,
    pub gid: u32,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub mod_time: Vec<u8>,
    pub devmajor: i64,
    pub devminor: i64,
    /// All PAX records, sorted bytewise by key.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A whole zTOC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ztoc {
    pub version: Vec<u8>,
    pub build_tool_identifier: Vec<u8>,
    pub compressed_archive_size: i64,
    pub uncompressed_archive_size: i64,
    pub toc: Vec<FileMetadata>,
    pub compression_algorithm: i8,
    pub max_span_id: i32,
    pub span_digests: Vec<Vec<u8>>,
    /// The gzip checkpoint blob, or a nested TarZinfo flatbuffer for uncompressed layers.
    pub checkpoints: Vec<u8>,
}

impl Ztoc {
    /// An upper estimate of [`Ztoc::to_bytes`]'s length, so the builder never regrows (each
    /// regrowth would copy the megabytes of checkpoints already written).
    fn encoded_size_estimate(&self) -> usize {
        // Per string or vector: a length prefix and alignment padding; per table: the vtable,
        // the slots and the offset to it.
        const PER_STRING: usize = 8;
        const PER_TABLE: usize = 4 + 2 * 16 + 8 * 16;
        let entries: usize = self
            .toc
            .iter()
            .map(|e| {
                let strings: usize = [
                    &e.name,
                    &e.file_type,
                    &e.linkname,
                    &e.uname,
                    &e.gname,
                    &e.mod_time,
                ]
                .iter()
                .map(|s| s.len() + PER_STRING)
                .sum();
                let xattrs: usize = e
                    .xattrs
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 2 * PER_STRING + PER_TABLE + 4)
                    .sum();
                strings + xattrs + PER_TABLE + 4 + PER_STRING
            })
            .sum();
        let digests: usize = self
            .span_digests
            .iter()
            .map(|d| d.len() + PER_STRING + 4)
            .sum();
        1024 + self.version.len()
            + self.build_tool_identifier.len()
            + entries
            + digests
            + self.checkpoints.len()
    }

    /// The flatbuffer bytes, exactly as the reference's `ztoc.Marshal` writes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let estimate = self.encoded_size_estimate();
        let mut b = FlatBufferBuilder::with_capacity(estimate);
        let version = b.create_byte_string(&self.version);
        let build_tool = b.create_byte_string(&self.build_tool_identifier);

        let mut entries: Vec<WIPOffset<flatbuffers::TableFinishedWIPOffset>> =
            Vec::with_capacity(self.toc.len());
        for entry in self.toc.iter().rev() {
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
            entries.push(b.end_table(start));
        }
        entries.reverse();
        let metadata = b.create_vector(&entries);
        let start = b.start_table();
        b.push_slot_always(slot(0), metadata);
        let toc = b.end_table(start);

        let checkpoints = b.create_vector(&self.checkpoints);
        let digests: Vec<_> = self
            .span_digests
            .iter()
            .map(|d| b.create_byte_string(d))
            .collect();
        let digests = b.create_vector(&digests);
        let start = b.start_table();
        b.push_slot(slot(1), self.max_span_id, 0);
        b.push_slot_always(slot(2), digests);
        b.push_slot_always(slot(3), checkpoints);
        b.push_slot(slot(0), self.compression_algorithm, ALGORITHM_GZIP);
        let compression_info = b.end_table(start);

        let start = b.start_table();
        b.push_slot_always(slot(0), version);
        b.push_slot_always(slot(1), build_tool);
        b.push_slot_always(slot(4), toc);
        b.push_slot(slot(2), self.compressed_archive_size, 0);
        b.push_slot(slot(3), self.uncompressed_archive_size, 0);
        b.push_slot_always(slot(5), compression_info);
        let root = b.end_table(start);
        b.finish_minimal(root);
        debug_assert!(
            b.finished_data().len() <= estimate,
            "{} bytes, estimated {estimate}",
            b.finished_data().len()
        );
        b.finished_data().to_vec()
    }

    /// Decodes a zTOC; every offset is bounds-checked, nothing panics on bad bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let root = Table::root(bytes)?;
        let toc_table = root.table(4)?;
        let mut toc = Vec::new();
        if let Some(toc_table) = toc_table {
            for entry in toc_table.tables(0)? {
                let mut xattrs = Vec::new();
                for xattr in entry.tables(13)? {
                    xattrs.push((xattr.bytes(0)?.to_vec(), xattr.bytes(1)?.to_vec()));
                }
                toc.push(FileMetadata {
                    name: entry.bytes(0)?.to_vec(),
                    file_type: entry.bytes(1)?.to_vec(),
                    uncompressed_offset: entry.scalar::<8>(2)?.map_or(0, i64::from_le_bytes),
                    uncompressed_size: entry.scalar::<8>(3)?.map_or(0, i64::from_le_bytes),
                    linkname: entry.bytes(4)?.to_vec(),
                    mode: entry.scalar::<8>(5)?.map_or(0, i64::from_le_bytes),
                    uid: entry.scalar::<4>(6)?.map_or(0, u32::from_le_bytes),
                    gid: entry.scalar::<4>(7)?.map_or(0, u32::from_le_bytes),
                    uname: entry.bytes(8)?.to_vec(),
                    gname: entry.bytes(9)?.to_vec(),
                    mod_time: entry.bytes(10)?.to_vec(),
                    devmajor: entry.scalar::<8>(11)?.map_or(0, i64::from_le_bytes),
                    devminor: entry.scalar::<8>(12)?.map_or(0, i64::from_le_bytes),
                    xattrs,
                });
            }
        }
        let info = root
            .table(5)?
            .ok_or_else(|| Error::InvalidZtoc("no compression_info table".into()))?;
        let span_digests = info.strings(2)?;
        Ok(Self {
            version: root.bytes(0)?.to_vec(),
            build_tool_identifier: root.bytes(1)?.to_vec(),
            compressed_archive_size: root.scalar::<8>(2)?.map_or(0, i64::from_le_bytes),
            uncompressed_archive_size: root.scalar::<8>(3)?.map_or(0, i64::from_le_bytes),
            toc,
            compression_algorithm: info
                .scalar::<1>(0)?
                .map_or(ALGORITHM_GZIP, i8::from_le_bytes),
            max_span_id: info.scalar::<4>(1)?.map_or(0, i32::from_le_bytes),
            span_digests,
            checkpoints: info.byte_vector(3)?.to_vec(),
        })
    }
}

/// The nested TarZinfo flatbuffer of an uncompressed layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TarZinfo {
    pub version: i32,
    pub span_size: i64,
    pub size: i64,
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

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let root = Table::root(bytes)?;
        Ok(Self {
            version: root.scalar::<4>(0)?.map_or(0, i32::from_le_bytes),
            span_size: root.scalar::<8>(1)?.map_or(0, i64::from_le_bytes),
            size: root.scalar::<8>(2)?.map_or(0, i64::from_le_bytes),
        })
    }
}

/// The vtable offset of field number `n`.
fn slot(n: u16) -> flatbuffers::VOffsetT {
    4 + 2 * n
}

fn invalid(what: impl std::fmt::Display) -> Error {
    Error::InvalidZtoc(format!("flatbuffer: {what}"))
}

fn read_array<const N: usize>(buf: &[u8], pos: usize) -> Result<[u8; N]> {
    buf.get(
        pos..pos
            .checked_add(N)
            .ok_or_else(|| invalid("offset overflow"))?,
    )
    .and_then(|s| s.try_into().ok())
    .ok_or_else(|| invalid(format!("{N} bytes at offset {pos} are outside the buffer")))
}

fn read_u32(buf: &[u8], pos: usize) -> Result<usize> {
    Ok(u32::from_le_bytes(read_array::<4>(buf, pos)?) as usize)
}

/// A flatbuffer table, read with bounds checks.
#[derive(Clone, Copy)]
struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vtable: usize,
    vtable_len: usize,
}

impl<'a> Table<'a> {
    fn root(buf: &'a [u8]) -> Result<Self> {
        let pos = read_u32(buf, 0)?;
        Self::at(buf, pos)
    }

    fn at(buf: &'a [u8], pos: usize) -> Result<Self> {
        let soffset = i64::from(i32::from_le_bytes(read_array::<4>(buf, pos)?));
        let vtable = usize::try_from(pos as i64 - soffset)
            .map_err(|_| invalid(format!("vtable of table at {pos} before the buffer")))?;
        let vtable_len = usize::from(u16::from_le_bytes(read_array::<2>(buf, vtable)?));
        if vtable_len < 4 || vtable + vtable_len > buf.len() {
            return Err(invalid(format!("vtable at {vtable} is malformed")));
        }
        Ok(Self {
            buf,
            pos,
            vtable,
            vtable_len,
        })
    }

    /// The absolute position of field `n`, if present.
    fn field(&self, n: usize) -> Result<Option<usize>> {
        let entry = 4 + 2 * n;
        if entry + 2 > self.vtable_len {
            return Ok(None);
        }
        let offset = usize::from(u16::from_le_bytes(read_array::<2>(
            self.buf,
            self.vtable + entry,
        )?));
        Ok((offset != 0).then_some(self.pos + offset))
    }

    fn scalar<const N: usize>(&self, n: usize) -> Result<Option<[u8; N]>> {
        self.field(n)?
            .map(|pos| read_array::<N>(self.buf, pos))
            .transpose()
    }

    fn indirect(&self, n: usize) -> Result<Option<usize>> {
        match self.field(n)? {
            Some(pos) => Ok(Some(
                pos.checked_add(read_u32(self.buf, pos)?)
                    .ok_or_else(|| invalid("offset overflow"))?,
            )),
            None => Ok(None),
        }
    }

    fn table(&self, n: usize) -> Result<Option<Table<'a>>> {
        self.indirect(n)?
            .map(|pos| Table::at(self.buf, pos))
            .transpose()
    }

    /// A string or byte vector (absent = empty).
    fn bytes(&self, n: usize) -> Result<&'a [u8]> {
        match self.indirect(n)? {
            Some(pos) => vector_bytes(self.buf, pos, 1),
            None => Ok(&[]),
        }
    }

    fn byte_vector(&self, n: usize) -> Result<&'a [u8]> {
        self.bytes(n)
    }

    /// Positions of the elements of a vector of offsets.
    fn offsets(&self, n: usize) -> Result<Vec<usize>> {
        let Some(pos) = self.indirect(n)? else {
            return Ok(Vec::new());
        };
        let elements = vector_bytes(self.buf, pos, 4)?;
        let start = pos + 4;
        (0..elements.len() / 4)
            .map(|i| {
                let at = start + 4 * i;
                at.checked_add(read_u32(self.buf, at)?)
                    .ok_or_else(|| invalid("offset overflow"))
            })
            .collect()
    }

    fn tables(&self, n: usize) -> Result<Vec<Table<'a>>> {
        self.offsets(n)?
            .into_iter()
            .map(|pos| Table::at(self.buf, pos))
            .collect()
    }

    fn strings(&self, n: usize) -> Result<Vec<Vec<u8>>> {
        self.offsets(n)?
            .into_iter()
            .map(|pos| vector_bytes(self.buf, pos, 1).map(<[u8]>::to_vec))
            .collect()
    }
}

/// The bytes of the vector whose length prefix is at `pos`, `element_size` bytes per element.
fn vector_bytes(buf: &[u8], pos: usize, element_size: usize) -> Result<&[u8]> {
    let len = read_u32(buf, pos)?;
    let start = pos + 4;
    len.checked_mul(element_size)
        .and_then(|n| start.checked_add(n))
        .and_then(|end| buf.get(start..end))
        .ok_or_else(|| {
            invalid(format!(
                "vector at {pos} with {len} elements overruns the buffer"
            ))
        })
}
