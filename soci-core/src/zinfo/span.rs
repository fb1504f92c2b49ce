//! The consumer side: decoding a checkpoint blob and inflating one span from its checkpoint.

use std::io::Read;

use libz_rs_sys as zlib;

use super::inflater::Inflater;
use super::{BLOB_HEADER_SIZE, CHECKPOINT_SIZE, Checkpoint, INPUT_CHUNK, OUTPUT_CHUNK};
use crate::{Error, Result};

/// A decoded checkpoint blob (borrowing the windows).
pub struct CheckpointBlob<'a> {
    pub span_size: i64,
    pub checkpoints: Vec<Checkpoint>,
    windows: Vec<&'a [u8]>,
}

impl<'a> CheckpointBlob<'a> {
    pub fn parse(blob: &'a [u8]) -> Result<Self> {
        let invalid = |what: &str| Error::InvalidZtoc(format!("gzip checkpoint blob: {what}"));
        let count = blob
            .get(0..4)
            .ok_or_else(|| invalid("shorter than its header"))?;
        let count = i32::from_le_bytes(count.try_into().map_err(|_| invalid("header"))?);
        let span = blob
            .get(4..12)
            .ok_or_else(|| invalid("shorter than its header"))?;
        let span_size = i64::from_le_bytes(span.try_into().map_err(|_| invalid("header"))?);
        let count = usize::try_from(count).map_err(|_| invalid("negative checkpoint count"))?;
        let expected = count
            .checked_mul(CHECKPOINT_SIZE)
            .and_then(|n| n.checked_add(BLOB_HEADER_SIZE))
            .ok_or_else(|| invalid("checkpoint count overflows"))?;
        if blob.len() != expected {
            return Err(invalid(&format!(
                "{} bytes for {count} checkpoints, expected {expected}",
                blob.len()
            )));
        }
        let mut checkpoints = Vec::with_capacity(count);
        let mut windows = Vec::with_capacity(count);
        for record in blob[BLOB_HEADER_SIZE..].chunks_exact(CHECKPOINT_SIZE) {
            let input = i64::from_le_bytes(record[0..8].try_into().map_err(|_| invalid("in"))?);
            let output = i64::from_le_bytes(record[8..16].try_into().map_err(|_| invalid("out"))?);
            let bits = record[16];
            if input < 0 || output < 0 || bits > 7 {
                return Err(invalid(
                    "a checkpoint has a negative offset or more than 7 bits",
                ));
            }
            checkpoints.push(Checkpoint {
                input: input as u64,
                output: output as u64,
                bits,
            });
            windows.push(&record[17..]);
        }
        Ok(Self {
            span_size,
            checkpoints,
            windows,
        })
    }

    pub fn window(&self, index: usize) -> Option<&'a [u8]> {
        self.windows.get(index).copied()
    }
}

/// Inflates the span starting at `checkpoint`, given `compressed` = the blob bytes from
/// `checkpoint.span_start()` on (at least up to the span's end), until `out_len` bytes are
/// produced or the deflate stream of that member ends.
pub fn inflate_span(
    checkpoint: &Checkpoint,
    window: &[u8],
    compressed: &[u8],
    out_len: usize,
) -> Result<Vec<u8>> {
    let mut inflater = Inflater::new(-15)?;
    let mut input = compressed;
    if checkpoint.bits != 0 {
        let (&first, rest) = input
            .split_first()
            .ok_or_else(|| Error::InvalidZtoc("span has no compressed bytes".into()))?;
        inflater.prime(checkpoint.bits, first >> (8 - checkpoint.bits))?;
        input = rest;
    }
    inflater.set_dictionary(window)?;
    // The output grows as it is produced: `out_len` comes from a zTOC and may be anything.
    let mut output = Vec::new();
    let mut produced = 0;
    while produced < out_len {
        if output.len() == produced {
            output.resize(produced + (out_len - produced).min(OUTPUT_CHUNK), 0);
        }
        let step = inflater.inflate(input, &mut output[produced..], zlib::Z_NO_FLUSH);
        input = &input[step.consumed..];
        produced += step.produced;
        match step.code {
            zlib::Z_OK => {}
            zlib::Z_STREAM_END if produced < out_len && input.len() > GZIP_TRAILER_SIZE => {
                // The span crosses into the next gzip member: skip the trailer and its header.
                let header = gzip_header_len(&input[GZIP_TRAILER_SIZE..])?;
                input = &input[GZIP_TRAILER_SIZE + header..];
                inflater = Inflater::new(-15)?;
            }
            zlib::Z_STREAM_END => break,
            zlib::Z_BUF_ERROR if step.consumed > 0 || step.produced > 0 => {}
            code => {
                return Err(Error::InvalidZtoc(format!(
                    "span at compressed offset {} does not inflate from its checkpoint (zlib code {code})",
                    checkpoint.input
                )));
            }
        }
    }
    output.truncate(produced);
    Ok(output)
}

