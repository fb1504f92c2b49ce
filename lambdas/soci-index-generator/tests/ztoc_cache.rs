//! The zTOC cache through the real pipeline (docker-registry behind the fault proxy): a layer
//! indexed once is not downloaded again for another image, and the zTOC pushed is byte for byte
//! a fresh build's; a corrupt or foreign cache entry is a miss; a cache that cannot be read or
//! written never fails an invocation.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::*;
use soci_core::Compression;
use soci_index_generator::config::Config;
use soci_index_generator::pipeline::cache::{ANNOTATION_LAYER_DIGEST, CacheKey};
use soci_index_generator::pipeline::{CacheUse, IndexingOutcome, LayerReport};
use test_support::faults::{Fault, Rule};

const CACHE: &str = "soci-ztoc-cache";

/// The base layer every image shares, and a small unique one per image (both indexed).
fn base() -> LayerBlob {
    LayerBlob::gzip(1, 900 * 1024)
}

fn unique(seed: u64) -> LayerBlob {
    LayerBlob::gzip(seed, 300 * 1024)
}

fn cached_config(env: &Env) -> Config {
    Config {
        ztoc_cache_repository: Some(CACHE.into()),
        disable_xattrs: true,
        ..env.config()
    }
}

/// Indexes `repo:v1` (pushed with `layers`) with `config`: its layer reports by digest.
async fn index(
    env: &Env,
    config: Config,
    repo: &str,
    layers: &[LayerBlob],
) -> BTreeMap<String, LayerReport> {
    let image = push_image(env, repo, Some("v1"), layers, "amd64", false).await;
    let outcome = run_with(env, config, repo, &image.digest, Some("v1"))
        .await
        .unwrap_or_else(|e| panic!("indexing {repo}: {e}"));
    check_v2(env, repo, "v1", &image.digest).await;
    let IndexingOutcome::Indexed { layers, .. } = outcome else {
        panic!("{repo}: {outcome:?}");
    };
    layers.into_iter().map(|l| (l.digest.clone(), l)).collect()
}

/// The zTOC bytes `repo` got for the layer in `report`.
async fn ztoc(env: &Env, repo: &str, report: &LayerReport) -> Bytes {
    let digest = report.ztoc_digest.as_deref().expect("a zTOC");
    env.direct.get_blob_bytes(repo, digest).await.expect("zTOC")
}

/// `GET`s of `layer`'s blob that reached the proxy (any repository).
async fn layer_downloads(env: &Env, layer: &LayerBlob) -> usize {
    let needle = format!("/blobs/{}", layer.digest());
    let log = env.proxy.log().await;
    log.iter()
        .filter(|l| l.starts_with("GET ") && l.contains(&needle))
        .count()
}

fn key(config: &Config, layer: &LayerBlob) -> String {
    CacheKey {
        layer_digest: layer.digest(),
        span_size: config.span_size,
        compression: Compression::Gzip,
        build_tool: config.build_tool.clone(),
    }
    .tag()
    .expect("a sha256 layer has a key tag")
}

