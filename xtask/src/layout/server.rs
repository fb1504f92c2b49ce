//! An OCI distribution API server over one [`Layout`], on 127.0.0.1 and an ephemeral port, for
//! the indexing pipeline (and the demo's image generator) to read and write through the
//! generator's own `RegistryClient`, unchanged.
//!
//! It serves what that client asks for, as a registry answers it: manifests by tag and digest
//! (`GET`/`HEAD`/`PUT`), blobs (`GET`/`HEAD`, `Range: bytes=N-[M]`), monolithic blob uploads
//! (`POST` then `PUT ?digest=`, or a single `POST ?digest=`), the referrers API and tag list.
//! Chunked uploads (`PATCH`) and deletes are refused with `UNSUPPORTED`. Every request body is
//! bounded before it is buffered or written. Any repository name maps to the one layout.
//!
//! Layout problems (a tag naming a missing blob, a corrupt blob) are answered `422` with the
//! error naming the file: the client retries `5xx` answers, and retrying cannot fix a layout.

use std::collections::HashSet;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use tokio::sync::{Mutex, oneshot};

use super::{
    BlobDigest, Layout, LayoutError, MANIFEST_LIMIT, UPLOAD_LIMIT, is_valid_tag, manifest_entry,
    sha256_digest,
};

type Body = BoxBody<Bytes, io::Error>;

const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DIGEST_HEADER: &str = "docker-content-digest";

/// A running server; stopped (and its thread joined) on drop.
pub struct LayoutServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LayoutServer {
    /// Serves `layout` on 127.0.0.1 (ephemeral port) from a thread with its own runtime, so the
    /// caller may block on its own runtime (or none) meanwhile.
    pub fn start(layout: Layout) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("oci-layout-server")
            .enable_all()
            .build()?;
        let (shutdown, stop) = oneshot::channel();
        let state = Arc::new(State {
            layout,
            uploads: Mutex::new(HashSet::new()),
            next_upload: AtomicU64::new(1),
        });
        let thread = std::thread::Builder::new()
            .name("oci-layout-server".into())
            .spawn(move || {
                if let Err(e) = runtime.block_on(serve(listener, state, stop)) {
                    eprintln!("OCI layout server on {addr}: {e}");
                }
            })?;
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The base URL a `RegistryClient` is given.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for LayoutServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct State {
    layout: Layout,
    /// Upload sessions started by `POST` and not yet finished.
    uploads: Mutex<HashSet<String>>,
    next_upload: AtomicU64,
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut stop: oneshot::Receiver<()>,
) -> io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("OCI layout server: accept: {e}");
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            // A client that hangs up mid-answer ends only its own connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// An error answer in the distribution spec's shape.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn not_found(code: &'static str, what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code,
            format!("{what}: not in the layout"),
        )
    }

    fn unsupported(what: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{what} is not supported by the OCI layout server"),
        )
    }

    fn into_response(self, head: bool) -> Response<Body> {
        let body = json!({"errors": [{"code": self.code, "message": self.message}]}).to_string();
        let mut response = if head {
            Response::new(empty())
        } else {
            Response::new(full(body))
        };
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

impl From<LayoutError> for ApiError {
    fn from(e: LayoutError) -> Self {
        match e {
            LayoutError::BadDigest(_) => {
                Self::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", e.to_string())
            }
            LayoutError::DigestMismatch { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", e.to_string())
            }
            LayoutError::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", e.to_string())
            }
            _ => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "LAYOUT_INVALID",
                e.to_string(),
            ),
        }
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Runs blocking layout I/O off the async workers.
async fn blocking<T: Send + 'static>(
    state: &Arc<State>,
    work: impl FnOnce(&Layout) -> Result<T, LayoutError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || work(&state.layout))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                format!("layout task: {e}"),
            )
        })?
        .map_err(ApiError::from)
}

