//! `cargo xtask index REF`: the Lambda's pipeline from a shell, against any registry or an OCI
//! image layout (`oci:DIR[:TAG]`, served to the unchanged pipeline by `xtask::layout`).

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use soci_index_generator::config::{Config, IndexVersion, PlatformFilter, RegistryTarget};
use soci_index_generator::{
    Credentials, ImageRef, Indexer, IndexingOutcome, RegistryClient, RetryPolicy,
};
use xtask::layout::{Layout, LayoutServer};

#[derive(clap::Args)]
pub struct Args {
    /// Image reference: `host[:port]/repository[:tag][@sha256:...]`, e.g. `127.0.0.1:5000/app:v1`,
    /// or an OCI image layout `oci:DIR[:TAG]` (TAG default `latest`), which the SOCI artifacts are
    /// written into.
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
    /// soci's xattr optimisation: mark each layer without `SCHILY.xattr.*` records and opaque
    /// whiteouts `com.amazon.soci.disable-xattrs: "true"` (the generator's `disable_xattrs`).
    #[arg(long)]
    pub(crate) disable_xattrs: bool,
    /// Reuse and fill the zTOC cache in this repository of the same registry (the generator's
    /// `ztoc_cache_repository`): layers already indexed there are not downloaded again.
    #[arg(long, value_name = "REPO")]
    pub(crate) ztoc_cache: Option<String>,
    #[command(flatten)]
    pub(crate) wait: super::wait::WaitArgs,
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

/// What `args` describe, ready to run.
pub(crate) struct Prepared {
    pub indexer: Indexer,
    pub image: ImageRef,
    /// The client the indexer talks through (for reading back what it pushed).
    pub client: Arc<RegistryClient>,
    /// For an `oci:` reference, the server the client talks to: keep it as long as the client.
    pub layout: Option<LayoutServer>,
}

/// The repository name the layout server is addressed with (it serves one layout under any).
const LAYOUT_REPOSITORY: &str = "layout";

/// Fails naming the layout's tags when the layout at `dir` has no entry tagged `tag`.
fn require_layout_tag(dir: &Path, tag: &str) -> anyhow::Result<()> {
    let layout = Layout::open(dir)?;
    if layout.find_tag(tag)?.is_none() {
        let mut tags: Vec<String> = layout
            .entries()?
            .iter()
            .filter_map(|e| e.tag().map(String::from))
            .collect();
        tags.sort();
        let tags = if tags.is_empty() {
            "none".to_string()
        } else {
            tags.join(", ")
        };
        bail!(
            "{}: no entry tagged {tag:?} (tags: {tags}; a tag is the {} annotation of an entry)",
            dir.join(xtask::layout::INDEX_FILE).display(),
            xtask::layout::REF_NAME
        );
    }
    Ok(())
}

/// Opens the layout at `dir` and serves it to a registry client.
fn serve_layout(dir: &Path) -> anyhow::Result<LayoutServer> {
    let layout = Layout::open(dir)?;
    LayoutServer::start(layout).with_context(|| format!("serving the OCI layout {}", dir.display()))
}

/// The indexer and image `args` describe: configuration from the environment (as the Lambda
/// reads it), then the command line on top.
pub(crate) fn prepare(args: &Args) -> anyhow::Result<Prepared> {
    let (layout, url, repository, tag, digest) = if let Some((dir, tag)) =
        xtask::layout::parse_reference(&args.reference)
    {
        if args.wait.wait {
            bail!(
                "--wait asks the deployed generator Lambda to index a registry image; it cannot read the local layout {}: index the layout here (without --wait), then push it with any OCI tool",
                dir.display()
            );
        }
        let server = serve_layout(&dir)?;
        let url = server.url();
        (
            Some(server),
            url,
            LAYOUT_REPOSITORY.to_string(),
            Some(tag),
            None,
        )
    } else {
        let (host, repository, tag, digest) = parse_reference(&args.reference)?;
        let url = format!(
            "{}://{host}",
            if args.plain_http { "http" } else { "https" }
        );
        (None, url, repository, tag, digest)
    };
    // `--ztoc-cache` is read as the generator reads `ztoc_cache_repository` (same checks).
    let cache_env = soci_index_generator::config::ENV_ZTOC_CACHE_REPOSITORY;
    let mut config = Config::from_lookup(|name| match &args.ztoc_cache {
        Some(repo) if name == cache_env => Some(repo.clone()),
        _ => std::env::var(name).ok(),
    })
    .context("configuration from the environment and --ztoc-cache")?;
    if args.v1 {
        config.index_version = IndexVersion::V1;
    }
    if args.disable_xattrs {
        config.disable_xattrs = true;
    }
    if !args.platforms.is_empty() {
        config.platforms = args
            .platforms
            .iter()
            .map(|p| PlatformFilter::parse(p))
            .collect::<Result<_, _>>()?;
    }
    let (username, password) = match &config.registry {
        _ if layout.is_some() => (None, None),
        RegistryTarget::Url {
            username, password, ..
        } => (username.clone(), password.clone()),
        RegistryTarget::Ecr => (
            std::env::var("SOCI_REGISTRY_USERNAME").ok(),
            std::env::var("SOCI_REGISTRY_PASSWORD").ok(),
        ),
    };
    let credentials = Credentials::basic_or_anonymous(username.as_deref(), password.as_deref());
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
    let client = Arc::new(client);
    let indexer = Indexer::new(client.clone(), config).dry_run(args.dry_run);
    let image = ImageRef {
        repository,
        digest,
        tag,
    };
    Ok(Prepared {
        indexer,
        image,
        client,
        layout,
    })
}

/// Runs the indexer on `image`; errors carry the reference, their whole chain, and a hint when
/// the registry is plain HTTP but was spoken to in TLS.
pub(crate) fn index(
    runtime: &tokio::runtime::Runtime,
    indexer: &Indexer,
    image: &ImageRef,
    args: &Args,
) -> anyhow::Result<IndexingOutcome> {
    runtime.block_on(indexer.run(image)).map_err(|e| {
        let mut message = format!(
            "indexing {}: {}",
            args.reference,
            soci_index_generator::error_chain(&e)
        );
        if !args.plain_http
            && xtask::layout::parse_reference(&args.reference).is_none()
            && (message.contains("InvalidContentType") || message.contains("corrupt message"))
        {
            message.push_str(" (the registry answers plain HTTP: add --plain-http)");
        }
        anyhow::anyhow!(message)
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    init_logs();
    // Here, not in `prepare`: the demo prepares the layout before it writes the image.
    if let Some((dir, tag)) = xtask::layout::parse_reference(&args.reference)
        && !args.wait.wait
    {
        require_layout_tag(&dir, &tag)?;
    }
    let prepared = prepare(&args)?;
    if args.wait.wait {
        let (host, ..) = parse_reference(&args.reference)?;
        return super::wait::run(&args, &host, &prepared);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = index(&runtime, &prepared.indexer, &prepared.image, &args)?;
    print_outcome(&outcome, args.dry_run)?;
    if let Some((dir, _)) = xtask::layout::parse_reference(&args.reference)
        && !args.dry_run
        && matches!(outcome, IndexingOutcome::Indexed { .. })
    {
        println!("written into the OCI layout {}", dir.display());
    }
    drop(prepared);
    Ok(())
}

pub(crate) fn print_outcome(outcome: &IndexingOutcome, dry_run: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match outcome {
        IndexingOutcome::Indexed {
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

    /// `--disable-xattrs` reaches the pipeline's configuration (off without it).
    #[test]
    fn disable_xattrs_flag() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: super::Args,
        }
        let prepared = |flags: &[&str]| {
            let argv = [&["index", "127.0.0.1:5000/app:v1", "--plain-http"], flags].concat();
            let cli = Cli::try_parse_from(argv).expect("arguments");
            super::prepare(&cli.args).expect("prepared")
        };
        let on = prepared(&["--disable-xattrs"]);
        assert!(on.indexer.config().disable_xattrs);
        let cached = prepared(&["--ztoc-cache", "soci-ztoc-cache", "--disable-xattrs"]);
        let config = cached.indexer.config();
        assert_eq!(
            config.ztoc_cache_repository.as_deref(),
            Some("soci-ztoc-cache")
        );
        assert!(config.disable_xattrs);
        if std::env::var_os(soci_index_generator::config::ENV_DISABLE_XATTRS).is_none() {
            assert!(!prepared(&[]).indexer.config().disable_xattrs);
        }
    }
}
