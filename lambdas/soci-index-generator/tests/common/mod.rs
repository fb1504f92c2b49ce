//! Test helpers: a real registry behind a counting, fault-injecting proxy; images built from
//! code (tar + gzip); and the checks every test runs on what the pipeline pushed.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};
use soci_index_generator::config::{Config, RegistryTarget};
use soci_index_generator::registry::sha256_digest;
use soci_index_generator::{Credentials, Indexer, RegistryClient, RetryPolicy};
use tokio::sync::Mutex;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const SOCI_V2: &str = "application/vnd.amazon.soci.index.v2+json";
pub const SOCI_V1: &str = "application/vnd.amazon.soci.index.v1+json";

/// The minimum layer size the tests configure (small layers are below it).
pub const MIN_LAYER: u64 = 64 * 1024;
pub const SPAN: u64 = 256 * 1024;

/// A fault-injecting, counting HTTP proxy in front of the registry.
pub struct Proxy {
    pub addr: String,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    writes: AtomicUsize,
    requests: AtomicUsize,
    /// (method, remaining failures)
    faults: Mutex<Vec<(String, usize)>>,
    log: Mutex<Vec<String>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let state = Arc::new(ProxyState {
            upstream: upstream.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            writes: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
        });
        let s = state.clone();
        let me = addr.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                let me = me.clone();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        let me = me.clone();
                        async move { Ok::<_, Infallible>(forward(&s, &me, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Proxy { addr, state, task }
    }

    /// Registry writes (POST/PUT/PATCH/DELETE) that reached the registry.
    pub fn writes(&self) -> usize {
        self.state.writes.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// The next `n` requests with `method` are answered 503 without reaching the registry.
    pub async fn fail_next(&self, method: &str, n: usize) {
        self.state.faults.lock().await.push((method.to_string(), n));
    }

    pub async fn log(&self) -> Vec<String> {
        self.state.log.lock().await.clone()
    }
}

async fn forward(s: &ProxyState, me: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    {
        let mut faults = s.faults.lock().await;
        if let Some(f) = faults.iter_mut().find(|(m, n)| *m == method && *n > 0) {
            f.1 -= 1;
            s.log.lock().await.push(format!("503 {method} {path}"));
            let mut resp = Response::new(Full::new(Bytes::from_static(
                b"{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"injected\"}]}",
            )));
            *resp.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
            return resp;
        }
    }
    s.requests.fetch_add(1, Ordering::SeqCst);
    if matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
        s.writes.fetch_add(1, Ordering::SeqCst);
    }
    s.log.lock().await.push(format!("{method} {path}"));
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let url = format!("http://{}{path}", s.upstream);
    let mut rb = s.http.request(method.parse().expect("method"), url);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            rb = rb.header(k, v);
        }
    }
    let upstream = match rb.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            let mut resp = Response::new(Full::new(Bytes::from(e.to_string())));
            *resp.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            return resp;
        }
    };
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let body = upstream.bytes().await.unwrap_or_default();
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    for (k, v) in &headers {
        if k == "content-length" || k == "transfer-encoding" {
            continue;
        }
        if k == "location" {
            let rewritten = v.to_str().unwrap_or_default().replace(&s.upstream, me);
            resp.headers_mut()
                .insert(k, rewritten.parse().expect("location"));
        } else {
            resp.headers_mut().insert(k, v.clone());
        }
    }
    resp
}

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
        let direct = Arc::new(
            RegistryClient::new(
                &format!("http://{}", registry.addr),
                Credentials::Anonymous,
                RetryPolicy {
                    attempts: 2,
                    base_delay: Duration::from_millis(10),
                },
            )
            .expect("client"),
        );
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
            build_tool: "soci-lambda tests".into(),
            ..Config::default()
        }
    }

    pub fn indexer(&self, config: Config) -> Indexer {
        let client = RegistryClient::new(
            &format!("http://{}", self.proxy.addr),
            Credentials::Anonymous,
            RetryPolicy {
                attempts: config.retry_attempts,
                base_delay: config.retry_base_delay,
            },
        )
        .expect("client");
        Indexer::new(Arc::new(client), config)
    }
}