fn query_param(request: &Request<Incoming>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(request.uri().query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn handle(state: &Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let head = request.method() == Method::HEAD;
    route(state, request)
        .await
        .unwrap_or_else(|e| e.into_response(head))
}

async fn route(state: &Arc<State>, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    if path == "/v2/" || path == "/v2" {
        return Ok(Response::new(full("{}")));
    }
    let rest = path
        .strip_prefix("/v2/")
        .ok_or_else(|| ApiError::not_found("NAME_UNKNOWN", &path))?;
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return match method {
            Method::GET | Method::HEAD => {
                get_manifest(state, reference, method == Method::HEAD).await
            }
            Method::PUT => put_manifest(state, name, reference, request).await,
            _ => Err(ApiError::unsupported(&format!("{method} of a manifest"))),
        };
    }
    if let Some((name, id)) = rest.split_once("/blobs/uploads/") {
        return match (method, id) {
            (Method::POST, "") => start_upload(state, name, request).await,
            (Method::PUT, id) if !id.is_empty() => finish_upload(state, name, id, request).await,
            (Method::DELETE, id) => {
                state.uploads.lock().await.remove(id);
                Ok(status(StatusCode::NO_CONTENT))
            }
            (Method::PATCH, _) => Err(ApiError::unsupported(
                "a chunked upload (PATCH); upload the blob in one PUT",
            )),
            (method, _) => Err(ApiError::unsupported(&format!("{method} of an upload"))),
        };
    }
    if let Some((_, digest)) = rest.rsplit_once("/blobs/") {
        return match method {
            Method::GET | Method::HEAD => get_blob(state, digest, &request).await,
            _ => Err(ApiError::unsupported(&format!("{method} of a blob"))),
        };
    }
    if let Some((_, digest)) = rest.rsplit_once("/referrers/") {
        let artifact_type = query_param(&request, "artifactType");
        return referrers(state, digest, artifact_type).await;
    }
    if rest.ends_with("/tags/list") && method == Method::GET {
        let name = rest.trim_end_matches("/tags/list").to_string();
        let entries = blocking(state, |layout| layout.entries()).await?;
        let mut tags: Vec<&str> = entries.iter().filter_map(|e| e.tag()).collect();
        tags.sort_unstable();
        tags.dedup();
        return Ok(json_response(
            "application/json",
            json!({"name": name, "tags": tags}).to_string().into_bytes(),
        ));
    }
    Err(ApiError::not_found("NAME_UNKNOWN", &path))
}

fn status(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(empty());
    *response.status_mut() = status;
    response
}

fn header_value(value: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(value).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "LAYOUT_INVALID",
            format!("{value:?} cannot be sent as a header"),
        )
    })
}

