//! `cargo xtask demo`: the product's main job on a real image, with no AWS account.
//!
//! 1. starts a local OCI registry (Debian's `docker-registry`, via test-support);
//! 2. generates and pushes a two-platform image: an OCI index `demo/app:v1` over a linux/amd64
//!    and a linux/arm64 manifest (three and two gzip tar layers, one per platform above the
//!    10 MiB minimum layer size) and a BuildKit-style attestation manifest;
//! 3. indexes it exactly as `cargo xtask index 127.0.0.1:PORT/demo/app:v1 --plain-http` does
//!    (same functions, configuration from the environment as the Lambda reads it);
//! 4. walks what was pushed, from the registry: `v1-soci` OCI index -> annotated image
//!    manifests -> SOCI indexes -> zTOCs, and runs the consumer's checks (`soci_core::verify`)
//!    on every zTOC against its layer;
//! 5. stops the registry. Any failed check makes the command fail.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use soci_core::oci::{
    ANNOTATION_IMAGE_LAYER_DIGEST, ANNOTATION_IMAGE_MANIFEST_DIGEST, ANNOTATION_SOCI_INDEX_DIGEST,
    ANNOTATION_SPAN_SIZE, MEDIA_TYPE_SOCI_INDEX_V2,
};
use soci_index_generator::pipeline::LayerReport;
use soci_index_generator::{Outcome, RegistryClient};

use crate::index_image::{self as image, Entry, Layer};

#[derive(clap::Args)]
pub struct Args {}

const REPO: &str = "demo/app";
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

pub fn run(_args: Args) -> anyhow::Result<()> {
    crate::soci::index::init_logs();
    let total = Instant::now();
    let registry = test_support::Registry::start()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("starting docker-registry (install it with `cargo xtask setup`)")?;
    println!(
        "== registry: docker-registry on http://{} ({:.2} s)",
        registry.addr,
        total.elapsed().as_secs_f64()
    );
    let result = demo(&registry.addr, total);
    drop(registry);
    println!("== registry stopped");
    match &result {
        Ok(()) => println!("== demo OK in {:.1} s", total.elapsed().as_secs_f64()),
        Err(_) => println!("== demo FAILED"),
    }
    result
}

fn demo(addr: &str, total: Instant) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let index_args = crate::soci::index::Args {
        reference: format!("{addr}/{REPO}:{TAG}"),
        plain_http: true,
        v1: false,
        platforms: Vec::new(),
        dry_run: false,
    };
    let (indexer, image_ref) = crate::soci::index::prepare(&index_args)?;
    let config = indexer.config().clone();
    let client = RegistryClient::new(
        &format!("http://{addr}"),
        soci_index_generator::Credentials::Anonymous,
        soci_index_generator::RetryPolicy {
            attempts: config.retry_attempts,
            base_delay: config.retry_base_delay,
        },
    )?;

    // The image.
    let started = Instant::now();
    let amd = platform_layers("amd64", 1, 34, true)?;
    let arm = platform_layers("arm64", 2, 32, false)?;
    let generated = started.elapsed().as_secs_f64();
    let uncompressed: HashMap<String, u64> = amd
        .iter()
        .chain(&arm)
        .map(|l| (l.digest.clone(), l.uncompressed))
        .collect();
    let largest = |ls: &[Layer]| ls.iter().map(|l| l.gzip.len() as u64).max().unwrap_or(0);
    if largest(&amd).min(largest(&arm)) < config.min_layer_size {
        bail!(
            "the generated base layers ({} and {}) are below the minimum layer size {} bytes (from min_layer_size in the environment, or the 10 MiB default)",
            mib(largest(&amd)),
            mib(largest(&arm)),
            config.min_layer_size
        );
    }
    let started = Instant::now();
    let (index, amd_m, arm_m, att_m) = runtime.block_on(async {
        let amd_m = image::push_image(
            &client,
            REPO,
            None,
            "amd64",
            &amd.iter().collect::<Vec<_>>(),
        )
        .await?;
        let arm_m = image::push_image(
            &client,
            REPO,
            None,
            "arm64",
            &arm.iter().collect::<Vec<_>>(),
        )
        .await?;
        let att_m = image::push_attestation(&client, REPO, &amd_m).await?;
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
        let index = image::push_index(&client, REPO, TAG, &entries).await?;
        anyhow::Ok((index, amd_m, arm_m, att_m))
    })?;
    println!(
        "== image {REPO}:{TAG} = OCI index {} (generated in {generated:.2} s, pushed in {:.2} s)",
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
    drop((amd, arm));

    // The generator, exactly as `cargo xtask index` runs it.
    println!(
        "== cargo xtask index {} --plain-http  (V2, span size {} bytes, minimum layer size {} bytes)",
        index_args.reference, config.span_size, config.min_layer_size
    );
    let started = Instant::now();
    let outcome = crate::soci::index::index(&runtime, &indexer, &image_ref, &index_args)?;
    let index_seconds = started.elapsed().as_secs_f64();
    crate::soci::index::print_outcome(&outcome, false)?;
    println!("   indexed in {index_seconds:.2} s");
    let no_reports = Vec::new();
    let (layer_reports, index_tag, index_digest) = match &outcome {
        Outcome::Indexed {
            layers,
            index_tag: Some(index_tag),
            index_digest,
            ..
        } => (layers, index_tag, index_digest),
        // A registry that already holds this image (SOCI_TEST_REGISTRY): check what is there.
        Outcome::AlreadyIndexed {
            index_tag,
            index_digest,
            ..
        } => (&no_reports, index_tag, index_digest),
        other => bail!(
            "expected the image to be indexed, got status {}",
            other.status()
        ),
    };
    let reports: HashMap<&str, &LayerReport> = layer_reports
        .iter()
        .map(|l| (l.digest.as_str(), l))
        .collect();

    // What is in the registry now, read back from it.
    let started = Instant::now();
    let problems = runtime.block_on(walk(
        &client,
        index_tag,
        index_digest,
        &index.digest,
        &[&amd_m.digest, &arm_m.digest],
        &att_m.digest,
        &uncompressed,
        &reports,
    ))?;
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
        "== every zTOC passes the consumer's checks; `{REPO}:{index_tag}` is what a SOCI snapshotter would lazy-load ({:.1} s so far)",
        total.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn json_manifest(
    client: &RegistryClient,
    reference: &str,
) -> anyhow::Result<(Value, u64, String)> {
    let m = client
        .get_manifest(REPO, reference)
        .await
        .with_context(|| format!("fetching {REPO}@{reference}"))?
        .with_context(|| format!("{REPO}@{reference} is not in the registry"))?;
    let value: Value = serde_json::from_slice(&m.bytes)
        .with_context(|| format!("{REPO}@{reference} is not JSON"))?;
    Ok((value, m.bytes.len() as u64, m.digest))
}

fn annotation<'a>(d: &'a Value, key: &str) -> Option<&'a str> {
    d["annotations"][key].as_str()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// Prints the `<tag>-soci` graph and verifies every zTOC; returns the problems found.
