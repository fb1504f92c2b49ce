//! A fault-injecting HTTP proxy in front of a registry, which it also turns into a fake blob
//! store: the faults a registry, ECR or S3 behind a presigned redirect really produce, written
//! byte for byte on the wire so the client sees exactly what a broken server sends.
//!
//! Every request is answered on its own connection (`Connection: close`), so a fault never
//! leaks into the next request. Rules ([`Rule`]) match a method and a path fragment and fire a
//! number of times; the first matching rule with shots left applies. With
//! [`FaultProxy::redirect_blobs`], every blob `GET` is first answered `307` to a "presigned"
//! URL on the proxy (query string with `X-Amz-Security-Token` and `X-Amz-Signature`), as ECR
//! redirects to S3; rules can target that URL with the path fragment [`SIGNED_PREFIX`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::Result;

/// The path prefix of the presigned blob URLs [`FaultProxy::redirect_blobs`] redirects to.
pub const SIGNED_PREFIX: &str = "/_signed";
/// The secret the presigned URLs carry in their query string; it must never appear in errors.
pub const SIGNED_SECRET: &str = "SECRETSIGNATURE0123456789";
/// Request heads longer than this are refused (the registry clients send a few hundred bytes).
const MAX_HEAD: usize = 64 << 10;
/// Request bodies longer than this are refused (the largest the tests push is a few MiB).
const MAX_BODY: usize = 64 << 20;

/// How `Retry-After` is written.
#[derive(Clone, Copy, Debug)]
pub enum RetryAfter {
    Seconds(u64),
    /// An HTTP date this many seconds from now.
    Date(u64),
}

/// What a matching request gets instead of the upstream's answer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This status with this body, and `Retry-After` when given (the upstream is not asked).
    Status {
        status: u16,
        retry_after: Option<RetryAfter>,
        body: String,
    },
    /// The upstream's headers and the first `after` body bytes, then a TCP reset.
    ResetAfter(usize),
    /// The upstream's answer without `Content-Length` (close-delimited), cut after `after`
    /// bytes with a clean close: the client sees a shorter body that ends normally.
    TruncateAfter(usize),
    /// The upstream's answer with the body byte at `offset` inverted.
    FlipByte(usize),
    /// The first `after` body bytes at once, then one byte every `interval`.
    Drip { after: usize, interval: Duration },
    /// The upstream's answer with header `name` set to `value` (added when absent), e.g. a
    /// `Content-Range` that is not the range asked for.
    SetHeader { name: String, value: String },
    /// The request waits at the proxy until the test opens the gate, then goes on unchanged:
    /// a window to act in between two of the client's requests.
    Hold(std::sync::Arc<Gate>),
}

/// Where a [`Fault::Hold`] request waits.
#[derive(Debug, Default)]
pub struct Gate {
    arrived: tokio::sync::Notify,
    open: tokio::sync::Notify,
}

impl Gate {
    /// Returns once a request is held (at once if one already is).
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    /// Lets the held request go on.
    pub fn open(&self) {
        self.open.notify_one();
    }
}

/// Where a fault applies and how many times.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: String,
    /// A fragment of the request path (`/blobs/`, `/manifests/v1-soci`, `sha256:...`).
    pub path_contains: String,
    /// When set, only requests whose `Range` header is exactly this (`bytes=0-1023`).
    pub range: Option<String>,
    /// Only requests whose path ends with `path_contains` (`/manifests/v1`, not `v1-soci`).
    pub path_ends: bool,
    pub times: usize,
    pub fault: Fault,
}

impl Rule {
    pub fn new(method: &str, path_contains: &str, times: usize, fault: Fault) -> Self {
        Self {
            method: method.into(),
            path_contains: path_contains.into(),
            range: None,
            path_ends: false,
            times,
            fault,
        }
    }

    /// Only for requests whose path ends with the fragment (one tag, not its longer siblings).
    pub fn at_path_end(mut self) -> Self {
        self.path_ends = true;
        self
    }

    /// Only for requests with this exact `Range` header (one chunk of a parallel fetch).
    pub fn with_range(mut self, range: &str) -> Self {
        self.range = Some(range.into());
        self
    }
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query as requested.
    pub path: String,
    /// The `Range` header, when sent.
    pub range: Option<String>,
    /// The `Authorization` header, when sent.
    pub authorization: Option<String>,
    /// The upstream's status, followed by the fault applied to its answer (its `Debug`), or
    /// only the injected answer (`Status { status: 503, .. }`) when the upstream was not asked.
    pub answer: String,
}

#[derive(Default)]
struct State {
    upstream: String,
    me: String,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
    redirect_blobs: AtomicBool,
    ignore_range: AtomicBool,
    /// Response bodies being written right now.
    open_bodies: AtomicUsize,
    /// Body bytes written to clients, over all responses.
    body_bytes: AtomicUsize,
}

