//! `cargo xtask index REF` (the Lambda's pipeline from a shell, against any registry) and
//! `cargo xtask bench index` (end-to-end indexing against a plain download of the same blobs).

use std::io::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use soci_index_generator::config::{Config, IndexVersion, PlatformFilter, RegistryTarget};
use soci_index_generator::registry::Response;
use soci_index_generator::{Credentials, ImageRef, Indexer, Outcome, RegistryClient, RetryPolicy};

/// Images generated in code (shared by the benchmark and `cargo xtask demo`).
#[path = "index_image.rs"]
pub(crate) mod image;

#[derive(clap::Args)]
pub struct Args {
    /// Image reference: `host[:port]/repository[:tag][@sha256:...]`, e.g. `127.0.0.1:5000/app:v1`.
    pub(crate) reference: String,
    /// Talk HTTP instead of HTTPS to the registry.
    #[arg(long)]
    pub(crate) plain_http: bool,
    /// Build a V1 index (with `subject`, untagged) instead of V2.
    #[arg(long)]
    pub(crate) v1: bool,
    /// Platforms to index (`os/arch[/variant]`), repeatable; default: all.
    #[arg(long = "platform")]
    pub(crate) platforms: Vec<String>,
    /// Build everything, push nothing; print what would be pushed.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print this process's peak RSS (VmHWM) to stderr at the end (used by the benchmark).
    #[arg(long, hide = true)]
    pub(crate) report_rss: bool,
}

/// `host[:port]`, repository, tag, digest.
fn parse_reference(
    reference: &str,
) -> anyhow::Result<(String, String, Option<String>, Option<String>)> {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d.to_string())),
        None => (reference, None),
    };
    let Some((host, path)) = rest.split_once('/') else {
        bail!("{reference:?}: expected host[:port]/repository[:tag][@digest]");
    };
    let (repository, tag) = match path.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), Some(t.to_string())),
        _ => (path.to_string(), None),
    };
    if repository.is_empty() || host.is_empty() {
        bail!("{reference:?}: expected host[:port]/repository[:tag][@digest]");
    }
    if tag.is_none() && digest.is_none() {
        return Ok((host.to_string(), repository, Some("latest".into()), None));
    }
    Ok((host.to_string(), repository, tag, digest))
}

