//! `cargo xtask bench index`: end-to-end indexing of an image in a local registry against a plain
//! download of the same blobs, measured in the same run, on loopback and through throttled links.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use soci_index_generator::config::{Config, ENV_PARALLEL_FETCH_CONCURRENCY, ParallelFetch};
use soci_index_generator::pipeline::fetch::{self, Blob};
use soci_index_generator::registry::Response;
use soci_index_generator::{Credentials, RegistryClient, RetryPolicy};

use super::child::{self, ChildRun};
use test_support::image;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Total uncompressed size of the three layers, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Measurement rounds (each: one download, one indexing run); every round is printed.
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// Also measure through a link limited to these rates (MiB/s, registry to client), the way
    /// a real registry serves: comma-separated; empty for loopback only.
    #[arg(long, value_delimiter = ',', default_value = "800,400,200,100")]
    link_mib_s: Vec<u64>,
    /// Also measure through links that cap each connection, the way S3 serves (presigned
    /// blob URLs): `<per-connection>/<shared>` in MiB/s, comma-separated; empty for none.
    /// These rows compare one stream against the parallel ranged fetch, for the download and
    /// for indexing.
    #[arg(long, value_delimiter = ',', default_value = "50/1024")]
    capped: Vec<String>,
    /// (Internal) measure the image already pushed to `SOCI_TEST_REGISTRY`:
    /// `<digest>=<size>,...;<uncompressed>` (see `bench`).
    #[arg(long, hide = true)]
    pushed: Option<String>,
}

/// This process's user + system CPU time (all threads).
fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live, writable `rusage`; RUSAGE_SELF needs nothing else.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// One `cargo xtask index` of the bench image, as a user runs it, measured from outside;
/// `env` adds settings (the generator's variables).
fn index_child(
    registry: &str,
    repo: &str,
    suffix: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<ChildRun> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let mut command = Command::new(exe);
    command
        .args(["index", &format!("{registry}/{repo}:v1"), "--plain-http"])
        .env("min_layer_size", "0")
        .env("index_tag_suffix", suffix)
        .envs(env.iter().copied());
    let run = child::run_measured(&mut command).context("the indexing child")?;
    if !run.stdout.contains(&format!("tagged v1{suffix}")) {
        bail!(
            "the indexing child did not index the image:\n{}",
            run.stdout
        );
    }
    Ok(run)
}

/// Downloads every blob with the same client and concurrency as the indexer, bytes discarded,
/// starting them in the indexer's order (largest first).
/// Returns seconds, bytes and the CPU seconds this process spent.
fn download_all(
    runtime: &tokio::runtime::Runtime,
    client: &Arc<RegistryClient>,
    repo: &'static str,
    image: &BenchImage,
    concurrency: usize,
) -> anyhow::Result<(f64, u64, f64)> {
    let cpu_before = cpu_seconds();
    let (elapsed, bytes) = runtime.block_on(async {
        let started = Instant::now();
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut set = tokio::task::JoinSet::new();
        for (digest, _) in image.largest_first() {
            let client = client.clone();
            // Taken here, not in the task: the start order is the list's, not the runtime's.
            let permit = permits.clone().acquire_owned().await?;
            set.spawn(async move {
                let _p = permit;
                let resp = client.get_blob(repo, &digest).await?;
                drain_response(resp).await
            });
        }
        let mut bytes = 0u64;
        while let Some(r) = set.join_next().await {
            bytes += r??;
        }
        anyhow::Ok((started.elapsed(), bytes))
    })?;
    let cpu = cpu_seconds() - cpu_before;
    Ok((elapsed.as_secs_f64(), bytes, cpu))
}

/// The bench image's compressed blobs, as pushed.
struct BenchImage {
    digests: Vec<String>,
    /// Compressed sizes, parallel to `digests`.
    sizes: Vec<u64>,
    uncompressed: u64,
}

impl BenchImage {
    /// (digest, size) of each blob, largest first: the order the indexer starts them in.
    fn largest_first(&self) -> Vec<(String, u64)> {
        let mut blobs: Vec<_> = self
            .digests
            .iter()
            .cloned()
            .zip(self.sizes.clone())
            .collect();
        blobs.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
        blobs
    }
}

/// The best round of one link setting.
struct LinkSummary {
    label: String,
    download_s: f64,
    bytes: u64,
    index_s: f64,
    rss_kib: u64,
}

const REPO: &str = "bench/app";

