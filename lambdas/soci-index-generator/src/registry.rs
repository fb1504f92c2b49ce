//! A small OCI distribution API client over `reqwest`: exactly the calls the pipeline needs,
//! with retries of transient failures and errors that carry the registry's answer.
//!
//! Auth: anonymous, basic, bearer tokens (the `WWW-Authenticate: Bearer realm=...` challenge,
//! tokens cached per scope), and ECR (`GetAuthorizationToken`, sent as basic auth and refreshed
//! when it expires or the registry refuses it).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
pub use bytes::Bytes;
pub use reqwest::Response;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;
use url::Url;

use crate::media;

/// What a registry call failed with. Every variant names the operation and the URL; HTTP
/// answers carry the status and the start of the body.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{op} {url}: registry answered {status}: {body}")]
    Status {
        op: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{op} {url}: {source}")]
    Transport {
        op: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{op}: {detail}")]
    Protocol { op: String, detail: String },
    #[error("ECR GetAuthorizationToken: {0}")]
    EcrAuth(String),
}

impl RegistryError {
    /// The HTTP status, when the registry answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Where credentials come from.
pub enum Credentials {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// ECR: `GetAuthorizationToken`, cached until shortly before it expires.
    Ecr(EcrCredentials),
}

/// ECR credentials with their cache.
pub struct EcrCredentials {
    client: aws_sdk_ecr::Client,
    cached: Mutex<Option<(String, String, SystemTime)>>,
}

impl EcrCredentials {
    pub fn new(client: aws_sdk_ecr::Client) -> Self {
        Self {
            client,
            cached: Mutex::new(None),
        }
    }

    /// `(user, password)`; a new token when the cached one expires within 5 minutes, or when
    /// `refresh` (the registry refused the cached one).
    async fn get(&self, refresh: bool) -> Result<(String, String)> {
        let mut cached = self.cached.lock().await;
        if let Some((user, password, expires)) = cached.as_ref()
            && !refresh
            && SystemTime::now() + Duration::from_secs(300) < *expires
        {
            return Ok((user.clone(), password.clone()));
        }
        // The SDK retries throttling and transient errors itself (standard retry mode).
        let out = self
            .client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| {
                RegistryError::EcrAuth(aws_sdk_ecr::error::DisplayErrorContext(&e).to_string())
            })?;
        let data = out
            .authorization_data()
            .first()
            .ok_or_else(|| RegistryError::EcrAuth("no authorizationData in the answer".into()))?;
        let token = data
            .authorization_token()
            .ok_or_else(|| RegistryError::EcrAuth("no authorizationToken in the answer".into()))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|e| RegistryError::EcrAuth(format!("token is not base64: {e}")))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| RegistryError::EcrAuth("token is not UTF-8".into()))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| RegistryError::EcrAuth("token is not user:password".into()))?;
        let expires = data
            .expires_at()
            .and_then(|t| u64::try_from(t.secs()).ok())
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
            .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3600));
        *cached = Some((user.to_string(), password.to_string(), expires));
        Ok((user.to_string(), password.to_string()))
    }
}

/// Retries of transient failures.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
}

impl RetryPolicy {
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(6));
        let jitter = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() % 100)
            .unwrap_or(0);
        let d = exp + exp * jitter / 400; // up to +25 %
        retry_after
            .map(|r| r.min(Duration::from_secs(20)))
            .unwrap_or(d)
            .min(Duration::from_secs(20))
    }
}

/// Whether a status is worth retrying.
pub fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn is_transient_error(e: &reqwest::Error) -> bool {
    e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()
}

/// A descriptor-like answer of `HEAD`/`GET` on a manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub bytes: Bytes,
    /// The document's own `mediaType`, or the Content-Type when it has none.
    pub media_type: String,
    /// The Content-Type the registry served it with (parameters stripped).
    pub content_type: String,
    pub digest: String,
}

/// The scope a request needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Pull,
    Push,
}

/// An OCI distribution API client for one registry.
pub struct RegistryClient {
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
    /// Bearer tokens by scope.
    tokens: Mutex<HashMap<String, String>>,
    retry: RetryPolicy,
}

/// Hex sha256 as an OCI digest.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text.replace('\n', " ")
    }
}

