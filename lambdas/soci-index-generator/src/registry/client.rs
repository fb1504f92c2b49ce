//! The registry client: the manifest and blob requests the pipeline makes, each through
//! [`RegistryClient::send`] (authentication, retries of transient failures).

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use super::auth::{self, Access, Credentials};
use super::retry::{self, RetryPolicy, is_transient_error, is_transient_status};
use super::{
    CONFIG_LIMIT, FetchedManifest, MANIFEST_LIMIT, RegistryError, Result, check_digest,
    read_capped, sha256_digest,
};
use crate::media;

/// Largest blob [`RegistryClient::get_blob_bytes`] reads whole.
pub const BLOB_LIMIT: usize = 1 << 30;

/// An OCI distribution API client for one registry.
pub struct RegistryClient {
    pub(super) http: reqwest::Client,
    base: Url,
    pub(super) credentials: Credentials,
    /// Bearer tokens by scope.
    pub(super) tokens: Mutex<HashMap<String, String>>,
    pub(super) retry: RetryPolicy,
}

impl RegistryClient {
    /// A client for the registry at `base` (`https://host` or `http://127.0.0.1:5000`).
    pub fn new(base: &str, credentials: Credentials, retry: RetryPolicy) -> Result<Self> {
        let base = Url::parse(base).map_err(|e| RegistryError::Protocol {
            op: "registry URL".into(),
            detail: format!("{base:?}: {e}"),
        })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("soci-lambda/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| RegistryError::transport("HTTP client", &base, e))?;
        Ok(Self {
            http,
            base,
            credentials,
            tokens: Mutex::new(HashMap::new()),
            retry,
        })
    }

    /// The registry host (`host[:port]`), as written in image references.
    pub fn host(&self) -> String {
        match self.base.port() {
            Some(p) => format!("{}:{p}", self.base.host_str().unwrap_or_default()),
            None => self.base.host_str().unwrap_or_default().to_string(),
        }
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base.join(path).map_err(|e| RegistryError::Protocol {
            op: "URL".into(),
            detail: format!("{path}: {e}"),
        })
    }

    /// Sends the request `build` makes, with auth, retrying transient failures. Returns the
    /// response whatever its final status (callers decide what 404 means); statuses that are
    /// still transient after the last attempt are returned as errors. With ECR credentials, a
    /// `403` is answered once by fetching a new token: ECR refuses an expired token with
    /// `403 DENIED`, not `401`.
    async fn send(
        &self,
        op: &str,
        repo: &str,
        access: Access,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let scope = auth::scope(repo, access);
        let mut attempt = 0u32;
        let mut auth_rounds = 0u32;
        let mut refresh_basic = false;
        let mut refreshed_on_403 = false;
        loop {
            let request = self
                .authorize(build(&self.http), &scope, &mut refresh_basic)
                .await?
                .build()
                .map_err(|e| RegistryError::transport(op, &self.base, e))?;
            let url = request.url().clone();
            let (status, retry_after) = match self.http.execute(request).await {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && auth_rounds < 2 => {
                    auth_rounds += 1;
                    if self.answer_challenge(op, &scope, resp).await? {
                        refresh_basic = true;
                    }
                    continue;
                }
                Ok(resp)
                    if resp.status() == StatusCode::FORBIDDEN
                        && self.credentials.is_ecr()
                        && !refreshed_on_403 =>
                {
                    refreshed_on_403 = true;
                    let err = RegistryError::from_response(op, resp).await;
                    tracing::warn!(op, error = %err, "ECR refused the token, fetching a new one");
                    refresh_basic = true;
                    continue;
                }
                Ok(resp) if is_transient_status(resp.status()) => {
                    let status = resp.status().as_u16();
                    let retry_after = retry::retry_after(resp.headers());
                    let err = RegistryError::from_response(op, resp).await;
                    if !self.retry.allows_another(attempt) {
                        return Err(err);
                    }
                    tracing::warn!(op, error = %err, attempt, "transient registry answer, retrying");
                    (status, retry_after)
                }
                Ok(resp) => return Ok(resp),
                Err(e) if is_transient_error(&e) && self.retry.allows_another(attempt) => {
                    let err = RegistryError::transport(op, &url, e);
                    tracing::warn!(op, error = %err, attempt, "transient registry error, retrying");
                    (0, None)
                }
                Err(e) => return Err(RegistryError::transport(op, &url, e)),
            };
            tokio::time::sleep(self.retry.delay_after(attempt, status, retry_after)).await;
            attempt += 1;
        }
    }

    /// Turns a non-success answer into an error carrying its status and body.
    async fn fail(op: &str, resp: Response) -> RegistryError {
        RegistryError::from_response(op, resp).await
    }

    /// A GET or HEAD of `/v2/<repo>/manifests/<reference>` accepting every manifest type:
    /// `None` when the registry does not have it, an error for any other failure.
    async fn manifest_request(
        &self,
        op: &str,
        repo: &str,
        reference: &str,
        method: Method,
    ) -> Result<Option<(Response, Url)>> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(op, repo, Access::Pull, |c| {
                c.request(method.clone(), url.clone()).header(
                    header::ACCEPT,
                    HeaderValue::from_static(media::MANIFEST_ACCEPT),
                )
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(Self::fail(op, resp).await);
        }
        Ok(Some((resp, url)))
    }

    /// `GET /v2/<repo>/manifests/<reference>`; the digest is checked when `reference` is one.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<FetchedManifest>> {
        let op = format!("get manifest {repo}@{reference}");
        let Some((resp, _)) = self
            .manifest_request(&op, repo, reference, Method::GET)
            .await?
        else {
            return Ok(None);
        };
        let content_type = content_type(resp.headers());
        let bytes = read_capped(&op, resp, MANIFEST_LIMIT).await?;
        // A reference with a `:` is a digest (tags cannot hold one): check it, whatever its
        // algorithm; the manifest's own digest is then that reference.
        let digest = if reference.contains(':') {
            check_digest(&op, reference, &bytes)?;
            reference.to_string()
        } else {
            sha256_digest(&bytes)
        };
        // The document's own mediaType wins over the header (some registries answer a generic type).
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(String::from)
            })
            .or_else(|| content_type.clone())
            .unwrap_or_default();
        Ok(Some(FetchedManifest {
            bytes,
            media_type,
            content_type: content_type.unwrap_or_default(),
            digest,
        }))
    }

    /// `HEAD /v2/<repo>/manifests/<reference>`: the digest, `None` when absent.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<String>> {
        let op = format!("head manifest {repo}@{reference}");
        let Some((resp, _)) = self
            .manifest_request(&op, repo, reference, Method::HEAD)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(
            resp.headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(String::from)
                .unwrap_or_else(|| reference.to_string()),
        ))
    }

    /// The digest `tag` names now (`None` when there is no such tag): the `HEAD` answer's
    /// `Docker-Content-Digest`, or the digest of the manifest itself when the registry does
    /// not send that header.
    pub async fn tag_digest(&self, repo: &str, tag: &str) -> Result<Option<String>> {
        let op = format!("head manifest {repo}:{tag}");
        let Some((resp, _)) = self.manifest_request(&op, repo, tag, Method::HEAD).await? else {
            return Ok(None);
        };
        let header = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        match header {
            Some(digest) => Ok(Some(digest)),
            None => Ok(self.get_manifest(repo, tag).await?.map(|m| m.digest)),
        }
    }

    /// `PUT /v2/<repo>/manifests/<reference>`.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<()> {
        let op = format!("put manifest {repo}:{reference}");
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let content_type =
            HeaderValue::from_str(media_type).map_err(|e| RegistryError::Protocol {
                op: op.clone(),
                detail: format!("media type {media_type:?}: {e}"),
            })?;
        let resp = self
            .send(&op, repo, Access::Push, |c| {
                c.put(url.clone())
                    .header(header::CONTENT_TYPE, content_type.clone())
                    .body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(Self::fail(&op, resp).await);
        }
        Ok(())
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let op = format!("head blob {repo}@{digest}");
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let resp = self
            .send(&op, repo, Access::Pull, |c| c.head(url.clone()))
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(Self::fail(&op, resp).await),
        }
    }

    /// `GET /v2/<repo>/blobs/<digest>`: the response, body not yet read (stream it).
    pub async fn get_blob(&self, repo: &str, digest: &str) -> Result<Response> {
        self.get_blob_from(repo, digest, 0).await
    }

    /// Like [`RegistryClient::get_blob`], asking for the bytes from `offset` on (`Range`) when
    /// `offset` is not 0: the answer is `206` when the store honours it, `200` (the whole
    /// blob) when it does not.
    pub async fn get_blob_from(&self, repo: &str, digest: &str, offset: u64) -> Result<Response> {
        let op = format!("get blob {repo}@{digest}");
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let resp = self
            .send(&op, repo, Access::Pull, |c| {
                let get = c.get(url.clone());
                if offset == 0 {
                    get
                } else {
                    get.header(header::RANGE, format!("bytes={offset}-"))
                }
            })
            .await?;
        if !resp.status().is_success() {
            return Err(Self::fail(&op, resp).await);
        }
        Ok(resp)
    }

    /// `GET /v2/<repo>/blobs/<digest>` of the bytes `range` (`Range: bytes=a-b`), through
    /// [`RegistryClient::send`] (auth, retries), redirects followed. Also says where the bytes
    /// came from: a registry that redirects (ECR to a presigned S3 URL) is asked once, and
    /// later ranges go to that URL ([`RegistryClient::get_blob_range_at`]). The answer is
    /// `206` when the store honours the range and `200` (the whole blob) when it does not; the
    /// caller checks which.
    pub async fn get_blob_range(
        &self,
        repo: &str,
        digest: &str,
        range: Range<u64>,
    ) -> Result<(Response, BlobLocation)> {
        let op = range_op(repo, digest, &range);
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let value = range_header(&op, &range)?;
        let resp = self
            .send(&op, repo, Access::Pull, |c| {
                c.get(url.clone()).header(header::RANGE, value.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(Self::fail(&op, resp).await);
        }
        let location = if *resp.url() == url {
            BlobLocation::Registry
        } else {
            BlobLocation::Redirected(resp.url().clone())
        };
        Ok((resp, location))
    }

    /// The bytes `range` of a blob from where [`RegistryClient::get_blob_range`] found it. A
    /// redirect target is asked directly, without the registry's credentials (a presigned URL
    /// carries its own, and S3 refuses a request with both), transient failures retried; its
    /// `403` (the URL expired) comes back as an error with that status, for the caller to
    /// resolve the redirect again.
    pub async fn get_blob_range_at(
        &self,
        repo: &str,
        digest: &str,
        location: &BlobLocation,
        range: Range<u64>,
    ) -> Result<Response> {
        let url = match location {
            BlobLocation::Registry => {
                return Ok(self.get_blob_range(repo, digest, range).await?.0);
            }
            BlobLocation::Redirected(url) => url,
        };
        let op = range_op(repo, digest, &range);
        let value = range_header(&op, &range)?;
        let mut attempt = 0u32;
        loop {
            let sent = self
                .http
                .get(url.clone())
                .header(header::RANGE, value.clone())
                .send()
                .await;
            let (status, retry_after) = match sent {
                Ok(resp) if is_transient_status(resp.status()) => {
                    let status = resp.status().as_u16();
                    let retry_after = retry::retry_after(resp.headers());
                    let err = RegistryError::from_response(&op, resp).await;
                    if !self.retry.allows_another(attempt) {
                        return Err(err);
                    }
                    tracing::warn!(op, error = %err, attempt, "transient blob store answer, retrying");
                    (status, retry_after)
                }
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => return Err(Self::fail(&op, resp).await),
                Err(e) if is_transient_error(&e) && self.retry.allows_another(attempt) => {
                    let err = RegistryError::transport(&op, url, e);
                    tracing::warn!(op, error = %err, attempt, "transient blob store error, retrying");
                    (0, None)
                }
                Err(e) => return Err(RegistryError::transport(&op, url, e)),
            };
            tokio::time::sleep(self.retry.delay_after(attempt, status, retry_after)).await;
            attempt += 1;
        }
    }

    /// A blob whole (at most [`BLOB_LIMIT`] bytes: for checks of what was pushed; the pipeline
    /// streams layers), digest checked (sha256 or sha512).
    pub async fn get_blob_bytes(&self, repo: &str, digest: &str) -> Result<Bytes> {
        self.get_blob_capped(repo, digest, BLOB_LIMIT).await
    }

    /// A blob whole, at most `limit` bytes, digest checked (sha256 or sha512).
    pub async fn get_blob_capped(&self, repo: &str, digest: &str, limit: usize) -> Result<Bytes> {
        let op = format!("get blob {repo}@{digest}");
        let resp = self.get_blob(repo, digest).await?;
        let bytes = read_capped(&op, resp, limit).await?;
        check_digest(&op, digest, &bytes)?;
        Ok(bytes)
    }

    /// An image config: [`RegistryClient::get_blob_bytes`] with the configs' size limit.
    pub async fn get_config(&self, repo: &str, digest: &str) -> Result<Bytes> {
        self.get_blob_capped(repo, digest, CONFIG_LIMIT).await
    }

    /// Monolithic upload: `POST /v2/<repo>/blobs/uploads/`, then one `PUT <location>&digest=`
    /// with the whole body (ECR refuses parts under 5 MB; zTOCs are small, so one request).
    pub async fn push_blob(&self, repo: &str, digest: &str, body: Bytes) -> Result<()> {
        let op = format!("start upload of blob {digest} to {repo}");
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"))?;
        let resp = self
            .send(&op, repo, Access::Push, |c| {
                c.post(url.clone()).header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(Self::fail(&op, resp).await);
        }
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Protocol {
                op: op.clone(),
                detail: "upload answer without Location".into(),
            })?;
        let mut put_url = url.join(location).map_err(|e| RegistryError::Protocol {
            op: op.clone(),
            detail: format!("Location {location:?}: {e}"),
        })?;
        put_url.query_pairs_mut().append_pair("digest", digest);
        let op = format!("upload blob {digest} to {repo}");
        let resp = self
            .send(&op, repo, Access::Push, |c| {
                c.put(put_url.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(Self::fail(&op, resp).await);
        }
        Ok(())
    }
}

/// Where a blob's bytes are served from.
#[derive(Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// The registry's own blob URL (authenticated requests).
    Registry,
    /// The URL the registry redirected to (ECR: a presigned S3 URL, credentials in its query).
    Redirected(Url),
}

/// Never prints a presigned URL's query string.
impl std::fmt::Debug for BlobLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Registry => f.write_str("Registry"),
            Self::Redirected(url) => write!(f, "Redirected({})", super::redact(url)),
        }
    }
}

