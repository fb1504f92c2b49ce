//! The TOC as the builder holds it: every entry packed into one byte buffer, about half the size
//! of its flatbuffer form (a `Vec<FileMetadata>` takes twice the zTOC for empty files: a
//! 216-byte struct and three small heap strings per entry).
//!
//! The writer takes entries back from the end (FORMAT.md section 4 writes the last entry
//! first), and the buffer shrinks as it does, so the TOC is never held twice.

use super::FileMetadata;
use crate::{Error, Result};

/// Scalars equal to zero are left out; bit i of the presence byte says field i is there.
const SCALARS: usize = 7;
/// Give memory back once this much of the buffer has been taken back.
const SHRINK_STEP: usize = 8 << 20;

/// TOC entries packed one after the other, each followed by its length (u32 LE).
#[derive(Default)]
pub(crate) struct PackedToc {
    bytes: Vec<u8>,
    count: usize,
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match u8::try_from(bytes.len()) {
        Ok(len) if len < u8::MAX => out.push(len),
        _ => {
            out.push(u8::MAX);
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        }
    }
    out.extend_from_slice(bytes);
}

/// Reads the packed form back; `None` on bytes this module did not write.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let len = match self.array::<1>()?[0] {
            u8::MAX => u32::from_le_bytes(self.array()?) as usize,
            len => usize::from(len),
        };
        Some(self.take(len)?.to_vec())
    }
}

impl PackedToc {
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn push(&mut self, entry: &FileMetadata) {
        let start = self.bytes.len();
        let wide = [
            entry.uncompressed_offset,
            entry.uncompressed_size,
            entry.mode,
            entry.devmajor,
            entry.devminor,
        ];
        let narrow = [entry.uid, entry.gid];
        let present = wide
            .iter()
            .map(|&v| v != 0)
            .chain(narrow.iter().map(|&v| v != 0))
            .enumerate()
            .fold(0u8, |bits, (i, set)| bits | (u8::from(set) << i));
        let out = &mut self.bytes;
        out.push(present);
        for value in wide.iter().filter(|&&v| v != 0) {
            out.extend_from_slice(&value.to_le_bytes());
        }
        for value in narrow.iter().filter(|&&v| v != 0) {
            out.extend_from_slice(&value.to_le_bytes());
        }
        for field in [
            &entry.name,
            &entry.file_type,
            &entry.linkname,
            &entry.uname,
            &entry.gname,
            &entry.mod_time,
        ] {
            put_bytes(out, field);
        }
        out.extend_from_slice(&(entry.xattrs.len() as u32).to_le_bytes());
        for (key, value) in &entry.xattrs {
            put_bytes(out, key);
            put_bytes(out, value);
        }
        let len = (out.len() - start) as u32;
        out.extend_from_slice(&len.to_le_bytes());
        self.count += 1;
    }

    /// Takes the last entry back out, giving memory back as the buffer empties.
    pub(crate) fn pop(&mut self) -> Result<Option<FileMetadata>> {
        if self.count == 0 {
            return Ok(None);
        }
        let corrupt = || Error::InvalidArgument("the packed TOC is corrupt (a bug)".into());
        let end = self.bytes.len().checked_sub(4).ok_or_else(corrupt)?;
        let len = self
            .bytes
            .get(end..)
            .and_then(|t| t.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(corrupt)? as usize;
        let start = end.checked_sub(len).ok_or_else(corrupt)?;
        let entry = decode(&self.bytes[start..end]).ok_or_else(corrupt)?;
        self.bytes.truncate(start);
        self.count -= 1;
        if self.bytes.capacity() - self.bytes.len() >= SHRINK_STEP {
            self.bytes.shrink_to_fit();
        }
        Ok(Some(entry))
    }
}

fn decode(bytes: &[u8]) -> Option<FileMetadata> {
    let mut c = Cursor(bytes);
    let present = c.array::<1>()?[0];
    let mut scalars = [0i64; SCALARS];
    for (i, slot) in scalars.iter_mut().enumerate() {
        if present & (1 << i) != 0 {
            *slot = if i < 5 {
                i64::from_le_bytes(c.array()?)
            } else {
                i64::from(u32::from_le_bytes(c.array()?))
            };
        }
    }
    let mut entry = FileMetadata {
        uncompressed_offset: scalars[0],
        uncompressed_size: scalars[1],
        mode: scalars[2],
        devmajor: scalars[3],
        devminor: scalars[4],
        uid: u32::try_from(scalars[5]).ok()?,
        gid: u32::try_from(scalars[6]).ok()?,
        name: c.bytes()?,
        file_type: c.bytes()?,
        linkname: c.bytes()?,
        uname: c.bytes()?,
        gname: c.bytes()?,
        mod_time: c.bytes()?,
        xattrs: Vec::new(),
    };
    let xattrs = u32::from_le_bytes(c.array()?) as usize;
    // Each record takes at least two length bytes: the count cannot ask for more than that.
    entry.xattrs.reserve(xattrs.min(c.0.len() / 2));
    for _ in 0..xattrs {
        entry.xattrs.push((c.bytes()?, c.bytes()?));
    }
    c.0.is_empty().then_some(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_last_first_and_unchanged() {
        let long = vec![b'v'; 300];
        let entries = vec![
            FileMetadata::default(),
            FileMetadata {
                name: b"a/b".to_vec(),
                file_type: b"reg".to_vec(),
                uncompressed_offset: 512,
                uncompressed_size: -3,
                mode: 0o644,
                uid: u32::MAX,
                gid: 7,
                mod_time: b"2024-01-01T00:00:00Z".to_vec(),
                devmajor: i64::MIN,
                xattrs: vec![(b"SCHILY.xattr.user.x".to_vec(), long.clone())],
                ..FileMetadata::default()
            },
        ];
        let mut packed = PackedToc::default();
        for entry in &entries {
            packed.push(entry);
        }
        assert_eq!(packed.len(), 2);
        assert_eq!(packed.pop().unwrap().as_ref(), Some(&entries[1]));
        assert_eq!(packed.pop().unwrap().as_ref(), Some(&entries[0]));
        assert_eq!(packed.pop().unwrap(), None);
    }
}
