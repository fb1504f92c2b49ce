//! `cargo xtask publish --bucket B`: uploads the Lambda zips to S3 under content-addressed keys and
//! prints the Terraform module inputs.
//!
//! - Reads `<dir>/manifest.json` (default `<cargo target directory>/lambda`, see `package`); when
//!   it or a zip is missing or stale for the chosen architectures, runs `package` first.
//! - Key: `<prefix>/<function>-<arch>-<sha256 hex>.zip`. An object already there (HeadObject) is
//!   not uploaded again; uploads carry `x-amz-checksum-sha256`, so S3 verifies the bytes.
//! - Prints the module inputs (names of the Terraform module's variables):
//!   `deployment_assets_bucket`, `ecr_image_filter_lambda_asset_path`,
//!   `soci_index_generator_lambda_asset_path`, `ecr_image_filter_lambda_source_code_hash`,
//!   `soci_index_generator_lambda_source_code_hash` (base64 sha256) and `architecture`.
//!   - HCL (default): one block per architecture, each headed by a `# architecture: <arch>` comment.
//!   - `--json`: ONE JSON object on one line. Its top level holds the inputs of the first chosen
//!     architecture (`x86_64` for `--arch all`, Lambda's default), and `architectures` maps every
//!     chosen architecture (`x86_64`, `arm64`) to its own complete set of inputs.
//! - Progress goes to stderr, the inputs to stdout.
//! - Endpoint: `--endpoint-url`, or the SDK's `AWS_ENDPOINT_URL[_S3]`; with either, path-style
//!   addressing is used (moto, LocalStack, MinIO). Region: `--region`, or the SDK's chain.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use aws_sdk_s3::config::ProvideCredentials;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;

use super::package::{self, Arch, ArchChoice, Artifact, FUNCTIONS, Manifest, Workspace};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The S3 bucket for the deployment assets (must exist).
    #[arg(long)]
    pub bucket: String,
    /// Key prefix inside the bucket.
    #[arg(long, default_value = "soci-index-builder")]
    pub prefix: String,
    /// AWS region (default: the SDK's chain, e.g. AWS_REGION).
    #[arg(long)]
    pub region: Option<String>,
    /// S3 endpoint (moto, LocalStack, MinIO); path-style addressing is used with it.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Architecture(s) to publish.
    #[arg(long, value_enum, default_value_t = ArchChoice::All)]
    pub arch: ArchChoice,
    /// Print the module inputs as JSON instead of HCL.
    #[arg(long)]
    pub json: bool,
    /// Directory with the zips and manifest.json (default: `<cargo target directory>/lambda`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The Terraform module inputs for one architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleInputs {
    pub deployment_assets_bucket: String,
    pub ecr_image_filter_lambda_asset_path: String,
    pub soci_index_generator_lambda_asset_path: String,
    pub ecr_image_filter_lambda_source_code_hash: String,
    pub soci_index_generator_lambda_source_code_hash: String,
    pub architecture: Arch,
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    #[serde(flatten)]
    first: &'a ModuleInputs,
    architectures: BTreeMap<&'static str, &'a ModuleInputs>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let inputs = runtime.block_on(publish(&args))?;
    println!("{}", render(&inputs, args.json)?);
    Ok(())
}

/// The S3 key of an artifact.
pub fn object_key(prefix: &str, artifact: &Artifact) -> String {
    let name = format!(
        "{}-{}-{}.zip",
        artifact.function, artifact.architecture, artifact.sha256
    );
    match prefix.trim_matches('/') {
        "" => name,
        prefix => format!("{prefix}/{name}"),
    }
}

/// Renders the inputs as HCL blocks or as the JSON object described in the module docs.
pub fn render(inputs: &[ModuleInputs], json: bool) -> anyhow::Result<String> {
    let Some(first) = inputs.first() else {
        bail!("nothing was published")
    };
    if json {
        let output = JsonOutput {
            first,
            architectures: inputs
                .iter()
                .map(|i| (i.architecture.lambda_name(), i))
                .collect(),
        };
        return serde_json::to_string(&output).context("serializing the module inputs");
    }
    let blocks: Vec<String> = inputs
        .iter()
        .map(|i| {
            format!(
                "# architecture: {arch}\n\
                 deployment_assets_bucket                     = {}\n\
                 ecr_image_filter_lambda_asset_path           = {}\n\
                 soci_index_generator_lambda_asset_path       = {}\n\
                 ecr_image_filter_lambda_source_code_hash     = {}\n\
                 soci_index_generator_lambda_source_code_hash = {}\n\
                 architecture                                 = {}\n",
                hcl_string(&i.deployment_assets_bucket),
                hcl_string(&i.ecr_image_filter_lambda_asset_path),
                hcl_string(&i.soci_index_generator_lambda_asset_path),
                hcl_string(&i.ecr_image_filter_lambda_source_code_hash),
                hcl_string(&i.soci_index_generator_lambda_source_code_hash),
                hcl_string(i.architecture.lambda_name()),
                arch = i.architecture,
            )
        })
        .collect();
    Ok(blocks.join("\n").trim_end().to_owned())
}