fn range_op(repo: &str, digest: &str, range: &Range<u64>) -> String {
    format!(
        "get blob {repo}@{digest} bytes {}-{}",
        range.start,
        range.end.saturating_sub(1)
    )
}

/// `bytes=a-b` (inclusive) of a non-empty `range`.
fn range_header(op: &str, range: &Range<u64>) -> Result<HeaderValue> {
    if range.is_empty() {
        return Err(RegistryError::protocol(op, "an empty byte range"));
    }
    HeaderValue::from_str(&format!("bytes={}-{}", range.start, range.end - 1))
        .map_err(|e| RegistryError::protocol(op, format!("Range header: {e}")))
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
}

/// Most pages of `tags/list` read before giving up (a repository with more tags than this is
/// not checked tag by tag, so nothing is deleted in it by digest).
const MAX_TAG_PAGES: usize = 100;

/// What the cleanup of index tags needs (`pipeline::cleanup`).
impl RegistryClient {
    /// `DELETE /v2/<repo>/manifests/<digest>`. The OCI distribution API deletes a manifest by
    /// digest, which removes every tag naming it (distribution wants
    /// `REGISTRY_STORAGE_DELETE_ENABLED=true`). `false` when the registry has no such manifest.
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<bool> {
        let op = format!("delete manifest {repo}@{digest}");
        if !digest.contains(':') {
            return Err(RegistryError::protocol(&op, "deletes go by digest only"));
        }
        let url = self.url(&format!("/v2/{repo}/manifests/{digest}"))?;
        let resp = self
            .send(&op, repo, Access::Push, |c| c.delete(url.clone()))
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(false),
            status if status.is_success() => Ok(true),
            _ => Err(Self::fail(&op, resp).await),
        }
    }

    /// Every tag of `repo` (`GET /v2/<repo>/tags/list`, following the `Link` of each page).
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let op = format!("list tags of {repo}");
        let mut url = self.url(&format!("/v2/{repo}/tags/list"))?;
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let resp = self
                .send(&op, repo, Access::Pull, |c| c.get(url.clone()))
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            if !resp.status().is_success() {
                return Err(Self::fail(&op, resp).await);
            }
            let next = next_link(resp.headers());
            let body = read_capped(&op, resp, MANIFEST_LIMIT).await?;
            let page: Page = serde_json::from_slice(&body).map_err(|e| {
                RegistryError::protocol(&op, format!("answer is not a tag list: {e}"))
            })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(path) => url = self.url(&path)?,
                None => return Ok(tags),
            }
        }
        Err(RegistryError::protocol(
            &op,
            format!("more than {MAX_TAG_PAGES} pages of tags"),
        ))
    }
}

/// The target of `Link: <...>; rel="next"` (a path on the registry), when there is one.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    let (target, params) = link.split_once(';')?;
    params.contains("rel=\"next\"").then(|| {
        target
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string()
    })
}
