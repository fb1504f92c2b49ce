//! The pipeline against a real `docker-registry` behind the fault-injecting proxy
//! ([`test_support::faults`]): every fault ends in a correct index (checked by the one SOCI-graph
//! checker), or in a failed run that leaves no `<tag>-soci` on an incomplete graph.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use common::*;
use sha2::Digest as _;
use soci_index_generator::registry::auth::{EcrCredentials, EcrToken};
use soci_index_generator::{
    Credentials, ImageRef, Indexer, IndexingOutcome, PipelineError, RegistryClient, RetryPolicy,
    error_chain,
};
use test_support::faults::{Fault, Gate, RetryAfter, Rule, SIGNED_PREFIX, SIGNED_SECRET, Seen};
use test_support::image::Pushed;

/// Indexes `repo@digest` pushed as `v1`, giving up (test failure) after a minute.
async fn run_v1(env: &Env, repo: &str, digest: &str) -> Result<IndexingOutcome, PipelineError> {
    let run = run_with(env, env.config(), repo, digest, Some("v1"));
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends on its own")
}

/// A one-layer image tagged `v1`, and its layer.
async fn one_layer_image(env: &Env, repo: &str, seed: u64) -> (Pushed, LayerBlob) {
    let layer = LayerBlob::gzip(seed, 700 * 1024);
    assert!(layer.blob.len() > 200_000, "{}", layer.blob.len());
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

/// Injects `fault` into the next `times` downloads of `layer`.
fn on_layer(env: &Env, layer: &LayerBlob, times: usize, fault: Fault) {
    env.proxy
        .add(Rule::new("GET", &layer.digest(), times, fault));
}

/// The requests for `layer` so far.
fn layer_requests(env: &Env, layer: &LayerBlob) -> Vec<Seen> {
    let digest = layer.digest();
    env.proxy
        .seen()
        .into_iter()
        .filter(|r| r.path.contains(&digest))
        .collect()
}

/// An amd64 image of raw layer descriptors (digests and sizes as given), tagged `tag`.
async fn push_raw_image(
    env: &Env,
    repo: &str,
    tag: &str,
    layers: Vec<serde_json::Value>,
) -> Pushed {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config = push_blob(env, repo, OCI_CONFIG, config).await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).expect("json");
    put_manifest(env, repo, Some(tag), OCI_MANIFEST, bytes).await
}