pub(crate) fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The indexer and image `args` describe: configuration from the environment (as the Lambda
/// reads it), then the command line on top.
pub(crate) fn prepare(args: &Args) -> anyhow::Result<(Indexer, ImageRef)> {
    let (host, repository, tag, digest) = parse_reference(&args.reference)?;
    let url = format!(
        "{}://{host}",
        if args.plain_http { "http" } else { "https" }
    );
    let mut config = Config::from_env().context("configuration from the environment")?;
    if args.v1 {
        config.index_version = IndexVersion::V1;
    }
    if !args.platforms.is_empty() {
        config.platforms = args
            .platforms
            .iter()
            .map(|p| PlatformFilter::parse(p))
            .collect::<Result<_, _>>()?;
    }
    let (username, password) = match &config.registry {
        RegistryTarget::Url {
            username, password, ..
        } => (username.clone(), password.clone()),
        RegistryTarget::Ecr => (
            std::env::var("SOCI_REGISTRY_USERNAME").ok(),
            std::env::var("SOCI_REGISTRY_PASSWORD").ok(),
        ),
    };
    let credentials = match (username, password) {
        (Some(username), Some(password)) => Credentials::Basic { username, password },
        _ => Credentials::Anonymous,
    };
    config.registry = RegistryTarget::Url {
        url: url.clone(),
        username: None,
        password: None,
    };
    let client = RegistryClient::new(
        &url,
        credentials,
        RetryPolicy {
            attempts: config.retry_attempts,
            base_delay: config.retry_base_delay,
        },
    )?;
    let indexer = Indexer::new(Arc::new(client), config).dry_run(args.dry_run);
    let image = ImageRef {
        repository,
        digest,
        tag,
    };
    Ok((indexer, image))
}

/// Runs the indexer on `image`; errors carry the reference, their whole chain, and a hint when
/// the registry is plain HTTP but was spoken to in TLS.
pub(crate) fn index(
    runtime: &tokio::runtime::Runtime,
    indexer: &Indexer,
    image: &ImageRef,
    args: &Args,
) -> anyhow::Result<Outcome> {
    runtime.block_on(indexer.run(image)).map_err(|e| {
        let mut message = format!(
            "indexing {}: {}",
            args.reference,
            soci_index_generator::error_chain(&e)
        );
        if !args.plain_http
            && (message.contains("InvalidContentType") || message.contains("corrupt message"))
        {
            message.push_str(" (the registry answers plain HTTP: add --plain-http)");
        }
        anyhow::anyhow!(message)
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    init_logs();
    let (indexer, image) = prepare(&args)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = index(&runtime, &indexer, &image, &args)?;
    print_outcome(&outcome, args.dry_run)?;
    if args.report_rss {
        if let Some(kib) = peak_rss_kib() {
            eprintln!("VmHWM: {kib} kB");
        }
        if let Some(cpu) = cpu_seconds() {
            eprintln!("CPU seconds: {cpu:.2}");
        }
    }
    Ok(())
}

pub(crate) fn print_outcome(outcome: &Outcome, dry_run: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match outcome {
        Outcome::Indexed {
            pushed,
            layers,
            index_digest,
            index_tag,
            ..
        } => {
            let verb = if dry_run { "would push" } else { "pushed" };
            for l in layers {
                writeln!(out, "layer {} ({} bytes): {}", l.digest, l.size, l.result)?;
            }
            for p in pushed {
                writeln!(
                    out,
                    "{verb} {:<10} {} ({} bytes, {})",
                    p.kind, p.reference, p.size, p.media_type
                )?;
            }
            match index_tag {
                Some(tag) if dry_run => {
                    writeln!(out, "index {index_digest} would be tagged {tag}")?
                }
                Some(tag) => writeln!(out, "index {index_digest} tagged {tag}")?,
                None => writeln!(
                    out,
                    "SOCI index {index_digest} (untagged, subject = the image)"
                )?,
            }
        }
        other => writeln!(out, "{}", serde_json::to_string_pretty(other)?)?,
    }
    Ok(())
}

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
}

/// What the indexing child reported.
struct ChildRun {
    seconds: f64,
    peak_rss_kib: u64,
    cpu_seconds: f64,
    stdout: String,
}

/// This process's user + system CPU time (all threads), from `/proc/self/stat`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture Rust targets.
    Some((utime + stime) / 100.0)
}

fn index_child(registry: &str, repo: &str, suffix: &str) -> anyhow::Result<ChildRun> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let started = Instant::now();
    let output = Command::new(exe)
        .args([
            "index",
            &format!("{registry}/{repo}:v1"),
            "--plain-http",
            "--report-rss",
        ])
        .env("min_layer_size", "0")
        .env("index_tag_suffix", suffix)
        .output()
        .context("running the indexing child")?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("indexing failed ({}): {stdout}\n{stderr}", output.status);
    }
    if !stdout.contains(&format!("tagged v1{suffix}")) {
        bail!("the indexing child did not index the image:\n{stdout}\n{stderr}");
    }
    let field = |name: &str| {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().trim_end_matches("kB").trim().to_string())
    };
    let peak_rss_kib = field("VmHWM:")
        .and_then(|v| v.parse().ok())
        .context("the child did not report its peak RSS")?;
    let cpu_seconds = field("CPU seconds:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    Ok(ChildRun {
        seconds,
        peak_rss_kib,
        cpu_seconds,
        stdout,
    })
}