/// The parameters of a `WWW-Authenticate` challenge (`Bearer realm="...",service="..."`).
fn parse_challenge(value: &str) -> (String, HashMap<String, String>) {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, val.to_string());
        rest = remaining.trim_start_matches([',', ' ']);
    }
    (scheme.to_ascii_lowercase(), params)
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

    async fn basic(&self, refresh: bool) -> Result<Option<(String, String)>> {
        match &self.credentials {
            Credentials::Anonymous => Ok(None),
            Credentials::Basic { username, password } => {
                Ok(Some((username.clone(), password.clone())))
            }
            Credentials::Ecr(ecr) => ecr.get(refresh).await.map(Some),
        }
    }

    fn scope(repo: &str, access: Access) -> String {
        match access {
            Access::Pull => format!("repository:{repo}:pull"),
            Access::Push => format!("repository:{repo}:pull,push"),
        }
    }

    async fn fetch_token(&self, params: &HashMap<String, String>, scope: &str) -> Result<String> {
        let op = "bearer token";
        let realm = params.get("realm").ok_or_else(|| RegistryError::Protocol {
            op: op.into(),
            detail: "Bearer challenge without realm".into(),
        })?;
        let mut url = Url::parse(realm).map_err(|e| RegistryError::Protocol {
            op: op.into(),
            detail: format!("realm {realm:?}: {e}"),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = params.get("service") {
                q.append_pair("service", service);
            }
            q.append_pair("scope", scope);
        }
        let basic = self.basic(false).await?;
        let mut attempt = 0;
        loop {
            let mut rb = self.http.get(url.clone());
            if let Some((u, p)) = &basic {
                rb = rb.basic_auth(u, Some(p));
            }
            let outcome = rb.send().await;
            match outcome {
                Ok(resp) if resp.status().is_success() => {
                    let body = resp.bytes().await.map_err(|e| RegistryError::Transport {
                        op: op.into(),
                        url: url.to_string(),
                        source: e,
                    })?;
                    let v: serde_json::Value =
                        serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                            op: op.into(),
                            detail: format!("token answer is not JSON: {e}"),
                        })?;
                    let token = v
                        .get("token")
                        .or_else(|| v.get("access_token"))
                        .and_then(|t| t.as_str())
                        .ok_or_else(|| RegistryError::Protocol {
                            op: op.into(),
                            detail: "token answer without token".into(),
                        })?;
                    return Ok(token.to_string());
                }
                Ok(resp)
                    if is_transient_status(resp.status()) && attempt + 1 < self.retry.attempts => {}
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.unwrap_or_default();
                    return Err(RegistryError::Status {
                        op: op.into(),
                        url: url.to_string(),
                        status,
                        body: excerpt(&body),
                    });
                }
                Err(e) if is_transient_error(&e) && attempt + 1 < self.retry.attempts => {}
                Err(e) => {
                    return Err(RegistryError::Transport {
                        op: op.into(),
                        url: url.to_string(),
                        source: e,
                    });
                }
            }
            tokio::time::sleep(self.retry.delay(attempt, None)).await;
            attempt += 1;
        }
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
        let scope = Self::scope(repo, access);
        let mut attempt = 0u32;
        let mut auth_rounds = 0u32;
        let mut refresh_basic = false;
        loop {
            let mut rb = build(&self.http);
            let token = self.tokens.lock().await.get(&scope).cloned();
            if let Some(token) = token {
                rb = rb.bearer_auth(token);
            } else if let Some((u, p)) = self.basic(std::mem::take(&mut refresh_basic)).await? {
                rb = rb.basic_auth(u, Some(p));
            }
            let request = rb.build().map_err(|e| RegistryError::Transport {
                op: op.into(),
                url: String::new(),
                source: e,
            })?;
            let url = request.url().to_string();
            let outcome = self.http.execute(request).await;
            let retry_after;
            match outcome {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && auth_rounds < 2 => {
                    auth_rounds += 1;
                    let challenge = resp
                        .headers()
                        .get(header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(parse_challenge);
                    match challenge {
                        Some((scheme, params)) if scheme == "bearer" => {
                            let token = self.fetch_token(&params, &scope).await?;
                            self.tokens.lock().await.insert(scope.clone(), token);
                        }
                        _ if matches!(self.credentials, Credentials::Ecr(_)) => {
                            // Expired or revoked ECR token: get a new one.
                            refresh_basic = true;
                        }
                        _ => {
                            let body = resp.bytes().await.unwrap_or_default();
                            return Err(RegistryError::Status {
                                op: op.into(),
                                url,
                                status: 401,
                                body: excerpt(&body),
                            });
                        }
                    }
                    continue;
                }
                Ok(resp) if is_transient_status(resp.status()) => {
                    let status = resp.status();
                    retry_after = resp
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = resp.bytes().await.unwrap_or_default();
                    if attempt + 1 >= self.retry.attempts {
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
                }
                Ok(resp) => return Ok(resp),
                Err(e) if is_transient_error(&e) && attempt + 1 < self.retry.attempts => {
                    tracing::warn!(op, url, error = %e, attempt, "transient registry error, retrying");
                    retry_after = None;
                }
                Err(e) => {
                    return Err(RegistryError::Transport {
                        op: op.into(),
                        url,
                        source: e,
                    });
                }
            }
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
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Option<Manifest>> {
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
        Ok(Some(Manifest {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(scheme, "bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/alpine:pull");
        let (scheme, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(scheme, "basic");
        assert_eq!(p["realm"], "Registry Realm");
    }

    #[test]
    fn transient_statuses() {
        for s in [429, 500, 502, 503, 504, 408] {
            assert!(is_transient_status(StatusCode::from_u16(s).unwrap()));
        }
        for s in [400, 401, 403, 404, 501] {
            assert!(!is_transient_status(StatusCode::from_u16(s).unwrap()));
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(100),
        };
        assert!(p.delay(0, None) >= Duration::from_millis(100));
        assert!(p.delay(2, None) >= Duration::from_millis(400));
        assert!(p.delay(30, None) <= Duration::from_secs(20));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }
}