/// A client of the bench's local registry (plain HTTP, anonymous).
pub(super) fn client_of(addr: &str) -> anyhow::Result<Arc<RegistryClient>> {
    let retry = RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(100),
    };
    Ok(Arc::new(RegistryClient::new(
        &format!("http://{addr}"),
        Credentials::Anonymous,
        retry,
    )?))
}

/// Generates and pushes the image, then measures in a fresh process (`--pushed`): Linux keeps
/// a process's peak RSS across `execve` from the memory it was spawned from, so every child
/// spawned by a process that held the generated image (about 600 MiB at the default size)
/// would report at least that peak, whatever it used itself.
pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; figures only mean something with `cargo run --release -p xtask -- bench index`"
        );
    }
    if let Some(pushed) = &args.pushed {
        let registry = std::env::var("SOCI_TEST_REGISTRY")
            .context("--pushed measures the registry SOCI_TEST_REGISTRY names")?;
        return measure(&args, &registry, parse_pushed(pushed)?);
    }
    let registry = test_support::Registry::start()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("starting docker-registry (install it with `cargo xtask setup`)")?;
    let image = {
        let runtime = tokio::runtime::Runtime::new()?;
        let client = client_of(&registry.addr)?;
        push_bench_image(&runtime, &client, args.size_mib)?
    };
    let spec = format!(
        "{};{}",
        image
            .digests
            .iter()
            .zip(&image.sizes)
            .map(|(d, s)| format!("{d}={s}"))
            .collect::<Vec<_>>()
            .join(","),
        image.uncompressed
    );
    let join = |v: Vec<String>| v.join(",");
    let status = Command::new(std::env::current_exe().context("locating the xtask binary")?)
        .args(["bench", "index", "--rounds", &args.rounds.to_string()])
        .arg(format!(
            "--link-mib-s={}",
            join(args.link_mib_s.iter().map(u64::to_string).collect())
        ))
        .arg(format!("--capped={}", join(args.capped.clone())))
        .arg(format!("--pushed={spec}"))
        .env("SOCI_TEST_REGISTRY", &registry.addr)
        .status()
        .context("starting the measuring process")?;
    if !status.success() {
        bail!("the measuring process failed ({status})");
    }
    Ok(())
}

/// `<digest>=<size>,...;<uncompressed>`, as `bench` passes it.
fn parse_pushed(spec: &str) -> anyhow::Result<BenchImage> {
    let bad = || anyhow::anyhow!("--pushed {spec:?}: expected <digest>=<size>,...;<uncompressed>");
    let (blobs, uncompressed) = spec.split_once(';').ok_or_else(bad)?;
    let mut image = BenchImage {
        digests: Vec::new(),
        sizes: Vec::new(),
        uncompressed: uncompressed.parse().map_err(|_| bad())?,
    };
    for blob in blobs.split(',') {
        let (digest, size) = blob.split_once('=').ok_or_else(bad)?;
        image.digests.push(digest.to_string());
        image.sizes.push(size.parse().map_err(|_| bad())?);
    }
    Ok(image)
}

/// Every measurement, against `registry` where the image is.
fn measure(args: &BenchArgs, registry: &str, image: BenchImage) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let client = client_of(registry)?;
    // The indexer's layer concurrency (its default), for the baseline too.
    let concurrency = Config::default().concurrency;
    // Warm-up, not measured: the registry's files are in the page cache for every measurement.
    download_all(&runtime, &client, REPO, &image, concurrency)?;

    let mut links = vec![None];
    links.extend(args.link_mib_s.iter().map(|&rate| Some(rate)));
    let mut summaries = Vec::new();
    let mut round_no = 0;
    for link_rate in links {
        summaries.push(measure_link(
            &runtime,
            registry,
            link_rate,
            &image,
            args.rounds.max(1),
            &mut round_no,
        )?);
    }
    print_summary(&summaries, image.uncompressed, concurrency);
    let mut capped = Vec::new();
    for spec in args.capped.iter().filter(|s| !s.trim().is_empty()) {
        let (per_connection, shared) = parse_cap(spec)?;
        capped.push(measure_capped(
            &runtime,
            registry,
            (per_connection, shared),
            &image,
            args.rounds.max(1),
            &mut round_no,
        )?);
    }
    if !capped.is_empty() {
        // The first summary is loopback: indexing there is bound by the CPU alone.
        print_capped_summary(&capped, summaries.first().map(|s| s.index_s));
    }
    Ok(())
}