/// Deterministic bytes: half text-like (compressible), half xorshift noise.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    let words: [&[u8]; 6] = [
        b"soci ",
        b"layer ",
        b"lazy ",
        b"loading ",
        b"container ",
        b"image\n",
    ];
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (out.len() / 4096) % 2 == 0 {
            out.extend_from_slice(words[(x % 6) as usize]);
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

/// A tar of a few files of `len` bytes in total.
pub fn tar(seed: u64, len: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_path("data/").expect("path");
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append(&h, std::io::empty()).expect("dir");
    let parts = 3;
    for i in 0..parts {
        let data = content(seed * 31 + i as u64, len / parts);
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("data/file{i}.bin")).expect("path");
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, &data[..]).expect("file");
    }
    b.into_inner().expect("tar")
}

/// A tar with a directory entry whose size field is not 0 (and, as Go reads it, no data): the
/// reference writes a zTOC for it that no consumer can read, so soci-core calls it unindexable.
pub fn unindexable_tar(seed: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("weird/").expect("path");
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(4096);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.get_mut().write_all(h.as_bytes()).expect("raw header");
    let data = content(seed, 200 * 1024);
    let mut h = tar::Header::new_ustar();
    h.set_path("weird/file").expect("path");
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append(&h, &data[..]).expect("file");
    b.into_inner().expect("tar")
}

/// Not a tar at all (the reference rejects the layer).
pub fn garbage_tar(seed: u64) -> Vec<u8> {
    content(seed, 200 * 1024)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// A layer blob with its media type.
#[derive(Clone)]
pub struct Layer {
    pub media_type: String,
    pub blob: Vec<u8>,
}

impl Layer {
    pub fn gzip(seed: u64, len: usize) -> Layer {
        Layer {
            media_type: OCI_GZIP.into(),
            blob: gzip(&tar(seed, len)),
        }
    }
    pub fn docker_gzip(seed: u64, len: usize) -> Layer {
        Layer {
            media_type: DOCKER_GZIP.into(),
            blob: gzip(&tar(seed, len)),
        }
    }
    pub fn tar(seed: u64, len: usize) -> Layer {
        Layer {
            media_type: OCI_TAR.into(),
            blob: tar(seed, len),
        }
    }
    /// Labelled zstd (the pipeline never reads it: it is left out by media type).
    pub fn zstd(seed: u64, len: usize) -> Layer {
        Layer {
            media_type: OCI_ZSTD.into(),
            blob: content(seed, len),
        }
    }
    pub fn digest(&self) -> String {
        sha256_digest(&self.blob)
    }
}

/// A pushed manifest.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

pub async fn push_blob(env: &Env, repo: &str, blob: &[u8]) -> String {
    let digest = sha256_digest(blob);
    if !env
        .direct
        .blob_exists(repo, &digest)
        .await
        .expect("head blob")
    {
        env.direct
            .push_blob(repo, &digest, Bytes::copy_from_slice(blob))
            .await
            .expect("push blob");
    }
    digest
}

/// Pushes layers, a config and a manifest (OCI or Docker types); tags it when `tag` is given.
pub async fn push_image(
    env: &Env,
    repo: &str,
    tag: Option<&str>,
    layers: &[Layer],
    arch: &str,
    docker: bool,
) -> Pushed {
    let config = json!({
        "architecture": arch, "os": "linux",
        "config": {}, "rootfs": {"type": "layers", "diff_ids": []}
    });
    let config = serde_json::to_vec(&config).expect("config");
    let config_digest = push_blob(env, repo, &config).await;
    let mut descs = Vec::new();
    for l in layers {
        let d = push_blob(env, repo, &l.blob).await;
        descs.push(json!({"mediaType": l.media_type, "size": l.blob.len(), "digest": d}));
    }
    let (mt, cmt) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    } else {
        (OCI_MANIFEST, OCI_CONFIG)
    };
    let manifest = json!({
        "schemaVersion": 2, "mediaType": mt,
        "config": {"mediaType": cmt, "size": config.len(), "digest": config_digest},
        "layers": descs,
        "annotations": {"org.opencontainers.image.source": "https://example.com/<app>&x"}
    });
    let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest");
    put_manifest(env, repo, tag, mt, bytes).await
}

