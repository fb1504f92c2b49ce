//! Every way an image lands in ECR, through the Lambda handler, and the index tag cleanup on a
//! tag's delete, against a real `docker-registry` (the OCI API: deletes go by digest).
//!
//! distribution 2.8 cannot delete a tag, so "the tag no longer names the image" is made by
//! moving the tag to another image; the deleted image stays readable by digest, as an image does
//! in ECR while another tag names it.

mod common;

use common::*;
use soci_index_generator::handler::Handler;
use soci_index_generator::pipeline::TagRemover;
use soci_index_generator::{EcrImageActionEvent, ImageRef, IndexVersion, IndexingOutcome};
use test_support::image::Pushed;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

fn json(outcome: &IndexingOutcome) -> serde_json::Value {
    serde_json::to_value(outcome).expect("outcome JSON")
}

/// An amd64 image with one layer worth a zTOC (`seed` makes it unique), tagged `tag`.
async fn push_big(env: &Env, repo: &str, tag: &str, seed: u64) -> Pushed {
    push_image(
        env,
        repo,
        Some(tag),
        &[LayerBlob::gzip(seed, 300 * 1024)],
        "amd64",
        false,
    )
    .await
}

/// An image with nothing to index, to move tags onto.
async fn push_small(env: &Env, repo: &str, tag: &str, seed: u64) -> Pushed {
    push_image(
        env,
        repo,
        Some(tag),
        &[LayerBlob::gzip(seed, 1024)],
        "amd64",
        false,
    )
    .await
}

async fn index(env: &Env, repo: &str, image: &Pushed, tag: &str) -> String {
    let outcome = run_with(env, env.config(), repo, &image.digest, Some(tag))
        .await
        .expect("indexing succeeds");
    assert_eq!(outcome.status(), "indexed", "{outcome:?}");
    json(&outcome)["index_digest"]
        .as_str()
        .expect("index digest")
        .to_owned()
}

async fn tag_digest(env: &Env, repo: &str, tag: &str) -> Option<String> {
    env.direct.tag_digest(repo, tag).await.expect("HEAD tag")
}

async fn clean_up(env: &Env, repo: &str, digest: &str, tag: &str) -> IndexingOutcome {
    clean_up_with(env, env.config(), repo, digest, tag).await
}

async fn clean_up_with(
    env: &Env,
    config: soci_index_generator::Config,
    repo: &str,
    digest: &str,
    tag: &str,
) -> IndexingOutcome {
    let image = ImageRef {
        repository: repo.into(),
        digest: Some(digest.into()),
        tag: Some(tag.into()),
    };
    env.indexer(config)
        .clean_up(&image, &TagRemover::Registry)
        .await
        .expect("cleanup answers")
}

