//! What the fuzz targets share: the fixed layers the zTOC target checks its inputs against.

use std::io::Write;
use std::sync::LazyLock;

use soci_core::{BuildOptions, Compression, MemoryBudget};

/// The span size of the seed zTOCs: small, so a small layer has several spans.
pub const SPAN: u64 = 8 << 10;

fn header(name: &str, size: usize) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"14000000000\0");
    h[148..156].copy_from_slice(b"        ");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// Three files of 12,000 pseudo-random bytes: a tar of ~37 KB.
pub static TAR: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut tar = Vec::new();
    for i in 0..3 {
        tar.extend_from_slice(&header(&format!("file{i}"), 12_000));
        tar.extend((0..12_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"abcdefgh \n"[(x % 10) as usize]
        }));
        tar.resize(tar.len().next_multiple_of(512), 0);
    }
    tar.resize(tar.len() + 1024, 0);
    tar
});

/// [`TAR`], gzipped.
pub static GZIP: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&TAR).expect("in memory");
    gz.finish().expect("in memory")
});

/// The zTOC of a fixed layer, to seed the corpus.
pub fn seed_ztoc(compression: Compression) -> Vec<u8> {
    let layer: &[u8] = match compression {
        Compression::Gzip => &GZIP,
        Compression::Uncompressed => &TAR,
    };
    let options = BuildOptions {
        span_size: SPAN,
        build_tool: "fuzz".into(),
        compression,
        expected_digest: None,
        budget: MemoryBudget::default(),
    };
    soci_core::build_ztoc(layer, &options)
        .expect("the fixed layer indexes")
        .ztoc
}
