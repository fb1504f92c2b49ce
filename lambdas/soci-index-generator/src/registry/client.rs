//! The registry client: the manifest and blob requests the pipeline makes, each through
//! [`RegistryClient::send`] (authentication, retries of transient failures).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use super::auth::{self, Access, Credentials};
use super::retry::{self, RetryPolicy, is_transient_error, is_transient_status};
use super::{FetchedManifest, RegistryError, Result, excerpt, sha256_digest};
use crate::media;

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
            .map_err(|e| RegistryError::Transport {
                op: "HTTP client".into(),
                url: base.to_string(),
                source: e,
            })?;
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
    /// still transient after the last attempt are returned as errors.
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
        loop {
            let request = self
                .authorize(build(&self.http), &scope, &mut refresh_basic)
                .await?
                .build()
                .map_err(|e| RegistryError::Transport {
                    op: op.into(),
                    url: String::new(),
                    source: e,
                })?;
            let url = request.url().to_string();
            let retry_after = match self.http.execute(request).await {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && auth_rounds < 2 => {
                    auth_rounds += 1;
                    if self.answer_challenge(op, url, &scope, resp).await? {
                        refresh_basic = true;
                    }
                    continue;
                }
                Ok(resp) if is_transient_status(resp.status()) => {
                    let status = resp.status();
                    let retry_after = retry::retry_after(resp.headers());
                    let body = resp.bytes().await.unwrap_or_default();
                    if !self.retry.allows_another(attempt) {
                        return Err(RegistryError::Status {
                            op: op.into(),
                            url,
                            status: status.as_u16(),
                            body: excerpt(&body),
                        });
                    }
                    tracing::warn!(
                        op,
                        url,
                        status = status.as_u16(),
                        body = excerpt(&body),
                        attempt,
                        "transient registry answer, retrying"
                    );
                    retry_after
                }
                Ok(resp) => return Ok(resp),
                Err(e) if is_transient_error(&e) && self.retry.allows_another(attempt) => {
                    tracing::warn!(op, url, error = %e, attempt, "transient registry error, retrying");
                    None
                }
                Err(e) => {
                    return Err(RegistryError::Transport {
                        op: op.into(),
                        url,
                        source: e,
                    });
                }
            };
            tokio::time::sleep(self.retry.delay(attempt, retry_after)).await;
            attempt += 1;
        }
    }
    /// Turns a non-success answer into an error carrying its status and body.
    async fn fail(op: &str, resp: Response) -> RegistryError {
        let url = resp.url().to_string();
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        RegistryError::Status {
            op: op.into(),
            url,
            status,
            body: excerpt(&body),
        }
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
        let Some((resp, url)) = self
            .manifest_request(&op, repo, reference, Method::GET)
            .await?
        else {
            return Ok(None);
        };
        let content_type = content_type(resp.headers());
        let bytes = resp.bytes().await.map_err(|e| RegistryError::Transport {
            op: op.clone(),
            url: url.to_string(),
            source: e,
        })?;
        let digest = sha256_digest(&bytes);
        if reference.starts_with("sha256:") && digest != reference {
            return Err(RegistryError::Protocol {
                op,
                detail: format!("manifest digest is {digest}, expected {reference}"),
            });
        }
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
        let op = format!("get blob {repo}@{digest}");
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let resp = self
            .send(&op, repo, Access::Pull, |c| c.get(url.clone()))
            .await?;
        if !resp.status().is_success() {
            return Err(Self::fail(&op, resp).await);
        }
        Ok(resp)
    }

    /// A small blob (a config), whole, digest checked.
    pub async fn get_blob_bytes(&self, repo: &str, digest: &str) -> Result<Bytes> {
        let op = format!("get blob {repo}@{digest}");
        let resp = self.get_blob(repo, digest).await?;
        let url = resp.url().to_string();
        let bytes = resp.bytes().await.map_err(|e| RegistryError::Transport {
            op: op.clone(),
            url,
            source: e,
        })?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(RegistryError::Protocol {
                op,
                detail: format!("blob digest is {actual}"),
            });
        }
        Ok(bytes)
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

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
}