async fn handler(env: &Env, cleanup: bool) -> Handler {
    let config = soci_index_generator::Config {
        index_tag_cleanup: cleanup,
        ..env.config()
    };
    Handler::new(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_and_replicated_images_are_indexed_like_pushes() {
    let env = Env::start().await;
    let handler = handler(&env, false).await;
    let repo = "docker-hub/alpine";
    let cached = push_big(&env, repo, "3.17.2", 1).await;
    let event = EcrImageActionEvent::pull_through_cache(
        ACCOUNT,
        REGION,
        repo,
        &cached.digest,
        "3.17.2",
        "public.ecr.aws",
    );
    let outcome = handler.handle(event, "ptc").await.expect("indexed");
    assert_eq!(outcome.status(), "indexed", "{outcome:?}");
    check_v2(&env, repo, "3.17.2", &cached.digest).await;

    let replicated = push_big(&env, repo, "3.18", 2).await;
    let event = EcrImageActionEvent::replication(
        ACCOUNT,
        REGION,
        repo,
        &replicated.digest,
        "3.18",
        ("210987654321", "us-west-2"),
    );
    let outcome = handler.handle(event, "repl").await.expect("indexed");
    assert_eq!(outcome.status(), "indexed", "{outcome:?}");
    check_v2(&env, repo, "3.18", &replicated.digest).await;

    // A failed sync is answered, not retried, and pushes nothing.
    let mut failed = EcrImageActionEvent::pull_through_cache(
        ACCOUNT,
        REGION,
        repo,
        &replicated.digest,
        "3.19",
        "public.ecr.aws",
    );
    failed.detail.sync_status = Some("FAILED".into());
    let outcome = handler.handle(failed, "failed").await.expect("answered");
    let answer = json(&outcome);
    assert_eq!(answer["status"], "skipped");
    assert!(
        answer["reason"].as_str().unwrap().contains("sync-status"),
        "{answer}"
    );
    assert!(tag_digest(&env, repo, "3.19-soci").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_tags_index_tag_goes_only_with_the_cleanup_on() {
    let env = Env::start().await;
    let repo = "team/clean";
    let image = push_big(&env, repo, "v1", 10).await;
    let index_digest = index(&env, repo, &image, "v1").await;
    let elsewhere = push_small(&env, repo, "v1", 11).await;
    let delete = EcrImageActionEvent::delete(ACCOUNT, REGION, repo, &image.digest, "v1");

    // Off (the default): the delete is answered and nothing is touched.
    let off = handler(&env, false).await;
    let outcome = off.handle(delete.clone(), "off").await.expect("answered");
    let answer = json(&outcome);
    assert_eq!(answer["status"], "skipped", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("cleanup is off"),
        "{answer}"
    );
    assert_eq!(
        tag_digest(&env, repo, "v1-soci").await,
        Some(index_digest.clone())
    );

    // V1 indexes are never deleted, cleanup or not.
    let v1 = Handler::new(soci_index_generator::Config {
        index_tag_cleanup: true,
        index_version: IndexVersion::V1,
        ..env.config()
    })
    .await;
    let outcome = v1.handle(delete.clone(), "v1").await.expect("answered");
    assert_eq!(outcome.status(), "skipped", "{outcome:?}");
    assert!(tag_digest(&env, repo, "v1-soci").await.is_some());

    // On: v1-soci still points at the deleted image's conversion, and goes.
    let on = handler(&env, true).await;
    let outcome = on.handle(delete.clone(), "on").await.expect("cleaned up");
    let answer = json(&outcome);
    assert_eq!(answer["status"], "index_tag_deleted", "{answer}");
    assert_eq!(answer["index_tag"], "v1-soci");
    assert_eq!(answer["index_digest"], index_digest.as_str());
    assert_eq!(answer["method"], "registry_manifest_delete");
    assert_eq!(tag_digest(&env, repo, "v1-soci").await, None);
    assert!(!tags(&env, repo).await.contains(&"v1-soci".to_string()));
    // Nothing else: the tag's new image and the deleted image itself stay.
    assert_eq!(tag_digest(&env, repo, "v1").await, Some(elsewhere.digest));
    assert!(
        env.direct
            .get_manifest(repo, &image.digest)
            .await
            .unwrap()
            .is_some()
    );

    // The same event again: nothing left to delete.
    let again = on.handle(delete, "again").await.expect("answered");
    let answer = json(&again);
    assert_eq!(answer["status"], "index_tag_kept", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("no v1-soci"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_tag_that_moved_to_another_image_is_kept() {
    let env = Env::start().await;
    let repo = "team/moved";
    let old = push_big(&env, repo, "v1", 20).await;
    let old_index = index(&env, repo, &old, "v1").await;
    let new = push_big(&env, repo, "v1", 21).await;
    let new_index = index(&env, repo, &new, "v1").await;
    assert_ne!(old_index, new_index);

    let outcome = clean_up(&env, repo, &old.digest, "v1").await;
    let answer = json(&outcome);
    assert_eq!(answer["status"], "index_tag_kept", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("points at another image's conversion"),
        "{answer}"
    );
    assert_eq!(tag_digest(&env, repo, "v1-soci").await, Some(new_index));
    assert!(
        env.direct
            .get_manifest(repo, &old_index)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_shown_to_be_the_conversion_is_kept() {
    let env = Env::start().await;
    let repo = "team/kept";

    // The tag names the deleted image again (a late event, or pushed back).
    let back = push_big(&env, repo, "back", 30).await;
    index(&env, repo, &back, "back").await;
    let answer = json(&clean_up(&env, repo, &back.digest, "back").await);
    assert_eq!(answer["status"], "index_tag_kept", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("again"),
        "{answer}"
    );
    assert!(tag_digest(&env, repo, "back-soci").await.is_some());

    // The tag moved to a rebuild with the same config and layers (another manifest): the
    // index is a conversion of what the tag names now too.
    let first = push_big(&env, repo, "rebuilt", 38).await;
    let first_index = index(&env, repo, &first, "rebuilt").await;
    let mut rebuilt: serde_json::Value = serde_json::from_slice(
        &env.direct
            .get_manifest(repo, &first.digest)
            .await
            .unwrap()
            .unwrap()
            .bytes,
    )
    .unwrap();
    rebuilt["annotations"]["org.opencontainers.image.revision"] = "rebuilt".into();
    let rebuilt = put_manifest(
        &env,
        repo,
        Some("rebuilt"),
        OCI_MANIFEST,
        serde_json::to_vec(&rebuilt).unwrap(),
    )
    .await;
    // Its push event: `rebuilt-soci` already covers the same config and layers.
    let outcome = run_with(&env, env.config(), repo, &rebuilt.digest, Some("rebuilt"))
        .await
        .unwrap();
    assert_eq!(outcome.status(), "already_indexed", "{outcome:?}");
    let rebuilt_index = tag_digest(&env, repo, "rebuilt-soci").await.unwrap();
    let answer = json(&clean_up(&env, repo, &first.digest, "rebuilt").await);
    assert_eq!(answer["status"], "index_tag_kept", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("also a conversion"),
        "{answer}"
    );
    assert_eq!(rebuilt_index, first_index);
    assert_eq!(
        tag_digest(&env, repo, "rebuilt-soci").await,
        Some(rebuilt_index)
    );

    // Two tags of one image share one conversion: a delete by digest would take both.
    let shared = push_big(&env, repo, "one", 31).await;
    env.direct
        .put_manifest(
            repo,
            "two",
            OCI_MANIFEST,
            env.direct
                .get_manifest(repo, &shared.digest)
                .await
                .unwrap()
                .unwrap()
                .bytes,
        )
        .await
        .unwrap();
    let one = index(&env, repo, &shared, "one").await;
    let two = index(&env, repo, &shared, "two").await;
    assert_eq!(one, two, "one conversion");
    push_small(&env, repo, "one", 32).await;
    let answer = json(&clean_up(&env, repo, &shared.digest, "one").await);
    assert_eq!(answer["status"], "index_tag_kept", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("two-soci"),
        "{answer}"
    );
    assert_eq!(tag_digest(&env, repo, "one-soci").await, Some(one.clone()));
    assert_eq!(tag_digest(&env, repo, "two-soci").await, Some(one));

    // The deleted image is gone: nothing shows what the index was made from.
    let gone = push_big(&env, repo, "gone", 33).await;
    index(&env, repo, &gone, "gone").await;
    push_small(&env, repo, "gone", 34).await;
    assert!(
        env.direct
            .delete_manifest(repo, &gone.digest)
            .await
            .unwrap()
    );
    let answer = json(&clean_up(&env, repo, &gone.digest, "gone").await);
    assert_eq!(answer["status"], "index_tag_kept", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("can no longer be read"),
        "{answer}"
    );
    assert!(tag_digest(&env, repo, "gone-soci").await.is_some());

    // Not a SOCI-enabled index: someone else's tag that happens to end with the suffix.
    let other = push_big(&env, repo, "mine", 35).await;
    push_small(&env, repo, "mine-soci", 36).await;
    push_small(&env, repo, "mine", 37).await;
    let answer = json(&clean_up(&env, repo, &other.digest, "mine").await);
    assert_eq!(answer["status"], "index_tag_kept", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("not a SOCI-enabled image index"),
        "{answer}"
    );
    assert!(tag_digest(&env, repo, "mine-soci").await.is_some());
}

/// The ECR path's request, against moto's ECR control plane (the check still reads the
/// registry): `BatchDeleteImage` by `imageTag` removes `<tag><suffix>` and leaves another tag of
/// the same image. moto accepts requests AWS may refuse; the semantics are the API reference's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_ecr_only_the_index_tag_is_deleted() {
    use aws_sdk_ecr::config::{BehaviorVersion, Credentials, Region};

    let env = Env::start().await;
    let moto = test_support::Moto::start()
        .expect("start moto_server (run `cargo xtask setup`: the project's venv)");
    let ecr = aws_sdk_ecr::Client::from_conf(
        aws_sdk_ecr::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&moto.endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .build(),
    );
    let repo = "team/ecr";
    let image = push_big(&env, repo, "v1", 40).await;
    index(&env, repo, &image, "v1").await;
    push_small(&env, repo, "v1", 41).await;

    // The control plane's view of the same repository: the index under two tags.
    let index = env
        .direct
        .get_manifest(repo, "v1-soci")
        .await
        .unwrap()
        .unwrap();
    let manifest = String::from_utf8(index.bytes.to_vec()).unwrap();
    ecr.create_repository()
        .repository_name(repo)
        .send()
        .await
        .expect("CreateRepository");
    for tag in ["v1-soci", "pinned"] {
        ecr.put_image()
            .repository_name(repo)
            .image_manifest(&manifest)
            .image_tag(tag)
            .send()
            .await
            .expect("PutImage");
    }
    let remover = TagRemover::Ecr {
        client: ecr.clone(),
        registry_id: ACCOUNT.into(),
    };
    let outcome = env
        .indexer(env.config())
        .clean_up(
            &ImageRef {
                repository: repo.into(),
                digest: Some(image.digest.clone()),
                tag: Some("v1".into()),
            },
            &remover,
        )
        .await
        .expect("cleanup answers");
    let answer = json(&outcome);
    assert_eq!(answer["status"], "index_tag_deleted", "{answer}");
    assert_eq!(answer["method"], "ecr_batch_delete_image");
    let listed = ecr
        .list_images()
        .repository_name(repo)
        .send()
        .await
        .expect("ListImages");
    let mut tags: Vec<&str> = listed
        .image_ids()
        .iter()
        .filter_map(|id| id.image_tag())
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["pinned"], "only v1-soci is deleted");
}

/// ECR deletes an image with its last tag, so the delete's event finds the original gone. An
/// index made while the cleanup is on names the image it was converted from, and that is enough
/// to delete its tag; an index that names another image is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_that_names_its_deleted_original_goes_without_the_original() {
    let env = Env::start().await;
    let repo = "cleanup/gone";
    let cleanup_on = soci_index_generator::Config {
        index_tag_cleanup: true,
        ..env.config()
    };
    let gone = push_big(&env, repo, "gone", 41).await;
    let outcome = run_with(&env, cleanup_on.clone(), repo, &gone.digest, Some("gone"))
        .await
        .expect("indexing succeeds");
    let index_digest = json(&outcome)["index_digest"].as_str().unwrap().to_owned();
    let index = env
        .direct
        .get_manifest(repo, &index_digest)
        .await
        .unwrap()
        .unwrap();
    let parsed = soci_core::oci::Index::from_json(&index.bytes).unwrap();
    assert_eq!(
        parsed
            .annotations
            .get("io.github.soci-lambda.converted-from"),
        Some(&gone.digest),
        "the index names its original"
    );
    // The last tag's delete: in ECR the image goes with it.
    push_small(&env, repo, "gone", 42).await;
    assert!(
        env.direct
            .delete_manifest(repo, &gone.digest)
            .await
            .unwrap()
    );
    let answer = json(&clean_up_with(&env, cleanup_on.clone(), repo, &gone.digest, "gone").await);
    assert_eq!(answer["status"], "index_tag_deleted", "{answer}");
    assert_eq!(tag_digest(&env, repo, "gone-soci").await, None);

    // An index that says it was made from another image is not the deleted image's.
    let other = push_big(&env, repo, "other", 43).await;
    run_with(&env, cleanup_on.clone(), repo, &other.digest, Some("other"))
        .await
        .expect("indexing succeeds");
    let deleted = push_big(&env, repo, "deleted", 44).await;
    let other_index = tag_digest(&env, repo, "other-soci").await.unwrap();
    let bytes = env
        .direct
        .get_manifest(repo, &other_index)
        .await
        .unwrap()
        .unwrap()
        .bytes;
    env.direct
        .put_manifest(
            repo,
            "deleted-soci",
            "application/vnd.oci.image.index.v1+json",
            bytes,
        )
        .await
        .unwrap();
    push_small(&env, repo, "deleted", 45).await;
    assert!(
        env.direct
            .delete_manifest(repo, &deleted.digest)
            .await
            .unwrap()
    );
    let answer = json(&clean_up_with(&env, cleanup_on, repo, &deleted.digest, "deleted").await);
    assert_eq!(answer["status"], "index_tag_kept", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("converted from {}", other.digest)),
        "{answer}"
    );
    assert_eq!(
        tag_digest(&env, repo, "deleted-soci").await,
        Some(other_index)
    );
}
