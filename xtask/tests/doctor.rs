//! `cargo xtask doctor` against a real registry: each verdict a user can meet, from an image
//! the generator never saw to a tag that moved after it was indexed.

use std::process::{Command, Output};

use bytes::Bytes;
use soci_core::oci::{MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_SOCI_INDEX_V1};
use soci_index_generator::{Credentials, RegistryClient, RetryPolicy};
use test_support::Registry;
use test_support::image::{self, Entry};

/// Layers at or above this size get a zTOC in these tests.
const MIN_LAYER: &str = "1048576";

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("min_layer_size", MIN_LAYER)
        .env_remove("index_tag_suffix")
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

/// Pushes a one-platform image (a 2 MiB layer and a small one) tagged `tag`; `seed` varies it.
async fn push(client: &RegistryClient, repo: &str, tag: &str, seed: u64) -> image::Pushed {
    let big = image::gzip_tar_layer(&[Entry::File("big.bin".into(), 2 << 20, seed)]).unwrap();
    let small = image::gzip_tar_layer(&[Entry::File("small.txt".into(), 100, seed + 1)]).unwrap();
    image::push_image(client, repo, Some(tag), "amd64", &[&big, &small])
        .await
        .unwrap()
}

/// Runs `doctor REF --plain-http`: it must exit 0 exactly when `lazy_loads`, and say `said`.
fn doctor_says(reference: &str, lazy_loads: bool, said: &str) -> String {
    let out = xtask(&["doctor", reference, "--plain-http"]);
    let printed = text(&out);
    assert_eq!(out.status.success(), lazy_loads, "{printed}");
    assert!(printed.contains(said), "expected {said:?} in:\n{printed}");
    printed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_each_reason_a_deployment_does_not_lazy_load() {
    let registry = Registry::start().expect("docker-registry (cargo xtask setup)");
    let client = RegistryClient::new(
        &format!("http://{}", registry.addr),
        Credentials::Anonymous,
        RetryPolicy {
            attempts: 3,
            base_delay: std::time::Duration::from_millis(100),
        },
    )
    .unwrap();
    let reference = format!("{}/doctor/app:v1", registry.addr);
    push(&client, "doctor/app", "v1", 1).await;

    doctor_says(&reference, false, "no SOCI index at all");

    let indexed = xtask(&["index", &reference, "--plain-http"]);
    assert!(indexed.status.success(), "{}", text(&indexed));
    doctor_says(
        &reference,
        false,
        "v1 is not SOCI-enabled; v1-soci is its SOCI-enabled index",
    );
    let said = doctor_says(
        &format!("{reference}-soci"),
        true,
        "linux/amd64: 1 of 2 layers have a zTOC",
    );
    assert!(said.contains("SOCI-enabled image index"), "{said}");
    assert!(said.contains("below min_layer_size 1048576"), "{said}");

    // By digest, as `DescribeTasks` reports what a task ran: the plain image did not
    // lazy-load, the SOCI-enabled index did.
    let plain = client
        .tag_digest("doctor/app", "v1")
        .await
        .unwrap()
        .unwrap();
    let soci = client
        .tag_digest("doctor/app", "v1-soci")
        .await
        .unwrap()
        .unwrap();
    doctor_says(
        &format!("{}/doctor/app@{plain}", registry.addr),
        false,
        &format!("verdict: {plain} is not a SOCI-enabled image index"),
    );
    doctor_says(
        &format!("{}/doctor/app@{soci}", registry.addr),
        true,
        "linux/amd64: 1 of 2 layers have a zTOC",
    );

    // The tag moves to another image after it was indexed.
    push(&client, "doctor/app", "v1", 7).await;
    doctor_says(&reference, false, "indexes an older push of v1");

    // Only a v1 index, found through the referrers tag schema (the listed manifest stands in
    // for a SOCI index: the doctor reads the listing, not the index).
    let other = push(&client, "doctor/old", "v1", 3).await;
    let referrers = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": [{
            "mediaType": MEDIA_TYPE_OCI_MANIFEST,
            "artifactType": MEDIA_TYPE_SOCI_INDEX_V1,
            "digest": other.digest,
            "size": other.size,
        }],
    });
    client
        .put_manifest(
            "doctor/old",
            &other.digest.replacen(':', "-", 1),
            MEDIA_TYPE_OCI_INDEX,
            Bytes::from(serde_json::to_vec(&referrers).unwrap()),
        )
        .await
        .unwrap();
    doctor_says(
        &format!("{}/doctor/old:v1", registry.addr),
        false,
        "only a v1 SOCI index",
    );
}
