//! The parallel ranged fetch of large layers (`pipeline::fetch`) against a real `docker-registry`
//! (which honours `Range` on blob GETs) behind the fault-injecting proxy: the same zTOC bytes as
//! one stream, a store that ignores ranges, a chunk reset mid-body, a flipped byte, a wrong
//! `Content-Range`, presigned redirects that expire, cancellation, and bounded memory.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use soci_core::Compression;
use soci_index_generator::config::ParallelFetch;
use soci_index_generator::pipeline::fetch::{self, Blob, FetchReport};
use soci_index_generator::pipeline::layer::{self, LayerBuild, LayerOptions, LayerPlan};
use soci_index_generator::{
    Credentials, ImageRef, Indexer, IndexingOutcome, PipelineError, RegistryClient, RetryPolicy,
    error_chain,
};
use test_support::faults::{Fault, Rule, SIGNED_PREFIX, SIGNED_SECRET, Seen};
use test_support::image::Pushed;
use tokio::sync::mpsc;

/// The tests' chunks: small, so that a layer of a few hundred KiB has several.
const CHUNK: u64 = 64 * 1024;
const WINDOW: usize = 3;

fn small_chunks() -> ParallelFetch {
    ParallelFetch {
        min_size: 0,
        chunk_size: CHUNK,
        concurrency: WINDOW,
    }
}

/// The `Range` header of chunk `i` of a blob of `size` bytes.
fn chunk_range(i: u64, size: u64) -> String {
    let start = i * CHUNK;
    format!("bytes={start}-{}", ((i + 1) * CHUNK).min(size) - 1)
}

fn config_with(env: &Env, parallel: ParallelFetch) -> soci_index_generator::Config {
    let mut config = env.config();
    config.parallel_fetch = parallel;
    config
}

async fn run(
    env: &Env,
    parallel: ParallelFetch,
    repo: &str,
    pushed: &Pushed,
) -> Result<IndexingOutcome, PipelineError> {
    let run = run_with(
        env,
        config_with(env, parallel),
        repo,
        &pushed.digest,
        Some("v1"),
    );
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends on its own")
}

/// A one-layer image tagged `v1` (about 600 KiB of gzip: 10 chunks), and its layer.
async fn one_layer_image(env: &Env, repo: &str, seed: u64) -> (Pushed, LayerBlob) {
    let layer = LayerBlob::gzip(seed, 1200 * 1024);
    assert!(layer.blob.len() as u64 > 6 * CHUNK, "{}", layer.blob.len());
    let pushed = push_image(
        env,
        repo,
        Some("v1"),
        std::slice::from_ref(&layer),
        "amd64",
        false,
    )
    .await;
    (pushed, layer)
}

/// The GETs of `layer` so far.
fn layer_gets(env: &Env, layer: &LayerBlob) -> Vec<Seen> {
    let digest = layer.digest();
    env.proxy
        .seen()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains(&digest))
        .collect()
}

fn ranges(seen: &[Seen]) -> Vec<String> {
    seen.iter().filter_map(|r| r.range.clone()).collect()
}

/// The zTOC of `layer` in `repo`, built directly (no push) with `parallel`.
async fn build_ztoc(env: &Env, repo: &str, layer: &LayerBlob, parallel: ParallelFetch) -> Vec<u8> {
    let config = config_with(env, parallel);
    let options = LayerOptions {
        span_size: config.span_size,
        budget: config.memory_budget,
        build_tool: &config.build_tool,
        retry: RetryPolicy {
            attempts: config.retry_attempts,
            base_delay: config.retry_base_delay,
        },
        deadline_base: config.layer_deadline_base,
        min_bytes_per_second: config.layer_min_bytes_per_second,
        parallel_fetch: parallel,
    };
    let plan = LayerPlan {
        digest: layer.digest(),
        media_type: layer.media_type.clone(),
        size: layer.blob.len() as u64,
        compression: Compression::Gzip,
    };
    let client = Arc::new(
        RegistryClient::new(
            &format!("http://{}", env.proxy.addr),
            Credentials::Anonymous,
            options.retry,
        )
        .expect("client"),
    );
    match layer::build_layer(&client, repo, &plan, &options).await {
        Ok(LayerBuild::Built { ztoc, .. }) => ztoc.ztoc,
        Ok(other) => panic!("not built: {other:?}"),
        Err(e) => panic!("build failed: {}", error_chain(&e)),
    }
}

