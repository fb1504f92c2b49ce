//! `cargo xtask publish` against moto server: upload, re-upload skipped, objects equal the local
//! zips, the printed module inputs, and one-line errors (missing bucket, no credentials, access
//! denied from a stub endpoint). The zips are real zip files made here with a manifest as
//! `package` writes it, so these tests need no cross build.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use base64::Engine;
use sha2::{Digest, Sha256};
use test_support::Moto;

const FUNCTIONS: [&str; 2] = ["ecr-image-filter", "soci-index-generator"];
const ARCHES: [&str; 2] = ["x86_64", "arm64"];
const INPUT_NAMES: [&str; 6] = [
    "deployment_assets_bucket",
    "ecr_image_filter_lambda_asset_path",
    "soci_index_generator_lambda_asset_path",
    "ecr_image_filter_lambda_source_code_hash",
    "soci_index_generator_lambda_source_code_hash",
    "architecture",
];

/// Writes `<function>-<arch>.zip` files and manifest.json into `dir`.
fn fake_package(dir: &Path) {
    let mut artifacts = Vec::new();
    for function in FUNCTIONS {
        for arch in ARCHES {
            let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
            writer.start_file("bootstrap", options).unwrap();
            writer
                .write_all(format!("#!/bin/sh\necho {function} {arch}\n").as_bytes())
                .unwrap();
            let bytes = writer.finish().unwrap().into_inner();
            let file = format!("{function}-{arch}.zip");
            std::fs::write(dir.join(&file), &bytes).unwrap();
            let digest = Sha256::digest(&bytes);
            artifacts.push(serde_json::json!({
                "function": function,
                "architecture": arch,
                "file": file,
                "size": bytes.len(),
                "sha256": hex::encode(digest),
                "sha256_base64": base64::engine::general_purpose::STANDARD.encode(digest),
            }));
        }
    }
    let manifest = serde_json::json!({ "artifacts": artifacts });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

fn xtask(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.args(args);
    for var in [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_SESSION_TOKEN",
    ] {
        command.env_remove(var);
    }
    command
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run xtask")
}

const CREDS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
];

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

async fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A moto server with an empty bucket `assets`, its S3 client, and a packaged directory.
async fn moto_bucket_and_package() -> (Moto, aws_sdk_s3::Client, tempfile::TempDir) {
    let moto = Moto::start().expect("moto_server (run `cargo xtask setup`: the project's venv)");
    let client = s3(&moto.endpoint).await;
    client
        .create_bucket()
        .bucket("assets")
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    fake_package(dir.path());
    (moto, client, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_uploads_once_and_prints_module_inputs() {
    let (moto, client, dir) = moto_bucket_and_package().await;
    let dir_arg = dir.path().to_str().unwrap();
    let args = [
        "publish",
        "--bucket",
        "assets",
        "--endpoint-url",
        &moto.endpoint,
        "--region",
        "us-east-1",
        "--dir",
        dir_arg,
        "--json",
    ];

    let out = xtask(&args, &CREDS);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).matches("uploading").count(),
        4,
        "{}",
        stderr(&out)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1, "one JSON line: {stdout}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for name in INPUT_NAMES {
        assert!(json[name].is_string(), "top level lacks {name}: {json:#}");
    }
    assert_eq!(json["architecture"], "x86_64");
    assert_eq!(json["deployment_assets_bucket"], "assets");
    assert_objects_match_inputs(&client, &json, dir.path()).await;
    for name in INPUT_NAMES {
        assert_eq!(
            json[name], json["architectures"]["x86_64"][name],
            "top level = x86_64's inputs"
        );
    }

    // Again: everything is already there.
    let again = xtask(&args, &CREDS);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stderr(&again).matches("already present").count(),
        4,
        "{}",
        stderr(&again)
    );
    assert!(!stderr(&again).contains("uploading"), "{}", stderr(&again));
    assert_eq!(String::from_utf8(again.stdout).unwrap(), stdout);

    one_architecture_in_hcl_under_a_prefix(&client, &moto.endpoint, dir_arg).await;
}