pub async fn put_manifest(
    env: &Env,
    repo: &str,
    tag: Option<&str>,
    media_type: &str,
    bytes: Vec<u8>,
) -> Pushed {
    let digest = sha256_digest(&bytes);
    let size = bytes.len() as u64;
    let bytes = Bytes::from(bytes);
    env.direct
        .put_manifest(repo, &digest, media_type, bytes.clone())
        .await
        .expect("put manifest");
    if let Some(tag) = tag {
        env.direct
            .put_manifest(repo, tag, media_type, bytes)
            .await
            .expect("tag manifest");
    }
    Pushed {
        digest,
        size,
        media_type: media_type.into(),
    }
}

/// An attestation manifest (BuildKit style) for an index.
pub async fn push_attestation(env: &Env, repo: &str, subject: &str) -> Pushed {
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#;
    let d = push_blob(env, repo, statement).await;
    let config = b"{}";
    let cd = push_blob(env, repo, config).await;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": 2, "digest": cd},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "size": statement.len(), "digest": d,
                    "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}],
        "annotations": {"vnd.docker.reference.digest": subject, "vnd.docker.reference.type": "attestation-manifest"}
    });
    put_manifest(
        env,
        repo,
        None,
        OCI_MANIFEST,
        serde_json::to_vec(&manifest).expect("json"),
    )
    .await
}

pub async fn push_index(
    env: &Env,
    repo: &str,
    tag: &str,
    entries: &[(Pushed, Value)],
    docker: bool,
) -> Pushed {
    let manifests: Vec<Value> = entries
        .iter()
        .map(|(p, extra)| {
            let mut d = json!({"mediaType": p.media_type, "digest": p.digest, "size": p.size});
            if let (Some(obj), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
                for (k, v) in extra {
                    obj.insert(k.clone(), v.clone());
                }
            }
            d
        })
        .collect();
    let mt = if docker { DOCKER_LIST } else { OCI_INDEX };
    let index = json!({"schemaVersion": 2, "mediaType": mt, "manifests": manifests});
    put_manifest(
        env,
        repo,
        Some(tag),
        mt,
        serde_json::to_vec(&index).expect("json"),
    )
    .await
}

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

pub async fn blob(env: &Env, repo: &str, digest: &str) -> Vec<u8> {
    env.direct
        .get_blob_bytes(repo, digest)
        .await
        .expect("get blob")
        .to_vec()
}

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

/// Checks one SOCI index manifest: canonical JSON, config, annotations, and every zTOC verified
/// against its layer. Returns the indexed layer digests in order.
pub async fn check_soci_index(
    env: &Env,
    repo: &str,
    digest: &str,
    version: &str,
) -> (Value, Vec<String>) {
    let (bytes, v, got) = manifest(env, repo, digest).await;
    assert_eq!(got, digest);
    let parsed =
        soci_core::oci::Manifest::from_json(&bytes).expect("SOCI index parses in soci-core");
    assert_eq!(
        String::from_utf8_lossy(&parsed.to_go_json()),
        String::from_utf8_lossy(&bytes),
        "SOCI index JSON is canonical"
    );
    assert_eq!(v["mediaType"], OCI_MANIFEST);
    assert_eq!(v["config"]["mediaType"], version);
    assert_eq!(v["config"]["size"], 2);
    assert_eq!(
        blob(
            env,
            repo,
            v["config"]["digest"].as_str().expect("config digest")
        )
        .await,
        b"{}"
    );
    assert_eq!(
        v["annotations"]["com.amazon.soci.build-tool-identifier"],
        "soci-lambda tests"
    );
    let mut layers = Vec::new();
    for z in v["layers"].as_array().expect("layers") {
        assert_eq!(z["mediaType"], "application/octet-stream");
        let ann = &z["annotations"];
        assert_eq!(ann["com.amazon.soci.span-size"], SPAN.to_string());
        let layer_digest = ann["com.amazon.soci.image-layer-digest"]
            .as_str()
            .expect("layer digest")
            .to_string();
        let ztoc = blob(env, repo, z["digest"].as_str().expect("ztoc digest")).await;
        assert_eq!(ztoc.len() as u64, z["size"].as_u64().expect("size"));
        let layer = blob(env, repo, &layer_digest).await;
        let report = soci_core::verify(&ztoc, &layer[..]).expect("verify runs");
        assert!(
            report.is_ok(),
            "zTOC of {layer_digest} fails verification: {:?}",
            report.problems
        );
        layers.push(layer_digest);
    }
    (v, layers)
}

