//! A tar reader with Go `archive/tar` semantics (Go 1.25), because the zTOC must list exactly the
//! entries, names, sizes and offsets the reference implementation gets from Go's reader.
//!
//! It reads from any [`BufRead`], skips entry data without copying, and records for every entry
//! where its first header block starts and where its data starts in the uncompressed stream.

use std::collections::BTreeMap;
use std::io::BufRead;

use crate::ztoc::{GNU_SPARSE_MAP_MAX_BYTES, OverBudget, PAX_RECORD_MAX_BYTES};
use crate::{Error, Result};

const BLOCK: usize = 512;
/// Go's limit for PAX and GNU long-name payloads.
const MAX_SPECIAL_FILE_SIZE: u64 = PAX_RECORD_MAX_BYTES;

pub const TYPE_REG: u8 = b'0';
pub const TYPE_REG_A: u8 = 0;
pub const TYPE_LINK: u8 = b'1';
pub const TYPE_SYMLINK: u8 = b'2';
pub const TYPE_CHAR: u8 = b'3';
pub const TYPE_BLOCK: u8 = b'4';
pub const TYPE_DIR: u8 = b'5';
pub const TYPE_FIFO: u8 = b'6';
const TYPE_PAX: u8 = b'x';
const TYPE_PAX_GLOBAL: u8 = b'g';
const TYPE_GNU_LONG_NAME: u8 = b'L';
const TYPE_GNU_LONG_LINK: u8 = b'K';
const TYPE_GNU_SPARSE: u8 = b'S';

/// An instant as Go's `time.Time` holds it after `time.Unix(secs, nanos)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct GoTime {
    pub secs: i64,
    /// Always in `0..1_000_000_000`.
    pub nanos: u32,
}

impl GoTime {
    /// `time.Unix(secs, nanos)`: normalises `nanos` into `0..1e9`.
    pub fn unix(secs: i64, nanos: i64) -> Self {
        let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        let secs = total.div_euclid(1_000_000_000);
        let nanos = total.rem_euclid(1_000_000_000) as u32;
        Self {
            secs: secs.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            nanos,
        }
    }

    /// Go's `MarshalText` in UTC (`2006-01-02T15:04:05.999999999Z07:00`), or `None` when the
    /// year is outside 0..=9999 (where Go's `MarshalText` fails).
    pub fn to_rfc3339_utc(self) -> Option<String> {
        let days = self.secs.div_euclid(86_400);
        let second_of_day = self.secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let (h, m, s) = (
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60,
        );
        let mut out = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
        if self.nanos != 0 {
            let fraction = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(fraction.trim_end_matches('0'));
        }
        out.push('Z');
        Some(out)
    }