/// With the default settings, a layer over the threshold is fetched as 4 MiB ranges, and its
/// zTOC is byte for byte the one a single stream gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_layer_is_fetched_in_ranges_by_default_with_the_same_ztoc() {
    let env = Env::start().await;
    let repo = "large";
    let layer = LayerBlob::gzip(40, 72 << 20);
    let size = layer.blob.len() as u64;
    let defaults = env.config().parallel_fetch;
    assert!(
        size >= defaults.min_size && size > 3 * defaults.chunk_size,
        "{size}"
    );
    let pushed = push_image(
        &env,
        repo,
        Some("v1"),
        std::slice::from_ref(&layer),
        "amd64",
        false,
    )
    .await;
    assert_indexed(&run_with(&env, env.config(), repo, &pushed.digest, Some("v1")).await);
    check_v2(&env, repo, "v1", &pushed.digest).await;
    let chunks = size.div_ceil(defaults.chunk_size);
    let expected: Vec<String> = (0..chunks)
        .map(|i| {
            let start = i * defaults.chunk_size;
            let end = ((i + 1) * defaults.chunk_size).min(size) - 1;
            format!("bytes={start}-{end}")
        })
        .collect();
    let mut seen = ranges(&layer_gets(&env, &layer));
    seen.sort_by_key(|r| {
        r.trim_start_matches("bytes=")
            .split('-')
            .next()
            .and_then(|s| s.parse::<u64>().ok())
    });
    assert_eq!(seen, expected, "each chunk asked for once");

    let parallel = build_ztoc(&env, repo, &layer, defaults).await;
    let before = layer_gets(&env, &layer).len();
    let single = build_ztoc(&env, repo, &layer, ParallelFetch::off()).await;
    let single_gets = layer_gets(&env, &layer)[before..].to_vec();
    assert_eq!(single_gets.len(), 1, "one stream: {single_gets:?}");
    assert_eq!(single_gets[0].range, None);
    assert!(parallel == single, "the same zTOC bytes either way");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_chunks_give_the_same_ztoc_and_each_chunk_is_asked_for_once() {
    let env = Env::start().await;
    let (_, layer) = one_layer_image(&env, "chunks", 41).await;
    let size = layer.blob.len() as u64;
    let parallel = build_ztoc(&env, "chunks", &layer, small_chunks()).await;
    let mut seen = ranges(&layer_gets(&env, &layer));
    seen.sort();
    let mut expected: Vec<String> = (0..size.div_ceil(CHUNK))
        .map(|i| chunk_range(i, size))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
    let single = build_ztoc(&env, "chunks", &layer, ParallelFetch::off()).await;
    assert!(parallel == single, "the same zTOC bytes either way");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_ranges_gets_one_stream_read_once() {
    let env = Env::start().await;
    let (pushed, layer) = one_layer_image(&env, "norange", 42).await;
    env.proxy.ignore_range(true);
    assert_indexed(&run(&env, small_chunks(), "norange", &pushed).await);
    check_v2(&env, "norange", "v1", &pushed.digest).await;
    let gets = layer_gets(&env, &layer);
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(
        ranges(&gets),
        vec![chunk_range(0, layer.blob.len() as u64)],
        "the 200 answer to the first ranged request is the whole blob, read once: {gets:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_in_one_chunk_refetches_only_the_rest_of_that_chunk() {
    let env = Env::start().await;
    let (pushed, layer) = one_layer_image(&env, "chunkreset", 43).await;
    let size = layer.blob.len() as u64;
    let broken = chunk_range(4, size);
    env.proxy
        .add(Rule::new("GET", &layer.digest(), 1, Fault::ResetAfter(20_000)).with_range(&broken));
    assert_indexed(&run(&env, small_chunks(), "chunkreset", &pushed).await);
    check_v2(&env, "chunkreset", "v1", &pushed.digest).await;
    let mut seen = ranges(&layer_gets(&env, &layer));
    seen.sort();
    let mut expected: Vec<String> = (0..size.div_ceil(CHUNK))
        .map(|i| chunk_range(i, size))
        .collect();
    // The reset cut the chunk somewhere after byte 20 000 of it (the proxy forwards whole
    // pieces up to there): the retry asks for the rest of that chunk, nothing else.
    let retried: Vec<&String> = seen.iter().filter(|r| !expected.contains(r)).collect();
    assert_eq!(retried.len(), 1, "{seen:?}");
    let start: u64 = retried[0]
        .trim_start_matches("bytes=")
        .split('-')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("a range");
    assert!(
        start > 4 * CHUNK && start <= 4 * CHUNK + 20_000,
        "{}",
        retried[0]
    );
    assert!(retried[0].ends_with(&format!("-{}", 5 * CHUNK - 1)));
    expected.push(retried[0].clone());
    expected.sort();
    assert_eq!(seen, expected, "every other chunk asked for once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_chunk_is_a_failed_download_never_a_partial_index() {
    let env = Env::start().await;
    let (pushed, layer) = one_layer_image(&env, "chunkflip", 44).await;
    let flipped = chunk_range(3, layer.blob.len() as u64);
    env.proxy
        .add(Rule::new("GET", &layer.digest(), 100, Fault::FlipByte(1000)).with_range(&flipped));
    let o = run(&env, small_chunks(), "chunkflip", &pushed).await;
    let message = assert_failed_untagged(&env, "chunkflip", &o).await;
    assert!(message.contains(&layer.digest()), "{message}");
    assert!(message.contains("digest"), "{message}");
    // Downloaded again (the layer's retries), never indexed from the wrong bytes.
    let flips = layer_gets(&env, &layer)
        .iter()
        .filter(|r| r.answer.contains("FlipByte"))
        .count();
    assert!(flips >= 2, "{flips}");

    // Once only: the second download is right, and the layer is indexed.
    let (pushed, layer) = one_layer_image(&env, "chunkflip1", 45).await;
    let flipped = chunk_range(3, layer.blob.len() as u64);
    env.proxy
        .add(Rule::new("GET", &layer.digest(), 1, Fault::FlipByte(1000)).with_range(&flipped));
    assert_indexed(&run(&env, small_chunks(), "chunkflip1", &pushed).await);
    check_v2(&env, "chunkflip1", "v1", &pushed.digest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_range_ends_parallel_mode_and_one_stream_continues() {
    let env = Env::start().await;
    let (pushed, layer) = one_layer_image(&env, "badrange", 46).await;
    let size = layer.blob.len() as u64;
    // Chunk 2's answer claims to be chunk 3.
    let lie = Fault::SetHeader {
        name: "Content-Range".into(),
        value: format!("bytes {}-{}/{size}", 3 * CHUNK, 4 * CHUNK - 1),
    };
    env.proxy
        .add(Rule::new("GET", &layer.digest(), 1, lie).with_range(&chunk_range(2, size)));
    assert_indexed(&run(&env, small_chunks(), "badrange", &pushed).await);
    check_v2(&env, "badrange", "v1", &pushed.digest).await;
    let seen = ranges(&layer_gets(&env, &layer));
    assert!(
        seen.contains(&format!("bytes={}-", 2 * CHUNK)),
        "one stream from the first byte not handed on: {seen:?}"
    );

    // A total that is not the descriptor's size is a wrong blob: a clear failure, no fallback.
    let (pushed, layer) = one_layer_image(&env, "badtotal", 47).await;
    let size = layer.blob.len() as u64;
    let lie = Fault::SetHeader {
        name: "Content-Range".into(),
        value: format!("bytes 0-{}/{}", CHUNK - 1, size + 7),
    };
    env.proxy
        .add(Rule::new("GET", &layer.digest(), 100, lie).with_range(&chunk_range(0, size)));
    let o = run(&env, small_chunks(), "badtotal", &pushed).await;
    let message = assert_failed_untagged(&env, "badtotal", &o).await;
    assert!(
        message.contains(&layer.digest()) && message.contains(&format!("{}", size + 7)),
        "{message}"
    );
    assert!(message.contains("descriptor"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_go_to_the_presigned_url_which_is_resolved_again_when_refused() {
    let env = Env::start().await;
    env.proxy.redirect_blobs(true);
    let (pushed, layer) = one_layer_image(&env, "presigned", 48).await;
    let size = layer.blob.len() as u64;
    let expired = Fault::Status {
        status: 403,
        retry_after: None,
        body: "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            .into(),
    };
    env.proxy
        .add(Rule::new("GET", SIGNED_PREFIX, 1, expired).with_range(&chunk_range(5, size)));
    // With credentials, to see that they never go to the presigned URL.
    let config = config_with(&env, small_chunks());
    let client = RegistryClient::new(
        &format!("http://{}", env.proxy.addr),
        Credentials::Basic {
            username: "robot".into(),
            password: "registry-password".into(),
        },
        RetryPolicy {
            attempts: config.retry_attempts,
            base_delay: config.retry_base_delay,
        },
    )
    .expect("client");
    let image = ImageRef {
        repository: "presigned".into(),
        digest: Some(pushed.digest.clone()),
        tag: Some("v1".into()),
    };
    assert_indexed(&Indexer::new(Arc::new(client), config).run(&image).await);
    check_v2(&env, "presigned", "v1", &pushed.digest).await;
    let gets = layer_gets(&env, &layer);
    let (signed, registry): (Vec<&Seen>, Vec<&Seen>) =
        gets.iter().partition(|r| r.path.starts_with(SIGNED_PREFIX));
    // The first request, then one more after the 403: the registry is asked twice in all.
    assert_eq!(registry.len(), 2, "{gets:?}");
    assert!(registry.iter().all(|r| r.authorization.is_some()));
    // (reqwest itself drops credentials when a redirect changes host, as ECR's to S3 does; the
    // proxy redirects to itself, so only the requests sent to the presigned URL directly,
    // every chunk but the redirected first one and the probe, tell.)
    let direct: Vec<&&Seen> = signed
        .iter()
        .filter(|r| {
            r.range != Some(chunk_range(0, size)) && r.range.as_deref() != Some("bytes=0-0")
        })
        .collect();
    assert!(direct.len() > 5, "{direct:?}");
    assert!(
        direct.iter().all(|r| r.authorization.is_none()),
        "no registry credentials sent to the blob store: {direct:?}"
    );
    let chunks = size.div_ceil(CHUNK) as usize;
    // Every chunk, the refused one twice, and the 1-byte probe of the second resolution.
    assert_eq!(signed.len(), chunks + 2, "{signed:?}");

    // Refused every time: a failure that names the layer and never shows the signature.
    let (pushed, layer) = one_layer_image(&env, "presigned-denied", 49).await;
    let denied = Fault::Status {
        status: 403,
        retry_after: None,
        body: "<Error><Code>AccessDenied</Code></Error>".into(),
    };
    env.proxy.add(
        Rule::new("GET", SIGNED_PREFIX, 1000, denied)
            .with_range(&chunk_range(5, layer.blob.len() as u64)),
    );
    let o = run(&env, small_chunks(), "presigned-denied", &pushed).await;
    let message = assert_failed_untagged(&env, "presigned-denied", &o).await;
    assert!(
        message.contains(&layer.digest()) && message.contains("403"),
        "{message}"
    );
    assert!(!message.contains(SIGNED_SECRET), "{message}");
    assert!(!message.contains("X-Amz-"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_stops_every_chunk_request() {
    let env = Env::start().await;
    let (pushed, layer) = one_layer_image(&env, "chunkdrip", 50).await;
    let drip = Fault::Drip {
        after: 1000,
        interval: Duration::from_millis(200),
    };
    env.proxy.add(Rule::new("GET", &layer.digest(), 100, drip));
    let mut config = config_with(&env, small_chunks());
    config.layer_deadline_base = Duration::from_secs(2);
    config.layer_min_bytes_per_second = 1 << 30;
    let run = run_with(&env, config, "chunkdrip", &pushed.digest, Some("v1"));
    let o = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the deadline ends the run");
    let message = assert_failed_untagged(&env, "chunkdrip", &o).await;
    assert!(message.contains("deadline"), "{message}");
    let dripping = layer_gets(&env, &layer).len();
    assert!(dripping >= WINDOW, "the window was in flight: {dripping}");
    wait_for_no_open_bodies(&env, "a chunk request kept running after the layer failed").await;
}

/// A reader much slower than the network: the fetch holds at most `concurrency` chunks,
/// whatever the layer's size, and still hands on every byte in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_within_the_window_with_a_slow_reader() {
    let env = Env::start().await;
    let layer = LayerBlob::gzip(51, 4 << 20);
    let size = layer.blob.len() as u64;
    assert!(size > 20 * CHUNK, "{size}");
    push_blob(&env, "window", &layer.media_type, &layer.blob).await;
    let blob = Blob {
        repo: "window".into(),
        digest: layer.digest(),
        size,
        sha256_checked_by_reader: false,
    };
    let (tx, mut rx) = mpsc::channel::<fetch::Chunk>(1);
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend_from_slice(&chunk.expect("no error sent").expect("bytes"));
            // Slower than loopback by far: the window fills while the reader lags.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        out
    });
    let retry = RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(10),
    };
    let report: FetchReport = fetch::fetch(&env.direct, &blob, &small_chunks(), retry, &tx)
        .await
        .expect("fetched");
    drop(tx);
    let out = reader.await.expect("reader");
    assert!(out == layer.blob, "every byte, in order");
    assert_eq!(report.ranged_chunks, size.div_ceil(CHUNK), "{report:?}");
    assert_eq!(report.fallback, None);
    assert!(
        report.max_buffered <= WINDOW as u64 * CHUNK,
        "at most {WINDOW} chunks held: {report:?}"
    );
    assert!(
        report.max_buffered > CHUNK,
        "the window was used (more than one chunk ahead of the reader): {report:?}"
    );
}