/// Every uploaded object equals its local zip, under the key and hash the printed inputs name.
async fn assert_objects_match_inputs(
    client: &aws_sdk_s3::Client,
    json: &serde_json::Value,
    dir: &Path,
) {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    for arch in ARCHES {
        let inputs = &json["architectures"][arch];
        assert_eq!(inputs["architecture"], arch);
        for (function, field) in [
            ("ecr-image-filter", "ecr_image_filter"),
            ("soci-index-generator", "soci_index_generator"),
        ] {
            let entry = manifest["artifacts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["function"] == function && a["architecture"] == arch)
                .unwrap();
            let key = inputs[format!("{field}_lambda_asset_path")]
                .as_str()
                .unwrap();
            let sha = entry["sha256"].as_str().unwrap();
            assert_eq!(
                key,
                format!("soci-index-builder/{function}-{arch}-{sha}.zip")
            );
            assert_eq!(
                inputs[format!("{field}_lambda_source_code_hash")],
                entry["sha256_base64"]
            );
            let object = client
                .get_object()
                .bucket("assets")
                .key(key)
                .send()
                .await
                .unwrap();
            let bytes = object.body.collect().await.unwrap().into_bytes();
            let local = std::fs::read(dir.join(entry["file"].as_str().unwrap())).unwrap();
            assert_eq!(
                bytes.as_ref(),
                local.as_slice(),
                "{key} differs from the local zip"
            );
        }
    }
}

/// One architecture, HCL, prefix, and the SDK's AWS_ENDPOINT_URL instead of --endpoint-url.
async fn one_architecture_in_hcl_under_a_prefix(
    client: &aws_sdk_s3::Client,
    endpoint: &str,
    dir_arg: &str,
) {
    let out = xtask(
        &[
            "publish", "--bucket", "assets", "--arch", "arm64", "--prefix", "custom/p", "--dir",
            dir_arg,
        ],
        &[
            CREDS[0],
            CREDS[1],
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let hcl = String::from_utf8(out.stdout).unwrap();
    assert_eq!(hcl.matches("# architecture: arm64").count(), 1, "{hcl}");
    assert!(!hcl.contains("x86_64"), "{hcl}");
    for name in INPUT_NAMES {
        assert!(
            hcl.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing in:\n{hcl}"
        );
    }
    assert!(hcl.contains("\"custom/p/ecr-image-filter-arm64-"), "{hcl}");
    let listed = client
        .list_objects_v2()
        .bucket("assets")
        .prefix("custom/p/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_errors_are_one_clear_line() {
    let moto = Moto::start().expect("moto_server (run `cargo xtask setup`: the project's venv)");
    let dir = tempfile::tempdir().unwrap();
    fake_package(dir.path());
    let dir_arg = dir.path().to_str().unwrap();

    let out = xtask(
        &[
            "publish",
            "--bucket",
            "no-such-bucket",
            "--endpoint-url",
            &moto.endpoint,
            "--region",
            "us-east-1",
            "--dir",
            dir_arg,
        ],
        &CREDS,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("bucket \"no-such-bucket\" does not exist"),
        "{err}"
    );

    let out = xtask(
        &[
            "publish",
            "--bucket",
            "assets",
            "--endpoint-url",
            &moto.endpoint,
            "--region",
            "us-east-1",
            "--dir",
            dir_arg,
        ],
        &[],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no AWS credentials found"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // An endpoint that denies everything, as S3 does for a bucket of another account.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 16384];
            let _ = stream.read(&mut buf);
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
            let _ = write!(
                stream,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let out = xtask(
        &[
            "publish",
            "--bucket",
            "assets",
            "--endpoint-url",
            &endpoint,
            "--region",
            "us-east-1",
            "--dir",
            dir_arg,
        ],
        &CREDS,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("access denied to bucket \"assets\""), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

fn publish_args<'a>(endpoint: &'a str, dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "publish",
        "--bucket",
        "assets",
        "--endpoint-url",
        endpoint,
        "--region",
        "us-east-1",
        "--dir",
        dir,
        "--json",
    ];
    args.extend_from_slice(extra);
    args
}

async fn object_bytes(client: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    let object = client
        .get_object()
        .bucket("assets")
        .key(key)
        .send()
        .await
        .unwrap();
    object.body.collect().await.unwrap().into_bytes().to_vec()
}

/// An object of the zip's size but other bytes under the key (a broken or foreign upload) is
/// replaced, not skipped: publish compares SHA-256, not sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_replaces_same_size_object_with_other_bytes() {
    let (moto, client, dir) = moto_bucket_and_package().await;
    let dir_arg = dir.path().to_str().unwrap();
    let args = publish_args(&moto.endpoint, dir_arg, &["--arch", "x86-64"]);
    let out = xtask(&args, &CREDS);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    let key = json["soci_index_generator_lambda_asset_path"]
        .as_str()
        .unwrap()
        .to_string();
    let local = std::fs::read(dir.path().join("soci-index-generator-x86_64.zip")).unwrap();

    // Same size, one byte flipped, with and without the metadata publish writes.
    let mut corrupt = local.clone();
    corrupt[local.len() / 2] ^= 0xff;
    for with_metadata in [false, true] {
        let mut put = client
            .put_object()
            .bucket("assets")
            .key(&key)
            .body(corrupt.clone().into());
        if with_metadata {
            // A stale claim: the metadata says the zip's hash, the bytes are not the zip.
            put = put.metadata("sha256", hex::encode(Sha256::digest(&local)));
        }
        put.send().await.unwrap();
        let again = xtask(&args, &CREDS);
        assert!(again.status.success(), "{}", stderr(&again));
        let err = stderr(&again);
        assert!(
            err.contains(&format!("s3://assets/{key} present with another SHA-256")),
            "metadata {with_metadata}: {err}"
        );
        assert_eq!(err.matches("already present").count(), 1, "{err}");
        assert_eq!(
            object_bytes(&client, &key).await,
            local,
            "{key} not repaired"
        );
    }
}

/// Replaces the local x86_64 filter zip (and its manifest entry) with other bytes, as a rebuild
/// from other sources would.
fn rebuild_filter_x86_64(dir: &Path) {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file("bootstrap", zip::write::SimpleFileOptions::default())
        .unwrap();
    writer.write_all(b"#!/bin/sh\necho rebuilt\n").unwrap();
    let rebuilt = writer.finish().unwrap().into_inner();
    let mut local_manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    for entry in local_manifest["artifacts"].as_array_mut().unwrap() {
        if entry["function"] == "ecr-image-filter" && entry["architecture"] == "x86_64" {
            let digest = Sha256::digest(&rebuilt);
            entry["size"] = rebuilt.len().into();
            entry["sha256"] = hex::encode(digest).into();
            entry["sha256_base64"] = base64::engine::general_purpose::STANDARD
                .encode(digest)
                .into();
        }
    }
    std::fs::write(dir.join("ecr-image-filter-x86_64.zip"), &rebuilt).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&local_manifest).unwrap(),
    )
    .unwrap();
}

/// `--release`: versioned keys and a manifest with the hashes, immutable once published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_release_layout() {
    let (moto, client, dir) = moto_bucket_and_package().await;
    let dir_arg = dir.path().to_str().unwrap();

    // One architecture first, then the other: the manifest gathers both.
    for (arch, arg) in [("arm64", "arm64"), ("x86_64", "x86-64")] {
        let args = publish_args(
            &moto.endpoint,
            dir_arg,
            &["--release", "1.2.3", "--arch", arg],
        );
        let out = xtask(&args, &CREDS);
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value =
            serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
        assert_eq!(
            json["ecr_image_filter_lambda_asset_path"],
            format!("soci-index-builder/1.2.3/ecr-image-filter-{arch}.zip")
        );
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &object_bytes(&client, "soci-index-builder/1.2.3/manifest.json").await,
    )
    .unwrap();
    assert_eq!(manifest["version"], "1.2.3");
    let artifacts = manifest["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 4, "{manifest:#}");
    for entry in artifacts {
        let (function, arch) = (
            entry["function"].as_str().unwrap(),
            entry["architecture"].as_str().unwrap(),
        );
        let key = format!("soci-index-builder/1.2.3/{function}-{arch}.zip");
        assert_eq!(entry["key"], key);
        let bytes = object_bytes(&client, &key).await;
        let local = std::fs::read(dir.path().join(format!("{function}-{arch}.zip"))).unwrap();
        assert_eq!(bytes, local, "{key}");
        let digest = Sha256::digest(&local);
        assert_eq!(entry["sha256"], hex::encode(digest));
        assert_eq!(
            entry["sha256_base64"],
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(entry["size"], local.len());
    }
    let head = client
        .head_object()
        .bucket("assets")
        .key("soci-index-builder/1.2.3/manifest.json")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));

    // Other bytes under a released version: refused, the release is left as it was.
    rebuild_filter_x86_64(dir.path());
    let args = publish_args(
        &moto.endpoint,
        dir_arg,
        &["--release", "1.2.3", "--arch", "x86-64"],
    );
    let out = xtask(&args, &CREDS);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("release 1.2.3 already holds ecr-image-filter for x86_64"),
        "{err}"
    );
    assert!(!err.contains("uploading"), "{err}");
    let after: serde_json::Value = serde_json::from_slice(
        &object_bytes(&client, "soci-index-builder/1.2.3/manifest.json").await,
    )
    .unwrap();
    assert_eq!(after, manifest);
}
