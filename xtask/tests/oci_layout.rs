//! The OCI image layout as source and destination of the indexing pipeline (`xtask::layout`):
//! `cargo xtask index oci:DIR:TAG` writes what it would push to a registry, byte for byte; the
//! layout stays valid (every blob under its digest, tags in `index.json`, no temporary files);
//! V1 indexes are findable as referrers; the server refuses what a registry refuses.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use soci_core::inspect::{Root, inspect};
use soci_core::oci::MEDIA_TYPE_SOCI_INDEX_V1;
use soci_index_generator::registry::RepositoryGraph;
use soci_index_generator::{Credentials, RegistryClient, RetryPolicy};
use test_support::image::{self, Entry};
use xtask::layout::{Layout, LayoutServer, REF_NAME};

/// Layers at or above this size get a zTOC in these tests.
const MIN_LAYER: &str = "1048576";

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("min_layer_size", MIN_LAYER)
        .env_remove("index_tag_suffix")
        .env_remove("soci_index_version")
        .output()
        .expect("run xtask")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn client(url: &str) -> RegistryClient {
    RegistryClient::new(
        url,
        Credentials::Anonymous,
        RetryPolicy {
            attempts: 2,
            base_delay: Duration::from_millis(50),
        },
    )
    .unwrap()
}

/// Pushes a one-platform image (a 2 MiB layer and a small one) tagged `tag`.
async fn push_image(client: &RegistryClient, repo: &str, tag: &str) -> image::Pushed {
    let big = image::gzip_tar_layer(&[Entry::File("big.bin".into(), 2 << 20, 7)]).unwrap();
    let small = image::gzip_tar_layer(&[Entry::File("small.txt".into(), 100, 8)]).unwrap();
    image::push_image(client, repo, Some(tag), "amd64", &[&big, &small])
        .await
        .unwrap()
}

/// A new layout holding the test image tagged `v1`, written through the layout server.
async fn layout_with_image(dir: &Path) -> image::Pushed {
    let layout = Layout::open_or_create(dir).unwrap();
    let server = LayoutServer::start(layout).unwrap();
    push_image(&client(&server.url()), "any/name", "v1").await
}

fn index_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap()
}

/// Every file under `blobs/` is named by its own digest, and no temporary file is left.
fn assert_layout_is_clean(dir: &Path) {
    for entry in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            name,
            "blobs/sha256/{name} does not hold its digest"
        );
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            ["oci-layout", "index.json", "blobs"].contains(&name.as_str()),
            "unexpected {name} in the layout"
        );
    }
}

