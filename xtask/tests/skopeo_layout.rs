//! Other OCI tools read and write the layouts `cargo xtask demo` and `cargo xtask index oci:...`
//! write: skopeo inspects them, copies them (checking every digest on the way), and a layout
//! skopeo wrote is indexed like any other. skopeo is installed by `cargo xtask setup`: these
//! tests fail, not skip, without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use soci_core::inspect::{Root, inspect};
use soci_index_generator::registry::RepositoryGraph;
use soci_index_generator::{Credentials, RegistryClient, RetryPolicy};
use xtask::layout::{Layout, LayoutServer, REF_NAME};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the built `xtask` with the generator's defaults (nothing from the caller's environment).
fn xtask(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    for variable in [
        "min_layer_size",
        "span_size",
        "index_tag_suffix",
        "soci_index_version",
        "platforms",
        "build_tool_identifier",
    ] {
        command.env_remove(variable);
    }
    command.args(args).output().expect("run xtask")
}

fn skopeo(args: &[&str]) -> Output {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("skopeo: {e}: install it with `cargo xtask setup` (Debian package skopeo)")
        });
    assert!(
        out.status.success(),
        "skopeo {}: {}",
        args.join(" "),
        text(&out)
    );
    out
}

/// One demo run for the whole file: its layout holds the image `v1` and its index `v1-soci`.
fn demo_layout() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let out = xtask(&["demo", "--layout", dir.to_str().unwrap()]);
        assert!(out.status.success(), "demo: {}", text(&out));
        (tmp, dir)
    });
    dir
}

fn index_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap()
}

/// The digest `tag` names in the layout's `index.json`.
fn tag_digest(dir: &Path, tag: &str) -> String {
    index_json(dir)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"][REF_NAME] == tag)
        .unwrap_or_else(|| panic!("{tag} not in {}", dir.display()))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn blob(dir: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

fn oci(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

/// Reads the `v1-soci` graph of the layout `dir` back through the layout server and checks it.
fn verify_graph(dir: &Path) -> usize {
    let server = LayoutServer::start(Layout::open(dir).unwrap()).unwrap();
    let client = RegistryClient::new(
        &server.url(),
        Credentials::Anonymous,
        RetryPolicy {
            attempts: 2,
            base_delay: Duration::from_millis(50),
        },
    )
    .unwrap();
    let graph = RepositoryGraph {
        client: &client,
        repository: "layout",
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime
        .block_on(inspect(&graph, &Root::v2("v1-soci").with_original("v1")))
        .unwrap();
    assert!(report.problems().is_empty(), "{:?}", report.problems());
    report.platforms.len()
}

#[test]
fn skopeo_inspects_the_soci_index_the_demo_wrote() {
    let dir = demo_layout();
    let raw = skopeo(&["inspect", "--raw", &oci(dir, "v1-soci")]);
    assert_eq!(raw.stdout, blob(dir, &tag_digest(dir, "v1-soci")));
    let raw = skopeo(&["inspect", "--raw", &oci(dir, "v1")]);
    assert_eq!(raw.stdout, blob(dir, &tag_digest(dir, "v1")));
}

#[test]
fn skopeo_copies_the_soci_graph_with_every_digest_checked() {
    let dir = demo_layout();
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other");
    skopeo(&[
        "copy",
        "--all",
        &oci(dir, "v1-soci"),
        &oci(&other, "v1-soci"),
    ]);

    let original: Value = serde_json::from_slice(&blob(dir, &tag_digest(dir, "v1-soci"))).unwrap();
    let copied: Value =
        serde_json::from_slice(&blob(&other, &tag_digest(&other, "v1-soci"))).unwrap();
    // skopeo 1.9 writes the index again without the descriptors' `artifactType`; everything
    // else it keeps, and every manifest and blob it names is copied byte for byte.
    let mut without_artifact_type = original.clone();
    for d in without_artifact_type["manifests"].as_array_mut().unwrap() {
        d.as_object_mut().unwrap().remove("artifactType");
    }
    let kept_artifact_type = copied["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d.get("artifactType").is_some());
    if kept_artifact_type {
        assert_eq!(copied, original);
    } else {
        assert_eq!(copied, without_artifact_type);
    }
    let descriptors = original["manifests"].as_array().unwrap();
    assert_eq!(
        descriptors.len(),
        5,
        "2 image manifests, 2 SOCI indexes, 1 attestation"
    );
    for descriptor in descriptors {
        let digest = descriptor["digest"].as_str().unwrap();
        let manifest = blob(dir, digest);
        assert_eq!(blob(&other, digest), manifest, "manifest {digest}");
        let manifest: Value = serde_json::from_slice(&manifest).unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        for d in layers.iter().chain([&manifest["config"]]) {
            let digest = d["digest"].as_str().unwrap();
            assert_eq!(blob(&other, digest), blob(dir, digest), "blob {digest}");
        }
    }
}

#[test]
fn a_layout_skopeo_wrote_is_indexed_and_keeps_working_with_skopeo() {
    let dir = demo_layout();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("copy");
    skopeo(&["copy", "--all", &oci(dir, "v1"), &oci(&copy, "v1")]);
    assert_eq!(tag_digest(&copy, "v1"), tag_digest(dir, "v1"));
    assert!(
        !std::fs::read_to_string(copy.join("index.json"))
            .unwrap()
            .contains("v1-soci"),
        "skopeo copied only the image"
    );

    let indexed = xtask(&["index", &oci(&copy, "v1")]);
    assert!(indexed.status.success(), "{}", text(&indexed));
    assert_eq!(verify_graph(&copy), 2);
    // The same image gives the same SOCI-enabled index, wherever it was indexed.
    assert_eq!(tag_digest(&copy, "v1-soci"), tag_digest(dir, "v1-soci"));

    // A V1 index (of one image manifest: skopeo copies the linux/amd64 one, tagged `amd64`)
    // adds an untagged entry, a referrer, to index.json; skopeo still resolves the tagged
    // entries, and copies the tagged SOCI index from that layout.
    skopeo(&[
        "copy",
        "--override-os",
        "linux",
        "--override-arch",
        "amd64",
        &oci(dir, "v1"),
        &oci(&copy, "amd64"),
    ]);
    let v1 = xtask(&["index", &oci(&copy, "amd64"), "--v1"]);
    assert!(
        v1.status.success() && text(&v1).contains("untagged, subject"),
        "{}",
        text(&v1)
    );
    let untagged = index_json(&copy)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["annotations"][REF_NAME].is_null())
        .count();
    assert_eq!(untagged, 1, "{}", index_json(&copy));
    for tag in ["v1", "v1-soci", "amd64"] {
        let raw = skopeo(&["inspect", "--raw", &oci(&copy, tag)]);
        assert_eq!(raw.stdout, blob(&copy, &tag_digest(&copy, tag)), "{tag}");
    }
    let again = tmp.path().join("again");
    skopeo(&[
        "copy",
        "--all",
        &oci(&copy, "v1-soci"),
        &oci(&again, "v1-soci"),
    ]);
}
