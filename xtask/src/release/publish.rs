//! `cargo xtask publish --bucket B`: uploads the Lambda zips to S3 under content-addressed keys and
//! prints the Terraform module inputs.
//!
//! - Reads `<dir>/manifest.json` (default `<cargo target directory>/lambda`, see `package`); when
//!   it or a zip is missing or stale for the chosen architectures, runs `package` first.
//! - Key: `<prefix>/<function>-<arch>-<sha256 hex>.zip`. Uploads carry `x-amz-checksum-sha256`
//!   (S3 verifies the bytes) and the hex sha256 as `x-amz-meta-sha256`. An object already there is
//!   skipped only when its SHA-256 is the zip's (S3's stored checksum, else the object's bytes
//!   hashed); an object with other bytes under the key (a broken or foreign upload) is replaced.
//! - `--release <version>`: the release layout `terraform/modules/copy-lambda-code` reads:
//!   `<prefix>/<version>/<function>-<arch>.zip` and `<prefix>/<version>/manifest.json`
//!   (`{"version", "artifacts": [{"function", "architecture", "key", "size", "sha256",
//!   "sha256_base64"}]}`, `application/json`). Releases are immutable: publishing other bytes
//!   under a released version is an error; publishing more architectures adds them to the
//!   manifest.
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
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// Publish as release VERSION: versioned keys and a release manifest (the layout
    /// `terraform/modules/copy-lambda-code` copies from), instead of content-addressed keys.
    #[arg(long, value_name = "VERSION", value_parser = parse_version)]
    pub release: Option<String>,
}

/// A release version as the copy-lambda-code module accepts it (it becomes a key segment).
fn parse_version(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if valid && value != "." && value != ".." {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not a release version (1-64 of A-Z a-z 0-9 . _ + -, e.g. 0.1.0)"
        ))
    }
}

/// One zip of a release, as its `manifest.json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseArtifact {
    pub function: String,
    pub architecture: Arch,
    /// Key in the release bucket.
    pub key: String,
    pub size: u64,
    pub sha256: String,
    pub sha256_base64: String,
}

/// `<prefix>/<version>/manifest.json` of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseManifest {
    pub version: String,
    pub artifacts: Vec<ReleaseArtifact>,
}

