//! Registry authentication: where credentials come from, and answering a `401` challenge.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use reqwest::header;
use reqwest::{RequestBuilder, Response};
use tokio::sync::Mutex;
use url::Url;

use super::retry::{self, is_transient_error, is_transient_status};
use super::{RegistryClient, RegistryError, Result, TOKEN_LIMIT, read_capped};

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

impl Credentials {
    /// Basic credentials when both halves are given, else anonymous (a registry URL setting
    /// with its optional username and password).
    pub fn basic_or_anonymous(username: Option<&str>, password: Option<&str>) -> Self {
        match (username, password) {
            (Some(username), Some(password)) => Self::Basic {
                username: username.into(),
                password: password.into(),
            },
            _ => Self::Anonymous,
        }
    }

    pub(super) fn is_ecr(&self) -> bool {
        matches!(self, Self::Ecr(_))
    }
}

/// Never prints a password.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"(redacted)")
                .finish(),
            Self::Ecr(_) => f.write_str("Ecr"),
        }
    }
}

/// An ECR authorization token, decoded.
#[derive(Clone)]
pub struct EcrToken {
    pub user: String,
    pub password: String,
    pub expires: SystemTime,
}

/// How a new ECR token is obtained (the SDK's `GetAuthorizationToken`, or a test's own).
pub type FetchEcrToken =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<EcrToken>> + Send>> + Send + Sync>;

/// A cached token is replaced when it expires within this margin: an invocation runs at most
/// 15 minutes, so a token taken at its start outlives it with 5 minutes to spare.
const ECR_TOKEN_MARGIN: Duration = Duration::from_secs(20 * 60);

/// ECR credentials with their cache.
pub struct EcrCredentials {
    fetch: FetchEcrToken,
    cached: Mutex<Option<EcrToken>>,
}

impl EcrCredentials {
    pub fn new(client: aws_sdk_ecr::Client) -> Self {
        Self::from_fetcher(Box::new(move || {
            let client = client.clone();
            Box::pin(async move { get_authorization_token(&client).await })
        }))
    }

    /// Credentials whose tokens come from `fetch`.
    pub fn from_fetcher(fetch: FetchEcrToken) -> Self {
        Self {
            fetch,
            cached: Mutex::new(None),
        }
    }

    /// `(user, password)`; a new token when the cached one expires within
    /// [`ECR_TOKEN_MARGIN`], or when `refresh` (the registry refused the cached one).
    async fn get(&self, refresh: bool) -> Result<(String, String)> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && !refresh
            && !needs_refresh(SystemTime::now(), token.expires)
        {
            return Ok((token.user.clone(), token.password.clone()));
        }
        let token = (self.fetch)().await?;
        let answer = (token.user.clone(), token.password.clone());
        *cached = Some(token);
        Ok(answer)
    }
}

/// True when a token expiring at `expires` may not last the invocation starting at `now`.
fn needs_refresh(now: SystemTime, expires: SystemTime) -> bool {
    now + ECR_TOKEN_MARGIN >= expires
}

/// `GetAuthorizationToken` (the SDK retries throttling and transient errors itself).
async fn get_authorization_token(client: &aws_sdk_ecr::Client) -> Result<EcrToken> {
    let out = client.get_authorization_token().send().await.map_err(|e| {
        RegistryError::EcrAuth(aws_sdk_ecr::error::DisplayErrorContext(&e).to_string())
    })?;
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| RegistryError::EcrAuth("no authorizationData in the answer".into()))?;
    let token = data
        .authorization_token()
        .ok_or_else(|| RegistryError::EcrAuth("no authorizationToken in the answer".into()))?;
    let (user, password) = decode_ecr_token(token)?;
    let expires = data
        .expires_at()
        .and_then(|t| u64::try_from(t.secs()).ok())
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3600));
    Ok(EcrToken {
        user,
        password,
        expires,
    })
}

/// An ECR authorization token is base64 of `user:password`.
fn decode_ecr_token(token: &str) -> Result<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|e| RegistryError::EcrAuth(format!("token is not base64: {e}")))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| RegistryError::EcrAuth("token is not UTF-8".into()))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| RegistryError::EcrAuth("token is not user:password".into()))?;
    Ok((user.to_string(), password.to_string()))
}

/// The scope a request needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Pull,
    Push,
}

