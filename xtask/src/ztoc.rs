//! `cargo xtask ztoc build|info|verify|extract` and `cargo xtask bench ztoc`.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use soci_core::zran::CheckpointBlob;
use soci_core::ztoc::{ALGORITHM_UNCOMPRESSED, TarZinfo, Ztoc};
use soci_core::{BuildOptions, Compression, build_reference_ztoc, build_ztoc};

/// Our own build tool identifier (written into every zTOC we build).
pub const DEFAULT_BUILD_TOOL: &str = concat!("soci-lambda v", env!("CARGO_PKG_VERSION"));

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ZtocCommand,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompressionArg {
    Gzip,
    Uncompressed,
}

#[derive(Subcommand)]
enum ZtocCommand {
    /// Build the zTOC of a layer blob (one streaming pass).
    Build {
        layer: PathBuf,
        /// Span size in bytes.
        #[arg(long, default_value_t = soci_core::DEFAULT_SPAN_SIZE)]
        span: u64,
        #[arg(long, default_value = DEFAULT_BUILD_TOOL)]
        build_tool: String,
        /// Default: gzip if the file starts with the gzip magic, else uncompressed.
        #[arg(long, value_enum)]
        compression: Option<CompressionArg>,
        /// Expected `sha256:<hex>` of the layer.
        #[arg(long)]
        digest: Option<String>,
        /// Write the reference's bytes even for a layer no consumer can read.
        #[arg(long)]
        allow_unindexable: bool,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print a zTOC as JSON: version, build tool, sizes, spans, files.
    Info { ztoc: PathBuf },
    /// Run the consumer's checks of a zTOC against its layer; exit 1 listing the problems.
    Verify { ztoc: PathBuf, layer: PathBuf },
    /// Extract one regular file through the zTOC (to stdout, or -o FILE).
    Extract {
        ztoc: PathBuf,
        layer: PathBuf,
        path: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        ZtocCommand::Build {
            layer,
            span,
            build_tool,
            compression,
            digest,
            allow_unindexable,
            output,
        } => {
            let compression = match compression {
                Some(CompressionArg::Gzip) => Compression::Gzip,
                Some(CompressionArg::Uncompressed) => Compression::Uncompressed,
                None => sniff_compression(&layer)?,
            };
            let options = BuildOptions {
                span_size: span,
                build_tool,
                compression,
                expected_digest: digest,
            };
            let file = open(&layer)?;
            let started = Instant::now();
            let built = if allow_unindexable {
                build_reference_ztoc(file, &options).map(|b| b.ztoc)
            } else {
                build_ztoc(file, &options)
            }
            .with_context(|| format!("building the zTOC of {}", layer.display()))?;
            let seconds = started.elapsed().as_secs_f64();
            std::fs::write(&output, &built.ztoc)
                .with_context(|| format!("writing {}", output.display()))?;
            eprintln!(
                "{}: {} entries, {} spans, zTOC {} bytes, layer {} ({} bytes, {} uncompressed) in {seconds:.2} s ({:.0} MB/s uncompressed)",
                output.display(),
                built.entries,
                built.spans,
                built.ztoc.len(),
                built.layer_digest,
                built.compressed_size,
                built.uncompressed_size,
                built.uncompressed_size as f64 / seconds / 1e6
            );
            Ok(())
        }
        ZtocCommand::Info { ztoc } => {
            let bytes =
                std::fs::read(&ztoc).with_context(|| format!("reading {}", ztoc.display()))?;
            let info = info_json(&bytes).with_context(|| format!("decoding {}", ztoc.display()))?;
            // Not println!: a reader that stops early (`| head`) must end us quietly, not panic.
            writeln!(
                std::io::stdout(),
                "{}",
                serde_json::to_string_pretty(&info)?
            )?;
            Ok(())
        }
        ZtocCommand::Verify { ztoc, layer } => {
            let bytes =
                std::fs::read(&ztoc).with_context(|| format!("reading {}", ztoc.display()))?;
            let layer_file = open_raw(&layer)?;
            let report = soci_core::verify(&bytes, &layer_file).with_context(|| {
                format!("verifying {} against {}", ztoc.display(), layer.display())
            })?;
            if report.is_ok() {
                println!(
                    "ok: {} spans and {} entries pass the consumer's checks",
                    report.spans_checked, report.entries_checked
                );
                Ok(())
            } else {
                for problem in &report.problems {
                    println!("problem: {problem}");
                }
                bail!(
                    "{} problem(s): a consumer would reject this zTOC",
                    report.problems.len()
                )
            }
        }
        ZtocCommand::Extract {
            ztoc,
            layer,
            path,
            output,
        } => {
            let bytes =
                std::fs::read(&ztoc).with_context(|| format!("reading {}", ztoc.display()))?;
            let layer_file = open_raw(&layer)?;
            let data = soci_core::extract_file(&bytes, &layer_file, &path)
                .with_context(|| format!("extracting {path:?}"))?;
            match output {
                Some(output) => std::fs::write(&output, &data)
                    .with_context(|| format!("writing {}", output.display()))?,
                None => std::io::stdout().write_all(&data)?,
            }
            Ok(())
        }
    }
}

fn open_raw(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))
}