/// Checks a V2 result: `<tag>-soci` -> OCI index -> annotated manifests -> SOCI indexes, the
/// original tag untouched. Returns, per platform (`os/arch`), the indexed layer digests.
pub async fn check_v2(
    env: &Env,
    repo: &str,
    tag: &str,
    original: &str,
) -> BTreeMap<String, Vec<String>> {
    let (_, _, tagged) = manifest(env, repo, tag).await;
    assert_eq!(
        tagged, original,
        "the original tag still points at the original image"
    );
    let (bytes, index, _) = manifest(env, repo, &format!("{tag}-soci")).await;
    let parsed = soci_core::oci::Index::from_json(&bytes).expect("OCI index parses in soci-core");
    assert_eq!(
        String::from_utf8_lossy(&parsed.to_go_json()),
        String::from_utf8_lossy(&bytes),
        "OCI index JSON is canonical"
    );
    assert_eq!(index["mediaType"], OCI_INDEX);
    let entries = index["manifests"].as_array().expect("manifests");
    let mut out = BTreeMap::new();
    for soci in entries.iter().filter(|d| d["artifactType"] == SOCI_V2) {
        assert_eq!(soci["mediaType"], OCI_MANIFEST);
        let soci_digest = soci["digest"].as_str().expect("digest");
        let image_digest = soci["annotations"]["com.amazon.soci.image-manifest-digest"]
            .as_str()
            .expect("annotation");
        let image_entry = entries
            .iter()
            .find(|d| d["digest"] == image_digest)
            .expect("annotated manifest is in the index");
        // The SOCI descriptor carries the normalized platform (`arm64/v8` -> `arm64`).
        assert_eq!(image_entry["platform"]["os"], soci["platform"]["os"]);
        assert_eq!(
            image_entry["platform"]["architecture"],
            soci["platform"]["architecture"]
        );
        assert_eq!(image_entry["mediaType"], OCI_MANIFEST);
        let (mbytes, m, _) = manifest(env, repo, image_digest).await;
        let parsed = soci_core::oci::Manifest::from_json(&mbytes).expect("manifest parses");
        assert_eq!(
            parsed.to_go_json(),
            mbytes.to_vec(),
            "annotated manifest JSON is canonical"
        );
        assert_eq!(m["mediaType"], OCI_MANIFEST);
        assert_eq!(m["config"]["mediaType"], OCI_CONFIG);
        assert_eq!(
            m["annotations"]["com.amazon.soci.index-digest"],
            soci_digest
        );
        assert_eq!(image_entry["annotations"], m["annotations"]);
        let (_, layers) = check_soci_index(env, repo, soci_digest, SOCI_V2).await;
        let image_layers: Vec<&str> = m["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .filter_map(|l| l["digest"].as_str())
            .collect();
        let mut last = 0;
        for l in &layers {
            let pos = image_layers
                .iter()
                .position(|x| x == l)
                .expect("indexed layer belongs to the image");
            assert!(pos >= last, "zTOCs are in image layer order");
            last = pos;
        }
        let platform = format!(
            "{}/{}",
            soci["platform"]["os"].as_str().unwrap_or_default(),
            soci["platform"]["architecture"]
                .as_str()
                .unwrap_or_default()
        );
        out.insert(platform, layers);
    }
    out
}
