//! `cargo xtask bench cache`: a backfill of many images that share a large base layer, indexed
//! in-process by the generator's own `Indexer` once without the zTOC cache and once with a fresh
//! one, in the same run: wall time, bytes the registry sent (counted by a proxy in front of it,
//! so cache reads count too) and Lambda GB-seconds (the configured memory x the invocations'
//! time, as Lambda bills each image's invocation).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use soci_index_generator::config::{Config, ParallelFetch, RegistryTarget};
use soci_index_generator::pipeline::{CacheUse, IndexingOutcome};
use soci_index_generator::{ImageRef, Indexer};
use test_support::faults::FaultProxy;
use test_support::image;

use super::index::client_of;
use super::layer;

#[derive(clap::Args)]
pub struct CacheArgs {
    /// Images sharing the base layer (each with one layer of its own).
    #[arg(long, default_value_t = 20)]
    images: usize,
    /// Uncompressed size of the shared base layer, in MiB.
    #[arg(long, default_value_t = 96)]
    base_mib: u64,
    /// Uncompressed size of each image's own layer, in MiB.
    #[arg(long, default_value_t = 8)]
    own_mib: u64,
    /// The function's memory (MB): GB-seconds are this x the invocations' seconds, and the
    /// generator's memory-derived settings follow it as in Lambda.
    #[arg(long, default_value_t = 1024)]
    memory_mb: u64,
}

const CACHE_REPO: &str = "bench/ztoc-cache";

/// One backfill of every image.
struct Row {
    label: &'static str,
    seconds: f64,
    /// Sum of the per-image invocation times (what Lambda bills).
    invocation_seconds: f64,
    bytes: u64,
    hits: usize,
    misses: usize,
    /// zTOC digest of the base layer in every image (must be one digest).
    base_ztocs: Vec<String>,
}

/// A generated gzip layer (gzip level 6, as `docker build` writes), read back into memory.
fn generated(dir: &Path, name: &str, mib: u64, seed: u64) -> anyhow::Result<image::Layer> {
    let path = dir.join(name);
    let file = layer::generate(&path, mib << 20, seed, 6)?;
    let gzip = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(image::Layer {
        gzip,
        digest: file.digest,
        diff_id: file.diff_id,
        uncompressed: file.uncompressed,
    })
}

pub fn bench(args: CacheArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; figures only mean something with `cargo run --release -p xtask -- bench cache`"
        );
    }
    if args.images == 0 {
        bail!("--images must be at least 1");
    }
    let registry = test_support::Registry::start()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("starting docker-registry (install it with `cargo xtask setup`)")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let direct = client_of(&registry.addr)?;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let base = generated(dir.path(), "base.tar.gz", args.base_mib, 1)?;
    let mut images = Vec::new();
    for i in 0..args.images {
        let own = generated(dir.path(), "own.tar.gz", args.own_mib, 100 + i as u64)?;
        let repo = format!("bench/cache-{i:03}");
        let manifest = runtime.block_on(image::push_image(
            &direct,
            &repo,
            Some("v1"),
            "amd64",
            &[&base, &own],
        ))?;
        images.push((repo, manifest.digest, own.gzip.len() as u64));
    }
    let own_total: u64 = images.iter().map(|(_, _, size)| size).sum();
    eprintln!(
        "{} images pushed in {:.1} s: base layer {} MiB ({} MiB gzip), own layers {} MiB each ({:.1} MiB gzip in all)",
        images.len(),
        started.elapsed().as_secs_f64(),
        base.uncompressed >> 20,
        base.gzip.len() >> 20,
        args.own_mib,
        own_total as f64 / 1048576.0
    );
    let proxy = runtime
        .block_on(FaultProxy::start(&registry.addr))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("starting the counting proxy")?;
    let runs = [
        ("no cache", None, "-soci-plain"),
        ("cache", Some(CACHE_REPO), "-soci-cached"),
    ];
    let mut rows = Vec::new();
    for (label, cache, suffix) in runs {
        let config = config_for(&proxy.addr, &args, cache, suffix);
        let indexer = Indexer::new(client_of(&proxy.addr)?, config);
        rows.push(runtime.block_on(backfill(label, &indexer, &proxy, &images, &base.digest))?);
    }
    let mut ztocs: Vec<&String> = rows.iter().flat_map(|r| &r.base_ztocs).collect();
    ztocs.sort();
    ztocs.dedup();
    if ztocs.len() != 1 {
        bail!("the base layer got different zTOCs: {ztocs:?}");
    }
    print_rows(&rows, &args, base.gzip.len() as u64);
    Ok(())
}

