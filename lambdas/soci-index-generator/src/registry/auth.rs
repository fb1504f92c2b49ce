//! Registry authentication: where credentials come from, and answering a `401` challenge.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use reqwest::header;
use reqwest::{RequestBuilder, Response};
use tokio::sync::Mutex;
use url::Url;

use super::retry::{is_transient_error, is_transient_status};
use super::{RegistryClient, RegistryError, Result, excerpt};

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
        let (user, password) = decode_ecr_token(token)?;
        let expires = data
            .expires_at()
            .and_then(|t| u64::try_from(t.secs()).ok())
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
            .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3600));
        *cached = Some((user.clone(), password.clone(), expires));
        Ok((user, password))
    }
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
        url: String,
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
            _ => {
                let body = resp.bytes().await.unwrap_or_default();
                Err(RegistryError::Status {
                    op: op.into(),
                    url,
                    status: 401,
                    body: excerpt(&body),
                })
            }
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
            match rb.send().await {
                Ok(resp) if resp.status().is_success() => {
                    let body = resp.bytes().await.map_err(|e| RegistryError::Transport {
                        op: op.into(),
                        url: url.to_string(),
                        source: e,
                    })?;
                    return token_from_answer(op, &body);
                }
                Ok(resp)
                    if is_transient_status(resp.status()) && self.retry.allows_another(attempt) => {
                }
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
                Err(e) if is_transient_error(&e) && self.retry.allows_another(attempt) => {}
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