fn tagged(index: &Value, tag: &str) -> Option<Value> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"][REF_NAME] == tag)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_writes_into_a_layout_exactly_what_it_pushes_to_a_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    layout_with_image(&dir).await;
    let reference = format!("oci:{}:v1", dir.display());

    let indexed = xtask(&["index", &reference]);
    assert!(indexed.status.success(), "{}", text(&indexed));
    assert!(
        text(&indexed).contains("tagged v1-soci"),
        "{}",
        text(&indexed)
    );
    assert_layout_is_clean(&dir);
    let index = index_json(&dir);
    let image = tagged(&index, "v1").expect("v1 still tagged");
    let soci = tagged(&index, "v1-soci").expect("v1-soci tagged");
    assert_eq!(
        index["manifests"].as_array().unwrap().len(),
        2,
        "only the two tags are entries: {index}"
    );

    // The graph read back through the layout is complete and every zTOC verifies.
    let layout = Layout::open(&dir).unwrap();
    let server = LayoutServer::start(layout).unwrap();
    let layout_client = client(&server.url());
    let graph = RepositoryGraph {
        client: &layout_client,
        repository: "layout",
    };
    let report = inspect(&graph, &Root::v2("v1-soci").with_original("v1"))
        .await
        .unwrap();
    assert!(report.problems().is_empty(), "{:?}", report.problems());
    assert_eq!(report.platforms.len(), 1);
    assert_eq!(report.root.digest, soci["digest"].as_str().unwrap());

    // The same image in a registry, indexed the same way: the same `v1-soci`, byte for byte.
    let registry = test_support::Registry::start().expect("docker-registry (cargo xtask setup)");
    let registry_client = client(&format!("http://{}", registry.addr));
    let pushed = push_image(&registry_client, "same/app", "v1").await;
    assert_eq!(pushed.digest, image["digest"].as_str().unwrap());
    let in_registry = xtask(&[
        "index",
        &format!("{}/same/app:v1", registry.addr),
        "--plain-http",
    ]);
    assert!(in_registry.status.success(), "{}", text(&in_registry));
    let from_registry = registry_client
        .get_manifest("same/app", "v1-soci")
        .await
        .unwrap()
        .unwrap();
    let from_layout = std::fs::read(
        dir.join("blobs/sha256").join(
            soci["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    )
    .unwrap();
    assert_eq!(from_registry.bytes.as_ref(), from_layout.as_slice());

    // Indexing again finds it done, and leaves index.json as it was.
    drop(server);
    let again = xtask(&["index", &reference]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("already_indexed"), "{}", text(&again));
    assert_eq!(index_json(&dir), index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_index_is_an_untagged_referrer_the_doctor_finds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let image = layout_with_image(&dir).await;
    let reference = format!("oci:{}:v1", dir.display());

    let indexed = xtask(&["index", &reference, "--v1"]);
    assert!(indexed.status.success(), "{}", text(&indexed));
    assert!(
        text(&indexed).contains("untagged, subject"),
        "{}",
        text(&indexed)
    );
    assert_layout_is_clean(&dir);
    let index = index_json(&dir);
    let untagged: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["annotations"][REF_NAME].is_null())
        .collect();
    assert_eq!(untagged.len(), 1, "{index}");
    let v1 = untagged[0];
    assert_eq!(v1["artifactType"], MEDIA_TYPE_SOCI_INDEX_V1, "{v1}");
    let v1_digest = v1["digest"].as_str().unwrap();

    // Found as a registry without the referrers API shows it: the `sha256-<hex>` tag schema.
    let layout = Layout::open(&dir).unwrap();
    let server = LayoutServer::start(layout).unwrap();
    let layout_client = client(&server.url());
    let referrers_tag = image.digest.replacen(':', "-", 1);
    let referrers = layout_client
        .get_manifest("layout", &referrers_tag)
        .await
        .unwrap()
        .expect("the referrers tag schema answers");
    let referrers: Value = serde_json::from_slice(&referrers.bytes).unwrap();
    assert_eq!(
        referrers["manifests"][0]["digest"], v1_digest,
        "{referrers}"
    );
    let report = inspect(
        &RepositoryGraph {
            client: &layout_client,
            repository: "layout",
        },
        &Root::v1(v1_digest).with_original("v1"),
    )
    .await
    .unwrap();
    assert!(report.problems().is_empty(), "{:?}", report.problems());
    drop(server);

    let doctor = xtask(&["doctor", &reference]);
    assert!(
        text(&doctor).contains("only a v1 SOCI index") && text(&doctor).contains(v1_digest),
        "{}",
        text(&doctor)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layout_server_refuses_what_a_registry_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(tmp.path()).unwrap();
    let server = LayoutServer::start(layout).unwrap();
    let client = client(&server.url());
    let body = Bytes::from_static(b"some blob bytes");
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));

    // A blob whose bytes are not its digest is not stored.
    let wrong = format!("sha256:{}", hex::encode(Sha256::digest(b"other")));
    let refused = client
        .push_blob("r", &wrong, body.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400), "{refused}");
    assert!(refused.to_string().contains("DIGEST_INVALID"), "{refused}");
    assert!(!client.blob_exists("r", &wrong).await.unwrap());

    // Ranges, as the pipeline resumes a broken layer download.
    client.push_blob("r", &digest, body.clone()).await.unwrap();
    let partial = client.get_blob_from("r", &digest, 5).await.unwrap();
    assert_eq!(partial.status(), 206);
    assert_eq!(partial.bytes().await.unwrap(), body.slice(5..));
    let (range, _) = client.get_blob_range("r", &digest, 2..4).await.unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.bytes().await.unwrap(), body.slice(2..4));

    // A manifest naming a blob the layout does not hold.
    let missing = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{wrong}","size":5}},"layers":[]}}"#
    );
    let refused = client
        .put_manifest(
            "r",
            "v1",
            "application/vnd.oci.image.manifest.v1+json",
            Bytes::from(missing),
        )
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("MANIFEST_BLOB_UNKNOWN"),
        "{refused}"
    );
    // Too large a manifest, refused without being kept (the server reads and drops it, so the
    // client can read the answer).
    let huge = Bytes::from(vec![b' '; (4 << 20) + 1]);
    let refused = client
        .put_manifest(
            "r",
            "v1",
            "application/vnd.oci.image.manifest.v1+json",
            huge,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(413), "{refused}");
    // Digests that would name a path outside blobs/.
    let refused = client
        .get_blob_bytes("r", "sha256:..%2F..%2Foci-layout")
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400), "{refused}");
    assert!(client.get_manifest("r", "v1").await.unwrap().is_none());
    assert_layout_is_clean(tmp.path());
}

#[test]
fn a_missing_or_malformed_layout_and_wait_are_refused_naming_why() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    let out = xtask(&["index", &format!("oci:{}:v1", missing.display())]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&missing.display().to_string())
            && text(&out).contains("not a directory"),
        "{}",
        text(&out)
    );

    let dir = tmp.path().join("broken");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(dir.join("index.json"), "{").unwrap();
    let out = xtask(&["index", &format!("oci:{}:v1", dir.display())]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&dir.join("index.json").display().to_string()),
        "{}",
        text(&out)
    );

    let empty = tmp.path().join("empty");
    Layout::open_or_create(&empty).unwrap();
    let out = xtask(&["index", &format!("oci:{}:v1", empty.display())]);
    assert!(!out.status.success());
    assert!(text(&out).contains("v1"), "{}", text(&out));

    let out = xtask(&[
        "index",
        &format!("oci:{}:v1", empty.display()),
        "--wait",
        "--function",
        "soci-index-generator",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("--wait") && text(&out).contains("without --wait"),
        "{}",
        text(&out)
    );
}
