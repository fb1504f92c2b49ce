//! The gzip member framing around the raw deflate streams: zlib's gzip mode cannot take a
//! dictionary, so the parallel inflate runs zlib raw and checks headers and trailers itself,
//! refusing what zlib's gzip mode (window bits 31) refuses.

use std::io::Read;

use super::{Member, ParallelInflate, Produced, data_error};
use crate::zinfo::span_hash::SpanHasherThread;

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

impl ParallelInflate {
    /// Blob byte `offset`, reading on as needed; a data error past the end of the blob.
    fn byte<R: Read>(
        &mut self,
        offset: u64,
        source: &mut R,
        hasher: &mut SpanHasherThread,
    ) -> std::io::Result<u8> {
        if !self.have(offset, source, hasher)? {
            return Err(data_error(format!(
                "the gzip stream is truncated at compressed offset {offset}"
            )));
        }
        self.bytes_from(offset)
            .first()
            .copied()
            .ok_or_else(|| data_error(format!("compressed offset {offset} is not buffered")))
    }

    /// Parses the gzip header at `pos` (RFC 1952); the end of a header is a block boundary.
    pub(super) fn header_step<R: Read>(
        &mut self,
        source: &mut R,
        hasher: &mut SpanHasherThread,
    ) -> std::io::Result<Produced> {
        let start = self.pos;
        let mut fixed = [0u8; 10];
        for (i, byte) in fixed.iter_mut().enumerate() {
            *byte = self.byte(start + i as u64, source, hasher)?;
        }
        let invalid = |what: &str| data_error(format!("invalid gzip header at {start}: {what}"));
        if fixed[0] != 0x1f || fixed[1] != 0x8b {
            return Err(invalid("incorrect header check"));
        }
        if fixed[2] != 8 {
            return Err(invalid("unknown compression method"));
        }
        let flags = fixed[3];
        if flags & 0xe0 != 0 {
            return Err(invalid("unknown header flags set"));
        }
        let mut crc = zlib_rs::crc32::crc32(0, &fixed);
        let mut at = start + 10;
        if flags & FEXTRA != 0 {
            let low = self.byte(at, source, hasher)?;
            let high = self.byte(at + 1, source, hasher)?;
            let end = at + 2 + u64::from(u16::from_le_bytes([low, high]));
            // The extra field's bytes must exist; the byte before its end proves it.
            self.byte(end - 1, source, hasher)?;
            crc = self.crc_of(crc, at, end);
            at = end;
        }
        for flag in [FNAME, FCOMMENT] {
            if flags & flag != 0 {
                at = self.skip_string(at, &mut crc, source, hasher)?;
            }
        }
        if flags & FHCRC != 0 {
            let low = self.byte(at, source, hasher)?;
            let high = self.byte(at + 1, source, hasher)?;
            if u16::from_le_bytes([low, high]) != (crc & 0xffff) as u16 {
                return Err(invalid("header crc mismatch"));
            }
            at += 2;
        }
        self.inflater.reset().map_err(std::io::Error::other)?;
        self.pos = at;
        self.member = Member::Deflate;
        self.crc = 0;
        self.member_out = 0;
        Ok(self.produced(0, Some(0)))
    }

    /// `crc` extended over blob bytes `[from, to)` (all read already).
    fn crc_of(&self, mut crc: u32, from: u64, to: u64) -> u32 {
        self.for_each_slice(from, to, |bytes| crc = zlib_rs::crc32::crc32(crc, bytes));
        crc
    }

    /// Skips the zero-terminated string at `at` (extending the header `crc` over it), dropping
    /// read segments as it goes: a hostile name may be gigabytes long. Returns its end.
    fn skip_string<R: Read>(
        &mut self,
        mut at: u64,
        crc: &mut u32,
        source: &mut R,
        hasher: &mut SpanHasherThread,
    ) -> std::io::Result<u64> {
        loop {
            self.byte(at, source, hasher)?;
            let bytes = self.bytes_from(at);
            let (n, found) = match bytes.iter().position(|&b| b == 0) {
                Some(nul) => (nul + 1, true),
                None => (bytes.len(), false),
            };
            *crc = zlib_rs::crc32::crc32(*crc, &bytes[..n]);
            at += n as u64;
            if found {
                return Ok(at);
            }
            // Header bytes are consumed like any others (the hasher is told so on reads).
            self.pos = at;
            self.trim();
        }
    }

    /// Checks the member trailer at `pos`; then either the blob ends or another member starts.
    pub(super) fn trailer_step<R: Read>(
        &mut self,
        source: &mut R,
        hasher: &mut SpanHasherThread,
    ) -> std::io::Result<Produced> {
        let mut trailer = [0u8; 8];
        for (i, byte) in trailer.iter_mut().enumerate() {
            *byte = self.byte(self.pos + i as u64, source, hasher)?;
        }
        let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        if crc != self.crc {
            return Err(data_error(format!(
                "gzip data error (incorrect data check) at compressed offset {}",
                self.pos
            )));
        }
        if size != self.member_out as u32 {
            return Err(data_error(format!(
                "gzip data error (incorrect length check) at compressed offset {}",
                self.pos
            )));
        }
        self.pos += 8;
        self.member = if self.have(self.pos, source, hasher)? {
            Member::Header
        } else {
            Member::Done
        };
        Ok(self.produced(0, None))
    }
}