impl ReleaseManifest {
    /// Adds `new` to this release; a (function, architecture) already released with other
    /// bytes is an error (a release never changes under the same version).
    pub fn merge(&mut self, new: ReleaseArtifact) -> anyhow::Result<()> {
        match self
            .artifacts
            .iter()
            .find(|a| a.function == new.function && a.architecture == new.architecture)
        {
            Some(old) if old.sha256 == new.sha256 && old.key == new.key => Ok(()),
            Some(old) => bail!(
                "release {} already holds {} for {} with sha256 {} (key {}), not {}: releases are immutable, publish a new version",
                self.version,
                new.function,
                new.architecture,
                old.sha256,
                old.key,
                new.sha256
            ),
            None => {
                self.artifacts.push(new);
                self.artifacts.sort_by(|a, b| {
                    (&a.function, a.architecture).cmp(&(&b.function, b.architecture))
                });
                Ok(())
            }
        }
    }
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

/// `<prefix>/<version>/` (no leading `/` when the prefix is empty).
pub fn release_dir(prefix: &str, version: &str) -> String {
    match prefix.trim_matches('/') {
        "" => format!("{version}/"),
        prefix => format!("{prefix}/{version}/"),
    }
}

/// The S3 key of an artifact in a release.
pub fn release_key(prefix: &str, version: &str, artifact: &Artifact) -> String {
    format!(
        "{}{}-{}.zip",
        release_dir(prefix, version),
        artifact.function,
        artifact.architecture
    )
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
    let bucket = args.bucket.as_str();
    let mut release = match &args.release {
        Some(version) => Some(read_release(&client, bucket, &args.prefix, version).await?),
        None => None,
    };

    let mut keys: BTreeMap<(&str, Arch), (String, &Artifact)> = BTreeMap::new();
    for &arch in &arches {
        for function in FUNCTIONS {
            let artifact = manifest
                .find(function, arch)
                .with_context(|| format!("manifest has no {function} for {arch}"))?;
            let path = dir.join(&artifact.file);
            let key = match &mut release {
                Some(release) => {
                    let key = release_key(&args.prefix, &release.version, artifact);
                    // Checked before any upload, so a clash leaves the release untouched.
                    release.merge(ReleaseArtifact {
                        function: artifact.function.clone(),
                        architecture: arch,
                        key: key.clone(),
                        size: artifact.size,
                        sha256: artifact.sha256.clone(),
                        sha256_base64: artifact.sha256_base64.clone(),
                    })?;
                    upload(&client, bucket, &key, &path, artifact, Existing::MustMatch).await?;
                    key
                }
                None => {
                    let key = object_key(&args.prefix, artifact);
                    upload(&client, bucket, &key, &path, artifact, Existing::Replace).await?;
                    key
                }
            };
            keys.insert((function, arch), (key, artifact));
        }
    }
    if let Some(release) = &release {
        write_release(&client, bucket, &args.prefix, release).await?;
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

/// The release's manifest as published so far (empty when the release is new).
async fn read_release(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    version: &str,
) -> anyhow::Result<ReleaseManifest> {
    let key = format!("{}manifest.json", release_dir(prefix, version));
    let object = match client.get_object().bucket(bucket).key(&key).send().await {
        Ok(object) => object,
        Err(err) if err.http_status() == Some(404) => {
            return Ok(ReleaseManifest {
                version: version.to_owned(),
                artifacts: Vec::new(),
            });
        }
        Err(err) => {
            return Err(describe(
                &err,
                &format!("reading s3://{bucket}/{key}"),
                bucket,
            ));
        }
    };
    let body = object
        .body
        .collect()
        .await
        .with_context(|| format!("reading s3://{bucket}/{key}"))?
        .into_bytes();
    let manifest: ReleaseManifest = serde_json::from_slice(&body)
        .with_context(|| format!("s3://{bucket}/{key} is not a release manifest"))?;
    if manifest.version != version {
        bail!(
            "s3://{bucket}/{key} describes release {:?}, not {version:?}",
            manifest.version
        );
    }
    Ok(manifest)
}

async fn write_release(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    release: &ReleaseManifest,
) -> anyhow::Result<()> {
    let key = format!("{}manifest.json", release_dir(prefix, &release.version));
    let body = serde_json::to_vec_pretty(release).context("serializing the release manifest")?;
    eprintln!("==> writing s3://{bucket}/{key}");
    client
        .put_object()
        .bucket(bucket)
        .key(&key)
        // `application/json`: Terraform's aws_s3_object data source returns only text bodies.
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|err| describe(&err, &format!("writing s3://{bucket}/{key}"), bucket))?;
    Ok(())
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

/// What to do with an object already under the key whose bytes are not the zip's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Existing {
    /// Content-addressed keys: a broken or foreign upload; replace it.
    Replace,
    /// Release keys: a release never changes; refuse.
    MustMatch,
}

/// Whether the object under `key` holds the artifact's bytes. `None`: no object. S3's own
/// SHA-256 checksum decides when the object has one (publish's uploads do); otherwise an object
/// of the zip's size is downloaded and hashed (metadata is a claim anyone can write, not a
/// proof). Sizes differ: not the artifact, nothing downloaded.
async fn holds_artifact(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    artifact: &Artifact,
) -> anyhow::Result<Option<bool>> {
    let head = client
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await;
    let head = match head {
        Ok(head) => head,
        Err(err) if err.http_status() == Some(404) => return Ok(None),
        Err(err) => {
            return Err(describe(
                &err,
                &format!("checking s3://{bucket}/{key}"),
                bucket,
            ));
        }
    };
    if head.content_length() != Some(artifact.size as i64) {
        return Ok(Some(false));
    }
    if let Some(checksum) = head.checksum_sha256() {
        return Ok(Some(checksum == artifact.sha256_base64));
    }
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| describe(&err, &format!("reading s3://{bucket}/{key}"), bucket))?;
    let bytes = object
        .body
        .collect()
        .await
        .with_context(|| format!("reading s3://{bucket}/{key}"))?
        .into_bytes();
    Ok(Some(hex::encode(Sha256::digest(&bytes)) == artifact.sha256))
}

async fn upload(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &std::path::Path,
    artifact: &Artifact,
    existing: Existing,
) -> anyhow::Result<()> {
    match holds_artifact(client, bucket, key, artifact).await? {
        Some(true) => {
            eprintln!(
                "==> s3://{bucket}/{key} already present (sha256 {}), skipped",
                artifact.sha256
            );
            return Ok(());
        }
        Some(false) if existing == Existing::MustMatch => bail!(
            "s3://{bucket}/{key} already exists with other bytes than {} (sha256 {}): releases are immutable, publish a new version",
            path.display(),
            artifact.sha256
        ),
        Some(false) => eprintln!(
            "==> s3://{bucket}/{key} present with another SHA-256 than the zip's, uploading again"
        ),
        None => {}
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

    fn release_artifact(function: &str, arch: Arch, sha: &str) -> ReleaseArtifact {
        ReleaseArtifact {
            function: function.into(),
            architecture: arch,
            key: format!("p/1.0.0/{function}-{arch}.zip"),
            size: 1,
            sha256: sha.into(),
            sha256_base64: "x".into(),
        }
    }

    #[test]
    fn release_manifest_adds_architectures_and_refuses_changes() {
        let mut release = ReleaseManifest {
            version: "1.0.0".into(),
            artifacts: Vec::new(),
        };
        release
            .merge(release_artifact("soci-index-generator", Arch::Arm64, "aa"))
            .unwrap();
        release
            .merge(release_artifact("ecr-image-filter", Arch::X86_64, "bb"))
            .unwrap();
        // The same bytes again: nothing changes.
        release
            .merge(release_artifact("ecr-image-filter", Arch::X86_64, "bb"))
            .unwrap();
        assert_eq!(release.artifacts.len(), 2);
        assert_eq!(release.artifacts[0].function, "ecr-image-filter");
        let err = release
            .merge(release_artifact("ecr-image-filter", Arch::X86_64, "cc"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("release 1.0.0 already holds ecr-image-filter"),
            "{err}"
        );
        assert!(err.contains("immutable"), "{err}");
    }

    #[test]
    fn release_versions() {
        assert_eq!(parse_version("0.1.0").unwrap(), "0.1.0");
        assert!(parse_version("1.0.0-rc.1+build").is_ok());
        for bad in ["", "..", "1/2", "a b", &"9".repeat(65)] {
            assert!(parse_version(bad).is_err(), "{bad:?} accepted");
        }
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
        assert_eq!(
            release_key("/p/q/", "1.2.3", &a),
            "p/q/1.2.3/ecr-image-filter-arm64.zip"
        );
        assert_eq!(release_dir("", "1.2.3"), "1.2.3/");
    }
}
