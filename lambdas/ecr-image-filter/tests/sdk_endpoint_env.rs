//! `AWS_ENDPOINT_URL` is honoured by [`SdkInvoker::from_env`] (the path `main` uses), checked with
//! a tiny local HTTP stub that records requests and answers a chosen status (202, 200, 500).
//! One test in this binary: it sets process environment variables.

use std::sync::{Arc, Mutex};

use ecr_image_filter::{Config, InvokeError, SdkInvoker, Status, handle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
struct Seen {
    requests: Vec<String>,
}

/// Serves every connection with `status` (one request per connection, `Connection: close`).
async fn stub(status: u16) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                // Read headers, then the body by Content-Length.
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if data.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                record
                    .lock()
                    .unwrap()
                    .requests
                    .push(String::from_utf8_lossy(&data).to_string());
                let body = if status >= 400 {
                    r#"{"Type":"Service","message":"stub failure"}"#
                } else {
                    ""
                };
                let reason = match status {
                    202 => "Accepted",
                    200 => "OK",
                    _ => "Internal Server Error",
                };
                let response = format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nx-amzn-RequestId: stub\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    if status >= 400 {
                        "x-amzn-ErrorType: ServiceException\r\n"
                    } else {
                        ""
                    },
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_endpoint_url_env_reaches_the_stub() {
    let event: serde_json::Value =
        serde_json::from_slice(include_bytes!("fixtures/push_tagged.json")).unwrap();
    let config = Config::from_lookup(|name| {
        (name == "soci_index_generator_lambda_arn")
            .then(|| "arn:aws:lambda:us-east-1:123456789012:function:gen".to_owned())
    })
    .unwrap();

    for (status, expect_ok) in [(202u16, true), (200, false), (500, false)] {
        let (endpoint, seen) = stub(status).await;
        // SAFETY: the only test in this binary; set before the SDK reads the environment.
        unsafe {
            std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::set_var("AWS_REGION", "us-east-1");
            std::env::set_var("AWS_MAX_ATTEMPTS", "2");
            std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/config");
            std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials");
        }
        let invoker = SdkInvoker::from_env().await;
        let result = handle(&config, &invoker, "req-env", &event).await;
        let requests = seen.lock().unwrap().requests.clone();
        assert!(
            !requests.is_empty(),
            "status {status}: the SDK did not call AWS_ENDPOINT_URL"
        );
        let first = &requests[0];
        assert!(
            first.starts_with("POST /2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Agen/invocations"),
            "{first}"
        );
        assert!(
            first
                .to_ascii_lowercase()
                .contains("x-amz-invocation-type: event"),
            "{first}"
        );
        let body = &first[first.find("\r\n\r\n").unwrap() + 4..];
        let forwarded: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(forwarded, event);
        match (expect_ok, result) {
            (true, Ok(outcome)) => assert_eq!(outcome.status, Status::Invoked),
            (false, Err(InvokeError::UnexpectedStatus { status: 200, .. })) if status == 200 => {}
            (false, Err(InvokeError::Sdk { message, .. })) if status == 500 => {
                assert!(message.contains("stub failure"), "{message}");
                assert_eq!(requests.len(), 2, "AWS_MAX_ATTEMPTS=2 retries a 500 once");
            }
            (_, other) => panic!("status {status}: unexpected {other:?}"),
        }
    }
}