/// The layers of `v1-soci`'s one platform, after every check of the graph.
async fn indexed_layers(env: &Env, repo: &str, original: &str) -> Vec<String> {
    let platforms = check_v2(env, repo, "v1", original).await;
    platforms["linux/amd64"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_body_is_continued_with_range() {
    let env = Env::start().await;
    let (pushed, layer) = one_layer_image(&env, "cut", 1).await;
    on_layer(&env, &layer, 1, Fault::TruncateAfter(100_000));
    let o = run_v1(&env, "cut", &pushed.digest).await;
    assert_indexed(&o);
    assert_eq!(
        indexed_layers(&env, "cut", &pushed.digest).await,
        vec![layer.digest()]
    );
    let resumed: Vec<String> = layer_requests(&env, &layer)
        .into_iter()
        .filter_map(|r| r.range)
        .collect();
    assert_eq!(resumed, vec!["bytes=100000-"], "continued where it stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_on_a_store_without_range_restarts_the_download() {
    let env = Env::start().await;
    let (pushed, layer) = one_layer_image(&env, "reset", 2).await;
    env.proxy.ignore_range(true);
    on_layer(&env, &layer, 1, Fault::ResetAfter(150_000));
    let o = run_v1(&env, "reset", &pushed.digest).await;
    assert_indexed(&o);
    assert_eq!(
        indexed_layers(&env, "reset", &pushed.digest).await,
        vec![layer.digest()]
    );
    let gets = layer_requests(&env, &layer).len();
    assert_eq!(gets, 2, "one reset, one whole answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_downloaded_again_never_left_out() {
    let env = Env::start().await;
    let (pushed, layer) = one_layer_image(&env, "flip", 3).await;
    // Two corrupted answers (in the gzip header, then mid-body), then the right bytes.
    for offset in [0, 50_000] {
        on_layer(&env, &layer, 1, Fault::FlipByte(offset));
    }
    let o = run_v1(&env, "flip", &pushed.digest).await;
    assert_indexed(&o);
    assert_eq!(
        indexed_layers(&env, "flip", &pushed.digest).await,
        vec![layer.digest()]
    );

    // Corrupted every time: the run fails naming the layer, and tags nothing.
    let (pushed, layer) = one_layer_image(&env, "flipped", 4).await;
    on_layer(&env, &layer, 100, Fault::FlipByte(50_000));
    let o = run_v1(&env, "flipped", &pushed.digest).await;
    let message = assert_failed_untagged(&env, "flipped", &o).await;
    assert!(message.contains(&layer.digest()), "{message}");
    assert!(message.contains("digest"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_truncated_every_time_fails_the_run() {
    let env = Env::start().await;
    let (pushed, layer) = one_layer_image(&env, "short", 5).await;
    on_layer(&env, &layer, 100, Fault::TruncateAfter(20_000));
    let o = run_v1(&env, "short", &pushed.digest).await;
    let message = assert_failed_untagged(&env, "short", &o).await;
    assert!(message.contains(&layer.digest()), "{message}");
    assert!(message.contains("broke off"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_obeyed_in_both_forms() {
    let env = Env::start().await;
    let (pushed, layer) = one_layer_image(&env, "busy", 6).await;
    let status = |status, retry_after| Fault::Status {
        status,
        retry_after: Some(retry_after),
        body: "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\"}]}".into(),
    };
    env.proxy.add(Rule::new(
        "GET",
        "/manifests/sha256",
        1,
        status(429, RetryAfter::Seconds(1)),
    ));
    // An HTTP date has whole seconds: 3 s from now is a wait of more than 2 s.
    on_layer(&env, &layer, 1, status(503, RetryAfter::Date(3)));
    let started = Instant::now();
    let o = run_v1(&env, "busy", &pushed.digest).await;
    assert_indexed(&o);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3),
        "both waits honoured: {waited:?}"
    );
    check_v2(&env, "busy", "v1", &pushed.digest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drip_ends_at_the_layer_deadline_and_stops_the_download() {
    let env = Env::start().await;
    let (pushed, layer) = one_layer_image(&env, "drip", 7).await;
    let drip = Fault::Drip {
        after: 10_000,
        interval: Duration::from_millis(200),
    };
    on_layer(&env, &layer, 100, drip);
    let mut config = env.config();
    config.layer_deadline_base = Duration::from_secs(2);
    config.layer_min_bytes_per_second = 1 << 30;
    let started = Instant::now();
    let run = run_with(&env, config, "drip", &pushed.digest, Some("v1"));
    let o = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the deadline ends the run");
    let message = assert_failed_untagged(&env, "drip", &o).await;
    assert!(message.contains("deadline"), "{message}");
    assert!(message.contains(&layer.digest()), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    wait_for_no_open_bodies(&env, "a download kept running after the run ended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_layer_aborts_the_other_downloads() {
    let env = Env::start().await;
    let repo = "abort";
    let bad = LayerBlob::gzip(8, 700 * 1024);
    let slow = LayerBlob::gzip(9, 700 * 1024);
    let pushed = push_image(
        &env,
        repo,
        Some("v1"),
        &[slow.clone(), bad.clone()],
        "amd64",
        false,
    )
    .await;
    let drip = Fault::Drip {
        after: 10_000,
        interval: Duration::from_millis(100),
    };
    on_layer(&env, &slow, 100, drip);
    let gone = Fault::Status {
        status: 404,
        retry_after: None,
        body: "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\"}]}".into(),
    };
    // The failure comes once the slow download is under way.
    let mut config = env.config();
    config.concurrency = 2;
    on_layer(&env, &bad, 100, gone);
    let started = Instant::now();
    let run = run_with(&env, config, repo, &pushed.digest, Some("v1"));
    let o = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the failure ends the run");
    let message = assert_failed_untagged(&env, repo, &o).await;
    assert!(
        message.contains(&bad.digest()) && message.contains("404"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    wait_for_no_open_bodies(&env, "a download kept running after the run ended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_redirects_work_and_their_secrets_never_reach_errors() {
    let env = Env::start().await;
    env.proxy.redirect_blobs(true);
    let (pushed, layer) = one_layer_image(&env, "s3", 10).await;
    let o = run_v1(&env, "s3", &pushed.digest).await;
    assert_indexed(&o);
    check_v2(&env, "s3", "v1", &pushed.digest).await;
    assert!(
        env.proxy
            .seen()
            .iter()
            .any(|r| r.path.starts_with(SIGNED_PREFIX) && r.path.contains(&layer.digest())),
        "the layer came from the presigned URL"
    );

    for (repo, seed, fault) in [
        (
            "s3-denied",
            11,
            Fault::Status {
                status: 403,
                retry_after: None,
                body: "<Error><Code>AccessDenied</Code></Error>".into(),
            },
        ),
        ("s3-reset", 12, Fault::ResetAfter(1000)),
    ] {
        let (pushed, _) = one_layer_image(&env, repo, seed).await;
        env.proxy.add(Rule::new("GET", SIGNED_PREFIX, 100, fault));
        let o = run_v1(&env, repo, &pushed.digest).await;
        let message = assert_failed_untagged(&env, repo, &o).await;
        assert!(!message.contains(SIGNED_SECRET), "{message}");
        assert!(!message.contains("X-Amz-"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_puts_answered_500() {
    let env = Env::start().await;
    let server_error = || Fault::Status {
        status: 500,
        retry_after: None,
        body: "{\"errors\":[{\"code\":\"UNKNOWN\"}]}".into(),
    };
    let (pushed, _) = one_layer_image(&env, "put500", 13).await;
    env.proxy
        .add(Rule::new("PUT", "/manifests/", 2, server_error()));
    assert_indexed(&run_v1(&env, "put500", &pushed.digest).await);
    check_v2(&env, "put500", "v1", &pushed.digest).await;

    let (pushed, _) = one_layer_image(&env, "put500-tag", 14).await;
    env.proxy
        .add(Rule::new("PUT", "/manifests/v1-soci", 100, server_error()));
    let o = run_v1(&env, "put500-tag", &pushed.digest).await;
    let message = assert_failed_untagged(&env, "put500-tag", &o).await;
    assert!(
        message.contains("500") && message.contains("v1-soci"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_manifest_is_refused() {
    let env = Env::start().await;
    let (pushed, _) = one_layer_image(&env, "huge", 15).await;
    let huge = Fault::Status {
        status: 200,
        retry_after: None,
        body: format!("{{\"pad\":\"{}\"}}", "x".repeat(5 << 20)),
    };
    env.proxy.add(Rule::new("GET", "/manifests/", 1, huge));
    let o = run_v1(&env, "huge", &pushed.digest).await;
    let message = assert_failed_untagged(&env, "huge", &o).await;
    assert!(message.contains("4194304-byte limit"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_ecr_token_answered_403_is_refreshed_once() {
    let env = Env::start().await;
    let (pushed, _) = one_layer_image(&env, "ecr", 16).await;
    let fetched = Arc::new(AtomicUsize::new(0));
    let counter = fetched.clone();
    let credentials = EcrCredentials::from_fetcher(Box::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            Ok(EcrToken {
                user: "AWS".into(),
                password: format!("token-{n}"),
                expires: SystemTime::now() + Duration::from_secs(12 * 3600),
            })
        })
    }));
    let config = env.config();
    let retry = RetryPolicy {
        attempts: config.retry_attempts,
        base_delay: config.retry_base_delay,
    };
    let client = RegistryClient::new(
        &format!("http://{}", env.proxy.addr),
        Credentials::Ecr(credentials),
        retry,
    )
    .expect("client");
    let denied = Fault::Status {
        status: 403,
        retry_after: None,
        body: "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"Your authorization token has expired. Reauthenticate and try again.\"}]}".into(),
    };
    env.proxy.add(Rule::new("GET", "/manifests/", 1, denied));
    let image = ImageRef {
        repository: "ecr".into(),
        digest: Some(pushed.digest.clone()),
        tag: Some("v1".into()),
    };
    let o = Indexer::new(Arc::new(client), config).run(&image).await;
    assert_indexed(&o);
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        2,
        "one new token after the 403"
    );
    let basic = |password: &str| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
        format!("Basic {token}")
    };
    let seen = env.proxy.seen();
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(basic("token-1").as_str())
    );
    assert_eq!(
        seen[1].authorization.as_deref(),
        Some(basic("token-2").as_str())
    );
    check_v2(&env, "ecr", "v1", &pushed.digest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_event_never_moves_the_index_tag_back() {
    let env = Env::start().await;
    let repo = "late";
    let a = push_image(
        &env,
        repo,
        Some("latest"),
        &[LayerBlob::gzip(17, 600 * 1024)],
        "amd64",
        false,
    )
    .await;
    let b = push_image(
        &env,
        repo,
        Some("latest"),
        &[LayerBlob::gzip(18, 600 * 1024)],
        "amd64",
        false,
    )
    .await;
    let o = run_with(&env, env.config(), repo, &b.digest, Some("latest")).await;
    assert_indexed(&o);
    let before = env.proxy.writes();
    let late = run_with(&env, env.config(), repo, &a.digest, Some("latest"))
        .await
        .expect("not an error: retrying cannot change it");
    assert_eq!(late.status(), "superseded", "{late:?}");
    let json = serde_json::to_value(&late).expect("json");
    assert_eq!(json["current_digest"], b.digest.as_str());
    assert_eq!(
        env.proxy.writes(),
        before,
        "nothing pushed for the late event"
    );
    check_v2(&env, repo, "latest", &b.digest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_indexed_while_an_older_run_writes_the_index_tag_keeps_the_index_tag() {
    // A passes the check before tagging; B is pushed and fully indexed before A's tag write
    // lands, which points `latest-soci` back at A's conversion: A's run must notice and put it
    // back on B.
    let env = Env::start().await;
    let repo = "race";
    let a = push_image(
        &env,
        repo,
        Some("latest"),
        &[LayerBlob::gzip(21, 600 * 1024)],
        "amd64",
        false,
    )
    .await;
    let gate = Arc::new(Gate::default());
    env.proxy.add(Rule::new(
        "PUT",
        "/manifests/latest-soci",
        1,
        Fault::Hold(gate.clone()),
    ));
    let older = run_with(&env, env.config(), repo, &a.digest, Some("latest"));
    let newer = async {
        gate.arrived().await;
        let b = push_image(
            &env,
            repo,
            Some("latest"),
            &[LayerBlob::gzip(22, 600 * 1024)],
            "amd64",
            false,
        )
        .await;
        assert_indexed(&run_with(&env, env.config(), repo, &b.digest, Some("latest")).await);
        gate.open();
        b
    };
    let (older, b) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(older, newer)
    })
    .await
    .expect("both runs end");
    let older = older.expect("not an error");
    assert_eq!(older.status(), "superseded", "{older:?}");
    let json = serde_json::to_value(&older).expect("json");
    assert_eq!(json["current_digest"], b.digest.as_str());
    check_v2(&env, repo, "latest", &b.digest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_missing_a_planned_layer_is_not_already_indexed() {
    let env = Env::start().await;
    let repo = "partial";
    let small = LayerBlob::gzip(19, 300 * 1024);
    let large = LayerBlob::gzip(20, 900 * 1024);
    let pushed = push_image(
        &env,
        repo,
        Some("v1"),
        &[small.clone(), large.clone()],
        "amd64",
        false,
    )
    .await;
    // An earlier run that left `small` out (here: a higher minimum size).
    let mut earlier = env.config();
    earlier.min_layer_size = small.blob.len() as u64 + 1;
    assert_indexed(&run_with(&env, earlier, repo, &pushed.digest, Some("v1")).await);
    assert_eq!(
        indexed_layers(&env, repo, &pushed.digest).await,
        vec![large.digest()]
    );
    let o = run_v1(&env, repo, &pushed.digest).await;
    assert_indexed(&o);
    assert_eq!(
        indexed_layers(&env, repo, &pushed.digest).await,
        vec![small.digest(), large.digest()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sha512_layer_is_verified_and_indexed() {
    let env = Env::start().await;
    let repo = "sha512";
    let layer = LayerBlob::gzip(21, 700 * 1024);
    let digest = push_sha512_blob(&env, repo, &layer).await;
    let pushed = push_raw_image(&env, repo, "v1", vec![descriptor(&layer, &digest, 0)]).await;
    let o = run_v1(&env, repo, &pushed.digest).await;
    assert_indexed(&o);
    assert_eq!(
        indexed_layers(&env, repo, &pushed.digest).await,
        vec![digest]
    );

    // A flipped byte in it is caught by the sha512 check too (uncompressed: no gzip CRC).
    let plain = LayerBlob::tar(22, 700 * 1024);
    let digest = push_sha512_blob(&env, repo, &plain).await;
    let pushed = push_raw_image(&env, repo, "v2", vec![descriptor(&plain, &digest, 0)]).await;
    env.proxy
        .add(Rule::new("GET", &digest, 100, Fault::FlipByte(600)));
    let o = run_with(&env, env.config(), repo, &pushed.digest, Some("v2")).await;
    let message = error_chain(&o.expect_err("corrupt every time"));
    assert!(
        message.contains("digest") && message.contains(&digest),
        "{message}"
    );
    assert!(!tags(&env, repo).await.contains(&"v2-soci".to_string()));
}

/// Pushes `layer` under its sha512 digest, which it returns.
async fn push_sha512_blob(env: &Env, repo: &str, layer: &LayerBlob) -> String {
    let digest = format!("sha512:{}", hex::encode(sha2::Sha512::digest(&layer.blob)));
    env.direct
        .push_blob(repo, &digest, bytes::Bytes::from(layer.blob.clone()))
        .await
        .expect("push a sha512 blob");
    digest
}

/// The descriptor of `layer` under `digest`, its size `short` bytes less than the blob's.
fn descriptor(layer: &LayerBlob, digest: &str, short: usize) -> serde_json::Value {
    serde_json::json!({
        "mediaType": layer.media_type,
        "digest": digest,
        "size": layer.blob.len() - short,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_that_are_not_url_safe_are_refused_before_any_request() {
    let env = Env::start().await;
    let digest = format!("sha256:{}", "a".repeat(64));
    for (repo, digest, tag) in [
        ("a/../b", digest.as_str(), "v1"),
        ("app", digest.as_str(), "v1/../../x"),
        ("app", digest.as_str(), "v1?x=1"),
        ("app", "sha256:../../x", "v1"),
    ] {
        let err = run_with(&env, env.config(), repo, digest, Some(tag))
            .await
            .expect_err("refused");
        assert!(error_chain(&err).contains("not a valid"), "{err}");
    }
    assert!(env.proxy.seen().is_empty(), "{:?}", env.proxy.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_longer_than_its_descriptor_is_a_failed_download() {
    let env = Env::start().await;
    let repo = "longer";
    let layer = LayerBlob::gzip(23, 700 * 1024);
    push_blob(&env, repo, OCI_GZIP, &layer.blob).await;
    // The descriptor says 10 bytes fewer than the blob has: the bytes past it are never read.
    let short = descriptor(&layer, &layer.digest(), 10);
    let pushed = push_raw_image(&env, repo, "v1", vec![short]).await;
    let o = run_v1(&env, repo, &pushed.digest).await;
    let message = assert_failed_untagged(&env, repo, &o).await;
    assert!(message.contains("descriptor"), "{message}");
    assert!(message.contains(&layer.digest()), "{message}");
}
