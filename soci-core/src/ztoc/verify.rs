//! The consumer's checks on a zTOC against its layer (FORMAT.md section 9), and random-access
//! extraction of one file (the consumer's read path: a checkpoint and a ranged read).

use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, Read};

use sha2::{Digest, Sha256};

use super::toc::type_name;
use crate::tar::{Entry, GoTime, TarReader};
use crate::zinfo::{
    Checkpoint, CheckpointBlob, GzipIndexer, gzip_header_len, inflate_span, max_inflated_len,
};
use crate::ztoc::{ALGORITHM_GZIP, ALGORITHM_UNCOMPRESSED, FileMetadata, TarZinfo, Ztoc};
use crate::{Error, Result};

/// Random access to a layer blob (a file, bytes in memory, ranged HTTP reads).
pub trait LayerSource {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` from `offset`; an error if the range is not entirely inside the layer.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl LayerSource for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl LayerSource for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.as_slice().read_at(offset, buf)
    }
}

impl LayerSource for std::fs::File {
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// What [`verify`] found; empty `problems` means a consumer would accept every file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub problems: Vec<String>,
    pub entries_checked: usize,
    pub spans_checked: usize,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn read_range<L: LayerSource + ?Sized>(layer: &L, start: u64, end: u64) -> Result<Vec<u8>> {
    let len = end
        .checked_sub(start)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Error::InvalidZtoc(format!("bad range {start}..{end}")))?;
    let mut buf = vec![0u8; len];
    layer.read_at(start, &mut buf).map_err(|source| Error::Io {
        offset: start,
        source,
    })?;
    Ok(buf)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The spans of a zTOC in both coordinates.
struct Spans {
    gzip: Option<GzipSpans>,
    /// Compressed `[start, end)` per span.
    compressed: Vec<(u64, u64)>,
    /// Uncompressed start per span.
    uncompressed_start: Vec<u64>,
}

struct GzipSpans {
    checkpoints: Vec<Checkpoint>,
    windows: Vec<Vec<u8>>,
}

fn spans_of(ztoc: &Ztoc, layer_len: u64, problems: &mut Vec<String>) -> Option<Spans> {
    match ztoc.compression_algorithm {
        ALGORITHM_GZIP => {
            let blob = match CheckpointBlob::parse(&ztoc.checkpoints) {
                Ok(blob) => blob,
                Err(e) => {
                    problems.push(e.to_string());
                    return None;
                }
            };
            let checkpoints = blob.checkpoints.clone();
            if checkpoints.is_empty() {
                problems.push("the zTOC has no checkpoints".into());
                return None;
            }
            if let Some(problem) = implausible_checkpoints(&checkpoints, layer_len) {
                problems.push(problem);
                return None;
            }
            let windows = (0..checkpoints.len())
                .map(|i| blob.window(i).unwrap_or_default().to_vec())
                .collect();
            let mut compressed = Vec::with_capacity(checkpoints.len());
            for (i, checkpoint) in checkpoints.iter().enumerate() {
                let end = checkpoints.get(i + 1).map_or(layer_len, |next| next.input);
                compressed.push((checkpoint.span_start(), end));
            }
            let uncompressed_start = checkpoints.iter().map(|c| c.output).collect();
            Some(Spans {
                gzip: Some(GzipSpans {
                    checkpoints,
                    windows,
                }),
                compressed,
                uncompressed_start,
            })
        }
        ALGORITHM_UNCOMPRESSED => {
            let zinfo = match TarZinfo::from_bytes(&ztoc.checkpoints) {
                Ok(zinfo) => zinfo,
                Err(e) => {
                    problems.push(format!("TarZinfo: {e}"));
                    return None;
                }
            };
            if zinfo.span_size <= 0 || zinfo.size < 0 {
                problems.push(format!(
                    "TarZinfo span size {} / size {} are invalid",
                    zinfo.span_size, zinfo.size
                ));
                return None;
            }
            if zinfo.size as u64 != layer_len {
                problems.push(format!(
                    "TarZinfo size {} differs from the layer size {layer_len}",
                    zinfo.size
                ));
                return None;
            }
            let span = zinfo.span_size as u64;
            let size = zinfo.size as u64;
            // Checked before the spans are listed: the count is sized from the zTOC.
            let count = size.div_ceil(span);
            if count != ztoc.span_digests.len() as u64 {
                problems.push(format!(
                    "TarZinfo (size {size}, span size {span}) gives {count} spans, the zTOC has {} \
                     span digests",
                    ztoc.span_digests.len()
                ));
                return None;
            }
            let compressed: Vec<(u64, u64)> = (0..size.div_ceil(span))
                .map(|i| (i * span, ((i + 1) * span).min(size)))
                .collect();
            let uncompressed_start = compressed.iter().map(|&(start, _)| start).collect();
            Some(Spans {
                gzip: None,
                compressed,
                uncompressed_start,
            })
        }
        other => {
            problems.push(format!("unknown compression algorithm {other}"));
            None
        }
    }
}

/// Checkpoints that no gzip blob of `layer_len` bytes could have: compressed offsets beyond the
/// layer, or more uncompressed bytes than deflate can produce from the layer. Every size later
/// derived from a checkpoint is bounded by these checks.
fn implausible_checkpoints(checkpoints: &[Checkpoint], layer_len: u64) -> Option<String> {
    let max_out = max_inflated_len(layer_len);
    checkpoints.iter().enumerate().find_map(|(i, c)| {
        (c.input > layer_len || c.output > max_out).then(|| {
            format!(
                "checkpoint {i} (compressed offset {}, uncompressed offset {}) does not fit a \
                 {layer_len}-byte layer",
                c.input, c.output
            )
        })
    })
}

/// The largest `uncompressed_archive_size` a layer of `layer_len` bytes can have.
fn max_archive_size(ztoc: &Ztoc, layer_len: u64) -> u64 {
    if ztoc.compression_algorithm == ALGORITHM_UNCOMPRESSED {
        layer_len
    } else {
        max_inflated_len(layer_len)
    }
}

/// Runs the consumer's checks (FORMAT.md section 9) of `ztoc` against `layer`.
///
/// Problems a consumer would reject the layer for are listed in the report; an `Err` means the
/// layer could not be read at all.
pub fn verify<L: LayerSource + ?Sized>(ztoc: &[u8], layer: &L) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let ztoc = match Ztoc::from_bytes(ztoc) {
        Ok(ztoc) => ztoc,
        Err(e) => {
            report
                .problems
                .push(format!("the zTOC does not decode: {e}"));
            return Ok(report);
        }
    };
    let problems = &mut report.problems;
    let layer_len = layer.len();
    if ztoc.compressed_archive_size < 0 || ztoc.compressed_archive_size as u64 != layer_len {
        problems.push(format!(
            "compressed_archive_size {} differs from the layer size {layer_len}",
            ztoc.compressed_archive_size
        ));
    }
    let Some(spans) = spans_of(&ztoc, layer_len, problems) else {
        return Ok(report);
    };
    let count = spans.compressed.len();
    if i64::from(ztoc.max_span_id) + 1 != count as i64 || ztoc.span_digests.len() != count {
        problems.push(format!(
            "max_span_id {} + 1, {} span digests and {count} spans disagree",
            ztoc.max_span_id,
            ztoc.span_digests.len()
        ));
        return Ok(report);
    }
    if let Some(gzip) = &spans.gzip {
        let first = &gzip.checkpoints[0];
        let header = read_range(layer, 0, first.input.min(layer_len))?;
        match gzip_header_len(&header) {
            Ok(len) if len as u64 == first.input && first.bits == 0 && first.output == 0 => {}
            Ok(_) => problems.push("checkpoint 0 is not right after the gzip header".into()),
            Err(e) => problems.push(format!("the bytes before checkpoint 0: {e}")),
        }
        for pair in gzip.checkpoints.windows(2) {
            if pair[1].input <= pair[0].input || pair[1].output <= pair[0].output {
                problems.push(format!(
                    "checkpoints are not strictly increasing at compressed offset {}",
                    pair[1].input
                ));
                return Ok(report);
            }
        }
    }
    for (i, &(start, end)) in spans.compressed.iter().enumerate() {
        if start > end || end > layer_len {
            problems.push(format!("span {i} ({start}..{end}) lies outside the layer"));
            return Ok(report);
        }
        let digest = sha256(&read_range(layer, start, end)?);
        if digest.as_bytes() != ztoc.span_digests[i].as_slice() {
            problems.push(format!(
                "span {i} has digest {digest}, the zTOC says {}",
                String::from_utf8_lossy(&ztoc.span_digests[i])
            ));
        }
        report.spans_checked += 1;
    }
    if !problems.is_empty() {
        return Ok(report);
    }

    let uncompressed_size = match u64::try_from(ztoc.uncompressed_archive_size) {
        Ok(size) if size <= max_archive_size(&ztoc, layer_len) => size,
        _ => {
            problems.push(format!(
                "uncompressed_archive_size {} does not fit a {layer_len}-byte layer",
                ztoc.uncompressed_archive_size
            ));
            return Ok(report);
        }
    };
    let stream = SpanStream::new(layer, &spans, uncompressed_size)?;
    let mut tar = TarReader::new(BufReader::with_capacity(1 << 16, stream));
    // Each header is compared as it streams past and dropped: a layer's PAX records can be far
    // larger than its zTOC, so they are never all held at once.
    let mut checker = EntryChecker::new(&ztoc.toc, problems);
    loop {
        match tar.next_entry() {
            Ok(Some(entry)) => checker.check(&entry, &mut report.entries_checked, problems),
            Ok(None) => break,
            Err(e) => {
                problems.push(format!("re-reading the tar stream through the spans: {e}"));
                return Ok(report);
            }
        }
    }
    let end = tar.position();
    if let Some(problem) = tar.into_inner().into_inner().problem {
        problems.push(problem);
        return Ok(report);
    }
    if end != uncompressed_size {
        problems.push(format!(
            "uncompressed_archive_size is {uncompressed_size} but the tar archive ends at {end}"
        ));
    }
    checker.finish(problems);
    Ok(report)
}

/// A TOC entry where the chain rule puts its header.
struct Expected<'a> {
    entry: &'a FileMetadata,
    /// Its rank by offset, for messages.
    position: usize,
    header_at: i64,
    seen: bool,
}

/// The chain rule (computed from the TOC alone) and the per-entry header re-parse, one tar
/// entry at a time.
struct EntryChecker<'a> {
    /// TOC entries by data offset (entries whose offset is negative are never found).
    expected: HashMap<u64, Expected<'a>>,
    /// TOC entries in offset order, for the end-of-stream report of the ones never seen.
    by_offset: Vec<&'a FileMetadata>,
    toc_len: usize,
    parsed: usize,
}

impl<'a> EntryChecker<'a> {
    fn new(toc: &'a [FileMetadata], problems: &mut Vec<String>) -> Self {
        let mut by_offset: Vec<&FileMetadata> = toc.iter().collect();
        by_offset.sort_by_key(|e| e.uncompressed_offset);
        let mut expected = HashMap::with_capacity(toc.len());
        let mut next_header = 0i64;
        for (position, entry) in by_offset.iter().enumerate() {
            if entry.uncompressed_offset < next_header {
                problems.push(format!(
                    "entry {:?} at {} overlaps the previous entry",
                    String::from_utf8_lossy(&entry.name),
                    entry.uncompressed_offset
                ));
            }
            let header_at = next_header;
            next_header = entry
                .uncompressed_offset
                .saturating_add(entry.uncompressed_size.max(0))
                .saturating_add(511)
                & !511;
            if let Ok(offset) = u64::try_from(entry.uncompressed_offset) {
                expected.entry(offset).or_insert(Expected {
                    entry,
                    position,
                    header_at,
                    seen: false,
                });
            }
        }
        Self {
            expected,
            by_offset,
            toc_len: toc.len(),
            parsed: 0,
        }
    }

    fn check(&mut self, actual: &Entry, checked: &mut usize, problems: &mut Vec<String>) {
        self.parsed += 1;
        let Some(expected) = self.expected.get_mut(&actual.data_offset) else {
            return;
        };
        expected.seen = true;
        let (entry, position, header_at) = (expected.entry, expected.position, expected.header_at);
        let name = String::from_utf8_lossy(&entry.name);
        if actual.header_offset as i64 != header_at {
            problems.push(format!(
                "entry {name:?}: its header is at {} but the chain puts it at {header_at} (entry {position} by offset)",
                actual.header_offset
            ));
        }
        let differs = differences(entry, actual);
        if !differs.is_empty() {
            problems.push(format!(
                "entry {name:?}: {} differ from its tar header",
                differs.join(", ")
            ));
        }
        *checked += 1;
    }

    fn finish(self, problems: &mut Vec<String>) {
        if self.toc_len != self.parsed {
            problems.push(format!(
                "the zTOC lists {} entries, the layer has {}",
                self.toc_len, self.parsed
            ));
        }
        for entry in self.by_offset {
            let seen = u64::try_from(entry.uncompressed_offset)
                .ok()
                .and_then(|offset| self.expected.get(&offset))
                .is_some_and(|e| e.seen && std::ptr::eq(e.entry, entry));
            if !seen {
                problems.push(format!(
                    "no tar header has its data at {} (entry {:?})",
                    entry.uncompressed_offset,
                    String::from_utf8_lossy(&entry.name)
                ));
            }
        }
    }
}

/// The fields of `entry` that its tar header contradicts.
fn differences(entry: &FileMetadata, actual: &Entry) -> Vec<&'static str> {
    let mut differs = Vec::new();
    if actual.name != entry.name {
        differs.push("name");
    }
    if actual.size != entry.uncompressed_size {
        differs.push("size");
    }
    if actual.linkname != entry.linkname {
        differs.push("linkname");
    }
    if actual.uid != i64::from(entry.uid) {
        differs.push("uid");
    }
    if actual.gid != i64::from(entry.gid) {
        differs.push("gid");
    }
    if actual.devmajor != entry.devmajor || actual.devminor != entry.devminor {
        differs.push("device numbers");
    }
    let stored_time = std::str::from_utf8(&entry.mod_time)
        .ok()
        .and_then(GoTime::parse_rfc3339);
    if stored_time != Some(actual.mod_time) {
        differs.push("modification time");
    }
    if actual.mode & 0o7777 != entry.mode & 0o7777
        || type_name(actual.typeflag).ok().map(str::as_bytes) != Some(entry.file_type.as_slice())
    {
        differs.push("mode");
    }
    let is_xattr = |key: &[u8]| key.starts_with(b"SCHILY.xattr.");
    let actual_xattrs = actual.pax_records.iter().filter(|(k, _)| is_xattr(k));
    let stored_xattrs = entry.xattrs.iter().filter(|(k, _)| is_xattr(k));
    if !actual_xattrs.eq(stored_xattrs.map(|(k, v)| (k, v))) {
        differs.push("xattrs");
    }
    if actual.sparse {
        differs.push("content (a GNU sparse file cannot be read through a zTOC)");
    }
    differs
}

/// The uncompressed stream rebuilt span by span from the checkpoints (the consumer's path), and
/// compared on the way with one sequential decompression of the whole layer.
struct SpanStream<'a, L: ?Sized> {
    layer: &'a L,
    spans: &'a Spans,
    next_span: usize,
    limit: u64,
    produced: u64,
    buffered: VecDeque<u8>,
    sequential: Option<GzipIndexer<LayerReader<'a, L>>>,
    problem: Option<String>,
}

impl<'a, L: LayerSource + ?Sized> SpanStream<'a, L> {
    fn new(layer: &'a L, spans: &'a Spans, limit: u64) -> Result<Self> {
        let sequential = match spans.gzip {
            Some(_) => Some(GzipIndexer::new(
                LayerReader { layer, offset: 0 },
                u64::MAX,
            )?),
            None => None,
        };
        Ok(Self {
            layer,
            spans,
            next_span: 0,
            limit,
            produced: 0,
            buffered: VecDeque::new(),
            sequential,
            problem: None,
        })
    }

    fn load_next_span(&mut self) -> std::io::Result<bool> {
        let i = self.next_span;
        if i >= self.spans.compressed.len() || self.produced >= self.limit {
            return Ok(false);
        }
        self.next_span += 1;
        let start = self.spans.uncompressed_start[i];
        let end = self
            .spans
            .uncompressed_start
            .get(i + 1)
            .copied()
            .unwrap_or(self.limit)
            .min(self.limit);
        if start != self.produced {
            return Err(self.fail(format!(
                "span {i} starts at {start}, the previous span ended at {}",
                self.produced
            )));
        }
        let (cstart, cend) = self.spans.compressed[i];
        let claimed = end.saturating_sub(start);
        if self.spans.gzip.is_some() && claimed > max_inflated_len(cend.saturating_sub(cstart)) {
            return Err(self.fail(format!(
                "span {i} claims {claimed} uncompressed bytes from {} compressed bytes",
                cend.saturating_sub(cstart)
            )));
        }
        let compressed = read_range(self.layer, cstart, cend).map_err(std::io::Error::other)?;
        let want = usize::try_from(claimed).map_err(std::io::Error::other)?;
        let data = match &self.spans.gzip {
            Some(gzip) => {
                // The last span may need the bytes up to the end of the layer only.
                inflate_span(&gzip.checkpoints[i], &gzip.windows[i], &compressed, want)
                    .map_err(|e| self.fail(format!("span {i}: {e}")))?
            }
            None => compressed
                .get(..want.min(compressed.len()))
                .unwrap_or_default()
                .to_vec(),
        };
        if data.len() != want {
            return Err(self.fail(format!(
                "span {i} yields {} bytes, expected {want}",
                data.len()
            )));
        }
        if let Some(sequential) = &mut self.sequential {
            let mut expected = vec![0u8; data.len()];
            sequential
                .read_exact(&mut expected)
                .map_err(|e| self.fail(format!("sequential decompression: {e}")))?;
            if expected != data {
                return Err(self.fail(format!(
                    "span {i} decompresses differently from a sequential decompression"
                )));
            }
        }
        self.produced += data.len() as u64;
        self.buffered.extend(data);
        Ok(true)
    }

    fn fail(&mut self, problem: String) -> std::io::Error {
        self.problem = Some(problem.clone());
        std::io::Error::new(std::io::ErrorKind::InvalidData, problem)
    }
}

impl<L: LayerSource + ?Sized> Read for SpanStream<'_, L> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.buffered.is_empty() {
            if !self.load_next_span()? {
                return Ok(0);
            }
        }
        let n = self.buffered.len().min(buf.len());
        for (slot, byte) in buf.iter_mut().zip(self.buffered.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

/// A sequential reader over a [`LayerSource`].
struct LayerReader<'a, L: ?Sized> {
    layer: &'a L,
    offset: u64,
}

impl<L: LayerSource + ?Sized> Read for LayerReader<'_, L> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.layer.len().saturating_sub(self.offset);
        let n = (buf.len() as u64).min(left) as usize;
        self.layer.read_at(self.offset, &mut buf[..n])?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Finds the entry for `path`: exact, else ignoring a leading `./` or `/` on either side.
fn find_entry<'z>(ztoc: &'z Ztoc, path: &str) -> Option<&'z FileMetadata> {
    let normalize = |s: &[u8]| -> Vec<u8> {
        let s = s.strip_prefix(b"./").unwrap_or(s);
        s.strip_prefix(b"/").unwrap_or(s).to_vec()
    };
    ztoc.toc
        .iter()
        .find(|e| e.name == path.as_bytes())
        .or_else(|| {
            ztoc.toc
                .iter()
                .find(|e| normalize(&e.name) == normalize(path.as_bytes()))
        })
}

/// Extracts the content of the regular file `path` through `ztoc` with ranged reads of `layer`
/// (only the spans holding the file are read and inflated).
pub fn extract_file<L: LayerSource + ?Sized>(
    ztoc: &[u8],
    layer: &L,
    path: &str,
) -> Result<Vec<u8>> {
    let ztoc = Ztoc::from_bytes(ztoc)?;
    let entry = find_entry(&ztoc, path)
        .ok_or_else(|| Error::InvalidArgument(format!("{path:?} is not in the zTOC")))?;
    if entry.file_type != b"reg" {
        return Err(Error::InvalidArgument(format!(
            "{path:?} is a {} entry, not a regular file",
            String::from_utf8_lossy(&entry.file_type)
        )));
    }
    let (offset, size) = match (
        u64::try_from(entry.uncompressed_offset),
        u64::try_from(entry.uncompressed_size),
    ) {
        (Ok(offset), Ok(size)) => (offset, size),
        _ => {
            return Err(Error::InvalidZtoc(format!(
                "{path:?} has a negative offset or size"
            )));
        }
    };
    if size == 0 {
        return Ok(Vec::new());
    }
    let mut problems = Vec::new();
    let spans = spans_of(&ztoc, layer.len(), &mut problems)
        .ok_or_else(|| Error::InvalidZtoc(problems.join("; ")))?;
    let archive_size = u64::try_from(ztoc.uncompressed_archive_size)
        .ok()
        .filter(|&size| size <= max_archive_size(&ztoc, layer.len()))
        .ok_or_else(|| {
            Error::InvalidZtoc(format!(
                "uncompressed_archive_size {} does not fit a {}-byte layer",
                ztoc.uncompressed_archive_size,
                layer.len()
            ))
        })?;
    let end = offset
        .checked_add(size)
        .filter(|&end| end <= archive_size)
        .ok_or_else(|| {
            Error::InvalidZtoc(format!(
                "{path:?} ({size} bytes at {offset}) ends beyond the archive ({archive_size} bytes)"
            ))
        })?;
    let first = spans
        .uncompressed_start
        .iter()
        .rposition(|&s| s <= offset)
        .ok_or_else(|| Error::InvalidZtoc(format!("no span holds offset {offset} of {path:?}")))?;
    let last = spans
        .uncompressed_start
        .iter()
        .rposition(|&s| s < end)
        .unwrap_or(first);
    let compressed = read_range(layer, spans.compressed[first].0, spans.compressed[last].1)?;
    let ends_early =
        || Error::InvalidZtoc(format!("{path:?}: the layer ends before the file does"));
    let data = match &spans.gzip {
        Some(gzip) => {
            // start <= offset (rposition above), and offset + size <= archive_size.
            let skip = offset - spans.uncompressed_start[first];
            let want = skip + size;
            if want > max_inflated_len(compressed.len() as u64) {
                return Err(ends_early());
            }
            let want = usize::try_from(want)
                .map_err(|_| Error::InvalidZtoc(format!("{path:?} is too large")))?;
            let mut data = inflate_span(
                &gzip.checkpoints[first],
                &gzip.windows[first],
                &compressed,
                want,
            )?;
            if data.len() != want {
                return Err(ends_early());
            }
            data.drain(..want - size as usize);
            data
        }
        None => {
            let skip =
                usize::try_from(offset - spans.compressed[first].0).map_err(|_| ends_early())?;
            let size = usize::try_from(size).map_err(|_| ends_early())?;
            skip.checked_add(size)
                .and_then(|end| compressed.get(skip..end))
                .ok_or_else(ends_early)?
                .to_vec()
        }
    };
    Ok(data)
}
