//! The in-place mode (`index_in_place`): after indexing, `<tag>` itself names the SOCI-enabled
//! index and `<tag>-original` the original; the push that move causes, a redelivery of the
//! original push and the push of `<tag>-original` index nothing; a registry that refuses to
//! move the tag (immutable tags) leaves it where it was, with an answer saying so.

mod common;

use common::*;
use soci_index_generator::{IndexingOutcome, PipelineError};
use test_support::faults::{Fault, Rule};

/// `check_v2` of an image the in-place mode moved: its original is `<tag>-original`.
async fn check_v2_kept(env: &Env, repo: &str, tag: &str, original: &str) {
    check_v2_with_original(env, repo, tag, &format!("{tag}-original"), original).await;
}

fn in_place(env: &Env) -> soci_index_generator::Config {
    let mut config = env.config();
    config.index_in_place = true;
    config
}

fn json(outcome: &Result<IndexingOutcome, PipelineError>) -> serde_json::Value {
    match outcome {
        Ok(o) => serde_json::to_value(o).expect("json"),
        Err(e) => panic!("run failed: {}", soci_index_generator::error_chain(e)),
    }
}

async fn image(env: &Env, repo: &str, tag: &str, seed: u64) -> String {
    push_image(
        env,
        repo,
        Some(tag),
        &[LayerBlob::gzip(seed, 600 * 1024)],
        "amd64",
        false,
    )
    .await
    .digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tag_moves_to_the_soci_enabled_index_and_the_pushes_it_causes_index_nothing() {
    let env = Env::start().await;
    let repo = "inplace";
    let original = image(&env, repo, "v1", 31).await;
    let first = json(&run_with(&env, in_place(&env), repo, &original, Some("v1")).await);
    assert_eq!(first["status"], "indexed", "{first}");
    let index_digest = first["index_digest"]
        .as_str()
        .expect("index digest")
        .to_string();
    assert!(
        first["in_place"]
            .as_str()
            .is_some_and(|m| m.contains("names the SOCI-enabled index")),
        "{first}"
    );
    assert_eq!(manifest(&env, repo, "v1").await.2, index_digest, "v1 moved");
    assert_eq!(manifest(&env, repo, "v1-soci").await.2, index_digest);
    assert_eq!(
        manifest(&env, repo, "v1-original").await.2,
        original,
        "the original is kept"
    );
    check_v2_kept(&env, repo, "v1", &original).await;

    let writes = env.proxy.writes();
    // The push event of the moved tag, of the kept original, and the original event again.
    let moved = json(&run_with(&env, in_place(&env), repo, &index_digest, Some("v1")).await);
    assert_eq!(moved["status"], "skipped", "{moved}");
    assert!(
        moved["reason"]
            .as_str()
            .is_some_and(|r| r.contains("SOCI-enabled")),
        "{moved}"
    );
    let kept = json(&run_with(&env, in_place(&env), repo, &original, Some("v1-original")).await);
    assert_eq!(kept["status"], "skipped", "{kept}");
    let again = json(&run_with(&env, in_place(&env), repo, &original, Some("v1")).await);
    assert_eq!(again["status"], "already_indexed", "{again}");
    assert_eq!(
        env.proxy.writes(),
        writes,
        "nothing pushed for the pushes it caused"
    );

    // A later push of v1 is its own image, indexed and moved in turn; the late event of the
    // first image is superseded.
    let newer = image(&env, repo, "v1", 32).await;
    let second = json(&run_with(&env, in_place(&env), repo, &newer, Some("v1")).await);
    assert_eq!(second["status"], "indexed", "{second}");
    assert_eq!(manifest(&env, repo, "v1-original").await.2, newer);
    let late = json(&run_with(&env, in_place(&env), repo, &original, Some("v1")).await);
    assert_eq!(late["status"], "superseded", "{late}");
    check_v2_kept(&env, repo, "v1", &newer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_refuses_to_move_the_tag_leaves_it_and_says_which_tag_to_deploy() {
    let env = Env::start().await;
    let repo = "immutable";
    let original = image(&env, repo, "v1", 33).await;
    // What ECR answers for an existing tag in a repository with immutable tags.
    env.proxy.add(
        Rule::new(
            "PUT",
            "/manifests/v1",
            1,
            Fault::Status {
                status: 400,
                retry_after: None,
                body: r#"{"errors":[{"code":"TAG_INVALID","message":"The image tag 'v1' already exists in the 'immutable' repository and cannot be overwritten because the repository is immutable."}]}"#.into(),
            },
        )
        .at_path_end(),
    );
    let outcome = json(&run_with(&env, in_place(&env), repo, &original, Some("v1")).await);
    assert_eq!(outcome["status"], "indexed", "{outcome}");
    let message = outcome["in_place"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("refused")
            && message.contains("TAG_INVALID")
            && message.contains("deploy v1-soci"),
        "{outcome}"
    );
    assert_eq!(manifest(&env, repo, "v1").await.2, original, "v1 stays");
    check_v2(&env, repo, "v1", &original).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_mode_the_tag_never_moves() {
    let env = Env::start().await;
    let repo = "notinplace";
    let original = image(&env, repo, "v1", 34).await;
    let outcome = json(&run_with(&env, env.config(), repo, &original, Some("v1")).await);
    assert_eq!(outcome["status"], "indexed", "{outcome}");
    assert!(outcome.get("in_place").is_none(), "{outcome}");
    assert_eq!(manifest(&env, repo, "v1").await.2, original);
    assert_eq!(tags(&env, repo).await, vec!["v1", "v1-soci"]);
}