/// `<per-connection>/<shared>` in MiB/s.
fn parse_cap(spec: &str) -> anyhow::Result<(u64, u64)> {
    let parsed = spec.trim().split_once('/').and_then(|(c, s)| {
        let c = c.trim().parse::<u64>().ok().filter(|&c| c > 0)?;
        let s = s.trim().parse::<u64>().ok().filter(|&s| s > 0)?;
        Some((c, s))
    });
    parsed.with_context(|| {
        format!("--capped {spec:?}: expected <per-connection>/<shared> MiB/s, e.g. 50/1024")
    })
}

/// The best round of one capped link: plain downloads (one connection per blob, and the
/// generator's parallel ranged fetch) and indexing (one stream, and parallel ranges).
struct CappedSummary {
    label: String,
    bytes: u64,
    download_one_s: f64,
    download_ranged_s: f64,
    index_one_s: f64,
    index_ranged_s: f64,
    rss_kib: u64,
}

impl CappedSummary {
    /// The best plain download under these caps, one stream or ranged.
    fn best_download_s(&self) -> f64 {
        self.download_one_s.min(self.download_ranged_s)
    }
}

/// Rounds of both downloads and both indexings through a link that caps each connection.
fn measure_capped(
    runtime: &tokio::runtime::Runtime,
    registry_addr: &str,
    (per_connection, shared): (u64, u64),
    image: &BenchImage,
    rounds: u32,
    round_no: &mut u32,
) -> anyhow::Result<CappedSummary> {
    let link = runtime.block_on(test_support::link::ThrottledLink::start_capped(
        registry_addr,
        shared as f64 * 1048576.0,
        Some(per_connection as f64 * 1048576.0),
    ))?;
    let label = format!("{per_connection}/conn, {shared} shared");
    let client = client_of(&link.addr)?;
    let concurrency = Config::default().concurrency;
    let parallel = Config::default().parallel_fetch;
    let one_stream = [(ENV_PARALLEL_FETCH_CONCURRENCY, "1")];
    let mut best = CappedSummary {
        label: label.clone(),
        bytes: 0,
        download_one_s: f64::INFINITY,
        download_ranged_s: f64::INFINITY,
        index_one_s: f64::INFINITY,
        index_ranged_s: f64::INFINITY,
        rss_kib: 0,
    };
    for _ in 0..rounds {
        *round_no += 1;
        let (one_s, bytes, _) = download_all(runtime, &client, REPO, image, concurrency)?;
        let (ranged_s, ranged_bytes) =
            download_all_ranged(runtime, &client, image, concurrency, parallel)?;
        if ranged_bytes != bytes {
            bail!("the ranged download got {ranged_bytes} bytes, the plain one {bytes}");
        }
        let one = index_child(&link.addr, REPO, &format!("-soci{round_no}"), &one_stream)?;
        *round_no += 1;
        let ranged = index_child(&link.addr, REPO, &format!("-soci{round_no}"), &[])?;
        println!(
            "{label}, rounds {}-{round_no}: download one stream {one_s:.2} s, ranged {ranged_s:.2} s | index one stream {:.2} s, ranged {:.2} s ({:.2} CPU s, peak RSS {:.1} MiB) | ratio {:.2}",
            *round_no - 1,
            one.seconds,
            ranged.seconds,
            ranged.cpu_seconds,
            ranged.peak_rss_kib as f64 / 1024.0,
            ranged.seconds / one_s.min(ranged_s)
        );
        best.bytes = bytes;
        best.download_one_s = best.download_one_s.min(one_s);
        best.download_ranged_s = best.download_ranged_s.min(ranged_s);
        best.index_one_s = best.index_one_s.min(one.seconds);
        best.index_ranged_s = best.index_ranged_s.min(ranged.seconds);
        best.rss_kib = best.rss_kib.max(ranged.peak_rss_kib);
    }
    Ok(best)
}