const GZIP_TRAILER_SIZE: usize = 8;

/// The length of the gzip member header at the start of `data` (RFC 1952: FEXTRA, FNAME,
/// FCOMMENT, FHCRC), or an error naming what is wrong with it.
pub fn gzip_header_len(data: &[u8]) -> Result<usize> {
    let invalid = |what: &str| Error::InvalidZtoc(format!("invalid gzip header: {what}"));
    let fixed = data
        .get(0..10)
        .ok_or_else(|| invalid("shorter than 10 bytes"))?;
    if fixed[0] != 0x1f || fixed[1] != 0x8b {
        return Err(invalid("bad magic"));
    }
    if fixed[2] != 8 {
        return Err(invalid("compression method is not deflate"));
    }
    let flags = fixed[3];
    if flags & 0xe0 != 0 {
        return Err(invalid("reserved flag bits set"));
    }
    let mut pos = 10usize;
    if flags & 0x04 != 0 {
        let xlen = data
            .get(pos..pos + 2)
            .ok_or_else(|| invalid("truncated FEXTRA"))?;
        pos += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for (flag, what) in [(0x08u8, "FNAME"), (0x10, "FCOMMENT")] {
        if flags & flag != 0 {
            let rest = data.get(pos..).ok_or_else(|| invalid(what))?;
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| invalid(what))?;
            pos += nul + 1;
        }
    }
    if flags & 0x02 != 0 {
        pos += 2;
    }
    if pos > data.len() {
        return Err(invalid("truncated"));
    }
    Ok(pos)
}

/// Inflates a whole (multi-member) gzip stream with no checkpointing and no hashing, and returns
/// the number of uncompressed bytes: the baseline the zTOC build is measured against.
pub fn bare_inflate<R: Read>(mut source: R) -> Result<u64> {
    let mut inflater = Inflater::new(31)?;
    let mut input = vec![0u8; INPUT_CHUNK];
    let mut output = vec![0u8; OUTPUT_CHUNK];
    let (mut total_in, mut total_out) = (0u64, 0u64);
    let mut member_ended = false;
    loop {
        let n = source.read(&mut input).map_err(|source| Error::Io {
            offset: total_in,
            source,
        })?;
        if n == 0 {
            return if member_ended {
                Ok(total_out)
            } else {
                Err(Error::Rejected("the gzip stream is truncated".into()))
            };
        }
        let mut pending = &input[..n];
        while !pending.is_empty() {
            if member_ended {
                inflater.reset()?;
                member_ended = false;
            }
            let step = inflater.inflate(pending, &mut output, zlib::Z_NO_FLUSH);
            pending = &pending[step.consumed..];
            total_in += step.consumed as u64;
            total_out += step.produced as u64;
            match step.code {
                zlib::Z_OK => {}
                zlib::Z_STREAM_END => member_ended = true,
                zlib::Z_BUF_ERROR if step.consumed > 0 || step.produced > 0 => {}
                code => {
                    return Err(Error::Rejected(format!(
                        "gzip data error (zlib code {code}) at compressed offset {total_in}"
                    )));
                }
            }
        }
    }
}
