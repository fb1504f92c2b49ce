//! `cargo xtask demo`: the product's main job on a real image, with no AWS account and nothing
//! installed but Rust.
//!
//! 1. opens an OCI image layout (`target/soci-demo/layout`, recreated each run, or `--layout
//!    DIR`), or with `--registry` starts a local OCI registry (Debian's `docker-registry`, via
//!    test-support);
//! 2. generates and writes (pushes) a two-platform image: an OCI index tagged `v1` over a
//!    linux/amd64 and a linux/arm64 manifest (three and two gzip tar layers, one per platform
//!    above the 10 MiB minimum layer size) and a BuildKit-style attestation manifest;
//! 3. indexes it exactly as `cargo xtask index oci:DIR:v1` (or `... 127.0.0.1:PORT/demo/app:v1
//!    --plain-http`) does (same functions, configuration from the environment as the Lambda
//!    reads it);
//! 4. walks what was written, read back through the same client, with `soci_core::inspect`:
//!    `v1-soci` OCI index -> annotated image manifests -> SOCI indexes -> zTOCs, and runs the
//!    consumer's checks (`soci_core::verify`) on every zTOC against its layer;
//! 5. stops the layout server or the registry. Any failed check makes the command fail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use soci_core::inspect::{GraphReport, LeftAsIsReason, PlatformReport, Root, inspect};
use soci_core::oci::ANNOTATION_SOCI_INDEX_DIGEST;
use soci_index_generator::pipeline::LayerReport;
use soci_index_generator::registry::RepositoryGraph;
use soci_index_generator::{IndexingOutcome, RegistryClient};

use test_support::image::{self, Entry, Layer, Pushed};

#[derive(clap::Args)]
pub struct Args {
    /// Run against a local `docker-registry` (installed by `cargo xtask setup`) instead of an
    /// OCI image layout.
    #[arg(long, conflicts_with = "layout")]
    registry: bool,
    /// The OCI image layout to write the image and its SOCI index into (created when missing or
    /// empty; an existing layout is added to). Default: `target/soci-demo/layout`, recreated.
    #[arg(long, value_name = "DIR")]
    layout: Option<PathBuf>,
}

/// The repository of the demo image in a registry.
const REGISTRY_REPO: &str = "demo/app";
const TAG: &str = "v1";

fn mib(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / 1048576.0)
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// The layers of one platform: a large "base" layer (above the minimum layer size), an
/// application layer and a small configuration layer (below it, left out on purpose).
fn platform_layers(
    arch: &str,
    seed: u64,
    base_mib: u64,
    with_config: bool,
) -> anyhow::Result<Vec<Layer>> {
    let lib = if arch == "amd64" {
        "x86_64-linux-gnu"
    } else {
        "aarch64-linux-gnu"
    };
    let mut base = vec![
        Entry::Dir("usr/".into()),
        Entry::Dir("usr/lib/".into()),
        Entry::Dir(format!("usr/lib/{lib}/")),
        Entry::Dir("usr/share/".into()),
        Entry::Dir("usr/share/doc/".into()),
        Entry::Dir("etc/".into()),
    ];
    // A large library, a few mid-sized ones and many small files, like a distribution base.
    base.push(Entry::File(
        format!("usr/lib/{lib}/libdemo-runtime.so.1.0"),
        (base_mib << 20) * 3 / 4 + 12_345,
        seed,
    ));
    base.push(Entry::Symlink(
        format!("usr/lib/{lib}/libdemo-runtime.so.1"),
        "libdemo-runtime.so.1.0".into(),
    ));
    for i in 0..6u64 {
        base.push(Entry::File(
            format!("usr/lib/{lib}/libpart{i}.so"),
            (base_mib << 20) / 4 / 6 + i * 777,
            seed * 10 + i,
        ));
    }
    for i in 0..40u64 {
        base.push(Entry::File(
            format!("usr/share/doc/pkg{i}/copyright"),
            1_000 + i * 113,
            seed * 100 + i,
        ));
    }
    base.push(Entry::File("etc/os-release".into(), 300, seed + 7));
    let app = vec![
        Entry::Dir("app/".into()),
        Entry::Dir("app/bin/".into()),
        Entry::File("app/bin/server".into(), 3 << 20, seed + 1000),
        Entry::Symlink("app/current".into(), "bin/server".into()),
        Entry::Dir("app/static/".into()),
        Entry::File("app/static/index.html".into(), 4_096, seed + 1001),
    ];
    let mut layers = vec![image::gzip_tar_layer(&base)?, image::gzip_tar_layer(&app)?];
    if with_config {
        let config = vec![
            Entry::Dir("etc/demo/".into()),
            Entry::File("etc/demo/config.yaml".into(), 2_048, seed + 2000),
        ];
        layers.push(image::gzip_tar_layer(&config)?);
    }
    Ok(layers)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::soci::index::init_logs();
    let total = Instant::now();
    if !args.registry {
        return run_on_layout(args.layout, total);
    }
    let registry = test_support::Registry::start()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("starting docker-registry (install it with `cargo xtask setup`)")?;
    println!(
        "== registry: docker-registry on http://{} ({:.2} s)",
        registry.addr,
        total.elapsed().as_secs_f64()
    );
    let result = demo(
        format!("{}/{REGISTRY_REPO}:{TAG}", registry.addr),
        true,
        total,
    );
    drop(registry);
    println!("== registry stopped");
    match &result {
        Ok(()) => println!("== demo OK in {:.1} s", total.elapsed().as_secs_f64()),
        Err(_) => println!("== demo FAILED"),
    }
    result
}

