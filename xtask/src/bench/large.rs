//! `cargo xtask bench large`: "no size limit", measured. A generated image of 20 GB uncompressed
//! (one 12 GB layer among three) in a local `docker-registry`, indexed by `cargo xtask index` (the
//! Lambda's pipeline) inside a memory limit the kernel enforces (a memory cgroup, 1024 MiB by
//! default, the Lambda's memory size). Reports wall time, CPU time, peak RSS and bytes the
//! indexer wrote to disk (which must be 0: layers are streamed, never stored).
//!
//! The layers are generated once into `target/bench/large` (about 9 GB of gzip) and kept for
//! later runs; the registry's copy lives in a temp dir removed at the end.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use serde_json::json;
use soci_core::oci::{
    MEDIA_TYPE_OCI_IMAGE_CONFIG, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_MANIFEST,
};

use super::child::{self, ChildRun};
use super::layer::{self, LayerFile};

#[derive(clap::Args)]
pub struct LargeArgs {
    /// Total uncompressed size of the image, in GB (10^9 bytes).
    #[arg(long, default_value_t = 20)]
    total_gb: u64,
    /// Uncompressed size of the largest layer, in GB; the rest is split over two layers.
    #[arg(long, default_value_t = 12)]
    big_layer_gb: u64,
    /// The memory limit the indexer runs under, in MiB.
    #[arg(long, default_value_t = 1024)]
    memory_mib: u64,
    /// Where the generated layers are kept between runs.
    #[arg(long)]
    dir: Option<PathBuf>,
}

const REPO: &str = "bench/large";

pub fn bench(args: LargeArgs) -> anyhow::Result<()> {
    ensure!(
        args.big_layer_gb < args.total_gb,
        "--big-layer-gb must be below --total-gb"
    );
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; figures only mean something with `cargo run --release -p xtask -- bench large`"
        );
    }
    let dir = args
        .dir
        .unwrap_or_else(|| crate::project_root().join("target/bench/large"));
    std::fs::create_dir_all(&dir)?;
    let rest = args.total_gb - args.big_layer_gb;
    let sizes = [args.big_layer_gb, rest / 2, rest - rest / 2].map(|gb| gb * 1_000_000_000);
    let layers = ensure_layers(&dir, &sizes)?;
    let layer_files: Vec<LayerFile> = layers.iter().map(|(_, l)| l.clone()).collect();

    let registry = test_support::Registry::start().context("starting docker-registry")?;
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(push_image(&registry.addr, &layers))?;
    eprintln!(
        "image {REPO}:v1 pushed in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let limit = MemoryLimit::create(args.memory_mib)?;
    let run = index_in(&limit, &registry.addr)?;
    print_report(&layer_files, &run, &limit, args.memory_mib);
    Ok(())
}

/// The layers of `sizes`, generated in parallel (one thread per layer) where not already on disk.
fn ensure_layers(dir: &Path, sizes: &[u64]) -> anyhow::Result<Vec<(PathBuf, LayerFile)>> {
    let started = Instant::now();
    let layers = std::thread::scope(|scope| {
        let handles: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| scope.spawn(move || ensure_layer(dir, i as u64 + 1, size)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a layer generator panicked"))?
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    eprintln!(
        "layers ready in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        layers
            .iter()
            .map(|(_, l)| format!(
                "{} GB -> {:.1} GB gzip",
                l.uncompressed / 1_000_000_000,
                l.compressed as f64 / 1e9
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(layers)
}

fn ensure_layer(dir: &Path, seed: u64, size: u64) -> anyhow::Result<(PathBuf, LayerFile)> {
    let blob = dir.join(format!("layer-{seed}-{size}.tar.gz"));
    let meta = blob.with_extension("json");
    if let Ok(bytes) = std::fs::read(&meta)
        && let Ok(layer) = serde_json::from_slice::<LayerFile>(&bytes)
        && std::fs::metadata(&blob).is_ok_and(|m| m.len() == layer.compressed)
    {
        return Ok((blob, layer));
    }
    eprintln!(
        "generating {} ({size} bytes uncompressed, gzip -1)...",
        blob.display()
    );
    let partial = blob.with_extension("partial");
    let layer = layer::generate(&partial, size, seed, 1)?;
    std::fs::rename(&partial, &blob)?;
    std::fs::write(&meta, serde_json::to_vec(&layer)?)?;
    Ok((blob, layer))
}

/// Pushes the layers (streamed from disk), a config and the manifest tagged `v1`.
async fn push_image(addr: &str, layers: &[(PathBuf, LayerFile)]) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    for (path, layer) in layers {
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        let body =
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
        upload(&http, &base, &layer.digest, body, layer.compressed).await?;
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(_, l)| &l.diff_id).collect::<Vec<_>>()},
    }))?;
    let config_digest = test_support::image::digest(&config);
    let config_size = config.len() as u64;
    upload(&http, &base, &config_digest, config.into(), config_size).await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_TYPE_OCI_IMAGE_CONFIG, "digest": config_digest, "size": config_size},
        "layers": layers.iter().map(|(_, l)| json!({
            "mediaType": MEDIA_TYPE_OCI_LAYER_GZIP, "digest": l.digest, "size": l.compressed,
        })).collect::<Vec<_>>(),
    });
    let resp = http
        .put(format!("{base}/v2/{REPO}/manifests/v1"))
        .header("Content-Type", MEDIA_TYPE_OCI_MANIFEST)
        .body(serde_json::to_vec(&manifest)?)
        .send()
        .await?;
    ensure!(
        resp.status().is_success(),
        "manifest PUT: {}",
        resp.status()
    );
    Ok(())
}