    /// Parses RFC 3339 as Go's `UnmarshalText` would (any offset), for comparing instants.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let s = text.get(r)?;
            if !s.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 59 {
            return None;
        }
        let mut pos = 19;
        let mut nanos = 0i64;
        if b.get(pos) == Some(&b'.') {
            let digits = b[pos + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 0 || digits > 9 {
                return None;
            }
            let frac = num(pos + 1..pos + 1 + digits)?;
            nanos = frac * 10i64.pow(9 - digits as u32);
            pos += 1 + digits;
        }
        let offset = match b.get(pos)? {
            b'Z' | b'z' if pos + 1 == b.len() => 0,
            sign @ (b'+' | b'-') if pos + 6 == b.len() && b[pos + 3] == b':' => {
                let value = num(pos + 1..pos + 3)? * 3600 + num(pos + 4..pos + 6)? * 60;
                if *sign == b'-' { -value } else { value }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        Some(Self::unix(
            days * 86_400 + h * 3600 + m * 60 + s - offset,
            nanos,
        ))
    }
}

/// Howard Hinnant's civil-from-days (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One entry as Go's `tar.Reader.Next` returns it, plus where it sits in the stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub linkname: Vec<u8>,
    /// After Go's conversion of the V7 NUL typeflag to `0` or `5`.
    pub typeflag: u8,
    /// The logical size (PAX `size` and GNU sparse sizes applied).
    pub size: i64,
    pub mode: i64,
    pub uid: i64,
    pub gid: i64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub mod_time: GoTime,
    pub devmajor: i64,
    pub devminor: i64,
    /// Every PAX record of the entry (GNU sparse 0.0 offsets folded into `GNU.sparse.map`).
    pub pax_records: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Where the entry's first header block (PAX or long-name headers included) starts.
    pub header_offset: u64,
    /// Where the entry's data starts (after all its headers).
    pub data_offset: u64,
    /// A GNU sparse file (PAX formats): its data is not the file's content.
    pub sparse: bool,
}

impl Entry {
    /// True for the types whose data area Go treats as empty whatever the size field says.
    pub fn is_header_only(&self) -> bool {
        is_header_only_type(self.typeflag)
    }
}

fn is_header_only_type(typeflag: u8) -> bool {
    matches!(
        typeflag,
        TYPE_LINK | TYPE_SYMLINK | TYPE_CHAR | TYPE_BLOCK | TYPE_DIR | TYPE_FIFO
    )
}

/// The text of a GNU sparse 1.0 map, read block by block as Go does.
#[derive(Default)]
struct SparseMapText {
    text: Vec<u8>,
    cursor: usize,
    newlines_ahead: usize,
}

impl SparseMapText {
    /// Reads whole blocks of the entry's data until `tokens` complete lines are available; like
    /// Go (since the CVE-2022-2879 fix), refuses a map longer than 1 MiB instead of buffering it.
    fn feed<R: BufRead>(&mut self, reader: &mut TarReader<R>, tokens: usize) -> Result<()> {
        while self.newlines_ahead < tokens {
            if (self.text.len() + BLOCK) as u64 > GNU_SPARSE_MAP_MAX_BYTES {
                return Err(Error::Rejected(format!(
                    "error while reading tar header at uncompressed offset {}: archive/tar: \
                     sparse map too long (over {GNU_SPARSE_MAP_MAX_BYTES} bytes)",
                    reader.position
                )));
            }
            let mut block = [0u8; BLOCK];
            if reader.remaining < BLOCK as u64 || reader.read_full(&mut block)? < BLOCK {
                return Err(eof_error(reader.position));
            }
            reader.remaining -= BLOCK as u64;
            self.newlines_ahead += block.iter().filter(|&&c| c == b'\n').count();
            self.text.extend_from_slice(&block);
        }
        Ok(())
    }