/// Downloads every blob with the same client and concurrency as the indexer, bytes discarded.
/// Returns seconds, bytes and the CPU seconds this process spent.
fn download_all(
    runtime: &tokio::runtime::Runtime,
    client: &Arc<RegistryClient>,
    repo: &'static str,
    digests: &[String],
    concurrency: usize,
) -> anyhow::Result<(f64, u64, f64)> {
    let cpu_before = cpu_seconds().unwrap_or(f64::NAN);
    let (elapsed, bytes) = runtime.block_on(async {
        let started = Instant::now();
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut set = tokio::task::JoinSet::new();
        for digest in digests {
            let digest = digest.clone();
            let client = client.clone();
            let permits = permits.clone();
            set.spawn(async move {
                let _p = permits.acquire_owned().await?;
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
    let cpu = cpu_seconds().unwrap_or(f64::NAN) - cpu_before;
    Ok((elapsed.as_secs_f64(), bytes, cpu))
}

pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; figures only mean something with `cargo run --release -p xtask -- bench index`"
        );
    }
    let registry = test_support::Registry::start()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("starting docker-registry (install it with `cargo xtask setup`)")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let client_of = |addr: &str| -> anyhow::Result<Arc<RegistryClient>> {
        let retry = RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(100),
        };
        Ok(Arc::new(RegistryClient::new(
            &format!("http://{addr}"),
            Credentials::Anonymous,
            retry,
        )?))
    };
    let client = client_of(&registry.addr)?;
    let repo = "bench/app";
    let total = args.size_mib << 20;
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
        &client,
        repo,
        Some("v1"),
        "amd64",
        &layers.iter().collect::<Vec<_>>(),
    ))?;
    let digests: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
    let uncompressed: u64 = layers.iter().map(|l| l.uncompressed).sum();
    drop(layers);
    eprintln!(
        "image {} generated and pushed in {:.1} s",
        manifest.digest,
        started.elapsed().as_secs_f64()
    );

    // The indexer's layer concurrency (its default), for the baseline too.
    let concurrency = Config::default().concurrency;
    // Warm-up, not measured: the registry's files are in the page cache for every measurement.
    download_all(&runtime, &client, repo, &digests, concurrency)?;

    let mut links = vec![None];
    links.extend(args.link_mib_s.iter().map(|&rate| Some(rate)));
    let mut summaries = Vec::new();
    let mut round_no = 0;
    for link_rate in links {
        // Declared before the client that talks through it, so it outlives the client.
        let (link, label) = match link_rate {
            Some(rate) => (
                Some(runtime.block_on(crate::link::ThrottledLink::start(
                    &registry.addr,
                    rate as f64 * 1048576.0,
                ))?),
                format!("{rate} MiB/s link"),
            ),
            None => (None, "loopback".to_string()),
        };
        let addr = link
            .as_ref()
            .map_or(&registry.addr, |link| &link.addr)
            .clone();
        let client = client_of(&addr)?;
        let mut downloads = Vec::new();
        let mut runs = Vec::new();
        for _ in 0..args.rounds.max(1) {
            round_no += 1;
            let (secs, bytes, cpu) = download_all(&runtime, &client, repo, &digests, concurrency)?;
            // A fresh `<tag><suffix>` per round, so every round indexes and pushes for real.
            let run = index_child(&addr, repo, &format!("-soci{round_no}"))?;
            if round_no == 1 {
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
        summaries.push((label, download_s, bytes, index_s, rss_kib));
    }

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let bytes = summaries.first().map(|s| s.2).unwrap_or(0);
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
    for (label, download_s, bytes, index_s, rss_kib) in &summaries {
        let ratio = index_s / download_s;
        let rss_mib = *rss_kib as f64 / 1024.0;
        println!(
            "{label:<18} {:>15} {:>15} {:>22} {:>14}",
            format!(
                "{download_s:.2} s {:>4.0} MiB/s",
                *bytes as f64 / 1048576.0 / download_s
            ),
            format!("{index_s:.2} s"),
            format!("{ratio:.2}{}", if ratio <= 1.25 { "" } else { " (over)" }),
            format!(
                "{rss_mib:.1} MiB{}",
                if rss_mib <= 128.0 { "" } else { " (over)" }
            ),
        );
    }
    println!(
        "index times are of a child process, start-up and pushes included; on loopback the \
         download runs at memory speed and indexing is bound by inflating on {concurrency} CPUs"
    );
    Ok(())
}

/// Reads a response body to the end, discarding it; returns the byte count.
async fn drain_response(mut resp: Response) -> anyhow::Result<u64> {
    let mut n = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        n += chunk.len() as u64;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::parse_reference;

    #[test]
    fn references() {
        let (h, r, t, d) = parse_reference("127.0.0.1:5000/team/app:v1").unwrap();
        assert_eq!(
            (h.as_str(), r.as_str(), t.as_deref(), d),
            ("127.0.0.1:5000", "team/app", Some("v1"), None)
        );
        let (_, r, t, d) = parse_reference("localhost:5000/app@sha256:ab").unwrap();
        assert_eq!(
            (r.as_str(), t, d.as_deref()),
            ("app", None, Some("sha256:ab"))
        );
        let (_, _, t, _) = parse_reference("r.example/app").unwrap();
        assert_eq!(t.as_deref(), Some("latest"));
        assert!(parse_reference("app").is_err());
    }
}