/// The bearer token scope of `access` to `repo`.
pub(super) fn scope(repo: &str, access: Access) -> String {
    match access {
        Access::Pull => format!("repository:{repo}:pull"),
        Access::Push => format!("repository:{repo}:pull,push"),
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
    async fn basic(&self, refresh: bool) -> Result<Option<(String, String)>> {
        match &self.credentials {
            Credentials::Anonymous => Ok(None),
            Credentials::Basic { username, password } => {
                Ok(Some((username.clone(), password.clone())))
            }
            Credentials::Ecr(ecr) => ecr.get(refresh).await.map(Some),
        }
    }

    /// Adds the cached bearer token of `scope`, else the basic credentials (new ones when
    /// `refresh_basic`, which is then reset).
    pub(super) async fn authorize(
        &self,
        request: RequestBuilder,
        scope: &str,
        refresh_basic: &mut bool,
    ) -> Result<RequestBuilder> {
        let token = self.tokens.lock().await.get(scope).cloned();
        if let Some(token) = token {
            return Ok(request.bearer_auth(token));
        }
        Ok(match self.basic(std::mem::take(refresh_basic)).await? {
            Some((u, p)) => request.basic_auth(u, Some(p)),
            None => request,
        })
    }

    /// Answers a `401`: a bearer challenge gets a token for `scope`; with ECR credentials, the
    /// answer is `true` (the cached ECR token expired or was revoked: get a new one). Any other
    /// `401` is an error.
    pub(super) async fn answer_challenge(
        &self,
        op: &str,
        scope: &str,
        resp: Response,
    ) -> Result<bool> {
        let challenge = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(parse_challenge);
        match challenge {
            Some((scheme, params)) if scheme == "bearer" => {
                let token = self.fetch_token(&params, scope).await?;
                self.tokens.lock().await.insert(scope.to_string(), token);
                Ok(false)
            }
            _ if matches!(self.credentials, Credentials::Ecr(_)) => Ok(true),
            _ => Err(RegistryError::from_response(op, resp).await),
        }
    }

    /// A bearer token for `scope` from the challenge's realm (with the basic credentials, if
    /// any), retrying transient failures.
    async fn fetch_token(&self, params: &HashMap<String, String>, scope: &str) -> Result<String> {
        let op = "bearer token";
        let url = token_url(op, params, scope)?;
        let basic = self.basic(false).await?;
        let mut attempt = 0;
        loop {
            let mut rb = self.http.get(url.clone());
            if let Some((u, p)) = &basic {
                rb = rb.basic_auth(u, Some(p));
            }
            let (status, retry_after) = match rb.send().await {
                Ok(resp) if resp.status().is_success() => {
                    let body = read_capped(op, resp, TOKEN_LIMIT).await?;
                    return token_from_answer(op, &body);
                }
                Ok(resp)
                    if is_transient_status(resp.status()) && self.retry.allows_another(attempt) =>
                {
                    (resp.status().as_u16(), retry::retry_after(resp.headers()))
                }
                Ok(resp) => return Err(RegistryError::from_response(op, resp).await),
                Err(e) if is_transient_error(&e) && self.retry.allows_another(attempt) => (0, None),
                Err(e) => return Err(RegistryError::transport(op, &url, e)),
            };
            tokio::time::sleep(self.retry.delay_after(attempt, status, retry_after)).await;
            attempt += 1;
        }
    }
}

/// The token endpoint: the challenge's realm with its `service` and the `scope` wanted.
fn token_url(op: &str, params: &HashMap<String, String>, scope: &str) -> Result<Url> {
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
    Ok(url)
}

/// The token of a token endpoint's JSON answer (`token`, or OAuth2's `access_token`).
fn token_from_answer(op: &str, body: &[u8]) -> Result<String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| RegistryError::Protocol {
            op: op.into(),
            detail: format!("token answer is not JSON: {e}"),
        })?;
    v.get("token")
        .or_else(|| v.get("access_token"))
        .and_then(|t| t.as_str())
        .map(String::from)
        .ok_or_else(|| RegistryError::Protocol {
            op: op.into(),
            detail: "token answer without token".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_tokens_are_refreshed_well_before_a_long_invocation_could_outlive_them() {
        let now = SystemTime::now();
        let minutes = |m: u64| now + Duration::from_secs(m * 60);
        assert!(
            needs_refresh(now, minutes(16)),
            "16 min left: a 15-min run may outlive it"
        );
        assert!(needs_refresh(now, minutes(19)));
        assert!(!needs_refresh(now, minutes(21)));
        assert!(!needs_refresh(now, minutes(12 * 60)));
    }

    #[test]
    fn basic_credentials_never_print_the_password() {
        let c = Credentials::Basic {
            username: "me".into(),
            password: "hunter2".into(),
        };
        let shown = format!("{c:?}");
        assert!(
            shown.contains("me") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    /// A token endpoint that answers `503` with `Retry-After` as an HTTP date 3 s ahead, then
    /// a token; returns its address.
    async fn throttling_token_endpoint() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            for answer in 0.. {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut head = [0u8; 4096];
                let _ = s.read(&mut head).await;
                let at = SystemTime::now() + Duration::from_secs(3);
                let reply = if answer == 0 {
                    format!(
                        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        httpdate::fmt_http_date(at)
                    )
                } else {
                    let body = r#"{"token":"t0k3n"}"#;
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn the_token_fetch_obeys_retry_after_dates() {
        let addr = throttling_token_endpoint().await;
        let retry = super::super::RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(10),
        };
        let client =
            RegistryClient::new("http://127.0.0.1:1", Credentials::Anonymous, retry).unwrap();
        let params = HashMap::from([("realm".to_string(), format!("http://{addr}/token"))]);
        let started = std::time::Instant::now();
        let token = client
            .fetch_token(&params, "repository:a:pull")
            .await
            .unwrap();
        assert_eq!(token, "t0k3n");
        let waited = started.elapsed();
        assert!(waited > Duration::from_secs(2), "waited {waited:?}");
    }

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
}
