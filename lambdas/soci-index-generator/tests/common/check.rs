//! The checks every test runs on what the pipeline pushed: the one SOCI-graph checker
//! ([`soci_core::inspect`]) over the registry, which must find no problem, plus what these tests
//! configure (version, build tool, span size) and the few facts its report does not carry.

use std::collections::BTreeMap;

use serde_json::Value;
use soci_core::inspect::{GraphReport, PlatformReport, Root, inspect};
use soci_index_generator::registry::RepositoryGraph;

use soci_index_generator::{IndexingOutcome, PipelineError, error_chain};

use super::{BUILD_TOOL, Env, OCI_INDEX, OCI_MANIFEST, SOCI_V1, SOCI_V2, SPAN, manifest, tags};

/// The run ended `indexed`.
pub fn assert_indexed(o: &Result<IndexingOutcome, PipelineError>) {
    match o {
        Ok(o) => assert_eq!(o.status(), "indexed", "{o:?}"),
        Err(e) => panic!("run failed: {}", error_chain(e)),
    }
}

/// A failed run that left the original tag alone and no `v1-soci`; its error chain.
pub async fn assert_failed_untagged(
    env: &Env,
    repo: &str,
    o: &Result<IndexingOutcome, PipelineError>,
) -> String {
    let message = match o {
        Ok(o) => panic!("expected a failure, got {o:?}"),
        Err(e) => error_chain(e),
    };
    assert_eq!(tags(env, repo).await, vec!["v1"], "no v1-soci: {message}");
    message
}

async fn inspect_graph(env: &Env, repo: &str, root: Root) -> GraphReport {
    let graph = RepositoryGraph {
        client: &env.direct,
        repository: repo,
    };
    let report = inspect(&graph, &root)
        .await
        .expect("the SOCI graph reads back");
    assert_eq!(
        report.problems(),
        Vec::<String>::new(),
        "the SOCI graph passes every check"
    );
    report
}

/// One SOCI index: its version and what the tests configured; every zTOC verified against its
/// layer (also among the report's problems, asserted here to name the layer on failure).
async fn check_platform_index(env: &Env, repo: &str, p: &PlatformReport, version: &str) {
    let index = &p.soci_index;
    // The report has the media type the index was served with; this is the one in its JSON.
    let (_, json, _) = manifest(env, repo, &index.document.digest).await;
    assert_eq!(json["mediaType"], OCI_MANIFEST);
    assert_eq!(index.config.media_type, version);
    assert_eq!(index.config.size, 2);
    assert_eq!(
        index.annotations["com.amazon.soci.build-tool-identifier"],
        BUILD_TOOL
    );
    for (layer, ztoc) in p.ztocs() {
        assert_eq!(ztoc.span_size_annotation(), Some(SPAN.to_string().as_str()));
        assert!(
            ztoc.verify.is_ok(),
            "zTOC of {} fails verification: {:?}",
            layer.digest,
            ztoc.verify.problems
        );
    }
}

/// Checks a V1 SOCI index (its subject must be `original`); returns its one platform's report.
pub async fn check_v1(env: &Env, repo: &str, digest: &str, original: &str) -> PlatformReport {
    let root = Root::v1(digest).with_original(original);
    let report = inspect_graph(env, repo, root).await;
    let mut platforms = report.platforms.into_iter();
    let p = platforms.next().expect("one image manifest");
    assert!(platforms.next().is_none(), "a V1 index has one subject");
    check_platform_index(env, repo, &p, SOCI_V1).await;
    p
}

/// Checks a V2 result: `<tag>-soci` -> OCI index -> annotated manifests -> SOCI indexes, the
/// original tag untouched. Returns, per platform (`os/arch` of the SOCI index entry), the
/// indexed layer digests in image layer order.
pub async fn check_v2(
    env: &Env,
    repo: &str,
    tag: &str,
    original: &str,
) -> BTreeMap<String, Vec<String>> {
    check_v2_with_original(env, repo, tag, tag, original).await
}

/// [`check_v2`] where the original is found at `original_ref` (the in-place mode keeps it as
/// `<tag>-original`).
pub async fn check_v2_with_original(
    env: &Env,
    repo: &str,
    tag: &str,
    original_ref: &str,
    original: &str,
) -> BTreeMap<String, Vec<String>> {
    let root = Root::v2(format!("{tag}-soci")).with_original(original_ref);
    let report = inspect_graph(env, repo, root).await;
    assert_eq!(
        report.original.as_ref().expect("original").digest,
        original,
        "the original tag still points at the original image"
    );
    let (_, index, _) = manifest(env, repo, &report.root.digest).await;
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut out = BTreeMap::new();
    for p in &report.platforms {
        check_platform_index(env, repo, p, SOCI_V2).await;
        let layers = p.indexed_layers().into_iter().map(String::from).collect();
        out.insert(soci_entry_platform(&index, p), layers);
    }
    out
}

/// `os/arch` of the platform's SOCI index entry, which must be that of its image manifest entry
/// (the SOCI descriptor carries the normalized platform, `arm64/v8` -> `arm64`; the checker pairs
/// entries by normalized platform and does not compare what they say).
fn soci_entry_platform(index: &Value, p: &PlatformReport) -> String {
    let entry = |digest: &str| {
        index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .find(|d| d["digest"] == digest)
            .unwrap_or_else(|| panic!("{digest} is in the index"))
    };
    let soci = &entry(&p.soci_index.document.digest)["platform"];
    let image = &entry(&p.image_manifest.document.digest)["platform"];
    assert_eq!(image["os"], soci["os"]);
    assert_eq!(image["architecture"], soci["architecture"]);
    format!(
        "{}/{}",
        soci["os"].as_str().unwrap_or_default(),
        soci["architecture"].as_str().unwrap_or_default()
    )
}