/// The demo on an OCI image layout: no registry, nothing installed.
fn run_on_layout(dir: Option<PathBuf>, total: Instant) -> anyhow::Result<()> {
    let dir = match dir {
        Some(dir) => dir,
        None => {
            let dir = xtask::workspace::Workspace::load()?
                .target_dir
                .join("soci-demo")
                .join("layout");
            // Ours alone: start from an empty layout, so every run writes and indexes afresh.
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("removing the old {}", dir.display()));
                }
            }
            dir
        }
    };
    xtask::layout::Layout::open_or_create(&dir)?;
    let dir = dir.canonicalize().unwrap_or(dir);
    println!("== OCI image layout: {}", dir.display());
    let result = demo(format!("oci:{}:{TAG}", dir.display()), false, total);
    match &result {
        Ok(()) => {
            println!(
                "== demo OK in {:.1} s; the layout is {} (try `skopeo inspect --raw oci:{}:{TAG}-soci`)",
                total.elapsed().as_secs_f64(),
                dir.display(),
                dir.display()
            );
        }
        Err(_) => println!("== demo FAILED"),
    }
    result
}

/// The demo image as pushed: the OCI index and its three manifests.
struct DemoImage {
    index: Pushed,
    platforms: [Pushed; 2],
    attestation: Pushed,
    /// Uncompressed size of every layer, by digest.
    uncompressed: HashMap<String, u64>,
}