/// A monolithic upload (`POST` then `PUT ?digest=`) with a streamed body.
async fn upload(
    http: &reqwest::Client,
    base: &str,
    digest: &str,
    body: reqwest::Body,
    size: u64,
) -> anyhow::Result<()> {
    let started = http
        .post(format!("{base}/v2/{REPO}/blobs/uploads/"))
        .header("Content-Length", "0")
        .send()
        .await?;
    ensure!(
        started.status().is_success(),
        "upload start: {}",
        started.status()
    );
    let location = started
        .headers()
        .get("Location")
        .and_then(|v| v.to_str().ok())
        .context("upload answer without Location")?;
    let mut url = reqwest::Url::parse(base)?.join(location)?;
    url.query_pairs_mut().append_pair("digest", digest);
    let resp = http
        .put(url)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", size.to_string())
        .body(body)
        .send()
        .await?;
    ensure!(
        resp.status().is_success(),
        "upload of {digest}: {}",
        resp.status()
    );
    Ok(())
}

/// A memory cgroup (v2, or v1's memory controller) the indexer runs in; removed on drop.
struct MemoryLimit {
    dir: PathBuf,
    /// The file holding the group's peak usage (RSS and page cache), where the kernel has one.
    peak_file: &'static str,
}

impl MemoryLimit {
    fn create(mib: u64) -> anyhow::Result<Self> {
        let name = format!("soci-bench-large-{}", std::process::id());
        let bytes = (mib << 20).to_string();
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let (dir, files, peak_file): (PathBuf, &[&str], _) = if v2 {
            (
                Path::new("/sys/fs/cgroup").join(&name),
                &["memory.max", "memory.swap.max"],
                "memory.peak",
            )
        } else {
            (
                Path::new("/sys/fs/cgroup/memory").join(&name),
                &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
                "memory.max_usage_in_bytes",
            )
        };
        std::fs::create_dir(&dir).with_context(|| {
            format!(
                "creating the memory cgroup {} (the limit must be the kernel's: run as root)",
                dir.display()
            )
        })?;
        let limit = Self { dir, peak_file };
        for (i, file) in files.iter().enumerate() {
            // v2's swap limit is separate (0 = none); v1's memsw is memory + swap, so the same.
            let value = if v2 && i == 1 {
                "0".to_string()
            } else {
                bytes.clone()
            };
            let path = limit.dir.join(file);
            match std::fs::write(&path, &value) {
                Ok(()) => {}
                // Without swap accounting there is no swap limit to set, and no swap to escape to.
                Err(_) if i == 1 => {}
                Err(e) => bail!("setting {}: {e}", path.display()),
            }
        }
        Ok(limit)
    }

    fn peak_bytes(&self) -> Option<u64> {
        std::fs::read_to_string(self.dir.join(self.peak_file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for MemoryLimit {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `cargo xtask index REF --plain-http` joined to the cgroup before it execs, measured.
fn index_in(limit: &MemoryLimit, addr: &str) -> anyhow::Result<ChildRun> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let procs = limit.dir.join("cgroup.procs");
    let started = Instant::now();
    let run = child::run_measured(
        Command::new("sh")
            .arg("-c")
            .arg(r#"echo $$ > "$0" && exec "$@""#)
            .arg(&procs)
            .arg(exe)
            .args(["index", &format!("{addr}/{REPO}:v1"), "--plain-http"]),
    )
    .context("indexing the large image inside the memory limit")?;
    eprintln!("indexed in {:.0} s", started.elapsed().as_secs_f64());
    ensure!(
        run.stdout.contains("tagged v1-soci"),
        "the image was not indexed:\n{}",
        run.stdout
    );
    Ok(run)
}

fn print_report(layers: &[LayerFile], run: &ChildRun, limit: &MemoryLimit, memory_mib: u64) {
    let uncompressed: u64 = layers.iter().map(|l| l.uncompressed).sum();
    let compressed: u64 = layers.iter().map(|l| l.compressed).sum();
    let largest = layers.iter().map(|l| l.uncompressed).max().unwrap_or(0);
    print!("{}", run.stdout);
    println!(
        "== image: {} layers, {:.1} GB uncompressed ({:.1} GB largest layer), {:.1} GB gzip",
        layers.len(),
        uncompressed as f64 / 1e9,
        largest as f64 / 1e9,
        compressed as f64 / 1e9
    );
    println!(
        "  index wall time:           {:.1} s  ({:.0} MB/s uncompressed)",
        run.seconds,
        uncompressed as f64 / 1e6 / run.seconds
    );
    println!("  index CPU time:            {:.1} s", run.cpu_seconds);
    println!(
        "  peak RSS:                  {:.1} MiB  (limit {memory_mib} MiB, kernel-enforced by a memory cgroup)",
        run.peak_rss_kib as f64 / 1024.0
    );
    if let Some(peak) = limit.peak_bytes() {
        println!(
            "  cgroup peak (RSS + cache): {:.1} MiB",
            peak as f64 / 1048576.0
        );
    }
    println!(
        "  bytes written to disk:     {}  (the kernel's write_bytes: rusage blocks out x 512)",
        run.written_bytes
    );
}
