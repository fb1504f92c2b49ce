//! Generators for hostile layers (issue: PAX amplification, gzip bombs, a million empty files,
//! GNU sparse 1.0 maps). Tar headers are written by hand: the `tar` crate refuses some of these
//! on purpose.

use std::io::Write;

use flate2::Compression as Level;
use flate2::write::GzEncoder;

pub const BLOCK: usize = 512;

/// A ustar header block with a valid checksum.
pub fn header(name: &[u8], typeflag: u8, size: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"14000000000\0");
    h[148..156].copy_from_slice(b"        ");
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// One PAX record: `"<len> <key>=<value>\n"`, the length counting itself.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len += 1;
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    assert_eq!(out.len(), len);
    out
}

fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(BLOCK), 0);
}

/// A PAX header with `records`, then the file header, then `data`.
pub fn pax_entry(out: &mut impl Write, name: &[u8], records: &[u8], data: &[u8], size: u64) {
    let mut block = header(b"PaxHeaders/x", b'x', records.len() as u64).to_vec();
    block.extend_from_slice(records);
    pad(&mut block);
    block.extend_from_slice(&header(name, b'0', size.min(0o77777777777)));
    block.extend_from_slice(data);
    pad(&mut block);
    out.write_all(&block).unwrap();
}

fn end_of_archive(out: &mut impl Write) {
    out.write_all(&[0u8; 2 * BLOCK]).unwrap();
}

fn gzip() -> GzEncoder<Vec<u8>> {
    GzEncoder::new(Vec::new(), Level::best())
}

/// `entries` files, each with a PAX record of ~1 MB (Go's limit is 1 MiB per PAX header).
pub fn pax_amplification(entries: usize) -> Vec<u8> {
    let record = pax_record("comment", &vec![b'a'; (1 << 20) - 64]);
    let mut gz = gzip();
    for i in 0..entries {
        pax_entry(&mut gz, format!("f{i}").as_bytes(), &record, &[], 0);
    }
    end_of_archive(&mut gz);
    gz.finish().unwrap()
}

/// `files` empty regular files.
pub fn empty_files(files: usize) -> Vec<u8> {
    let mut gz = gzip();
    for i in 0..files {
        gz.write_all(&header(format!("d/{i:07}").as_bytes(), b'0', 0))
            .unwrap();
    }
    end_of_archive(&mut gz);
    gz.finish().unwrap()
}

/// One gzip member holding `len` zeros.
fn zeros_member(len: usize) -> Vec<u8> {
    let mut gz = gzip();
    let chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        gz.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    gz.finish().unwrap()
}

/// A small valid tar in the first member, then `members` members of 1 GiB of zeros each:
/// data after the end-of-archive that the reference inflates (and checkpoints) to the end.
pub fn trailing_gzip_bomb(members: usize) -> Vec<u8> {
    let mut gz = gzip();
    let mut tar = Vec::new();
    pax_entry(&mut tar, b"hello", &[], b"hello\n", 6);
    end_of_archive(&mut tar);
    gz.write_all(&tar).unwrap();
    let mut out = gz.finish().unwrap();
    let member = zeros_member(1 << 30);
    for _ in 0..members {
        out.extend_from_slice(&member);
    }
    out
}

/// One regular file of `gib` GiB of zeros (its size as a PAX record), in members of 1 GiB.
pub fn inner_gzip_bomb(gib: usize) -> Vec<u8> {
    let size = (gib as u64) << 30;
    let records = pax_record("size", size.to_string().as_bytes());
    let mut gz = gzip();
    pax_entry(&mut gz, b"zeros", &records, &[], 0);
    let mut out = gz.finish().unwrap();
    let member = zeros_member(1 << 30);
    for _ in 0..gib {
        out.extend_from_slice(&member);
    }
    let mut gz = gzip();
    end_of_archive(&mut gz);
    out.extend_from_slice(&gz.finish().unwrap());
    out
}

/// A GNU sparse 1.0 file whose map (at the start of its data) claims `count` entries and then
/// holds `newlines` bytes of empty lines: Go stops after 1 MiB of map.
pub fn sparse_map(count: u64, newlines: usize) -> Vec<u8> {
    let mut records = Vec::new();
    for (key, value) in [
        ("GNU.sparse.major", "1".to_string()),
        ("GNU.sparse.minor", "0".to_string()),
        ("GNU.sparse.name", "sparse".to_string()),
        ("GNU.sparse.realsize", "1048576".to_string()),
    ] {
        records.extend(pax_record(key, value.as_bytes()));
    }
    let mut gz = gzip();
    let map_len = newlines.next_multiple_of(BLOCK) as u64 + BLOCK as u64;
    let mut first = [b'\n'; BLOCK];
    let head = format!("{count}\n");
    first[..head.len()].copy_from_slice(head.as_bytes());
    let mut data = Vec::with_capacity(BLOCK);
    data.extend_from_slice(&first);
    pax_entry(&mut gz, b"GNUSparseFile.0/sparse", &records, &[], map_len);
    // The header above is followed by the map: write it in pieces, it can be large.
    gz.write_all(&data).unwrap();
    let block = [b'\n'; BLOCK];
    for _ in 0..newlines.div_ceil(BLOCK) {
        gz.write_all(&block).unwrap();
    }
    end_of_archive(&mut gz);
    gz.finish().unwrap()
}

/// A plain gzip layer with `files` regular files of `size` pseudo-random bytes each, for zTOCs
/// with several spans.
#[allow(dead_code)]
pub fn plain_layer(files: usize, size: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut gz = gzip();
    for i in 0..files {
        let data: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut block = header(format!("file{i}").as_bytes(), b'0', size as u64).to_vec();
        block.extend_from_slice(&data);
        pad(&mut block);
        gz.write_all(&block).unwrap();
    }
    end_of_archive(&mut gz);
    gz.finish().unwrap()
}