/// Pushes the demo image to `reference` (a registry's `host/repo:v1`, or `oci:DIR:v1`), indexes
/// it, reads the graph back and checks it.
fn demo(reference: String, plain_http: bool, total: Instant) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let index_args = crate::soci::index::Args {
        reference,
        plain_http,
        v1: false,
        platforms: Vec::new(),
        dry_run: false,
        disable_xattrs: false,
        ztoc_cache: None,
        wait: Default::default(),
    };
    // `_layout` serves an `oci:` reference to `client` until the end of the demo.
    let crate::soci::index::Prepared {
        indexer,
        image: image_ref,
        client,
        layout: _layout,
    } = crate::soci::index::prepare(&index_args)?;
    let repo = image_ref.repository.as_str();
    let config = indexer.config().clone();
    let image = push_demo_image(&runtime, &client, repo, config.min_layer_size)?;

    // The generator, exactly as `cargo xtask index` runs it.
    println!(
        "== cargo xtask index {}{}  (V2, span size {} bytes, minimum layer size {} bytes)",
        index_args.reference,
        if plain_http { " --plain-http" } else { "" },
        config.span_size,
        config.min_layer_size
    );
    let started = Instant::now();
    let outcome = crate::soci::index::index(&runtime, &indexer, &image_ref, &index_args)?;
    let index_seconds = started.elapsed().as_secs_f64();
    crate::soci::index::print_outcome(&outcome, false)?;
    println!("   indexed in {index_seconds:.2} s");
    let no_reports = Vec::new();
    let (layer_reports, index_tag, index_digest) = match &outcome {
        IndexingOutcome::Indexed {
            layers,
            index_tag: Some(index_tag),
            index_digest,
            ..
        } => (layers, index_tag, index_digest),
        // A registry that already holds this image (SOCI_TEST_REGISTRY): check what is there.
        IndexingOutcome::AlreadyIndexed {
            index_tag,
            index_digest,
            ..
        } => (&no_reports, index_tag, index_digest),
        other => bail!(
            "expected the image to be indexed, got status {}",
            other.status()
        ),
    };
    let built: HashMap<&str, &LayerReport> = layer_reports
        .iter()
        .map(|l| (l.digest.as_str(), l))
        .collect();

    // What is in the registry now, read back from it.
    let started = Instant::now();
    let graph = RepositoryGraph {
        client: &client,
        repository: repo,
    };
    let report = runtime
        .block_on(inspect(
            &graph,
            &Root::v2(index_tag.as_str()).with_original(TAG),
        ))
        .with_context(|| format!("reading back {repo}:{index_tag}"))?;
    let problems = print_graph(&report, index_tag, index_digest, &image, &built);
    println!(
        "   read back and verified in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    if !problems.is_empty() {
        for p in &problems {
            println!("PROBLEM: {p}");
        }
        bail!("{} problem(s) in what was pushed", problems.len());
    }
    println!(
        "== every zTOC passes the consumer's checks; `{index_tag}` is what a SOCI snapshotter would lazy-load ({:.1} s so far)",
        total.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Generates the two-platform image and its attestation, pushes them to `repo` as `v1`, and
/// prints what was pushed.
fn push_demo_image(
    runtime: &tokio::runtime::Runtime,
    client: &RegistryClient,
    repo: &str,
    min_layer_size: u64,
) -> anyhow::Result<DemoImage> {
    let started = Instant::now();
    let amd = platform_layers("amd64", 1, 34, true)?;
    let arm = platform_layers("arm64", 2, 32, false)?;
    let generated = started.elapsed().as_secs_f64();
    let largest = |ls: &[Layer]| ls.iter().map(|l| l.gzip.len() as u64).max().unwrap_or(0);
    if largest(&amd).min(largest(&arm)) < min_layer_size {
        bail!(
            "the generated base layers ({} and {}) are below the minimum layer size {} bytes (from min_layer_size in the environment, or the 10 MiB default)",
            mib(largest(&amd)),
            mib(largest(&arm)),
            min_layer_size
        );
    }
    let started = Instant::now();
    let (index, amd_m, arm_m, att_m) = runtime.block_on(async {
        let amd_m =
            image::push_image(client, repo, None, "amd64", &amd.iter().collect::<Vec<_>>()).await?;
        let arm_m =
            image::push_image(client, repo, None, "arm64", &arm.iter().collect::<Vec<_>>()).await?;
        let att_m = image::push_attestation(client, repo, &amd_m).await?;
        let entries = [
            image::IndexEntry {
                manifest: &amd_m,
                platform: ("linux", "amd64"),
                annotations: Value::Null,
            },
            image::IndexEntry {
                manifest: &arm_m,
                platform: ("linux", "arm64"),
                annotations: Value::Null,
            },
            image::IndexEntry {
                manifest: &att_m,
                platform: ("unknown", "unknown"),
                annotations: json!({
                    "vnd.docker.reference.digest": amd_m.digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                }),
            },
        ];
        let index = image::push_index(client, repo, TAG, &entries).await?;
        anyhow::Ok((index, amd_m, arm_m, att_m))
    })?;
    println!(
        "== image {TAG} = OCI index {} (generated in {generated:.2} s, pushed in {:.2} s)",
        index.digest,
        started.elapsed().as_secs_f64()
    );
    for (platform, manifest, layers) in
        [("linux/amd64", &amd_m, &amd), ("linux/arm64", &arm_m, &arm)]
    {
        println!("   {platform:<16} manifest {}", manifest.digest);
        for l in layers {
            println!(
                "     layer {} {:>9} gzip {:>9} tar",
                l.digest,
                mib(l.gzip.len() as u64),
                mib(l.uncompressed)
            );
        }
    }
    println!(
        "   unknown/unknown  attestation manifest {} (for linux/amd64)",
        att_m.digest
    );
    let uncompressed = amd
        .iter()
        .chain(&arm)
        .map(|l| (l.digest.clone(), l.uncompressed))
        .collect();
    Ok(DemoImage {
        index,
        platforms: [amd_m, arm_m],
        attestation: att_m,
        uncompressed,
    })
}

/// Prints the `<tag>-soci` graph `soci_core::inspect` read back; returns the problems found.
fn print_graph(
    report: &GraphReport,
    index_tag: &str,
    index_digest: &str,
    image: &DemoImage,
    built: &HashMap<&str, &LayerReport>,
) -> Vec<String> {
    let mut problems = report.problems();
    if let Some(original) = &report.original
        && original.digest != image.index.digest
    {
        problems.push(format!(
            "{TAG} moved: {}, was {}",
            original.digest, image.index.digest
        ));
    }
    if report.root.digest != index_digest {
        problems.push(format!(
            "{index_tag} is {}, the generator reported {index_digest}",
            report.root.digest
        ));
    }
    println!(
        "== pushed: {index_tag} -> OCI index {} ({} bytes, {})",
        report.root.digest, report.root.size, report.root.media_type
    );
    for platform in &report.platforms {
        print_platform(platform, image, built);
    }
    for left in &report.left_as_is {
        let d = &left.descriptor;
        let name = d
            .platform
            .as_ref()
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .unwrap_or_default();
        if left.reason == LeftAsIsReason::Attestation && d.digest == image.attestation.digest {
            println!(
                "   ├─ {name:<16} attestation manifest {} (kept as is, not indexed)",
                d.digest
            );
        } else {
            problems.push(format!(
                "{name}: manifest {} without {ANNOTATION_SOCI_INDEX_DIGEST}",
                d.digest
            ));
        }
    }
    if report.platforms.len() != image.platforms.len() {
        problems.push(format!(
            "{} platform(s) indexed, expected {}",
            report.platforms.len(),
            image.platforms.len()
        ));
    }
    problems
}

/// One platform of the graph: annotated manifest -> SOCI index -> zTOCs, with the verify result
/// of each zTOC and the layers left out.
fn print_platform(
    platform: &PlatformReport,
    image: &DemoImage,
    built: &HashMap<&str, &LayerReport>,
) {
    let soci = &platform.soci_index;
    println!(
        "   ├─ {:<16} image manifest {} ({} bytes; annotated copy, {ANNOTATION_SOCI_INDEX_DIGEST}={})",
        platform.name(),
        platform.image_manifest.document.digest,
        platform.image_manifest.document.size,
        short(&soci.document.digest)
    );
    println!(
        "   │   └─ SOCI index {} ({} bytes, {} zTOC(s), config {})",
        soci.document.digest,
        soci.document.size,
        platform.ztocs().count() + platform.stray_ztocs.len(),
        soci.config.media_type
    );
    for layer in &platform.layers {
        let digest = layer.descriptor.digest.as_str();
        let size = mib(u64::try_from(layer.descriptor.size).unwrap_or(0));
        let Some(ztoc) = &layer.ztoc else {
            println!(
                "   │       (layer {} {size} gzip: no zTOC, {}; pulled normally)",
                short(digest),
                built
                    .get(digest)
                    .map(|r| r.result.as_str())
                    .unwrap_or("left out when it was indexed")
            );
            continue;
        };
        println!(
            "   │       └─ zTOC {} ({} bytes, span {}) for layer {} ({size} gzip, {} tar, built in {})",
            ztoc.descriptor.digest,
            ztoc.descriptor.size,
            ztoc.span_size_annotation().unwrap_or("?"),
            short(digest),
            image
                .uncompressed
                .get(digest)
                .copied()
                .map(mib)
                .unwrap_or_else(|| "?".into()),
            built
                .get(digest)
                .and_then(|r| r.seconds)
                .map(|s| format!("{s:.2} s"))
                .unwrap_or_else(|| "an earlier run".into()),
        );
        let seconds = ztoc.verify_time.as_secs_f64();
        if ztoc.verify.is_ok() {
            println!(
                "   │           verify: OK ({} entries, {} spans checked, {seconds:.2} s)",
                ztoc.verify.entries_checked, ztoc.verify.spans_checked
            );
        } else {
            println!("   │           verify: FAILED ({seconds:.2} s)");
        }
    }
}