/// An HCL string literal (JSON escaping is valid HCL for these values; `${`/`%{` are escaped).
fn hcl_string(value: &str) -> String {
    let quoted = serde_json::Value::from(value).to_string();
    quoted.replace("${", "$${").replace("%{", "%%{")
}

/// Makes sure every (function, arch) zip is packaged and matches the manifest; packages if not.
fn ensure_packaged(
    args: &Args,
    dir: &std::path::Path,
    arches: &[Arch],
) -> anyhow::Result<Manifest> {
    let complete = |manifest: &Manifest| {
        arches.iter().all(|&arch| {
            FUNCTIONS.iter().all(|function| {
                manifest.find(function, arch).is_some_and(|a| {
                    std::fs::read(dir.join(&a.file)).is_ok_and(|bytes| {
                        package::artifact(function, arch, a.file.clone(), &bytes) == *a
                    })
                })
            })
        })
    };
    if let Ok(manifest) = Manifest::read(dir)
        && complete(&manifest)
    {
        return Ok(manifest);
    }
    eprintln!(
        "==> zips or manifest missing in {}: packaging first",
        dir.display()
    );
    package::package(&package::Args {
        arch: args.arch,
        functions: Vec::new(),
        out_dir: Some(dir.to_path_buf()),
    })?;
    let manifest = Manifest::read(dir)?;
    if !complete(&manifest) {
        bail!(
            "after packaging, {} still lacks a zip of {FUNCTIONS:?} for {arches:?} (is every Lambda package in the workspace?)",
            dir.display()
        );
    }
    Ok(manifest)
}

async fn publish(args: &Args) -> anyhow::Result<Vec<ModuleInputs>> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => Workspace::load()?.default_out_dir(),
    };
    let arches = args.arch.arches();
    let manifest = ensure_packaged(args, &dir, &arches)?;
    let client = s3_client(args).await?;
    check_bucket(&client, &args.bucket).await?;

    let mut keys: BTreeMap<(&str, Arch), (String, &Artifact)> = BTreeMap::new();
    for &arch in &arches {
        for function in FUNCTIONS {
            let artifact = manifest
                .find(function, arch)
                .with_context(|| format!("manifest has no {function} for {arch}"))?;
            let key = object_key(&args.prefix, artifact);
            upload(
                &client,
                &args.bucket,
                &key,
                &dir.join(&artifact.file),
                artifact,
            )
            .await?;
            keys.insert((function, arch), (key, artifact));
        }
    }
    let get = |function: &'static str, arch: Arch| {
        keys.get(&(function, arch))
            .with_context(move || format!("no upload of {function} for {arch}"))
    };
    arches
        .iter()
        .map(|&arch| {
            let (filter_key, filter) = get("ecr-image-filter", arch)?;
            let (generator_key, generator) = get("soci-index-generator", arch)?;
            Ok(ModuleInputs {
                deployment_assets_bucket: args.bucket.clone(),
                ecr_image_filter_lambda_asset_path: filter_key.clone(),
                soci_index_generator_lambda_asset_path: generator_key.clone(),
                ecr_image_filter_lambda_source_code_hash: filter.sha256_base64.clone(),
                soci_index_generator_lambda_source_code_hash: generator.sha256_base64.clone(),
                architecture: arch,
            })
        })
        .collect()
}

/// An S3 client from the SDK's chain, with `--region`/`--endpoint-url` applied; fails with one
/// line when no credentials can be found.
async fn s3_client(args: &Args) -> anyhow::Result<aws_sdk_s3::Client> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &args.region {
        loader = loader.region(aws_sdk_s3::config::Region::new(region.clone()));
    }
    if let Some(endpoint) = &args.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        bail!("no AWS region: pass --region or set AWS_REGION");
    }
    let Some(credentials) = config.credentials_provider() else {
        bail!("no AWS credentials provider configured");
    };
    if let Err(err) = credentials.provide_credentials().await {
        bail!(
            "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role): {err}"
        );
    }
    let custom_endpoint = args.endpoint_url.is_some()
        || ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
    let s3_config = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(custom_endpoint)
        .build();
    Ok(aws_sdk_s3::Client::from_conf(s3_config))
}

