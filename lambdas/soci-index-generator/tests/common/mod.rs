//! Test helpers: a real registry behind a counting, fault-injecting proxy ([`Proxy`]); images
//! from the shared generator, pushed with a direct client ([`images`]); and the checks every test
//! runs on what the pipeline pushed ([`check`]).
#![allow(dead_code, unused_imports)]

mod check;
mod images;
mod proxy;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use soci_index_generator::config::{Config, RegistryTarget};
use soci_index_generator::{
    Credentials, ImageRef, Indexer, IndexingOutcome, PipelineError, RegistryClient, RetryPolicy,
};

pub use check::{
    assert_failed_untagged, assert_indexed, check_v1, check_v2, check_v2_with_original,
};
pub use images::{
    LayerBlob, attestation_annotations, push_attestation, push_blob, push_image, push_index,
    put_manifest,
};
pub use proxy::Proxy;
pub use soci_core::oci::{
    MEDIA_TYPE_DOCKER_IMAGE_CONFIG as DOCKER_CONFIG, MEDIA_TYPE_DOCKER_LAYER_GZIP as DOCKER_GZIP,
    MEDIA_TYPE_DOCKER_MANIFEST as DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST as DOCKER_LIST,
    MEDIA_TYPE_OCI_IMAGE_CONFIG as OCI_CONFIG, MEDIA_TYPE_OCI_INDEX as OCI_INDEX,
    MEDIA_TYPE_OCI_LAYER_GZIP as OCI_GZIP, MEDIA_TYPE_OCI_LAYER_TAR as OCI_TAR,
    MEDIA_TYPE_OCI_LAYER_ZSTD as OCI_ZSTD, MEDIA_TYPE_OCI_MANIFEST as OCI_MANIFEST,
    MEDIA_TYPE_SOCI_INDEX_V1 as SOCI_V1, MEDIA_TYPE_SOCI_INDEX_V2 as SOCI_V2,
};
pub use test_support::image::index_descriptor;

/// The minimum layer size the tests configure (small layers are below it).
pub const MIN_LAYER: u64 = 64 * 1024;
pub const SPAN: u64 = 256 * 1024;
/// The build tool the tests configure, stamped into every SOCI index.
pub const BUILD_TOOL: &str = "soci-lambda tests";

/// A registry, a proxy in front of it, and a direct client for setup and checks.
pub struct Env {
    pub registry: test_support::Registry,
    pub proxy: Proxy,
    pub direct: Arc<RegistryClient>,
}

impl Env {
    pub async fn start() -> Env {
        let registry = test_support::Registry::start().unwrap_or_else(|e| {
            panic!("starting docker-registry failed (install it with `cargo xtask setup`): {e}")
        });
        let proxy = Proxy::start(&registry.addr).await;
        let direct = Arc::new(anonymous_client(
            &registry.addr,
            RetryPolicy {
                attempts: 2,
                base_delay: Duration::from_millis(10),
            },
        ));
        Env {
            registry,
            proxy,
            direct,
        }
    }

    /// The configuration the tests index with: through the proxy, small sizes, fast retries.
    pub fn config(&self) -> Config {
        Config {
            registry: RegistryTarget::Url {
                url: format!("http://{}", self.proxy.addr),
                username: None,
                password: None,
            },
            min_layer_size: MIN_LAYER,
            span_size: SPAN,
            retry_base_delay: Duration::from_millis(20),
            build_tool: BUILD_TOOL.into(),
            ..Config::default()
        }
    }

    pub fn indexer(&self, config: Config) -> Indexer {
        let client = anonymous_client(
            &self.proxy.addr,
            RetryPolicy {
                attempts: config.retry_attempts,
                base_delay: config.retry_base_delay,
            },
        );
        Indexer::new(Arc::new(client), config)
    }
}

fn anonymous_client(addr: &str, retry: RetryPolicy) -> RegistryClient {
    RegistryClient::new(&format!("http://{addr}"), Credentials::Anonymous, retry).expect("client")
}

/// Waits (5 s at most, else fails with `what`) until the proxy writes no body any more: it
/// stops once the client is gone (a write fails), within a few drips.
pub async fn wait_for_no_open_bodies(env: &Env, what: &str) {
    let started = std::time::Instant::now();
    while env.proxy.open_bodies() > 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Indexes `repo@digest`, as the push event of `tag` asks, with `config`.
pub async fn run_with(
    env: &Env,
    config: Config,
    repo: &str,
    digest: &str,
    tag: Option<&str>,
) -> Result<IndexingOutcome, PipelineError> {
    let image = ImageRef {
        repository: repo.into(),
        digest: Some(digest.into()),
        tag: tag.map(String::from),
    };
    env.indexer(config).run(&image).await
}

/// The manifest at `reference`: its bytes, its JSON and the digest the registry gave.
pub async fn manifest(env: &Env, repo: &str, reference: &str) -> (Bytes, Value, String) {
    let m = env
        .direct
        .get_manifest(repo, reference)
        .await
        .expect("get manifest")
        .unwrap_or_else(|| panic!("{repo}:{reference} not found"));
    let v: Value = serde_json::from_slice(&m.bytes).expect("manifest JSON");
    (m.bytes, v, m.digest)
}

/// The repository's tags, sorted.
pub async fn tags(env: &Env, repo: &str) -> Vec<String> {
    let v: Value = reqwest::get(format!("http://{}/v2/{repo}/tags/list", env.registry.addr))
        .await
        .expect("tags")
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).expect("tags JSON"))
        .expect("tags body");
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}
