//! `cargo xtask ztoc build|info|verify|extract`: one layer and its zTOC.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use soci_core::zran::CheckpointBlob;
use soci_core::ztoc::{ALGORITHM_UNCOMPRESSED, TarZinfo, Ztoc};
use soci_core::{BuildOptions, Compression, MemoryBudget, build_reference_ztoc, build_ztoc};

// The Lambda's build tool identifier: a zTOC built here is the one the Lambda would write.
use soci_index_generator::config::DEFAULT_BUILD_TOOL;

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
        /// The memory budget of a process of this many MiB (as the Lambda's memory size):
        /// a layer that needs more is refused as unindexable.
        #[arg(long, default_value_t = 2048)]
        memory_mib: u64,
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
            memory_mib,
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
                budget: MemoryBudget::for_memory_mib(memory_mib),
            };
            build(&layer, &options, allow_unindexable, &output)
        }
        ZtocCommand::Info { ztoc } => info(&ztoc),
        ZtocCommand::Verify { ztoc, layer } => verify(&ztoc, &layer),
        ZtocCommand::Extract {
            ztoc,
            layer,
            path,
            output,
        } => extract(&ztoc, &layer, &path, output.as_deref()),
    }
}

fn build(
    layer: &Path,
    options: &BuildOptions,
    allow_unindexable: bool,
    output: &Path,
) -> anyhow::Result<()> {
    let file = open(layer)?;
    let started = Instant::now();
    let built = if allow_unindexable {
        build_reference_ztoc(file, options).map(|b| b.ztoc)
    } else {
        build_ztoc(file, options)
    }
    .with_context(|| format!("building the zTOC of {}", layer.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    std::fs::write(output, &built.ztoc).with_context(|| format!("writing {}", output.display()))?;
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

fn read_ztoc(ztoc: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(ztoc).with_context(|| format!("reading {}", ztoc.display()))
}

fn info(ztoc: &Path) -> anyhow::Result<()> {
    let bytes = read_ztoc(ztoc)?;
    let info = info_json(&bytes).with_context(|| format!("decoding {}", ztoc.display()))?;
    // Not println!: a reader that stops early (`| head`) must end us quietly, not panic.
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&info)?
    )?;
    Ok(())
}

fn verify(ztoc: &Path, layer: &Path) -> anyhow::Result<()> {
    let bytes = read_ztoc(ztoc)?;
    let layer_file = open_raw(layer)?;
    let report = soci_core::verify(&bytes, &layer_file)
        .with_context(|| format!("verifying {} against {}", ztoc.display(), layer.display()))?;
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

fn extract(ztoc: &Path, layer: &Path, path: &str, output: Option<&Path>) -> anyhow::Result<()> {
    let bytes = read_ztoc(ztoc)?;
    let layer_file = open_raw(layer)?;
    let data = soci_core::extract_file(&bytes, &layer_file, path)
        .with_context(|| format!("extracting {path:?}"))?;
    match output {
        Some(output) => std::fs::write(output, &data)
            .with_context(|| format!("writing {}", output.display()))?,
        None => std::io::stdout().write_all(&data)?,
    }
    Ok(())
}

fn open_raw(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))
}

pub(crate) fn open(path: &Path) -> anyhow::Result<BufReader<std::fs::File>> {
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
            let (Ok(span @ 1..), Ok(size)) =
                (u64::try_from(zinfo.span_size), u64::try_from(zinfo.size))
            else {
                bail!(
                    "TarZinfo span size {} / size {} are invalid",
                    zinfo.span_size,
                    zinfo.size
                );
            };
            // The span count comes from the zTOC: list no more spans than it has digests for.
            let count = size.div_ceil(span);
            if count != ztoc.span_digests.len() as u64 {
                bail!(
                    "TarZinfo (size {size}, span size {span}) gives {count} spans, the zTOC has {} \
                     span digests",
                    ztoc.span_digests.len()
                );
            }
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

#[cfg(test)]
mod tests {
    use soci_core::ztoc::{ALGORITHM_UNCOMPRESSED, FileMetadata, TarZinfo, Ztoc};

    use super::info_json;

    fn uncompressed(span_size: i64, size: i64, digests: usize) -> Ztoc {
        Ztoc {
            compression_algorithm: ALGORITHM_UNCOMPRESSED,
            checkpoints: TarZinfo {
                version: 2,
                span_size,
                size,
            }
            .to_bytes(),
            span_digests: vec![b"sha256:00".to_vec(); digests],
            max_span_id: digests as i32 - 1,
            ..Ztoc::default()
        }
    }

    #[test]
    fn info_lists_spans_and_files_of_a_sound_ztoc() {
        let mut ztoc = uncompressed(1024, 3000, 3);
        ztoc.toc.push(FileMetadata {
            name: b"a".to_vec(),
            uncompressed_offset: 1536,
            uncompressed_size: 1000,
            ..FileMetadata::default()
        });
        let info = info_json(&ztoc.to_bytes().unwrap()).unwrap();
        assert_eq!(info["spans"].as_array().unwrap().len(), 3);
        assert_eq!(info["files"][0]["spans"], serde_json::json!([1, 2]));
    }

    #[test]
    fn a_tar_zinfo_claiming_more_spans_than_digests_is_an_error_not_an_allocation() {
        for (span, size) in [(1, i64::MAX), (0, 10), (10, -1)] {
            let err = info_json(&uncompressed(span, size, 1).to_bytes().unwrap()).unwrap_err();
            assert!(err.to_string().contains("TarZinfo"), "{err}");
        }
    }
}
