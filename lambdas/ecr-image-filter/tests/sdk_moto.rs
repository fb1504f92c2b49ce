//! The real aws-sdk-lambda client ([`SdkInvoker`]) against moto server: moto answers Invoke with
//! `InvocationType=Event` with HTTP 202 when its Docker-free Lambda backend is selected
//! (`/moto-api/config` `{"lambda": {"use_docker": false}}`), so no Docker is needed.

use std::io::{Read, Write};
use std::net::TcpStream;

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use ecr_image_filter::{Config, Invoker, SdkInvoker, Status, handle};
use test_support::Moto;

const ROLE: &str = "arn:aws:iam::123456789012:role/soci-generator";

/// A bare HTTP/1.1 POST (moto's control API and IAM's query API need no client crate).
fn post(endpoint: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect to moto");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    (status, response)
}

fn lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

async fn moto_with_generator() -> (Moto, aws_sdk_lambda::Client) {
    let moto =
        Moto::start().expect("start moto_server (run `cargo xtask setup`: the project's venv)");
    let (status, body) = post(
        &moto.endpoint,
        "/moto-api/config",
        &[("Content-Type", "application/json")],
        r#"{"lambda": {"use_docker": false}}"#,
    );
    assert!(status < 300, "moto config: {body}");
    let policy = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
    let (status, body) = post(
        &moto.endpoint,
        "/",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
            ),
        ],
        &format!(
            "Action=CreateRole&Version=2010-05-08&RoleName=soci-generator&AssumeRolePolicyDocument={policy}"
        ),
    );
    assert_eq!(status, 200, "IAM CreateRole: {body}");
    let client = lambda_client(&moto.endpoint);
    client
        .create_function()
        .function_name("gen")
        .runtime(Runtime::Providedal2023)
        .role(ROLE)
        .handler("bootstrap")
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(b"PK\x05\x06".to_vec()))
                .build(),
        )
        .send()
        .await
        .expect("CreateFunction on moto");
    (moto, client)
}

fn config(arn: &str) -> Config {
    Config::from_lookup(|name| (name == "soci_index_generator_lambda_arn").then(|| arn.to_owned()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_client_invokes_async_on_moto() {
    let (_moto, client) = moto_with_generator().await;
    let invoker = SdkInvoker::new(client);
    let status = invoker
        .invoke_async("gen", br#"{"ping":1}"#.to_vec())
        .await
        .unwrap();
    assert_eq!(status, 202);

    let event: serde_json::Value =
        serde_json::from_slice(include_bytes!("fixtures/push_tagged.json")).unwrap();
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:gen";
    let outcome = handle(&config(arn), &invoker, "req-moto", &event)
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Invoked);

    // Moto's Docker-free backend answers 202 even for unknown functions, so the failure paths
    // (HTTP 500 from the service, a 200 instead of 202) are covered against a local stub in
    // sdk_endpoint_env.rs.
}