/// Downloads every blob with the generator's own parallel ranged fetch (`pipeline::fetch`,
/// the settings the indexer uses), layers as concurrently as the indexer and in its order,
/// bytes discarded.
fn download_all_ranged(
    runtime: &tokio::runtime::Runtime,
    client: &Arc<RegistryClient>,
    image: &BenchImage,
    concurrency: usize,
    parallel: ParallelFetch,
) -> anyhow::Result<(f64, u64)> {
    runtime.block_on(async {
        let started = Instant::now();
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut set = tokio::task::JoinSet::new();
        for (digest, size) in image.largest_first() {
            let blob = Blob {
                repo: REPO.into(),
                digest,
                size,
                // As the plain download: bytes counted, not hashed.
                sha256_checked_by_reader: true,
            };
            let client = client.clone();
            let permit = permits.clone().acquire_owned().await?;
            set.spawn(async move {
                let _p = permit;
                let (tx, mut rx) = tokio::sync::mpsc::channel::<fetch::Chunk>(32);
                let drain = tokio::spawn(async move {
                    let mut n = 0u64;
                    while let Some(Ok(Some(chunk))) = rx.recv().await {
                        n += chunk.len() as u64;
                    }
                    n
                });
                let retry = RetryPolicy {
                    attempts: 3,
                    base_delay: Duration::from_millis(100),
                };
                fetch::fetch(&client, &blob, &parallel, retry, &tx).await?;
                drop(tx);
                anyhow::Ok(drain.await?)
            });
        }
        let mut bytes = 0u64;
        while let Some(r) = set.join_next().await {
            bytes += r??;
        }
        anyhow::Ok((started.elapsed().as_secs_f64(), bytes))
    })
}

/// `cpu_bound_s`: the best index time on loopback, where the download runs at memory speed:
/// what indexing costs when the link is no limit.
fn print_capped_summary(rows: &[CappedSummary], cpu_bound_s: Option<f64>) {
    let parallel = Config::default().parallel_fetch;
    println!(
        "links capping each connection (MiB/s), the way S3 serves; ranged: {} requests of {} MiB per layer",
        parallel.concurrency,
        parallel.chunk_size >> 20
    );
    println!(
        "{:<22} {:>19} {:>19} {:>16} {:>16} {:>22} {:>10}",
        "link",
        "download 1 stream",
        "download ranged",
        "index 1 stream",
        "index ranged",
        "ratio (target <= 1.1)",
        "peak RSS"
    );
    for r in rows {
        let rate = |s: f64| format!("{s:.2} s {:>4.0} MiB/s", r.bytes as f64 / 1048576.0 / s);
        let best_download = r.best_download_s();
        let ratio = r.index_ranged_s / best_download;
        println!(
            "{:<22} {:>19} {:>19} {:>16} {:>16} {:>22} {:>10}",
            r.label,
            rate(r.download_one_s),
            rate(r.download_ranged_s),
            format!("{:.2} s", r.index_one_s),
            format!("{:.2} s", r.index_ranged_s),
            format!("{ratio:.2}{}", if ratio <= 1.1 { "" } else { " (over)" }),
            format!("{:.1} MiB", r.rss_kib as f64 / 1024.0),
        );
    }
    println!(
        "ratio: index ranged / the best plain download (either way) under the same caps; \
         one stream: parallel_fetch_concurrency=1"
    );
    // When the capped link outruns the inflate, no fetch can bring indexing under the
    // download time: what is left to show is that the link costs nothing over the CPU.
    if let Some(cpu_s) = cpu_bound_s {
        for r in rows {
            let best_download = r.best_download_s();
            let bound = best_download.max(cpu_s);
            let ratio = r.index_ranged_s / bound;
            println!(
                "{}: index ranged {:.2} s / max(best download {:.2} s, index on loopback {:.2} s: {}) = {ratio:.2}{}",
                r.label,
                r.index_ranged_s,
                best_download,
                cpu_s,
                if cpu_s > best_download {
                    "CPU-bound: the link outruns the inflate"
                } else {
                    "link-bound"
                },
                if ratio <= 1.1 { "" } else { " (over 1.1)" },
            );
        }
    }
}

/// Generates the three-layer image of `size_mib` uncompressed and pushes it as `bench/app:v1`.
fn push_bench_image(
    runtime: &tokio::runtime::Runtime,
    client: &Arc<RegistryClient>,
    size_mib: u64,
) -> anyhow::Result<BenchImage> {
    let total = size_mib << 20;
    let sizes = [total * 45 / 100, total * 35 / 100, total * 20 / 100];
    let started = Instant::now();
    let mut layers = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let seed = i as u64 + 1;
        let files = 4;
        let entries: Vec<image::Entry> = (0..files)
            .map(|f| {
                image::Entry::File(
                    format!("bench/{seed}/file{f}.bin"),
                    size / files,
                    seed * 100 + f,
                )
            })
            .collect();
        let layer = image::gzip_tar_layer(&entries)?;
        eprintln!(
            "layer {i}: {} MiB uncompressed, {} MiB gzip, {}",
            layer.uncompressed >> 20,
            layer.gzip.len() >> 20,
            layer.digest
        );
        layers.push(layer);
    }
    let manifest = runtime.block_on(image::push_image(
        client,
        REPO,
        Some("v1"),
        "amd64",
        &layers.iter().collect::<Vec<_>>(),
    ))?;
    eprintln!(
        "image {} generated and pushed in {:.1} s",
        manifest.digest,
        started.elapsed().as_secs_f64()
    );
    Ok(BenchImage {
        digests: layers.iter().map(|l| l.digest.clone()).collect(),
        sizes: layers.iter().map(|l| l.gzip.len() as u64).collect(),
        uncompressed: layers.iter().map(|l| l.uncompressed).sum(),
    })
}

