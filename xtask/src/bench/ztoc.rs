//! `cargo xtask bench ztoc`: a zTOC build against a bare inflate of the same bytes with the same
//! inflater (zlib-rs) and against Python's system-zlib inflate, measured in the same run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use super::child::{self, ChildRun};
use crate::soci::ztoc::open;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Uncompressed size of the big layer in MB (a quarter-size layer is measured too).
    #[arg(long, default_value_t = 700)]
    size_mb: u64,
    /// Where generated layers are kept between runs (rebuilt when missing).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Generates a deterministic tar whose content mixes what image layers hold: machine-code-like
/// binaries (35%), text (30%), already-compressed assets (20%), mostly-zero files (10%) and
/// repetitive data (5%), gzipped at level 6.
fn generate_layer(path: &Path, size: u64) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let gz =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::new(6));
    let mut tar = TarWriter {
        out: gz,
        written: 0,
    };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
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
    tar.out.finish()?.flush()?;
    Ok(())
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

/// One `cargo xtask ztoc build` of `layer`, as a user runs it, measured from outside.
fn measure_build(layer: &Path, ztoc: &Path) -> anyhow::Result<ChildRun> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    child::run_measured(
        Command::new(exe)
            .args(["ztoc", "build", "--compression", "gzip", "-o"])
            .arg(ztoc)
            .arg(layer),
    )
    .context("the measured zTOC build")
}

/// Runs `f` once; returns the seconds it took and its value.
fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let started = Instant::now();
    let value = f()?;
    Ok((started.elapsed().as_secs_f64(), value))
}

/// Measurement rounds per layer, each one bare inflate and one zTOC build.
const ROUNDS: usize = 5;

pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let dir = args
        .dir
        .unwrap_or_else(|| crate::project_root().join("target/bench"));
    std::fs::create_dir_all(&dir)?;
    for (label, size_mb) in [("full", args.size_mb), ("quarter", args.size_mb / 4)] {
        let layer = ensure_layer(&dir, size_mb)?;
        bench_layer(label, &layer)?;
    }
    Ok(())
}

/// The generated layer of `size_mb` in `dir`, generated on first use.
fn ensure_layer(dir: &Path, size_mb: u64) -> anyhow::Result<PathBuf> {
    let layer = dir.join(format!("layer-mix-{size_mb}mb.tar.gz"));
    if !layer.exists() {
        eprintln!(
            "generating {} ({size_mb} MB uncompressed, gzip -6)...",
            layer.display()
        );
        let partial = layer.with_extension("partial");
        generate_layer(&partial, size_mb * 1_000_000)?;
        std::fs::rename(&partial, &layer)?;
    }
    Ok(layer)
}

/// Seconds Python's `zlib` (the system zlib) takes to inflate `layer`, members included.
fn python_inflate_seconds(layer: &Path) -> Option<f64> {
    let python = Command::new("python3")
        .arg("-c")
        .arg("import sys,time,zlib\nf=open(sys.argv[1],'rb');d=zlib.decompressobj(31);t=time.perf_counter();n=0\nwhile True:\n  b=f.read(1<<20)\n  if not b: break\n  while b:\n    n+=len(d.decompress(b)); b=d.unused_data\n    if b: d=zlib.decompressobj(31)\nprint(time.perf_counter()-t, n)")
        .arg(layer)
        .output();
    python.ok().filter(|o| o.status.success()).and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .and_then(|s| s.parse::<f64>().ok())
    })
}

fn bench_layer(label: &str, layer: &Path) -> anyhow::Result<()> {
    let compressed = std::fs::metadata(layer)?.len();
    let ztoc_path = layer.with_extension("ztoc");
    // Alternating runs, best of each: a burst of load elsewhere on the machine hits both
    // sides alike instead of whichever happened to run during it.
    let mut inflate_runs = Vec::new();
    let mut build_runs = Vec::new();
    for _ in 0..ROUNDS {
        inflate_runs.push(timed(|| Ok(soci_core::zran::bare_inflate(open(layer)?)?))?);
        build_runs.push(measure_build(layer, &ztoc_path)?);
    }
    let (inflate_s, uncompressed) = inflate_runs
        .into_iter()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .context("no inflate runs")?;
    let build_s = build_runs
        .iter()
        .map(|r| r.seconds)
        .min_by(f64::total_cmp)
        .context("no build runs")?;
    let python_s = python_inflate_seconds(layer);
    let ztoc_bytes = std::fs::metadata(&ztoc_path)?.len();
    let peak_kib = build_runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
    let mb = uncompressed as f64 / 1e6;
    println!(
        "== {label} layer: {mb:.0} MB uncompressed, {:.0} MB gzip -6, zTOC {ztoc_bytes} bytes",
        compressed as f64 / 1e6
    );
    println!(
        "  bare inflate (zlib-rs):    {inflate_s:.3} s  {:.0} MB/s",
        mb / inflate_s
    );
    println!(
        "  zTOC build:                {build_s:.3} s  {:.0} MB/s",
        mb / build_s
    );
    println!(
        "  build / bare inflate:      {:.3}  (target <= 1.10)",
        build_s / inflate_s
    );
    match python_s {
        Some(p) => println!(
            "  python zlib inflate:       {p:.3} s  {:.0} MB/s  (build is {:.2}x faster; target > 1)",
            mb / p,
            p / build_s
        ),
        None => println!("  python zlib inflate:       not measured (python3 failed)"),
    }
    println!(
        "  peak RSS of the build:     {:.1} MiB  (target <= 32 MiB + zTOC = {:.1} MiB)",
        peak_kib as f64 / 1024.0,
        32.0 + ztoc_bytes as f64 / 1048576.0
    );
    println!(
        "  (build: a child `cargo xtask ztoc build`, timed from spawn to exit; RSS from wait4)"
    );
    Ok(())
}
