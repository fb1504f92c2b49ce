//! Deterministic layers of realistic content, streamed to disk, for the benchmarks.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use test_support::image::Hashing;

/// A generated layer blob on disk.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LayerFile {
    /// `sha256:<hex>` of the gzip blob.
    pub digest: String,
    /// `sha256:<hex>` of the tar (the config's `diff_ids`).
    pub diff_id: String,
    pub compressed: u64,
    pub uncompressed: u64,
}

/// Generates a deterministic tar of at least `size` bytes whose content mixes what image layers
/// hold: machine-code-like binaries (35%), text (30%), already-compressed assets (20%),
/// mostly-zero files (10%) and repetitive data (5%), gzipped at `level`, streamed to `path`.
/// Returns the blob's digest and sizes; memory stays at one file of the tar (at most 3 MiB).
pub fn generate(path: &Path, size: u64, seed: u64, level: u32) -> anyhow::Result<LayerFile> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let blob = Hashing::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::new(level));
    let mut tar = TarWriter {
        out: Hashing::new(gz),
        written: 0,
    };
    // Seed 0 is the sequence `bench ztoc` has always measured.
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ seed.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let vocabulary: Vec<Vec<u8>> = (0..2000)
        .map(|_| {
            let len = 2 + next() % 9;
            (0..len).map(|_| b'a' + (next() % 26) as u8).collect()
        })
        .collect();
    let snippets: Vec<Vec<u8>> = (0..512)
        .map(|_| {
            let len = 2 + next() % 12;
            (0..len).map(|_| (next() % 256) as u8).collect()
        })
        .collect();
    let mut file_no = 0u64;
    while tar.written < size {
        let len = (4096 + next() % (3 << 20)) as usize;
        let mut data = Vec::with_capacity(len + 64);
        match file_no % 20 {
            0..=6 => {
                while data.len() < len {
                    // Skewed snippet choice, like opcode frequencies, with operand bytes.
                    let pick = (next() % 512).min(next() % 512) as usize;
                    data.extend_from_slice(&snippets[pick]);
                    for _ in 0..next() % 4 {
                        data.push((next() % 256) as u8);
                    }
                }
            }
            7..=12 => {
                while data.len() < len {
                    let pick = (next() % 2000).min(next() % 2000) as usize;
                    data.extend_from_slice(&vocabulary[pick]);
                    match next() % 16 {
                        0 => data.extend_from_slice(b".\n"),
                        1 => data.extend_from_slice(format!(" {} ", next() % 100_000).as_bytes()),
                        _ => data.push(b' '),
                    }
                }
            }
            13..=16 => {
                while data.len() < len {
                    data.extend_from_slice(&next().to_le_bytes());
                }
            }
            17 | 18 => {
                data.resize(len, 0);
                for _ in 0..len / 64 {
                    let at = (next() % len as u64) as usize;
                    data[at] = (next() % 256) as u8;
                }
            }
            _ => {
                let pattern: Vec<u8> = (0..256).map(|_| (next() % 256) as u8).collect();
                while data.len() < len {
                    data.extend_from_slice(&pattern);
                }
            }
        }
        data.truncate(len);
        tar.file(
            &format!("usr/lib/{:03}/file-{file_no}.bin", file_no % 97),
            &data,
        )?;
        file_no += 1;
    }
    tar.out.write_all(&[0u8; 1024])?;
    let (gz, diff_id, uncompressed) = tar.out.finish();
    let (mut blob, digest, compressed) = gz.finish()?.finish();
    blob.flush()?;
    Ok(LayerFile {
        digest,
        diff_id,
        compressed,
        uncompressed,
    })
}

struct TarWriter<W> {
    out: W,
    written: u64,
}

impl<W: Write> TarWriter<W> {
    fn file(&mut self, name: &str, data: &[u8]) -> anyhow::Result<()> {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[100..108].copy_from_slice(b"0000644\0");
        header[108..116].copy_from_slice(b"0000000\0");
        header[116..124].copy_from_slice(b"0000000\0");
        header[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        header[136..148].copy_from_slice(b"14513010200\0");
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].fill(b' ');
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(data)?;
        let pad = (512 - data.len() % 512) % 512;
        self.out.write_all(&vec![0u8; pad])?;
        self.written += 512 + data.len() as u64 + pad as u64;
        Ok(())
    }
}