/// Rounds of download-then-index, on loopback (`link_rate` None) or through a throttled link.
fn measure_link(
    runtime: &tokio::runtime::Runtime,
    registry_addr: &str,
    link_rate: Option<u64>,
    image: &BenchImage,
    rounds: u32,
    round_no: &mut u32,
) -> anyhow::Result<LinkSummary> {
    // Declared before the client that talks through it, so it outlives the client.
    let (link, label) = match link_rate {
        Some(rate) => (
            Some(runtime.block_on(test_support::link::ThrottledLink::start(
                registry_addr,
                rate as f64 * 1048576.0,
            ))?),
            format!("{rate} MiB/s link"),
        ),
        None => (None, "loopback".to_string()),
    };
    let addr = link
        .as_ref()
        .map_or(registry_addr, |link| &link.addr)
        .to_string();
    let client = client_of(&addr)?;
    let concurrency = Config::default().concurrency;
    let mut downloads = Vec::new();
    let mut runs = Vec::new();
    for _ in 0..rounds {
        *round_no += 1;
        let (secs, bytes, cpu) = download_all(runtime, &client, REPO, image, concurrency)?;
        // A fresh `<tag><suffix>` per round, so every round indexes and pushes for real.
        let run = index_child(&addr, REPO, &format!("-soci{round_no}"), &[])?;
        if *round_no == 1 {
            print!("{}", run.stdout);
        }
        println!(
            "{label}, round {round_no}: download {secs:.2} s ({:.0} MiB/s, {cpu:.2} CPU s) | index {:.2} s ({:.2} CPU s, peak RSS {:.1} MiB) | ratio {:.2}",
            bytes as f64 / 1048576.0 / secs,
            run.seconds,
            run.cpu_seconds,
            run.peak_rss_kib as f64 / 1024.0,
            run.seconds / secs
        );
        downloads.push((secs, bytes));
        runs.push(run);
    }
    let (download_s, bytes) = downloads
        .iter()
        .copied()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .context("no rounds")?;
    let index_s = runs
        .iter()
        .map(|r| r.seconds)
        .min_by(f64::total_cmp)
        .context("no rounds")?;
    let rss_kib = runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
    Ok(LinkSummary {
        label,
        download_s,
        bytes,
        index_s,
        rss_kib,
    })
}

fn print_summary(summaries: &[LinkSummary], uncompressed: u64, concurrency: usize) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let bytes = summaries.first().map(|s| s.bytes).unwrap_or(0);
    println!(
        "compressed bytes: {:.1} MiB in 3 layers ({:.0} MiB uncompressed)",
        bytes as f64 / 1048576.0,
        uncompressed as f64 / 1048576.0
    );
    println!(
        "machine: {} CPUs available, load average {}",
        concurrency,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<18} {:>15} {:>15} {:>22} {:>14}",
        "registry", "download (best)", "index (best)", "ratio (target <= 1.25)", "peak RSS"
    );
    for s in summaries {
        let ratio = s.index_s / s.download_s;
        let rss_mib = s.rss_kib as f64 / 1024.0;
        println!(
            "{:<18} {:>15} {:>15} {:>22} {:>14}",
            s.label,
            format!(
                "{:.2} s {:>4.0} MiB/s",
                s.download_s,
                s.bytes as f64 / 1048576.0 / s.download_s
            ),
            format!("{:.2} s", s.index_s),
            format!("{ratio:.2}{}", if ratio <= 1.25 { "" } else { " (over)" }),
            format!(
                "{rss_mib:.1} MiB{}",
                if rss_mib <= 128.0 { "" } else { " (over)" }
            ),
        );
    }
    println!(
        "index times are of a child process (`cargo xtask index`), start-up and pushes \
         included, CPU and peak RSS from wait4; on loopback the download runs at memory speed \
         and indexing is bound by inflating on {concurrency} CPUs"
    );
}

/// Reads a response body to the end, discarding it; returns the byte count.
async fn drain_response(mut resp: Response) -> anyhow::Result<u64> {
    let mut n = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        n += chunk.len() as u64;
    }
    Ok(n)
}