/// A one-line description of an S3 failure (missing bucket, access denied, unreachable, ...).
fn describe<E, R>(err: &SdkError<E, R>, what: &str, bucket: &str) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
    SdkError<E, R>: HttpStatus,
{
    let status = err.http_status();
    let code = err.code().unwrap_or_default();
    let message = err.message().unwrap_or_default();
    match (status, code) {
        (Some(404), _) | (_, "NoSuchBucket") => {
            anyhow::anyhow!(
                "{what}: bucket {bucket:?} does not exist (create it first, or check --region/--endpoint-url)"
            )
        }
        (Some(403), _) | (_, "AccessDenied") | (_, "AllAccessDisabled") => anyhow::anyhow!(
            "{what}: access denied to bucket {bucket:?} (the credentials need s3:ListBucket, s3:GetObject and s3:PutObject on it){}",
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        ),
        (_, "InvalidAccessKeyId") | (_, "SignatureDoesNotMatch") | (_, "ExpiredToken") => {
            anyhow::anyhow!("{what}: the AWS credentials were rejected ({code}): {message}")
        }
        _ => match err {
            SdkError::DispatchFailure(failure) => anyhow::anyhow!(
                "{what}: cannot reach S3 ({}): {}",
                if failure.is_timeout() {
                    "timeout"
                } else {
                    "connection failed"
                },
                aws_sdk_s3::error::DisplayErrorContext(err)
            ),
            _ => anyhow::anyhow!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(err)),
        },
    }
}

/// The HTTP status of an SDK error's response, if there was one.
trait HttpStatus {
    fn http_status(&self) -> Option<u16>;
}

impl<E> HttpStatus for SdkError<E, aws_sdk_s3::config::http::HttpResponse> {
    fn http_status(&self) -> Option<u16> {
        self.raw_response().map(|r| r.status().as_u16())
    }
}

async fn check_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(err) => Err(describe(&err, "checking the bucket", bucket)),
    }
}

async fn upload(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &std::path::Path,
    artifact: &Artifact,
) -> anyhow::Result<()> {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(head) if head.content_length() == Some(artifact.size as i64) => {
            eprintln!(
                "==> s3://{bucket}/{key} already present ({} bytes), skipped",
                artifact.size
            );
            return Ok(());
        }
        Ok(_) => eprintln!("==> s3://{bucket}/{key} present with another size, uploading again"),
        Err(err) if err.http_status() == Some(404) => {}
        Err(err) => {
            return Err(describe(
                &err,
                &format!("checking s3://{bucket}/{key}"),
                bucket,
            ));
        }
    }
    let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    eprintln!(
        "==> uploading {} to s3://{bucket}/{key} ({} bytes)",
        path.display(),
        body.len()
    );
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/zip")
        .checksum_sha256(&artifact.sha256_base64)
        .metadata("sha256", &artifact.sha256)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|err| describe(&err, &format!("uploading s3://{bucket}/{key}"), bucket))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(arch: Arch) -> ModuleInputs {
        ModuleInputs {
            deployment_assets_bucket: "b".into(),
            ecr_image_filter_lambda_asset_path: format!("p/f-{arch}.zip"),
            soci_index_generator_lambda_asset_path: format!("p/g-{arch}.zip"),
            ecr_image_filter_lambda_source_code_hash: "aA==".into(),
            soci_index_generator_lambda_source_code_hash: "bB==".into(),
            architecture: arch,
        }
    }

    #[test]
    fn json_has_the_module_input_names_flat_and_per_arch() {
        let out = render(&[inputs(Arch::X86_64), inputs(Arch::Arm64)], true).unwrap();
        assert_eq!(out.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["architecture"], "x86_64");
        assert_eq!(
            value["ecr_image_filter_lambda_asset_path"],
            "p/f-x86_64.zip"
        );
        assert_eq!(
            value["architectures"]["arm64"]["soci_index_generator_lambda_asset_path"],
            "p/g-arm64.zip"
        );
        assert_eq!(value["architectures"]["arm64"]["architecture"], "arm64");
    }

    #[test]
    fn hcl_blocks() {
        let out = render(&[inputs(Arch::X86_64), inputs(Arch::Arm64)], false).unwrap();
        assert_eq!(out.matches("# architecture:").count(), 2);
        assert!(out.contains("deployment_assets_bucket                     = \"b\""));
        assert!(out.contains("architecture                                 = \"arm64\""));
        assert_eq!(hcl_string("a${b}"), "\"a$${b}\"");
    }

    #[test]
    fn keys() {
        let a = package::artifact("ecr-image-filter", Arch::Arm64, "x.zip".into(), b"z");
        assert_eq!(
            object_key("/p/q/", &a),
            format!("p/q/ecr-image-filter-arm64-{}.zip", a.sha256)
        );
        assert_eq!(
            object_key("", &a),
            format!("ecr-image-filter-arm64-{}.zip", a.sha256)
        );
    }
}
