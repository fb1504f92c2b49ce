//! The pipeline talks to the registry through the shared fault-injecting proxy
//! ([`test_support::faults::FaultProxy`]): tests count its writes, read its log and make
//! requests fail on purpose. This is the tests' short vocabulary over it.

use std::ops::Deref;

use test_support::faults::{Fault, FaultProxy, Rule};

/// The body of the injected `503`s (failure messages must carry it).
pub const INJECTED: &str = "{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"injected\"}]}";

pub struct Proxy(FaultProxy);

impl Deref for Proxy {
    type Target = FaultProxy;
    fn deref(&self) -> &FaultProxy {
        &self.0
    }
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        Proxy(FaultProxy::start(upstream).await.expect("start the proxy"))
    }

    /// Registry writes (POST/PUT/PATCH/DELETE) that reached the registry.
    pub fn writes(&self) -> usize {
        self.seen()
            .iter()
            .filter(|r| matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
            .filter(|r| !r.answer.contains("Status"))
            .count()
    }

    /// The next `n` requests with `method` are answered 503 without reaching the registry.
    pub async fn fail_next(&self, method: &str, n: usize) {
        self.add(Rule::new(
            method,
            "",
            n,
            Fault::Status {
                status: 503,
                retry_after: None,
                body: INJECTED.into(),
            },
        ));
    }

    /// `METHOD path` per request, `<status> METHOD path` for injected answers.
    pub async fn log(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|r| match r.answer.strip_prefix("Status { status: ") {
                Some(rest) => format!(
                    "{} {} {}",
                    rest.split(',').next().unwrap_or_default(),
                    r.method,
                    r.path
                ),
                None => format!("{} {}", r.method, r.path),
            })
            .collect()
    }
}