fn json_response(content_type: &str, bytes: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(full(bytes));
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// `sha256-<hex>` (the referrers tag schema) as the digest it stands for.
fn referrers_tag_subject(tag: &str) -> Option<String> {
    let (algorithm, hex) = tag.split_once('-')?;
    let digest = format!("{algorithm}:{hex}");
    BlobDigest::parse(&digest).ok().map(|_| digest)
}

/// The referrers of `subject` as an OCI index (its bytes), `None` when there are none.
async fn referrers_index(
    state: &Arc<State>,
    subject: String,
    artifact_type: Option<String>,
) -> Result<Option<Vec<u8>>, ApiError> {
    let mut found = blocking(state, move |layout| layout.referrers(&subject)).await?;
    if let Some(artifact_type) = artifact_type {
        found.retain(|d| d["artifactType"] == artifact_type.as_str());
    }
    if found.is_empty() {
        return Ok(None);
    }
    let index = json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": found});
    Ok(Some(index.to_string().into_bytes()))
}

async fn referrers(
    state: &Arc<State>,
    digest: &str,
    artifact_type: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let subject = BlobDigest::parse(digest)?.to_string();
    // The referrers API answers an empty list, not 404, for a subject without referrers.
    let bytes = referrers_index(state, subject, artifact_type)
        .await?
        .unwrap_or_else(|| {
            json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": []})
                .to_string()
                .into_bytes()
        });
    Ok(json_response(MEDIA_TYPE_OCI_INDEX, bytes))
}

async fn get_manifest(
    state: &Arc<State>,
    reference: &str,
    head: bool,
) -> Result<Response<Body>, ApiError> {
    let (bytes, digest, entry_media_type) = if reference.contains(':') {
        let digest = BlobDigest::parse(reference)?;
        let wanted = digest.clone();
        // A blob larger than any manifest (a layer) is not a manifest, as a registry answers.
        let bytes = blocking(state, move |layout| match layout.read_manifest(&wanted) {
            Err(LayoutError::TooLarge { .. }) => Ok(None),
            other => other,
        })
        .await?
        .ok_or_else(|| ApiError::not_found("MANIFEST_UNKNOWN", reference))?;
        (bytes, digest.to_string(), None)
    } else {
        if !is_valid_tag(reference) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "TAG_INVALID",
                format!("{reference:?} is not a valid tag"),
            ));
        }
        let tag = reference.to_string();
        let entry = blocking(state, move |layout| layout.find_tag(&tag)).await?;
        match entry {
            Some(entry) => {
                let digest = BlobDigest::parse(&entry.digest)?;
                let wanted = digest.clone();
                let bytes = blocking(state, move |layout| layout.read_manifest(&wanted))
                    .await?
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "LAYOUT_INVALID",
                            format!(
                                "{}: tag {reference} names {digest}, whose blob {} is missing",
                                state.layout.index_path().display(),
                                state.layout.blob_path(&digest).display()
                            ),
                        )
                    })?;
                (bytes, digest.to_string(), Some(entry.media_type))
            }
            None => {
                // No such tag: the referrers tag schema, answered from the layout's referrers.
                let index = match referrers_tag_subject(reference) {
                    Some(subject) => referrers_index(state, subject, None).await?,
                    None => None,
                };
                let bytes =
                    index.ok_or_else(|| ApiError::not_found("MANIFEST_UNKNOWN", reference))?;
                let digest = sha256_digest(&bytes);
                (bytes, digest, Some(MEDIA_TYPE_OCI_INDEX.to_string()))
            }
        }
    };
    // The document's own mediaType, as a registry records it at push; the index.json entry's
    // for documents without one.
    let media_type = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType").and_then(Value::as_str).map(String::from))
        .or(entry_media_type)
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
    let mut response = Response::new(if head { empty() } else { full(bytes.clone()) });
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header_value(&media_type)?);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    headers.insert(DIGEST_HEADER, header_value(&digest)?);
    Ok(response)
}

/// Reads a request body whole, refusing more than `limit` bytes.
async fn read_body(request: Request<Incoming>, limit: u64, what: &str) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            format!("{what} is larger than the limit of {limit} bytes"),
        )
    };
    if content_length(&request).is_some_and(|n| n > limit) {
        discard_body(request).await;
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Limited::new(request.into_body(), limit)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "BLOB_UPLOAD_INVALID",
                    format!("{what}: {e}"),
                )
            }
        })
}

/// Reads and drops up to `DISCARD_LIMIT` bytes of a refused body. A client still writing its
/// body when the answer arrives and the connection closes sees a reset instead of the answer;
/// reading the body first (without keeping it) lets it read the refusal and its reason.
async fn discard_body(request: Request<Incoming>) {
    const DISCARD_LIMIT: usize = 64 << 20;
    let mut body = request.into_body();
    let mut discarded = 0usize;
    while discarded < DISCARD_LIMIT {
        match body.frame().await {
            Some(Ok(frame)) => discarded += frame.data_ref().map_or(0, Bytes::len),
            _ => break,
        }
    }
}

