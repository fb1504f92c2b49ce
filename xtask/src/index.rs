//! `cargo xtask index REF` (the Lambda's pipeline from a shell, against any registry) and
//! `cargo xtask bench index` (end-to-end indexing against a plain download of the same blobs).

use std::io::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use soci_index_generator::config::{Config, IndexVersion, PlatformFilter, RegistryTarget};
use soci_index_generator::registry::{Bytes, Response, sha256_digest};
use soci_index_generator::{Credentials, ImageRef, Indexer, Outcome, RegistryClient, RetryPolicy};

#[derive(clap::Args)]
pub struct Args {
    /// Image reference: `host[:port]/repository[:tag][@sha256:...]`, e.g. `127.0.0.1:5000/app:v1`.
    reference: String,
    /// Talk HTTP instead of HTTPS to the registry.
    #[arg(long)]
    plain_http: bool,
    /// Build a V1 index (with `subject`, untagged) instead of V2.
    #[arg(long)]
    v1: bool,
    /// Platforms to index (`os/arch[/variant]`), repeatable; default: all.
    #[arg(long = "platform")]
    platforms: Vec<String>,
    /// Build everything, push nothing; print what would be pushed.
    #[arg(long)]
    dry_run: bool,
    /// Print this process's peak RSS (VmHWM) to stderr at the end (used by the benchmark).
    #[arg(long, hide = true)]
    report_rss: bool,
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

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
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

pub fn run(args: Args) -> anyhow::Result<()> {
    init_logs();
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
    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = runtime
        .block_on(indexer.run(&image))
        .with_context(|| format!("indexing {}", args.reference))?;
    print_outcome(&outcome, args.dry_run)?;
    if args.report_rss
        && let Some(kib) = peak_rss_kib()
    {
        eprintln!("VmHWM: {kib} kB");
    }
    Ok(())
}

fn print_outcome(outcome: &Outcome, dry_run: bool) -> anyhow::Result<()> {
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
}

/// Deterministic content: 1 MiB blocks alternating text-like (compressible) and xorshift noise.
struct Content {
    x: u64,
    produced: u64,
}

impl Content {
    fn new(seed: u64) -> Self {
        Self {
            x: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            produced: 0,
        }
    }
}

impl std::io::Read for Content {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        const WORDS: [&[u8]; 8] = [
            b"seekable ",
            b"oci ",
            b"layer ",
            b"lazy ",
            b"loading ",
            b"container ",
            b"image\n",
            b"zran ",
        ];
        let block = 1 << 20;
        let in_block = (block - (self.produced % block)) as usize;
        let n = buf.len().min(in_block).min(64 * 1024);
        let noisy = (self.produced / block) % 3 == 1;
        let mut i = 0;
        while i < n {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            if noisy {
                let bytes = self.x.to_le_bytes();
                let k = (n - i).min(8);
                buf[i..i + k].copy_from_slice(&bytes[..k]);
                i += k;
            } else {
                let w = WORDS[(self.x % 8) as usize];
                let k = (n - i).min(w.len());
                buf[i..i + k].copy_from_slice(&w[..k]);
                i += k;
            }
        }
        self.produced += n as u64;
        Ok(n)
    }
}

/// A gzip tar layer of `size` uncompressed bytes of file content (a few files).
fn make_layer(seed: u64, size: u64) -> anyhow::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let files = 4;
    for i in 0..files {
        let len = size / files;
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("bench/{seed}/file{i}.bin"))?;
        h.set_mode(0o644);
        h.set_size(len);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        tar.append(&h, std::io::Read::take(Content::new(seed * 100 + i), len))?;
    }
    Ok(tar.into_inner()?.finish()?)
}

pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let registry = test_support::Registry::start()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("starting docker-registry (install it with `cargo xtask setup`)")?;
    let url = format!("http://{}", registry.addr);
    let runtime = tokio::runtime::Runtime::new()?;
    let client = Arc::new(RegistryClient::new(
        &url,
        Credentials::Anonymous,
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(100),
        },
    )?);
    let repo = "bench/app";
    let total = args.size_mib << 20;
    let sizes = [total * 45 / 100, total * 35 / 100, total * 20 / 100];
    let mut layers = Vec::new();
    let started = Instant::now();
    for (i, size) in sizes.iter().enumerate() {
        let blob = make_layer(i as u64 + 1, *size)?;
        let digest = sha256_digest(&blob);
        let len = blob.len();
        runtime.block_on(client.push_blob(repo, &digest, Bytes::from(blob)))?;
        eprintln!(
            "layer {i}: {} MiB uncompressed, {} MiB gzip, {digest}",
            size >> 20,
            len >> 20
        );
        layers.push((digest, len));
    }
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = sha256_digest(config);
    runtime.block_on(client.push_blob(repo, &config_digest, Bytes::from_static(config)))?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers.iter().map(|(d, s)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})).collect::<Vec<_>>(),
    });
    runtime.block_on(client.put_manifest(
        repo,
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        Bytes::from(serde_json::to_vec(&manifest)?),
    ))?;
    eprintln!(
        "image generated and pushed in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Baseline: download every blob with the same client and concurrency, bytes discarded.
    let concurrency = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let download = runtime.block_on(async {
        let started = Instant::now();
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut set = tokio::task::JoinSet::new();
        for (digest, _) in layers.clone() {
            let client = client.clone();
            let permits = permits.clone();
            set.spawn(async move {
                let _p = permits.acquire_owned().await;
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

    // Indexing, end to end, in a child process (its peak RSS is its own).
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let output = Command::new(exe)
        .args([
            "index",
            &format!("{}/{repo}:v1", registry.addr),
            "--plain-http",
            "--report-rss",
        ])
        .env("min_layer_size", "0")
        .output()
        .context("running the indexing child")?;
    let index_time = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "indexing failed: {}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let rss_kib: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("the child did not report its peak RSS")?;
    print!("{}", String::from_utf8_lossy(&output.stdout));
    let (download_time, bytes) = download;
    let ratio = index_time.as_secs_f64() / download_time.as_secs_f64();
    let rss_mib = rss_kib as f64 / 1024.0;
    println!(
        "compressed bytes:        {:.1} MiB in 3 layers ({} MiB uncompressed)",
        bytes as f64 / 1048576.0,
        args.size_mib
    );
    println!(
        "download only:           {:.2} s ({:.0} MiB/s)",
        download_time.as_secs_f64(),
        bytes as f64 / 1048576.0 / download_time.as_secs_f64()
    );
    println!("index end to end:        {:.2} s", index_time.as_secs_f64());
    println!(
        "ratio index/download:    {ratio:.2} (target <= 1.25){}",
        if ratio <= 1.25 {
            ""
        } else {
            "  ** over target **"
        }
    );
    println!(
        "peak RSS of indexing:    {rss_mib:.1} MiB (target <= 128 MiB){}",
        if rss_mib <= 128.0 {
            ""
        } else {
            "  ** over target **"
        }
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