fn open(path: &Path) -> anyhow::Result<BufReader<std::fs::File>> {
    Ok(BufReader::with_capacity(1 << 20, open_raw(path)?))
}

fn sniff_compression(path: &Path) -> anyhow::Result<Compression> {
    let mut magic = [0u8; 2];
    let n = open_raw(path)?.read(&mut magic)?;
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Compression::Gzip
    } else {
        Compression::Uncompressed
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn info_json(bytes: &[u8]) -> anyhow::Result<serde_json::Value> {
    let ztoc = Ztoc::from_bytes(bytes)?;
    let layer_size = ztoc.compressed_archive_size.max(0) as u64;
    let uncompressed = ztoc.uncompressed_archive_size;
    let (compression, span_size, starts, spans): (&str, i64, Vec<u64>, Vec<serde_json::Value>) =
        if ztoc.compression_algorithm == ALGORITHM_UNCOMPRESSED {
            let zinfo = TarZinfo::from_bytes(&ztoc.checkpoints)?;
            let span = zinfo.span_size.max(1) as u64;
            let count = (zinfo.size.max(0) as u64).div_ceil(span);
            let starts: Vec<u64> = (0..count).map(|i| i * span).collect();
            let spans = starts
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    json!({"index": i, "compressed_start": s, "uncompressed_start": s,
                    "digest": ztoc.span_digests.get(i).map(|d| lossy(d))})
                })
                .collect();
            ("uncompressed", zinfo.span_size, starts, spans)
        } else {
            let blob = CheckpointBlob::parse(&ztoc.checkpoints)?;
            let starts: Vec<u64> = blob.checkpoints.iter().map(|c| c.output).collect();
            let spans = blob
                .checkpoints
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let end = blob.checkpoints.get(i + 1).map_or(layer_size, |n| n.input);
                    json!({"index": i, "compressed_start": c.span_start(), "compressed_end": end,
                        "uncompressed_start": c.output, "bits": c.bits,
                        "digest": ztoc.span_digests.get(i).map(|d| lossy(d))})
                })
                .collect();
            ("gzip", blob.span_size, starts, spans)
        };
    let span_of = |offset: u64| starts.iter().rposition(|&s| s <= offset).unwrap_or(0);
    let files: Vec<_> = ztoc
        .toc
        .iter()
        .map(|e| {
            let start = e.uncompressed_offset.max(0) as u64;
            let end = start + (e.uncompressed_size.max(1) as u64) - 1;
            json!({
                "name": lossy(&e.name), "type": lossy(&e.file_type),
                "offset": e.uncompressed_offset, "size": e.uncompressed_size,
                "mode": format!("{:o}", e.mode), "uid": e.uid, "gid": e.gid,
                "mod_time": lossy(&e.mod_time), "linkname": lossy(&e.linkname),
                "spans": [span_of(start), span_of(end)],
                "xattrs": e.xattrs.iter().map(|(k, _)| lossy(k)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "version": lossy(&ztoc.version),
        "build_tool_identifier": lossy(&ztoc.build_tool_identifier),
        "compression": compression,
        "compressed_archive_size": ztoc.compressed_archive_size,
        "uncompressed_archive_size": uncompressed,
        "span_size": span_size,
        "max_span_id": ztoc.max_span_id,
        "spans": spans,
        "files": files,
    }))
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Uncompressed size of the big layer in MB (a quarter-size layer is measured too).
    #[arg(long, default_value_t = 700)]
    size_mb: u64,
    /// Where generated layers are kept between runs (rebuilt when missing).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Internal: measure one build in this process and print JSON.
    #[arg(long, hide = true)]
    child: Option<PathBuf>,
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

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Runs in a child process so peak RSS covers exactly one zTOC build.
fn bench_child(layer: &Path) -> anyhow::Result<()> {
    let options = BuildOptions {
        span_size: soci_core::DEFAULT_SPAN_SIZE,
        build_tool: DEFAULT_BUILD_TOOL.into(),
        compression: Compression::Gzip,
        expected_digest: None,
    };
    let started = Instant::now();
    let built = build_ztoc(open(layer)?, &options)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"seconds": seconds, "ztoc_bytes": built.ztoc.len(), "uncompressed": built.uncompressed_size,
            "compressed": built.compressed_size, "peak_rss_kib": peak_rss_kib(), "spans": built.spans})
    );
    Ok(())
}

