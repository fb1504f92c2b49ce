//! End-to-end pipeline tests against a real `docker-registry` (behind a counting,
//! fault-injecting proxy), with images built and pushed from code.

mod common;

use common::*;
use serde_json::Value;
use soci_index_generator::{IndexVersion, IndexingOutcome, PipelineError};
use test_support::image::Pushed;

/// Indexes with the tests' configuration.
async fn run(
    env: &Env,
    repo: &str,
    digest: &str,
    tag: Option<&str>,
) -> Result<IndexingOutcome, PipelineError> {
    run_with(env, env.config(), repo, digest, tag).await
}

/// Pushes an amd64 OCI image of `layers`, tagged `v1`.
async fn push_v1(env: &Env, repo: &str, layers: &[LayerBlob]) -> Pushed {
    push_image(env, repo, Some("v1"), layers, "amd64", false).await
}

fn status(o: &IndexingOutcome) -> &'static str {
    o.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_platform_image_mixed_layers() {
    let env = Env::start().await;
    let repo = "team/app";
    let big1 = LayerBlob::gzip(1, 900 * 1024);
    let small = LayerBlob::gzip(2, 10 * 1024); // < MIN_LAYER compressed
    let zstd = LayerBlob::zstd(3, 300 * 1024);
    let plain = LayerBlob::tar(4, 600 * 1024);
    let layers = vec![big1.clone(), small.clone(), zstd.clone(), plain.clone()];
    assert!((small.blob.len() as u64) < MIN_LAYER);
    let pushed = push_v1(&env, repo, &layers).await;

    let outcome = run(&env, repo, &pushed.digest, Some("v1"))
        .await
        .expect("indexing succeeds");
    assert_eq!(status(&outcome), "indexed", "{outcome:?}");
    let json = serde_json::to_value(&outcome).expect("outcome JSON");
    assert_eq!(json["status"], "indexed");
    assert_eq!(json["index_tag"], "v1-soci");

    let platforms = check_v2(&env, repo, "v1", &pushed.digest).await;
    assert_eq!(platforms.len(), 1);
    assert_eq!(
        platforms["linux/amd64"],
        vec![big1.digest(), plain.digest()],
        "small and zstd layers left out"
    );
    let mut t = tags(&env, repo).await;
    t.sort();
    assert_eq!(t, vec!["v1", "v1-soci"]);

    // Push order: zTOCs, config, SOCI index, manifest, index, tag last.
    if let IndexingOutcome::Indexed { pushed, .. } = &outcome {
        let kinds: Vec<&str> = pushed.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(
            kinds,
            vec![
                "ztoc",
                "ztoc",
                "config",
                "soci-index",
                "manifest",
                "index",
                "tag"
            ]
        );
    }
    let log = env.proxy.log().await;
    let writes: Vec<&String> = log.iter().filter(|l| l.starts_with("PUT")).collect();
    assert!(
        writes
            .last()
            .expect("writes")
            .contains("/manifests/v1-soci"),
        "the tag is the last write: {writes:?}"
    );

    // A re-delivered event pushes nothing.
    let before = env.proxy.writes();
    let again = run(&env, repo, &pushed.digest, Some("v1"))
        .await
        .expect("re-run");
    assert_eq!(status(&again), "already_indexed", "{again:?}");
    assert_eq!(env.proxy.writes(), before, "no new pushes on a re-run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_platform_index_with_attestation() {
    let env = Env::start().await;
    let repo = "multi";
    let amd = push_image(
        &env,
        repo,
        None,
        &[
            LayerBlob::gzip(10, 700 * 1024),
            LayerBlob::gzip(11, 500 * 1024),
        ],
        "amd64",
        false,
    )
    .await;
    let arm = push_image(
        &env,
        repo,
        None,
        &[LayerBlob::gzip(12, 800 * 1024)],
        "arm64",
        false,
    )
    .await;
    let att = push_attestation(&env, repo, &amd.digest).await;
    let index = push_index(
        &env,
        repo,
        "v2",
        vec![
            index_descriptor(&amd, "linux", "amd64", None, &Value::Null),
            index_descriptor(&arm, "linux", "arm64", Some("v8"), &Value::Null),
            index_descriptor(
                &att,
                "unknown",
                "unknown",
                None,
                &attestation_annotations(&amd.digest),
            ),
        ],
        false,
    )
    .await;
    let outcome = run(&env, repo, &index.digest, Some("v2"))
        .await
        .expect("indexing succeeds");
    assert_eq!(status(&outcome), "indexed", "{outcome:?}");
    let platforms = check_v2(&env, repo, "v2", &index.digest).await;
    assert_eq!(
        platforms.keys().cloned().collect::<Vec<_>>(),
        vec!["linux/amd64", "linux/arm64"]
    );
    assert_eq!(platforms["linux/amd64"].len(), 2);
    assert_eq!(platforms["linux/arm64"].len(), 1);
    // The attestation is kept as is, not indexed.
    let (_, ix, _) = manifest(&env, repo, "v2-soci").await;
    let entries = ix["manifests"].as_array().expect("manifests");
    assert_eq!(
        entries.len(),
        5,
        "2 annotated + attestation + 2 SOCI indexes"
    );
    assert!(entries.iter().any(|d| d["digest"] == att.digest.as_str()));

    // Platform selection: only arm64, on a fresh tag.
    put_manifest(
        &env,
        repo,
        Some("arm"),
        OCI_INDEX,
        manifest(&env, repo, &index.digest).await.0.to_vec(),
    )
    .await;
    let mut config = env.config();
    config.platforms =
        vec![soci_index_generator::config::PlatformFilter::parse("linux/arm64").expect("platform")];
    let outcome = run_with(&env, config, repo, &index.digest, Some("arm"))
        .await
        .expect("indexing succeeds");
    assert_eq!(status(&outcome), "indexed");
    let platforms = check_v2(&env, repo, "arm", &index.digest).await;
    assert_eq!(
        platforms.keys().cloned().collect::<Vec<_>>(),
        vec!["linux/arm64"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_media_types() {
    let env = Env::start().await;
    let repo = "docker/app";
    let amd = push_image(
        &env,
        repo,
        None,
        &[LayerBlob::docker_gzip(20, 700 * 1024)],
        "amd64",
        true,
    )
    .await;
    let list = push_index(
        &env,
        repo,
        "latest",
        vec![index_descriptor(&amd, "linux", "amd64", None, &Value::Null)],
        true,
    )
    .await;
    let outcome = run(&env, repo, &list.digest, Some("latest"))
        .await
        .expect("indexing succeeds");
    assert_eq!(status(&outcome), "indexed", "{outcome:?}");
    let platforms = check_v2(&env, repo, "latest", &list.digest).await;
    assert_eq!(platforms["linux/amd64"].len(), 1);

    // A single Docker manifest (wrapped in a new OCI index).
    let single = push_image(
        &env,
        repo,
        Some("single"),
        &[LayerBlob::docker_gzip(21, 700 * 1024)],
        "arm64",
        true,
    )
    .await;
    let outcome = run(&env, repo, &single.digest, Some("single"))
        .await
        .expect("indexing succeeds");
    assert_eq!(status(&outcome), "indexed", "{outcome:?}");
    let platforms = check_v2(&env, repo, "single", &single.digest).await;
    assert_eq!(platforms["linux/arm64"].len(), 1);
    let (_, m, _) = manifest(&env, repo, &single.digest).await;
    assert_eq!(
        m["mediaType"], DOCKER_MANIFEST,
        "the original stays a Docker manifest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_eligible_layer_untagged_and_own_tags_are_not_errors() {
    let env = Env::start().await;
    let repo = "small";
    let pushed = push_v1(
        &env,
        repo,
        &[
            LayerBlob::gzip(30, 8 * 1024),
            LayerBlob::zstd(31, 500 * 1024),
        ],
    )
    .await;
    let before = env.proxy.writes();
    let o = run(&env, repo, &pushed.digest, Some("v1"))
        .await
        .expect("not an error");
    assert_eq!(status(&o), "no_eligible_layers", "{o:?}");
    let o = run(&env, repo, &pushed.digest, None)
        .await
        .expect("not an error");
    assert_eq!(status(&o), "skipped");
    let o = run(&env, repo, &pushed.digest, Some("v1-soci"))
        .await
        .expect("not an error");
    assert_eq!(status(&o), "skipped");
    assert_eq!(env.proxy.writes(), before, "nothing pushed");
    assert_eq!(tags(&env, repo).await, vec!["v1"]);

    // Not an image: an artifact manifest.
    let d = push_blob(&env, repo, "application/vnd.oci.empty.v1+json", b"{}").await;
    let artifact = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-sbom",
        "config": d.descriptor(), "layers": []});
    let a = put_manifest(
        &env,
        repo,
        Some("sbom"),
        OCI_MANIFEST,
        serde_json::to_vec(&artifact).expect("json"),
    )
    .await;
    let o = run(&env, repo, &a.digest, Some("sbom"))
        .await
        .expect("not an error");
    assert_eq!(status(&o), "skipped", "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unindexable_and_rejected_layers_are_left_out() {
    let env = Env::start().await;
    let repo = "weird";
    let good = LayerBlob::gzip(40, 600 * 1024);
    let bad = LayerBlob::unindexable(41);
    let garbage = LayerBlob::garbage(42);
    assert!(bad.blob.len() as u64 >= MIN_LAYER);
    let pushed = push_v1(&env, repo, &[bad.clone(), good.clone(), garbage.clone()]).await;
    let o = run(&env, repo, &pushed.digest, Some("v1"))
        .await
        .expect("indexing succeeds");
    assert_eq!(status(&o), "indexed", "{o:?}");
    let platforms = check_v2(&env, repo, "v1", &pushed.digest).await;
    assert_eq!(platforms["linux/amd64"], vec![good.digest()]);
    let json = serde_json::to_value(&o).expect("json");
    let result = |d: String| {
        json["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .find(|l| l["digest"] == d.as_str())
            .expect("reported")["result"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        result(bad.digest()).starts_with("left out: unindexable"),
        "{}",
        result(bad.digest())
    );
    assert!(
        result(garbage.digest()).starts_with("left out: rejected"),
        "{}",
        result(garbage.digest())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_index_with_subject_untagged() {
    let env = Env::start().await;
    let repo = "v1app";
    let l = LayerBlob::gzip(50, 700 * 1024);
    let pushed = push_v1(&env, repo, &[l.clone(), LayerBlob::gzip(51, 4 * 1024)]).await;
    let mut config = env.config();
    config.index_version = IndexVersion::V1;
    let o = run_with(&env, config.clone(), repo, &pushed.digest, Some("v1"))
        .await
        .expect("indexing succeeds");
    let IndexingOutcome::Indexed {
        index_digest,
        index_tag,
        ..
    } = &o
    else {
        panic!("{o:?}")
    };
    assert!(index_tag.is_none());
    let indexed = check_v1(&env, repo, index_digest, &pushed.digest).await;
    assert_eq!(indexed.indexed_layers(), vec![l.digest()]);
    let subject = indexed.soci_index.subject.as_ref().expect("subject");
    assert_eq!(subject.digest, pushed.digest);
    assert_eq!(subject.media_type, OCI_MANIFEST);
    assert_eq!(u64::try_from(subject.size).ok(), Some(pushed.size));
    assert_eq!(tags(&env, repo).await, vec!["v1"], "V1 pushes untagged");
    // Re-run: same bytes, nothing new pushed.
    let before = env.proxy.writes();
    let again = run_with(&env, config.clone(), repo, &pushed.digest, Some("v1"))
        .await
        .expect("re-run");
    assert_eq!(status(&again), "indexed");
    assert_eq!(env.proxy.writes(), before, "everything already present");
    // V1 on an index: skipped.
    let list = push_index(
        &env,
        repo,
        "multi",
        vec![index_descriptor(
            &pushed,
            "linux",
            "amd64",
            None,
            &Value::Null,
        )],
        false,
    )
    .await;
    let o = run_with(&env, config, repo, &list.digest, Some("multi"))
        .await
        .expect("not an error");
    assert_eq!(status(&o), "skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_503s_are_retried() {
    let env = Env::start().await;
    let repo = "flaky";
    let pushed = push_v1(&env, repo, &[LayerBlob::gzip(60, 700 * 1024)]).await;
    env.proxy.fail_next("GET", 2).await;
    env.proxy.fail_next("PUT", 2).await;
    env.proxy.fail_next("POST", 2).await;
    let o = run(&env, repo, &pushed.digest, Some("v1"))
        .await
        .expect("retries succeed");
    assert_eq!(status(&o), "indexed", "{o:?}");
    let injected = env
        .proxy
        .log()
        .await
        .iter()
        .filter(|l| l.starts_with("503"))
        .count();
    assert_eq!(injected, 6);
    check_v2(&env, repo, "v1", &pushed.digest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_failure_is_an_error_naming_step_and_answer() {
    let env = Env::start().await;
    let repo = "down";
    let pushed = push_v1(&env, repo, &[LayerBlob::gzip(70, 700 * 1024)]).await;
    env.proxy.fail_next("PUT", 100).await;
    let err = run(&env, repo, &pushed.digest, Some("v1"))
        .await
        .expect_err("fails");
    let msg = err.to_string();
    assert!(msg.contains("503"), "{msg}");
    assert!(msg.contains("injected"), "body excerpt: {msg}");
    assert!(
        msg.contains("push ztoc") || msg.contains("upload"),
        "step: {msg}"
    );
    assert_eq!(tags(&env, repo).await, vec!["v1"], "no tag on failure");
}
