//! A bounds-checked flatbuffer reader: every offset is checked, no input makes it panic.

use super::{ALGORITHM_GZIP, FileMetadata, TarZinfo, Ztoc};
use crate::{Error, Result};

/// How much a decoded zTOC may take in memory: a flatbuffer can point many table slots at the
/// same bytes (a 4-byte offset per entry, all naming one table with a long name), which would
/// decode to far more than the zTOC. Each byte string is copied once in a real zTOC and every
/// entry or record table takes more bytes in the zTOC than a quarter of its decoded struct, so
/// four times the zTOC (plus a little) is never reached by one the reference wrote.
struct DecodeBudget {
    left: usize,
}

impl DecodeBudget {
    fn new(ztoc_len: usize) -> Self {
        Self {
            left: ztoc_len.saturating_mul(4).saturating_add(1 << 16),
        }
    }

    fn take(&mut self, bytes: usize) -> Result<()> {
        self.left = self.left.checked_sub(bytes).ok_or_else(|| {
            invalid("it decodes to more than four times its size (shared tables or strings)")
        })?;
        Ok(())
    }

    fn copy(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        self.take(bytes.len())?;
        Ok(bytes.to_vec())
    }
}

impl Ztoc {
    /// Decodes a zTOC; every offset is bounds-checked, nothing panics on bad bytes, and the
    /// decoded model is refused before it outgrows four times the zTOC.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut budget = DecodeBudget::new(bytes.len());
        let root = Table::root(bytes)?;
        let toc_table = root.table(4)?;
        let mut toc = Vec::new();
        if let Some(toc_table) = toc_table {
            for pos in toc_table.offsets(0)? {
                let entry = Table::at(bytes, pos)?;
                budget.take(std::mem::size_of::<FileMetadata>())?;
                let mut xattrs = Vec::new();
                for pos in entry.offsets(13)? {
                    let xattr = Table::at(bytes, pos)?;
                    budget.take(std::mem::size_of::<(Vec<u8>, Vec<u8>)>())?;
                    xattrs.push((budget.copy(xattr.bytes(0)?)?, budget.copy(xattr.bytes(1)?)?));
                }
                toc.push(FileMetadata {
                    name: budget.copy(entry.bytes(0)?)?,
                    file_type: budget.copy(entry.bytes(1)?)?,
                    uncompressed_offset: entry.scalar::<8>(2)?.map_or(0, i64::from_le_bytes),
                    uncompressed_size: entry.scalar::<8>(3)?.map_or(0, i64::from_le_bytes),
                    linkname: budget.copy(entry.bytes(4)?)?,
                    mode: entry.scalar::<8>(5)?.map_or(0, i64::from_le_bytes),
                    uid: entry.scalar::<4>(6)?.map_or(0, u32::from_le_bytes),
                    gid: entry.scalar::<4>(7)?.map_or(0, u32::from_le_bytes),
                    uname: budget.copy(entry.bytes(8)?)?,
                    gname: budget.copy(entry.bytes(9)?)?,
                    mod_time: budget.copy(entry.bytes(10)?)?,
                    devmajor: entry.scalar::<8>(11)?.map_or(0, i64::from_le_bytes),
                    devminor: entry.scalar::<8>(12)?.map_or(0, i64::from_le_bytes),
                    xattrs,
                });
            }
        }
        let info = root
            .table(5)?
            .ok_or_else(|| Error::InvalidZtoc("no compression_info table".into()))?;
        let span_digests = info
            .offsets(2)?
            .into_iter()
            .map(|pos| {
                budget.take(std::mem::size_of::<Vec<u8>>())?;
                budget.copy(vector_bytes(bytes, pos, 1)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            version: budget.copy(root.bytes(0)?)?,
            build_tool_identifier: budget.copy(root.bytes(1)?)?,
            compressed_archive_size: root.scalar::<8>(2)?.map_or(0, i64::from_le_bytes),
            uncompressed_archive_size: root.scalar::<8>(3)?.map_or(0, i64::from_le_bytes),
            toc,
            compression_algorithm: info
                .scalar::<1>(0)?
                .map_or(ALGORITHM_GZIP, i8::from_le_bytes),
            max_span_id: info.scalar::<4>(1)?.map_or(0, i32::from_le_bytes),
            span_digests,
            checkpoints: budget.copy(info.byte_vector(3)?)?,
        })
    }
}

impl TarZinfo {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let root = Table::root(bytes)?;
        Ok(Self {
            version: root.scalar::<4>(0)?.map_or(0, i32::from_le_bytes),
            span_size: root.scalar::<8>(1)?.map_or(0, i64::from_le_bytes),
            size: root.scalar::<8>(2)?.map_or(0, i64::from_le_bytes),
        })
    }
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