fn measure_child(layer: &Path) -> anyhow::Result<serde_json::Value> {
    let exe = std::env::current_exe()?;
    let output = std::process::Command::new(exe)
        .args(["bench", "ztoc", "--child"])
        .arg(layer)
        .output()
        .context("running the measuring child")?;
    if !output.status.success() {
        bail!(
            "zTOC build child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
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
    if let Some(layer) = args.child {
        return bench_child(&layer);
    }
    let dir = args
        .dir
        .unwrap_or_else(|| crate::project_root().join("target/bench"));
    std::fs::create_dir_all(&dir)?;
    let mut results = Vec::new();
    for (label, size_mb) in [("full", args.size_mb), ("quarter", args.size_mb / 4)] {
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
        let compressed = std::fs::metadata(&layer)?.len();
        // Alternating runs, best of each: a burst of load elsewhere on the machine hits both
        // sides alike instead of whichever happened to run during it.
        let mut inflate_runs = Vec::new();
        let mut build_runs = Vec::new();
        for _ in 0..ROUNDS {
            inflate_runs.push(timed(|| Ok(soci_core::zran::bare_inflate(open(&layer)?)?))?);
            build_runs.push(measure_child(&layer)?);
        }
        let (inflate_s, uncompressed) = inflate_runs
            .into_iter()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .context("no inflate runs")?;
        let best = build_runs
            .iter()
            .min_by(|a, b| {
                a["seconds"]
                    .as_f64()
                    .partial_cmp(&b["seconds"].as_f64())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .cloned()
            .context("no build runs")?;
        let build_s = best["seconds"].as_f64().unwrap_or(f64::NAN);
        let python = std::process::Command::new("python3")
            .arg("-c")
            .arg("import sys,time,zlib\nf=open(sys.argv[1],'rb');d=zlib.decompressobj(31);t=time.perf_counter();n=0\nwhile True:\n  b=f.read(1<<20)\n  if not b: break\n  while b:\n    n+=len(d.decompress(b)); b=d.unused_data\n    if b: d=zlib.decompressobj(31)\nprint(time.perf_counter()-t, n)")
            .arg(&layer)
            .output();
        let python_s = python.ok().filter(|o| o.status.success()).and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .and_then(|s| s.parse::<f64>().ok())
        });
        let ztoc_bytes = best["ztoc_bytes"].as_u64().unwrap_or(0);
        let peak_kib = build_runs
            .iter()
            .filter_map(|r| r["peak_rss_kib"].as_u64())
            .max()
            .unwrap_or(0);
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
        results.push((
            label,
            peak_kib,
            ztoc_bytes,
            build_s / inflate_s,
            python_s.map(|p| p / build_s),
        ));
    }
    Ok(())
}