#[allow(clippy::too_many_arguments)]
async fn walk(
    client: &RegistryClient,
    index_tag: &str,
    index_digest: &str,
    original_index: &str,
    originals: &[&str],
    attestation: &str,
    uncompressed: &HashMap<String, u64>,
    reports: &HashMap<&str, &LayerReport>,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let (_, _, still) = json_manifest(client, TAG).await?;
    if still != original_index {
        problems.push(format!("{TAG} moved: {still}, was {original_index}"));
    }
    let (index, size, digest) = json_manifest(client, index_tag).await?;
    if digest != index_digest {
        problems.push(format!(
            "{index_tag} is {digest}, the generator reported {index_digest}"
        ));
    }
    println!(
        "== pushed: {REPO}:{index_tag} -> OCI index {digest} ({size} bytes, {})",
        str_of(&index, "mediaType")
    );
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let soci_for: HashMap<&str, &Value> = entries
        .iter()
        .filter(|d| str_of(d, "artifactType") == MEDIA_TYPE_SOCI_INDEX_V2)
        .filter_map(|d| annotation(d, ANNOTATION_IMAGE_MANIFEST_DIGEST).map(|m| (m, d)))
        .collect();
    let mut platforms_indexed = 0;
    for d in &entries {
        let platform = format!(
            "{}/{}",
            str_of(&d["platform"], "os"),
            str_of(&d["platform"], "architecture")
        );
        let mdigest = str_of(d, "digest");
        if str_of(d, "artifactType") == MEDIA_TYPE_SOCI_INDEX_V2 {
            continue; // printed under its image manifest
        }
        if mdigest == attestation {
            println!(
                "   ├─ {platform:<16} attestation manifest {mdigest} (kept as is, not indexed)"
            );
            continue;
        }
        let Some(soci_digest) = annotation(d, ANNOTATION_SOCI_INDEX_DIGEST) else {
            problems.push(format!(
                "{platform}: manifest {mdigest} without {ANNOTATION_SOCI_INDEX_DIGEST}"
            ));
            continue;
        };
        let (manifest, msize, _) = json_manifest(client, mdigest).await?;
        if annotation(&manifest, ANNOTATION_SOCI_INDEX_DIGEST) != Some(soci_digest) {
            problems.push(format!(
                "{platform}: the manifest's own annotation differs from the index's"
            ));
        }
        println!(
            "   ├─ {platform:<16} image manifest {mdigest} ({msize} bytes; annotated copy, {ANNOTATION_SOCI_INDEX_DIGEST}={})",
            short(soci_digest)
        );
        // Same config and layers as one of the pushed manifests.
        let mut same = false;
        for original in originals {
            let (o, _, _) = json_manifest(client, original).await?;
            if o["config"] == manifest["config"] && o["layers"] == manifest["layers"] {
                same = true;
            }
        }
        if !same {
            problems.push(format!(
                "{platform}: the annotated manifest's config/layers match no pushed manifest"
            ));
        }
        let Some(soci_desc) = soci_for.get(mdigest) else {
            problems.push(format!(
                "{platform}: no SOCI index descriptor points at {mdigest}"
            ));
            continue;
        };
        if str_of(soci_desc, "digest") != soci_digest {
            problems.push(format!(
                "{platform}: the SOCI descriptor is {}, the manifest says {soci_digest}",
                str_of(soci_desc, "digest")
            ));
        }
        let (soci, ssize, _) = json_manifest(client, soci_digest).await?;
        let ztocs = soci["layers"].as_array().cloned().unwrap_or_default();
        println!(
            "   │   └─ SOCI index {soci_digest} ({ssize} bytes, {} zTOC(s), config {})",
            ztocs.len(),
            str_of(&soci["config"], "mediaType")
        );
        if ztocs.is_empty() {
            problems.push(format!("{platform}: empty SOCI index"));
        }
        platforms_indexed += 1;
        let image_layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        for z in &ztocs {
            let zdigest = str_of(z, "digest");
            let Some(ldigest) = annotation(z, ANNOTATION_IMAGE_LAYER_DIGEST) else {
                problems.push(format!(
                    "zTOC {zdigest} without {ANNOTATION_IMAGE_LAYER_DIGEST}"
                ));
                continue;
            };
            let lsize = image_layers
                .iter()
                .find(|l| str_of(l, "digest") == ldigest)
                .and_then(|l| l["size"].as_u64());
            let ztoc = client
                .get_blob_bytes(REPO, zdigest)
                .await
                .with_context(|| format!("fetching zTOC {zdigest}"))?;
            let layer = client
                .get_blob_bytes(REPO, ldigest)
                .await
                .with_context(|| format!("fetching layer {ldigest}"))?;
            let started = Instant::now();
            let report = soci_core::verify(&ztoc, &layer[..])
                .with_context(|| format!("verifying zTOC {zdigest} against layer {ldigest}"))?;
            let verify_s = started.elapsed().as_secs_f64();
            println!(
                "   │       └─ zTOC {zdigest} ({} bytes, span {}) for layer {} ({} gzip, {} tar, built in {})",
                ztoc.len(),
                annotation(z, ANNOTATION_SPAN_SIZE).unwrap_or("?"),
                short(ldigest),
                lsize
                    .map(mib)
                    .unwrap_or_else(|| "not in the manifest!".into()),
                uncompressed
                    .get(ldigest)
                    .copied()
                    .map(mib)
                    .unwrap_or_else(|| "?".into()),
                reports
                    .get(ldigest)
                    .and_then(|r| r.seconds)
                    .map(|s| format!("{s:.2} s"))
                    .unwrap_or_else(|| "an earlier run".into()),
            );
            if lsize.is_none() {
                problems.push(format!(
                    "zTOC {zdigest}: layer {ldigest} is not in the manifest"
                ));
            }
            if report.is_ok() {
                println!(
                    "   │           verify: OK ({} entries, {} spans checked, {verify_s:.2} s)",
                    report.entries_checked, report.spans_checked
                );
            } else {
                println!("   │           verify: FAILED ({verify_s:.2} s)");
                for p in &report.problems {
                    problems.push(format!("zTOC {zdigest} (layer {ldigest}): {p}"));
                }
            }
        }
        for l in &image_layers {
            let ld = str_of(l, "digest");
            if !ztocs
                .iter()
                .any(|z| annotation(z, ANNOTATION_IMAGE_LAYER_DIGEST) == Some(ld))
            {
                println!(
                    "   │       (layer {} {} gzip: no zTOC, {}; pulled normally)",
                    short(ld),
                    l["size"].as_u64().map(mib).unwrap_or_default(),
                    reports
                        .get(ld)
                        .map(|r| r.result.as_str())
                        .unwrap_or("left out when it was indexed")
                );
            }
        }
    }
    if platforms_indexed != originals.len() {
        problems.push(format!(
            "{platforms_indexed} platform(s) indexed, expected {}",
            originals.len()
        ));
    }
    Ok(problems)
}