/// The proxy; stops accepting when dropped.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`
    pub addr: String,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream` (`host:port`, plain HTTP).
    pub async fn start(upstream: &str) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let state = Arc::new(State {
            upstream: upstream.into(),
            me: addr.clone(),
            ..State::default()
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(crate::Error::other)?;
        let s = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, http) = (s.clone(), http.clone());
                tokio::spawn(async move {
                    // A client that goes away mid-answer is what some tests do on purpose.
                    let _ = serve(&s, &http, stream).await;
                });
            }
        });
        Ok(Self {
            addr,
            state,
            accept,
        })
    }

    /// Adds a rule (rules are tried in the order added).
    pub fn add(&self, rule: Rule) {
        lock(&self.state.rules).push(rule);
    }

    /// Answers every blob `GET` with a `307` to a presigned-looking URL on this proxy.
    pub fn redirect_blobs(&self, on: bool) {
        self.state.redirect_blobs.store(on, Ordering::SeqCst);
    }

    /// Drops `Range` headers, so blobs are always answered whole (`200`), as by a store that
    /// does not honour ranges.
    pub fn ignore_range(&self, on: bool) {
        self.state.ignore_range.store(on, Ordering::SeqCst);
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }

    /// Response bodies being written at this moment.
    pub fn open_bodies(&self) -> usize {
        self.state.open_bodies.load(Ordering::SeqCst)
    }

    /// Body bytes written to clients so far.
    pub fn body_bytes(&self) -> usize {
        self.state.body_bytes.load(Ordering::SeqCst)
    }
}

/// A request head and body as read from the client.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

async fn read_request(stream: &mut TcpStream) -> Result<Request> {
    let mut buf = Vec::new();
    let head_len = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("client closed before a request".to_string().into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("request head too long".to_string().into());
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed
        .parse(&buf[..head_len])
        .map_err(|e| format!("request head: {e}"))?;
    let request = Request {
        method: parsed.method.unwrap_or("GET").to_string(),
        path: parsed.path.unwrap_or("/").to_string(),
        headers: parsed
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect(),
        body: buf[head_len..].to_vec(),
    };
    let len: usize = request
        .header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err(format!("request body of {len} bytes").into());
    }
    let mut request = request;
    while request.body.len() < len {
        let mut chunk = vec![0u8; (len - request.body.len()).min(1 << 16)];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("client closed mid-body".to_string().into());
        }
        request.body.extend_from_slice(&chunk[..n]);
    }
    Ok(request)
}

/// The first rule matching `request` with shots left (one shot used).
fn take_fault(s: &State, request: &Request) -> Option<Fault> {
    let mut rules = lock(&s.rules);
    let range = request.header("range");
    let rule = rules.iter_mut().find(|r| {
        r.times > 0
            && r.method == request.method
            && request.path.contains(&r.path_contains)
            && (!r.path_ends || request.path.ends_with(&r.path_contains))
            && (r.range.is_none() || r.range == range)
    })?;
    rule.times -= 1;
    Some(rule.fault.clone())
}

async fn serve(s: &State, http: &reqwest::Client, mut stream: TcpStream) -> Result<()> {
    let request = read_request(&mut stream).await?;
    let fault = take_fault(s, &request);
    let mut seen = Seen {
        method: request.method.clone(),
        path: request.path.clone(),
        range: request.header("range"),
        authorization: request.header("authorization"),
        answer: String::new(),
    };
    if let Some(
        injected @ Fault::Status {
            status,
            retry_after,
            body,
        },
    ) = &fault
    {
        seen.answer = format!("{injected:?}");
        lock(&s.seen).push(seen);
        return write_status(&mut stream, *status, *retry_after, body).await;
    }
    let is_blob_get = request.method == "GET" && request.path.contains("/blobs/sha");
    if is_blob_get
        && !request.path.starts_with(SIGNED_PREFIX)
        && s.redirect_blobs.load(Ordering::SeqCst)
    {
        let location = format!(
            "http://{}{SIGNED_PREFIX}{}?X-Amz-Security-Token={SIGNED_SECRET}&X-Amz-Signature={SIGNED_SECRET}",
            s.me,
            request.path.split('?').next().unwrap_or_default()
        );
        seen.answer = "307".into();
        lock(&s.seen).push(seen);
        let head = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await?;
        return Ok(stream.shutdown().await?);
    }
    if let Some(Fault::Hold(gate)) = &fault {
        gate.arrived.notify_one();
        gate.open.notified().await;
    }
    let upstream = forward(s, http, &request).await?;
    seen.answer = match &fault {
        Some(f) => format!("{} {f:?}", upstream.status().as_u16()),
        None => upstream.status().as_u16().to_string(),
    };
    lock(&s.seen).push(seen);
    write_response(s, &mut stream, &request.method, upstream, fault).await
}

/// The request sent on to the upstream (presigned path prefix and query removed).
async fn forward(
    s: &State,
    http: &reqwest::Client,
    request: &Request,
) -> Result<reqwest::Response> {
    let path = match request.path.strip_prefix(SIGNED_PREFIX) {
        Some(rest) => rest.split('?').next().unwrap_or_default(),
        None => request.path.as_str(),
    };
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|e| format!("method {}: {e}", request.method))?;
    let mut rb = http.request(method, format!("http://{}{path}", s.upstream));
    for (k, v) in &request.headers {
        let skip = ["host", "content-length", "connection"]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
            || (k.eq_ignore_ascii_case("range") && s.ignore_range.load(Ordering::SeqCst));
        if !skip {
            rb = rb.header(k.as_str(), v.as_slice());
        }
    }
    rb.body(request.body.clone())
        .send()
        .await
        .map_err(crate::Error::other)
}

async fn write_status(
    stream: &mut TcpStream,
    status: u16,
    retry_after: Option<RetryAfter>,
    body: &str,
) -> Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    match retry_after {
        Some(RetryAfter::Seconds(n)) => head.push_str(&format!("Retry-After: {n}\r\n")),
        Some(RetryAfter::Date(n)) => {
            let at = SystemTime::now() + Duration::from_secs(n);
            head.push_str(&format!("Retry-After: {}\r\n", httpdate::fmt_http_date(at)));
        }
        None => {}
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    Ok(stream.shutdown().await?)
}

/// Decrements the open-bodies count when the body is done, however it ends.
struct OpenBody<'s>(&'s State);

impl Drop for OpenBody<'_> {
    fn drop(&mut self) {
        self.0.open_bodies.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn write_response(
    s: &State,
    stream: &mut TcpStream,
    method: &str,
    upstream: reqwest::Response,
    fault: Option<Fault>,
) -> Result<()> {
    let close_delimited = matches!(fault, Some(Fault::TruncateAfter(_)));
    let set_header = match &fault {
        Some(Fault::SetHeader { name, value }) => Some((name.to_ascii_lowercase(), value)),
        _ => None,
    };
    let status = upstream.status();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (k, v) in upstream.headers() {
        let name = k.as_str();
        if matches!(name, "transfer-encoding" | "connection")
            || (name == "content-length" && close_delimited)
            || set_header.as_ref().is_some_and(|(n, _)| n == name)
        {
            continue;
        }
        let value = String::from_utf8_lossy(v.as_bytes());
        let value = if name == "location" {
            value.replace(&s.upstream, &s.me)
        } else {
            value.into_owned()
        };
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some((name, value)) = &set_header {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    if method == "HEAD" {
        return Ok(stream.shutdown().await?);
    }
    s.open_bodies.fetch_add(1, Ordering::SeqCst);
    let _open = OpenBody(s);
    let mut written = 0usize;
    let mut body = upstream.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(crate::Error::other)?;
        match write_chunk(s, stream, &chunk, written, fault.as_ref()).await? {
            Flow::Continue => written += chunk.len(),
            Flow::Stop => return Ok(()),
        }
    }
    Ok(stream.shutdown().await?)
}

enum Flow {
    Continue,
    Stop,
}

/// Writes `chunk` (at body offset `at`) with `fault` applied.
async fn write_chunk(
    s: &State,
    stream: &mut TcpStream,
    chunk: &Bytes,
    at: usize,
    fault: Option<&Fault>,
) -> Result<Flow> {
    let count = |n: usize| s.body_bytes.fetch_add(n, Ordering::SeqCst);
    match fault {
        Some(Fault::ResetAfter(after)) | Some(Fault::TruncateAfter(after))
            if at + chunk.len() > *after =>
        {
            let keep = after.saturating_sub(at);
            stream.write_all(&chunk[..keep]).await?;
            count(keep);
            stream.flush().await?;
            if matches!(fault, Some(Fault::ResetAfter(_))) {
                // SO_LINGER 0: closing sends RST, as a dropped connection does. (Deprecated
                // because a non-zero linger blocks the thread on drop; a zero one does not.)
                #[allow(deprecated)]
                stream.set_linger(Some(Duration::ZERO))?;
            } else {
                stream.shutdown().await?;
            }
            Ok(Flow::Stop)
        }
        Some(Fault::FlipByte(offset)) if (at..at + chunk.len()).contains(offset) => {
            let mut flipped = chunk.to_vec();
            flipped[offset - at] ^= 0xff;
            stream.write_all(&flipped).await?;
            count(flipped.len());
            Ok(Flow::Continue)
        }
        Some(Fault::Drip { after, interval }) if at + chunk.len() > *after => {
            let fast = after.saturating_sub(at);
            stream.write_all(&chunk[..fast]).await?;
            count(fast);
            for byte in chunk[fast..].chunks(1) {
                tokio::time::sleep(*interval).await;
                stream.write_all(byte).await?;
                stream.flush().await?;
                count(1);
            }
            Ok(Flow::Continue)
        }
        _ => {
            stream.write_all(chunk).await?;
            count(chunk.len());
            Ok(Flow::Continue)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-file upstream: answers every request with `body`, honouring nothing else.
    async fn upstream(body: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = read_request(&mut s).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(body).await;
                });
            }
        });
        addr
    }

    async fn get(proxy: &FaultProxy, path: &str) -> std::result::Result<Vec<u8>, String> {
        let resp = reqwest::get(format!("http://{}{path}", proxy.addr))
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_fault_reaches_the_client_as_written() {
        let proxy = FaultProxy::start(&upstream(b"0123456789").await)
            .await
            .unwrap();
        assert_eq!(get(&proxy, "/x").await.unwrap(), b"0123456789");
        proxy.add(Rule::new("GET", "/x", 1, Fault::FlipByte(1)));
        assert_eq!(get(&proxy, "/x").await.unwrap(), b"0\xce23456789");
        proxy.add(Rule::new("GET", "/x", 1, Fault::TruncateAfter(4)));
        assert_eq!(
            get(&proxy, "/x").await.unwrap(),
            b"0123",
            "a clean, short body"
        );
        proxy.add(Rule::new("GET", "/x", 1, Fault::ResetAfter(4)));
        assert!(get(&proxy, "/x").await.is_err(), "a reset is an error");
        proxy.add(Rule::new(
            "GET",
            "/x",
            1,
            Fault::Status {
                status: 429,
                retry_after: Some(RetryAfter::Date(5)),
                body: "slow down".into(),
            },
        ));
        let resp = reqwest::get(format!("http://{}/x", proxy.addr))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 429);
        let date = resp.headers()["retry-after"].to_str().unwrap().to_string();
        let at = httpdate::parse_http_date(&date).unwrap();
        assert!(at > SystemTime::now(), "{date}");
        proxy.add(Rule::new(
            "GET",
            "/x",
            1,
            Fault::Drip {
                after: 8,
                interval: Duration::from_millis(100),
            },
        ));
        let started = std::time::Instant::now();
        assert_eq!(get(&proxy, "/x").await.unwrap(), b"0123456789");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(proxy.open_bodies(), 0);
        let seen = proxy.seen();
        assert!(seen.len() >= 6, "{seen:?}");
        assert_eq!(
            seen.iter().filter(|r| r.answer.contains("429")).count(),
            1,
            "{seen:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rules_can_target_one_range_and_rewrite_a_header() {
        let proxy = FaultProxy::start(&upstream(b"0123456789").await)
            .await
            .unwrap();
        let lie = Fault::SetHeader {
            name: "Content-Range".into(),
            value: "bytes 5-9/10".into(),
        };
        proxy.add(Rule::new("GET", "/x", 5, lie).with_range("bytes=0-4"));
        let get = |range: &'static str| {
            let url = format!("http://{}/x", proxy.addr);
            async move {
                reqwest::Client::new()
                    .get(url)
                    .header("range", range)
                    .send()
                    .await
                    .unwrap()
            }
        };
        let other = get("bytes=5-9").await;
        assert!(
            other.headers().get("content-range").is_none(),
            "not the rule's range"
        );
        let hit = get("bytes=0-4").await;
        assert_eq!(hit.headers()["content-range"], "bytes 5-9/10");
        assert_eq!(hit.headers().get_all("content-range").iter().count(), 1);
        let seen = proxy.seen();
        assert_eq!(seen[0].range.as_deref(), Some("bytes=5-9"));
        assert!(seen[1].answer.contains("SetHeader"), "{seen:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blob_gets_are_redirected_to_a_signed_url() {
        let proxy = FaultProxy::start(&upstream(b"blob").await).await.unwrap();
        proxy.redirect_blobs(true);
        let path = "/v2/r/blobs/sha256:00";
        assert_eq!(get(&proxy, path).await.unwrap(), b"blob");
        let seen = proxy.seen();
        assert_eq!(seen[0].answer, "307");
        assert!(seen[1].path.starts_with(SIGNED_PREFIX));
        assert!(seen[1].path.contains(SIGNED_SECRET));
    }
}