    fn next_token(&mut self) -> &[u8] {
        let rest = &self.text[self.cursor..];
        let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
        let start = self.cursor;
        self.cursor += (end + 1).min(rest.len());
        self.newlines_ahead = self.newlines_ahead.saturating_sub(1);
        &self.text[start..start + end]
    }
}

/// Go's `tar.Reader` over a buffered byte stream.
pub struct TarReader<R> {
    inner: R,
    position: u64,
    /// Unread data bytes of the current entry.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    finished: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    V7,
    UstarOrPax,
    Gnu,
    Star,
}

fn header_error(offset: u64, why: &str) -> Error {
    Error::Rejected(format!(
        "error while reading tar header at uncompressed offset {offset}: archive/tar: invalid tar header ({why})"
    ))
}

fn eof_error(offset: u64) -> Error {
    Error::Rejected(format!(
        "error while reading tar header: unexpected EOF at uncompressed offset {offset}"
    ))
}

impl<R: BufRead> TarReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            position: 0,
            remaining: 0,
            padding: 0,
            finished: false,
        }
    }

    /// Bytes consumed from the stream so far: after the last entry, the position right after the
    /// end-of-archive marker (what the reference stores as `uncompressed_archive_size`).
    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn io_error(&self, err: std::io::Error) -> Error {
        if let Some(over) = OverBudget::from_io(&err) {
            return over;
        }
        match err.kind() {
            std::io::ErrorKind::InvalidData => Error::Rejected(err.to_string()),
            _ => Error::Io {
                offset: self.position,
                source: err,
            },
        }
    }

    /// Reads up to `buf.len()` bytes; fewer only at the end of the stream.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            let available = match self.inner.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(e)),
            };
            if available.is_empty() {
                break;
            }
            let n = available.len().min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&available[..n]);
            self.inner.consume(n);
            filled += n;
            self.position += n as u64;
        }
        Ok(filled)
    }

    /// Skips up to `amount` bytes; returns how many were there.
    fn skip(&mut self, amount: u64) -> Result<u64> {
        let mut skipped = 0;
        while skipped < amount {
            let available = match self.inner.fill_buf() {
                Ok(available) => available.len(),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(e)),
            };
            if available == 0 {
                break;
            }
            let n = (available as u64).min(amount - skipped) as usize;
            self.inner.consume(n);
            skipped += n as u64;
            self.position += n as u64;
        }
        Ok(skipped)
    }

    /// Reads the whole data area of the current (special) entry, as Go's `readSpecialFile`.
    fn read_special_file(&mut self) -> Result<Vec<u8>> {
        if self.remaining > MAX_SPECIAL_FILE_SIZE {
            return Err(Error::Rejected(format!(
                "error while reading tar header at uncompressed offset {}: archive/tar: header field too long",
                self.position
            )));
        }
        let mut data = vec![0u8; self.remaining as usize];
        let n = self.read_full(&mut data)?;
        if n < data.len() {
            return Err(eof_error(self.position));
        }
        self.remaining = 0;
        Ok(data)
    }

    /// Go's `handleRegularFile`: how much data follows the header.
    fn set_data_size(&mut self, typeflag: u8, size: i64, header_offset: u64) -> Result<()> {
        let size = if is_header_only_type(typeflag) {
            0
        } else {
            size
        };
        if size < 0 {
            return Err(header_error(header_offset, "negative size"));
        }
        self.remaining = size as u64;
        self.padding = (BLOCK as u64 - self.remaining % BLOCK as u64) % BLOCK as u64;
        Ok(())
    }

    /// The next entry, or `None` at the end of the archive (Go's `io.EOF`).
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        if self.finished {
            return Ok(None);
        }
        let result = self.next_inner();
        if !matches!(result, Ok(Some(_))) {
            self.finished = true;
        }
        result
    }

    fn next_inner(&mut self) -> Result<Option<Entry>> {
        let mut pax: Option<BTreeMap<Vec<u8>, Vec<u8>>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut entry_start: Option<u64> = None;
        loop {
            // Discard the rest of the previous entry, then its padding.
            let want = self.remaining;
            if self.skip(want)? < want {
                return Err(eof_error(self.position));
            }
            self.remaining = 0;
            let padding = self.padding;
            self.padding = 0;
            if self.skip(padding)? < padding {
                // Go's tryReadFull reports io.EOF here: a normal end of the archive.
                return Ok(None);
            }
            let header_offset = self.position;
            let start = *entry_start.get_or_insert(header_offset);
            let Some(mut entry) = self.read_header()? else {
                return Ok(None);
            };
            self.set_data_size(entry.typeflag, entry.size, header_offset)?;
            match entry.typeflag {
                TYPE_PAX | TYPE_PAX_GLOBAL => {
                    let data = self.read_special_file()?;
                    let records =
                        parse_pax(&data).map_err(|why| header_error(header_offset, why))?;
                    if entry.typeflag == TYPE_PAX_GLOBAL {
                        return Err(Error::Rejected("unsupported input tar entry 'g'".into()));
                    }
                    pax = Some(records);
                }
                TYPE_GNU_LONG_NAME | TYPE_GNU_LONG_LINK => {
                    let data = self.read_special_file()?;
                    let value = parse_string(&data).to_vec();
                    if entry.typeflag == TYPE_GNU_LONG_NAME {
                        long_name = Some(value);
                    } else {
                        long_link = Some(value);
                    }
                }
                TYPE_GNU_SPARSE => {
                    return Err(Error::Rejected("unsupported input tar entry 'S'".into()));
                }
                _ => {
                    if let Some(records) = pax.take() {
                        merge_pax(&mut entry, &records)
                            .map_err(|why| header_error(header_offset, why))?;
                        entry.pax_records = records;
                    }
                    if let Some(name) = long_name.take().filter(|n| !n.is_empty()) {
                        entry.name = name;
                    }
                    if let Some(link) = long_link.take().filter(|l| !l.is_empty()) {
                        entry.linkname = link;
                    }
                    if entry.typeflag == TYPE_REG_A {
                        entry.typeflag = if entry.name.ends_with(b"/") {
                            TYPE_DIR
                        } else {
                            TYPE_REG
                        };
                    }
                    self.set_data_size(entry.typeflag, entry.size, header_offset)?;
                    self.handle_sparse(&mut entry, header_offset)?;
                    entry.header_offset = start;
                    entry.data_offset = self.position;
                    return Ok(Some(entry));
                }
            }
        }
    }

    /// Go's `readGNUSparsePAXHeaders`: applies GNU sparse PAX records; sparse 1.0 maps are read
    /// from the start of the data area (which moves the data offset, as in Go).
    fn handle_sparse(&mut self, entry: &mut Entry, header_offset: u64) -> Result<()> {
        let record = |key: &str| entry.pax_records.get(key.as_bytes()).map(Vec::as_slice);
        let major = record("GNU.sparse.major").unwrap_or_default();
        let minor = record("GNU.sparse.minor").unwrap_or_default();
        let is_1_0 = match (major, minor) {
            (b"0", b"0" | b"1") => false,
            (b"1", b"0") => true,
            (major, minor) if !major.is_empty() || !minor.is_empty() => return Ok(()),
            _ if !record("GNU.sparse.map").unwrap_or_default().is_empty() => false,
            _ => return Ok(()),
        };
        if entry.is_header_only() {
            return Err(header_error(header_offset, "sparse header-only entry"));
        }
        if let Some(name) = record("GNU.sparse.name").filter(|n| !n.is_empty()) {
            entry.name = name.to_vec();
        }
        let size = record("GNU.sparse.size")
            .filter(|s| !s.is_empty())
            .or_else(|| record("GNU.sparse.realsize").filter(|s| !s.is_empty()));
        if let Some(size) = size {
            entry.size =
                parse_decimal(size).ok_or_else(|| header_error(header_offset, "sparse size"))?;
        }
        entry.sparse = true;
        if is_1_0 {
            self.read_sparse_map_1_0(header_offset)?;
        }
        Ok(())
    }

    /// Go's `readGNUSparseMap1x0`: newline-separated decimal numbers in whole 512-byte blocks.
    fn read_sparse_map_1_0(&mut self, header_offset: u64) -> Result<()> {
        let mut map = SparseMapText::default();
        map.feed(self, 1)?;
        let count = parse_decimal(map.next_token())
            .filter(|&n| (0..=i64::from(i32::MAX)).contains(&n))
            .ok_or_else(|| header_error(header_offset, "sparse map entry count"))?;
        map.feed(self, 2 * count as usize)?;
        for _ in 0..2 * count {
            parse_decimal(map.next_token())
                .ok_or_else(|| header_error(header_offset, "sparse map entry"))?;
        }
        Ok(())
    }

    /// Go's `readHeader`: `None` at the end-of-archive marker or end of stream.
    fn read_header(&mut self) -> Result<Option<Entry>> {
        let offset = self.position;
        let mut block = [0u8; BLOCK];
        match self.read_full(&mut block)? {
            0 => return Ok(None),
            BLOCK => {}
            _ => return Err(eof_error(self.position)),
        }
        if block.iter().all(|&b| b == 0) {
            match self.read_full(&mut block)? {
                0 => return Ok(None),
                BLOCK => {}
                _ => return Err(eof_error(self.position)),
            }
            if block.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            return Err(header_error(
                offset + BLOCK as u64,
                "a zero block followed by a header",
            ));
        }
        let format = detect_format(&block).ok_or_else(|| header_error(offset, "checksum"))?;
        let mut p = NumericParser::default();
        let mut entry = Entry {
            typeflag: block[156],
            name: parse_string(&block[0..100]).to_vec(),
            linkname: parse_string(&block[157..257]).to_vec(),
            size: p.numeric(&block[124..136]),
            mode: p.numeric(&block[100..108]),
            uid: p.numeric(&block[108..116]),
            gid: p.numeric(&block[116..124]),
            ..Entry::default()
        };
        entry.mod_time = GoTime::unix(p.numeric(&block[136..148]), 0);
        if format != Format::V7 {
            entry.uname = parse_string(&block[265..297]).to_vec();
            entry.gname = parse_string(&block[297..329]).to_vec();
            entry.devmajor = p.numeric(&block[329..337]);
            entry.devminor = p.numeric(&block[337..345]);
            let prefix: &[u8] = match format {
                Format::UstarOrPax => parse_string(&block[345..500]),
                Format::Star => parse_string(&block[345..476]),
                Format::Gnu => {
                    // Go reads atime/ctime skeptically: files from pre-1.8 Go wrote a USTAR prefix there.
                    let mut p2 = NumericParser::default();
                    if block[345] != 0 {
                        p2.numeric(&block[345..357]);
                    }
                    if block[357] != 0 {
                        p2.numeric(&block[357..369]);
                    }
                    let prefix = parse_string(&block[345..500]);
                    if p2.failed && prefix.is_ascii() {
                        prefix
                    } else {
                        &[]
                    }
                }
                Format::V7 => &[],
            };
            if !prefix.is_empty() {
                let mut name = prefix.to_vec();
                name.push(b'/');
                name.extend_from_slice(&entry.name);
                entry.name = name;
            }
        }
        if p.failed {
            return Err(header_error(offset, "numeric field"));
        }
        Ok(Some(entry))
    }
}