/// The generator's configuration for a function of `memory_mb`, through the proxy.
fn config_for(proxy: &str, args: &CacheArgs, cache: Option<&str>, suffix: &str) -> Config {
    let mut config = Config {
        registry: RegistryTarget::Url {
            url: format!("http://{proxy}"),
            username: None,
            password: None,
        },
        index_tag_suffix: suffix.into(),
        ztoc_cache_repository: cache.map(String::from),
        memory_budget: soci_core::MemoryBudget::for_memory_mib(args.memory_mb),
        ..Config::default()
    };
    config.parallel_fetch.concurrency = ParallelFetch::concurrency_for_memory_mib(args.memory_mb);
    // Every image's own layer is indexed too, whatever its size.
    config.min_layer_size = 0;
    config
}

/// Indexes every image, one invocation after the other, as a backfill's invocations would.
async fn backfill(
    label: &'static str,
    indexer: &Indexer,
    proxy: &FaultProxy,
    images: &[(String, String, u64)],
    base: &str,
) -> anyhow::Result<Row> {
    let bytes_before = proxy.body_bytes();
    let started = Instant::now();
    let mut row = Row {
        label,
        seconds: 0.0,
        invocation_seconds: 0.0,
        bytes: 0,
        hits: 0,
        misses: 0,
        base_ztocs: Vec::new(),
    };
    for (repo, digest, _) in images {
        let image = ImageRef {
            repository: repo.clone(),
            digest: Some(digest.clone()),
            tag: Some("v1".into()),
        };
        let invocation = Instant::now();
        let outcome = indexer
            .run(&image)
            .await
            .with_context(|| format!("indexing {repo}"))?;
        row.invocation_seconds += invocation.elapsed().as_secs_f64();
        let IndexingOutcome::Indexed { layers, .. } = outcome else {
            bail!("{repo} was not indexed: {outcome:?}");
        };
        for l in &layers {
            match l.ztoc_cache {
                Some(CacheUse::Hit) => row.hits += 1,
                Some(CacheUse::Miss) => row.misses += 1,
                None => {}
            }
            if l.digest == base {
                row.base_ztocs.extend(l.ztoc_digest.clone());
            }
        }
    }
    row.seconds = started.elapsed().as_secs_f64();
    row.bytes = (proxy.body_bytes() - bytes_before) as u64;
    Ok(row)
}

fn print_rows(rows: &[Row], args: &CacheArgs, base_gzip: u64) {
    let gb_s = |r: &Row| r.invocation_seconds * args.memory_mb as f64 / 1024.0;
    println!(
        "\nbackfill of {} images sharing a {} MiB base layer ({:.1} MiB gzip) + {} MiB of their own; \
         Lambda memory {} MB; bytes = what the registry sent (layers, manifests, cache entries)\n",
        args.images,
        args.base_mib,
        base_gzip as f64 / 1048576.0,
        args.own_mib,
        args.memory_mb
    );
    println!(
        "{:<10} {:>9} {:>14} {:>10} {:>12}",
        "run", "time s", "downloaded MiB", "GB-s", "hits/misses"
    );
    for r in rows {
        println!(
            "{:<10} {:>9.2} {:>14.1} {:>10.2} {:>12}",
            r.label,
            r.seconds,
            r.bytes as f64 / 1048576.0,
            gb_s(r),
            format!("{}/{}", r.hits, r.misses)
        );
    }
    if let [plain, cached] = rows {
        println!(
            "\ncache / no cache: time {:.3}x, bytes downloaded {:.3}x, GB-seconds {:.3}x",
            cached.seconds / plain.seconds,
            cached.bytes as f64 / plain.bytes as f64,
            gb_s(cached) / gb_s(plain)
        );
    }
}