fn content_length(request: &Request<Incoming>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

async fn put_manifest(
    state: &Arc<State>,
    name: &str,
    reference: &str,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let by_digest = reference.contains(':');
    if !by_digest && !is_valid_tag(reference) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "TAG_INVALID",
            format!("{reference:?} is not a valid tag"),
        ));
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
    let bytes = read_body(request, MANIFEST_LIMIT, "manifest").await?;
    let digest = if by_digest {
        let expected = BlobDigest::parse(reference)?;
        let mut hasher = expected.hasher();
        hasher.update(&bytes);
        let actual = hasher.digest();
        if actual != reference {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("manifest {reference}: content has digest {actual}"),
            ));
        }
        expected
    } else {
        BlobDigest::parse(&sha256_digest(&bytes))?
    };
    let invalid =
        |detail: String| ApiError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", detail);
    let manifest: Value = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("manifest {digest}: not JSON: {e}")))?;
    if !manifest.is_object() {
        return Err(invalid(format!("manifest {digest}: not a JSON object")));
    }
    let media_type = manifest
        .get("mediaType")
        .and_then(Value::as_str)
        .map(String::from)
        .or(content_type)
        .ok_or_else(|| {
            invalid(format!(
                "manifest {digest}: no mediaType and no Content-Type"
            ))
        })?;
    // As a registry does: every blob and manifest it names must be there already (a subject
    // need not be).
    let mut referenced = Vec::new();
    for pointer in ["/config/digest"] {
        if let Some(d) = manifest.pointer(pointer).and_then(Value::as_str) {
            referenced.push(d.to_string());
        }
    }
    for list in ["layers", "manifests", "blobs"] {
        for d in manifest
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let digest = d.get("digest").and_then(Value::as_str).unwrap_or_default();
            referenced.push(digest.to_string());
        }
    }
    for d in &referenced {
        let blob = BlobDigest::parse(d).map_err(|e| invalid(format!("manifest {digest}: {e}")))?;
        if !state.layout.has_blob(&blob) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                format!("manifest {digest} names {d}, which is not in the layout"),
            ));
        }
    }
    let digest_string = digest.to_string();
    let entry = manifest_entry(&media_type, &digest_string, &bytes, &manifest);
    let has_subject = manifest.get("subject").is_some_and(Value::is_object);
    let tag = (!by_digest).then(|| reference.to_string());
    blocking(state, move |layout| {
        layout.write_blob(&digest, &bytes)?;
        // The tag last: it is what readers look for, and it must name a complete manifest.
        match tag {
            Some(tag) => layout.set_tag(&tag, entry),
            None if has_subject => layout.add_untagged(entry),
            None => Ok(()),
        }
    })
    .await?;
    let mut response = status(StatusCode::CREATED);
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/manifests/{digest_string}"))?,
    );
    headers.insert(DIGEST_HEADER, header_value(&digest_string)?);
    Ok(response)
}

async fn start_upload(
    state: &Arc<State>,
    name: &str,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    if let Some(digest) = query_param(&request, "digest") {
        // The single-request monolithic upload.
        return write_blob(state, name, &digest, request).await;
    }
    if let Some(mounted) = query_param(&request, "mount")
        && state.layout.has_blob(&BlobDigest::parse(&mounted)?)
    {
        return blob_created(name, &mounted);
    }
    let id = format!(
        "{}-{}",
        std::process::id(),
        state.next_upload.fetch_add(1, Ordering::Relaxed)
    );
    state.uploads.lock().await.insert(id.clone());
    let mut response = status(StatusCode::ACCEPTED);
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/blobs/uploads/{id}"))?,
    );
    headers.insert("docker-upload-uuid", header_value(&id)?);
    headers.insert(header::RANGE, HeaderValue::from_static("0-0"));
    Ok(response)
}

async fn finish_upload(
    state: &Arc<State>,
    name: &str,
    id: &str,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    if !state.uploads.lock().await.remove(id) {
        return Err(ApiError::not_found(
            "BLOB_UPLOAD_UNKNOWN",
            format!("upload {id}"),
        ));
    }
    let digest = query_param(&request, "digest").ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "the upload's PUT has no ?digest=",
        )
    })?;
    write_blob(state, name, &digest, request).await
}

