//! `cargo xtask bench ztoc`: a zTOC build against a bare inflate of the same bytes with the same
//! inflater (zlib-rs) and against Python's system-zlib inflate, measured in the same run; and
//! the library build on one core and on two (speculative parallel inflate) side by side.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use soci_core::zran::{Inflation, ParallelTuning};
use soci_core::{BuildOptions, Compression, MemoryBudget, build_reference_ztoc_with};

use super::child::{self, ChildRun};
use super::layer;
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

/// Measurement rounds per layer, each one bare inflate and one zTOC build of each kind.
const ROUNDS: usize = 5;

/// Set in a child `bench ztoc` to make it run one library build instead of the bench:
/// `sequential:<layer>` or `parallel:<layer>`.
const ONE_BUILD_ENV: &str = "SOCI_BENCH_ZTOC_ONE_BUILD";

/// The child side of [`build_in_child`]: one `build_reference_ztoc_with` of the layer, timed
/// from inside (no process start-up), printed as `<seconds> <zTOC bytes>`.
fn one_build(spec: &str) -> anyhow::Result<()> {
    let (kind, layer) = spec.split_once(':').context("bad one-build spec")?;
    let inflation = match kind {
        "parallel" => Inflation::Parallel(ParallelTuning::DEFAULT),
        _ => Inflation::Sequential,
    };
    let options = BuildOptions {
        span_size: soci_core::DEFAULT_SPAN_SIZE,
        build_tool: "bench".into(),
        compression: Compression::Gzip,
        expected_digest: None,
        budget: MemoryBudget::default(),
    };
    let (seconds, built) = timed(|| {
        Ok(build_reference_ztoc_with(
            open(Path::new(layer))?,
            &options,
            inflation,
        )?)
    })?;
    println!("{seconds} {}", built.ztoc.ztoc.len());
    Ok(())
}

/// One library build of `layer` (default span and budget) inflating on one core or two, in a
/// child process: its time from inside the child, its zTOC size, and its peak RSS. A child,
/// because builds in this process would grow the RSS every later child inherits at spawn.
fn build_in_child(layer: &Path, kind: &str) -> anyhow::Result<LibraryBuild> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let run = child::run_measured(
        Command::new(exe)
            .args(["bench", "ztoc"])
            .env(ONE_BUILD_ENV, format!("{kind}:{}", layer.display())),
    )
    .context("the measured library build")?;
    let mut fields = run.stdout.split_whitespace();
    let seconds = fields
        .next()
        .and_then(|s| s.parse().ok())
        .context("build time")?;
    let bytes = fields
        .next()
        .and_then(|s| s.parse().ok())
        .context("zTOC size")?;
    Ok(LibraryBuild {
        seconds,
        ztoc_bytes: bytes,
        peak_rss_kib: run.peak_rss_kib,
        cpu_seconds: run.cpu_seconds,
    })
}

/// What [`build_in_child`] measured.
struct LibraryBuild {
    seconds: f64,
    ztoc_bytes: u64,
    peak_rss_kib: u64,
    /// CPU time of the whole child (all threads, start-up included).
    cpu_seconds: f64,
}

/// The best time of `runs`, their highest RSS (MiB) and lowest CPU time.
fn summary(runs: &[LibraryBuild]) -> (f64, f64, f64) {
    let best = runs.iter().map(|r| r.seconds).fold(f64::INFINITY, f64::min);
    let rss = runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
    let cpu = runs
        .iter()
        .map(|r| r.cpu_seconds)
        .fold(f64::INFINITY, f64::min);
    (best, rss, cpu)
}

pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if let Ok(spec) = std::env::var(ONE_BUILD_ENV) {
        return one_build(&spec);
    }
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
        layer::generate(&partial, size_mb * 1_000_000, 0, 6)?;
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
    let (mut one_core, mut two_cores) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        inflate_runs.push(timed(|| Ok(soci_core::zran::bare_inflate(open(layer)?)?))?);
        build_runs.push(measure_build(layer, &ztoc_path)?);
        one_core.push(build_in_child(layer, "sequential")?);
        two_cores.push(build_in_child(layer, "parallel")?);
    }
    let first = one_core.first().map(|r| r.ztoc_bytes);
    let same = one_core
        .iter()
        .chain(&two_cores)
        .all(|r| Some(r.ztoc_bytes) == first);
    let (one_core, one_core_rss, one_core_cpu) = summary(&one_core);
    let (two_cores, two_cores_rss, two_cores_cpu) = summary(&two_cores);
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
        "  library build, 1 core:     {one_core:.3} s  {:.0} MB/s  (/ bare inflate {:.3}; \
         peak RSS {one_core_rss:.1} MiB, CPU {one_core_cpu:.2} s)",
        mb / one_core,
        one_core / inflate_s
    );
    println!(
        "  library build, 2 cores:    {two_cores:.3} s  {:.0} MB/s  (/ bare inflate {:.3}; \
         peak RSS {two_cores_rss:.1} MiB, CPU {two_cores_cpu:.2} s; zTOC sizes {})",
        mb / two_cores,
        two_cores / inflate_s,
        if same { "identical" } else { "DIFFER" }
    );
    if let Some(p) = python_s {
        println!(
            "  build / python inflate:    1 core {:.3}, 2 cores {:.3}  (target for 2 cores <= 0.45)",
            one_core / p,
            two_cores / p
        );
    }
    println!(
        "  (build: a child `cargo xtask ztoc build`, timed from spawn to exit; RSS from wait4)"
    );
    Ok(())
}
