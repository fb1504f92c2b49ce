//! A fault-injecting, counting HTTP proxy in front of the registry: the pipeline talks to the
//! registry through it, so tests count its writes and make requests fail on purpose.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::Mutex;

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