/// Streams the request body into a temporary blob file, hashing as it goes, and renames it
/// into place when the digest matches.
async fn write_blob(
    state: &Arc<State>,
    name: &str,
    digest: &str,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let expected = BlobDigest::parse(digest)?;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            format!("blob {digest} is larger than the limit of {UPLOAD_LIMIT} bytes"),
        )
    };
    if content_length(&request).is_some_and(|n| n > UPLOAD_LIMIT) {
        discard_body(request).await;
        return Err(too_large());
    }
    let wanted = expected.clone();
    let tmp = blocking(state, move |layout| layout.blob_temp(&wanted)).await?;
    let io_failed = |e: io::Error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "LAYOUT_INVALID",
            format!(
                "writing {}: {e}",
                tmp_path_display(&state.layout, &expected)
            ),
        )
    };
    let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(io_failed)?);
    let mut hasher = expected.hasher();
    let mut written = 0u64;
    let mut body = request.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                format!("blob {digest}: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        written += data.len() as u64;
        if written > UPLOAD_LIMIT {
            return Err(too_large());
        }
        hasher.update(&data);
        file.write_all(&data).await.map_err(io_failed)?;
    }
    file.flush().await.map_err(io_failed)?;
    drop(file);
    let actual = hasher.digest();
    blocking(state, move |layout| {
        layout.commit_blob(tmp, &expected, &actual)
    })
    .await?;
    blob_created(name, digest)
}

fn tmp_path_display(layout: &Layout, digest: &BlobDigest) -> String {
    layout
        .root()
        .join("blobs")
        .join(digest.algorithm)
        .display()
        .to_string()
}

fn blob_created(name: &str, digest: &str) -> Result<Response<Body>, ApiError> {
    let mut response = status(StatusCode::CREATED);
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/blobs/{digest}"))?,
    );
    headers.insert(DIGEST_HEADER, header_value(digest)?);
    Ok(response)
}

/// `bytes=START-` or `bytes=START-END` (inclusive). Other forms (suffixes, several ranges) are
/// ignored, as RFC 9110 allows: the whole blob is sent.
fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        end => Some(end.parse().ok()?),
    };
    match end {
        Some(end) if end < start => None,
        _ => Some((start, end)),
    }
}

async fn get_blob(
    state: &Arc<State>,
    digest: &str,
    request: &Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let blob = BlobDigest::parse(digest)?;
    let path = state.layout.blob_path(&blob);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ApiError::not_found("BLOB_UNKNOWN", digest));
        }
        Err(e) => return Err(LayoutError::Io { path, source: e }.into()),
    };
    let len = file
        .metadata()
        .await
        .map_err(|e| LayoutError::Io {
            path: path.clone(),
            source: e,
        })?
        .len();
    let range = request
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range);
    let (status, start, end) = match range {
        Some((start, _)) if start >= len => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UNKNOWN",
                format!("{digest}: range starts at {start}, the blob has {len} bytes"),
            )
            .into_response(request.method() == Method::HEAD);
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{len}"))?,
            );
            return Ok(response);
        }
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            start,
            end.map_or(len - 1, |e| e.min(len - 1)),
        ),
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    let body = if request.method() == Method::HEAD || count == 0 {
        empty()
    } else {
        file.seek(io::SeekFrom::Start(start))
            .await
            .map_err(|e| LayoutError::Io {
                path: path.clone(),
                source: e,
            })?;
        let stream = tokio_util::io::ReaderStream::new(file.take(count));
        StreamBody::new(stream.map_ok(Frame::data)).boxed()
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(DIGEST_HEADER, header_value(digest)?);
    if status == StatusCode::PARTIAL_CONTENT {
        headers.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {start}-{end}/{len}"))?,
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=10-"), Some((10, None)));
        assert_eq!(parse_range("bytes=0-99"), Some((0, Some(99))));
        assert_eq!(parse_range("bytes=9-3"), None);
        assert_eq!(parse_range("bytes=-5"), None);
        assert_eq!(parse_range("items=1-2"), None);
    }
}