fn detect_format(block: &[u8; BLOCK]) -> Option<Format> {
    let mut p = NumericParser::default();
    let stored = p.octal(&block[148..156]);
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &c) in block.iter().enumerate() {
        let c = if (148..156).contains(&i) { b' ' } else { c };
        unsigned += i64::from(c);
        signed += i64::from(c as i8);
    }
    if p.failed || (stored != unsigned && stored != signed) {
        return None;
    }
    let magic = &block[257..263];
    let version = &block[263..265];
    Some(if magic == b"ustar\0" && &block[508..512] == b"tar\0" {
        Format::Star
    } else if magic == b"ustar\0" {
        Format::UstarOrPax
    } else if magic == b"ustar " && version == b" \0" {
        Format::Gnu
    } else {
        Format::V7
    })
}

/// Go's `parser.parseString`: up to the first NUL.
fn parse_string(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(nul) => &field[..nul],
        None => field,
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`.
fn parse_decimal(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Go's tar numeric parser with its sticky error.
#[derive(Default)]
struct NumericParser {
    failed: bool,
}

impl NumericParser {
    fn numeric(&mut self, field: &[u8]) -> i64 {
        match field.first() {
            Some(&first) if first & 0x80 != 0 => self.base256(field),
            _ => self.octal(field),
        }
    }

    fn base256(&mut self, field: &[u8]) -> i64 {
        let inv: u8 = if field[0] & 0x40 != 0 { 0xff } else { 0 };
        let mut x: u64 = 0;
        for (i, &c) in field.iter().enumerate() {
            let mut c = c ^ inv;
            if i == 0 {
                c &= 0x7f;
            }
            if x >> 56 > 0 {
                self.failed = true;
                return 0;
            }
            x = (x << 8) | u64::from(c);
        }
        if x >> 63 > 0 {
            self.failed = true;
            return 0;
        }
        if inv == 0xff { !(x as i64) } else { x as i64 }
    }

    fn octal(&mut self, field: &[u8]) -> i64 {
        let start = field.iter().position(|&b| b != b' ' && b != 0);
        let Some(start) = start else { return 0 };
        let end = field
            .iter()
            .rposition(|&b| b != b' ' && b != 0)
            .map_or(start, |e| e + 1);
        let digits = parse_string(&field[start..end]);
        match std::str::from_utf8(digits)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 8).ok())
        {
            Some(value) if !digits.starts_with(b"+") => value as i64,
            _ => {
                self.failed = true;
                0
            }
        }
    }
}

/// Go's `parsePAX`: records in order, later duplicates win, GNU sparse 0.0 offsets folded.
fn parse_pax(data: &[u8]) -> std::result::Result<BTreeMap<Vec<u8>, Vec<u8>>, &'static str> {
    let mut records = BTreeMap::new();
    let mut sparse_map: Vec<Vec<u8>> = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or("PAX record without length")?;
        let length = parse_decimal(&rest[..space]).ok_or("PAX record length")?;
        if length < 5 || length > rest.len() as i64 {
            return Err("PAX record length");
        }
        let length = length as usize;
        if length <= space + 1 {
            return Err("PAX record length");
        }
        let record = &rest[space + 1..length - 1];
        if rest[length - 1] != b'\n' {
            return Err("PAX record without newline");
        }
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("PAX record without '='")?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let has_nul = |s: &[u8]| s.contains(&0);
        let valid = !key.is_empty()
            && match key {
                b"path" | b"linkpath" | b"uname" | b"gname" => !has_nul(value),
                _ => !has_nul(key),
            };
        if !valid {
            return Err("invalid PAX record");
        }
        match key {
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
                let expected: &[u8] = if sparse_map.len().is_multiple_of(2) {
                    b"GNU.sparse.offset"
                } else {
                    b"GNU.sparse.numbytes"
                };
                if key != expected || value.contains(&b',') {
                    return Err("GNU sparse 0.0 map order");
                }
                sparse_map.push(value.to_vec());
            }
            _ => {
                records.insert(key.to_vec(), value.to_vec());
            }
        }
        rest = &rest[length..];
    }
    if !sparse_map.is_empty() {
        records.insert(
            b"GNU.sparse.map".to_vec(),
            sparse_map.join(&b',')[..].to_vec(),
        );
    }
    Ok(records)
}

/// Go's `mergePAX`.
fn merge_pax(
    entry: &mut Entry,
    records: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> std::result::Result<(), &'static str> {
    for (key, value) in records {
        if value.is_empty() {
            continue;
        }
        match key.as_slice() {
            b"path" => entry.name = value.clone(),
            b"linkpath" => entry.linkname = value.clone(),
            b"uname" => entry.uname = value.clone(),
            b"gname" => entry.gname = value.clone(),
            b"uid" => entry.uid = parse_decimal(value).ok_or("PAX uid")?,
            b"gid" => entry.gid = parse_decimal(value).ok_or("PAX gid")?,
            b"mtime" => entry.mod_time = parse_pax_time(value).ok_or("PAX mtime")?,
            b"atime" | b"ctime" => {
                parse_pax_time(value).ok_or("PAX atime/ctime")?;
            }
            b"size" => entry.size = parse_decimal(value).ok_or("PAX size")?,
            _ => {}
        }
    }
    Ok(())
}

/// Go's `parsePAXTime`: seconds, optionally `.` and up to 9 significant fraction digits.
fn parse_pax_time(value: &[u8]) -> Option<GoTime> {
    let (secs_text, fraction) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &[][..]),
    };
    let secs = parse_decimal(secs_text)?;
    if fraction.is_empty() {
        return Some(GoTime::unix(secs, 0));
    }
    if !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut digits = fraction[..fraction.len().min(9)].to_vec();
    digits.resize(9, b'0');
    let nanos = parse_decimal(&digits)?;
    if secs_text.first() == Some(&b'-') {
        Some(GoTime::unix(secs, -nanos))
    } else {
        Some(GoTime::unix(secs, nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_formats_like_marshal_text() {
        assert_eq!(
            GoTime::unix(0, 0).to_rfc3339_utc().unwrap(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            GoTime::unix(0, -500_000_000).to_rfc3339_utc().unwrap(),
            "1969-12-31T23:59:59.5Z"
        );
        assert_eq!(
            GoTime::unix(8_589_934_591, 0).to_rfc3339_utc().unwrap(),
            "2242-03-16T12:56:31Z"
        );
        assert_eq!(GoTime::unix(253_402_300_800, 0).to_rfc3339_utc(), None);
        let t = GoTime::unix(1_700_000_000, 120_000_000);
        assert_eq!(GoTime::parse_rfc3339(&t.to_rfc3339_utc().unwrap()), Some(t));
        assert_eq!(
            GoTime::parse_rfc3339("2023-11-14T14:13:20.12-08:00"),
            Some(GoTime::unix(1_700_000_000, 120_000_000))
        );
    }

    #[test]
    fn octal_and_base256_fields() {
        let mut p = NumericParser::default();
        assert_eq!(p.numeric(b"0000644\0"), 0o644);
        assert_eq!(p.numeric(b"  12 \0\0\0"), 0o12);
        assert_eq!(p.numeric(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0]), 256);
        assert_eq!(p.numeric(&[0xff; 8]), -1);
        assert!(!p.failed);
        p.numeric(b"0009\0");
        assert!(p.failed);
    }

    #[test]
    fn pax_records_parse_and_fold_sparse_offsets() {
        let data = b"12 path=a/b\n23 GNU.sparse.offset=0\n26 GNU.sparse.numbytes=10\n";
        let records = parse_pax(data).unwrap();
        assert_eq!(records.get(&b"path"[..]).unwrap(), b"a/b");
        assert_eq!(records.get(&b"GNU.sparse.map"[..]).unwrap(), b"0,10");
        assert!(parse_pax(b"3 a=\n").is_err());
    }
}