/// The image's SOCI index, as the V2 index `repo:v1-soci` lists it (its digest and bytes).
async fn soci_index(env: &Env, repo: &str) -> (String, Bytes) {
    let (_, index, _) = manifest(env, repo, "v1-soci").await;
    let digest = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|d| d["artifactType"] == SOCI_V2)
        .and_then(|d| d["digest"].as_str())
        .expect("a SOCI index")
        .to_string();
    let (bytes, _, _) = manifest(env, repo, &digest).await;
    (digest, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_base_layer_is_downloaded_once_and_its_ztoc_is_a_fresh_builds() {
    let env = Env::start().await;
    let (base, first, second) = (base(), unique(2), unique(3));

    let a = index(&env, cached_config(&env), "cache/a", &[base.clone(), first]).await;
    assert_eq!(a[&base.digest()].ztoc_cache, Some(CacheUse::Miss));
    assert_eq!(layer_downloads(&env, &base).await, 1);
    assert!(
        tags(&env, CACHE)
            .await
            .contains(&key(&cached_config(&env), &base)),
        "the base layer's zTOC was cached: {:?}",
        tags(&env, CACHE).await
    );

    let b = index(
        &env,
        cached_config(&env),
        "cache/b",
        &[base.clone(), second.clone()],
    )
    .await;
    assert_eq!(b[&base.digest()].ztoc_cache, Some(CacheUse::Hit));
    assert_eq!(b[&second.digest()].ztoc_cache, Some(CacheUse::Miss));
    assert_eq!(
        layer_downloads(&env, &base).await,
        1,
        "the second image's base layer was not downloaded: {:?}",
        env.proxy.log().await
    );

    // The same image indexed without a cache: the same zTOC bytes and the same SOCI index
    // (its xattr decisions included), so the image's repository gets what a build gives.
    let mut fresh_config = cached_config(&env);
    fresh_config.ztoc_cache_repository = None;
    let fresh = index(&env, fresh_config, "cache/fresh", &[base.clone(), second]).await;
    assert_eq!(fresh[&base.digest()].ztoc_cache, None);
    assert_eq!(
        ztoc(&env, "cache/b", &b[&base.digest()]).await,
        ztoc(&env, "cache/fresh", &fresh[&base.digest()]).await
    );
    assert_eq!(
        soci_index(&env, "cache/b").await,
        soci_index(&env, "cache/fresh").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_foreign_entry_is_a_miss_and_the_index_is_still_right() {
    let env = Env::start().await;
    let (base, first) = (base(), unique(2));
    let config = cached_config(&env);
    let fresh = index(
        &env,
        config.clone(),
        "cache/a",
        &[base.clone(), first.clone()],
    )
    .await;
    let fresh_ztoc = ztoc(&env, "cache/a", &fresh[&base.digest()]).await;

    // 1. The base layer's tag names an entry whose zTOC is another layer's (its annotations
    //    claim the base layer): the zTOC records another compressed size.
    let (_, mut foreign, _) = manifest(&env, CACHE, &key(&config, &first)).await;
    foreign["annotations"][ANNOTATION_LAYER_DIGEST] = base.digest().into();
    let bytes = serde_json::to_vec(&foreign).expect("json");
    env.direct
        .put_manifest(
            CACHE,
            &key(&config, &base),
            OCI_MANIFEST,
            Bytes::from(bytes),
        )
        .await
        .expect("overwrite the entry");
    let b = index(&env, config.clone(), "cache/b", &[base.clone(), unique(4)]).await;
    assert_eq!(b[&base.digest()].ztoc_cache, Some(CacheUse::Miss));
    assert_eq!(ztoc(&env, "cache/b", &b[&base.digest()]).await, fresh_ztoc);
    assert_eq!(layer_downloads(&env, &base).await, 2);

    // The miss rewrote the entry: the next image finds it again.
    let c = index(&env, config.clone(), "cache/c", &[base.clone(), unique(3)]).await;
    assert_eq!(c[&base.digest()].ztoc_cache, Some(CacheUse::Hit));
    assert_eq!(layer_downloads(&env, &base).await, 2);

    // 2. The entry's blob served with one byte changed: its digest no longer matches.
    let entry = manifest(&env, CACHE, &key(&config, &base)).await.1;
    let blob = entry["layers"][0]["digest"].as_str().expect("digest");
    env.proxy.add(Rule::new(
        "GET",
        &format!("/v2/{CACHE}/blobs/{blob}"),
        1000,
        Fault::FlipByte(100),
    ));
    let d = index(&env, config, "cache/d", &[base.clone(), unique(5)]).await;
    assert_eq!(d[&base.digest()].ztoc_cache, Some(CacheUse::Miss));
    assert_eq!(ztoc(&env, "cache/d", &d[&base.digest()]).await, fresh_ztoc);
    assert_eq!(layer_downloads(&env, &base).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_that_cannot_be_read_or_written_never_fails_indexing() {
    let env = Env::start().await;
    let base = base();
    let config = cached_config(&env);
    let denied = || Fault::Status {
        status: 403,
        retry_after: None,
        body: r#"{"errors":[{"code":"DENIED","message":"injected"}]}"#.into(),
    };

    // Writes refused: indexed, nothing cached.
    for method in ["POST", "PUT"] {
        env.proxy
            .add(Rule::new(method, &format!("/v2/{CACHE}/"), 1000, denied()));
    }
    let a = index(&env, config.clone(), "cache/a", &[base.clone(), unique(2)]).await;
    assert!(a.values().all(|l| l.ztoc_cache == Some(CacheUse::Miss)));
    assert!(tags(&env, CACHE).await.is_empty());
    assert!(
        refused(&env, "403 POST").await > 0,
        "the cache was written to: {:?}",
        env.proxy.log().await
    );

    // Unreachable (every request answered 503, retries included): indexed, built.
    for method in ["GET", "HEAD", "POST", "PUT"] {
        env.proxy.add(Rule::new(
            method,
            &format!("/v2/{CACHE}/"),
            100_000,
            Fault::Status {
                status: 503,
                retry_after: None,
                body: "unavailable".into(),
            },
        ));
    }
    let b = index(&env, config, "cache/b", &[base.clone(), unique(3)]).await;
    assert_eq!(b[&base.digest()].ztoc_cache, Some(CacheUse::Miss));
    assert_eq!(layer_downloads(&env, &base).await, 2);
    assert!(refused(&env, "503 GET").await > 0, "the cache was read");
}

/// Requests to the cache that the proxy answered with `status_method` (`403 POST`).
async fn refused(env: &Env, status_method: &str) -> usize {
    let prefix = format!("{status_method} /v2/{CACHE}/");
    let log = env.proxy.log().await;
    log.iter().filter(|l| l.starts_with(&prefix)).count()
}
