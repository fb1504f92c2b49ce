//! The moving parts the run starts and stops: phase timings, the AWS side (moto / LocalStack /
//! AWS), the release artifacts (`cargo xtask package` + `publish`), the Terraform root, and the
//! packaged `bootstrap` processes. Everything started is owned by a guard whose `Drop` stops it
//! by process id (or destroys it), so every exit path (errors, panics) cleans up.

mod lambda;
mod release;
mod terraform;

use std::time::{Duration, Instant};

use anyhow::Context;

pub use lambda::{FunctionConfig, LambdaProcess, function_config, launcher, tail};
pub use release::{Arch, ArchChoice, cargo, package, publish, unzip_bootstrap, zips_dir};
pub use terraform::{Deployment, Terraform, TerraformSettings};

/// Wall time per phase.
#[derive(Default)]
pub struct Phases {
    done: Vec<(String, Duration)>,
}

impl Phases {
    /// Runs `f` as phase `name`, printing its start and wall time.
    pub fn run<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        println!("\n=== e2e: {name} ===");
        let start = Instant::now();
        let result = f();
        let elapsed = start.elapsed();
        let status = if result.is_ok() { "ok" } else { "FAILED" };
        println!(
            "=== e2e: {name}: {status} in {:.1} s ===",
            elapsed.as_secs_f64()
        );
        self.done.push((format!("{name} ({status})"), elapsed));
        result.with_context(|| format!("phase `{name}`"))
    }

    pub fn print(&self, total: Duration) {
        println!("\n== cargo xtask e2e: wall time per phase ==");
        for (name, elapsed) in &self.done {
            println!("  {:>7.1} s  {name}", elapsed.as_secs_f64());
        }
        println!("  {:>7.1} s  total", total.as_secs_f64());
    }
}

/// Where the AWS APIs (S3, IAM, Lambda control plane, EventBridge, Logs, STS) are.
pub enum AwsSide {
    /// Our own moto server (killed on drop).
    Moto(test_support::Moto),
    /// LocalStack or any other endpoint the caller runs.
    Endpoint(String),
    /// Real AWS through the SDK's default chain.
    Real,
}

impl AwsSide {
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            Self::Moto(moto) => Some(&moto.endpoint),
            Self::Endpoint(endpoint) => Some(endpoint),
            Self::Real => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Moto(moto) => format!("moto_server (ours) at {}", moto.endpoint),
            Self::Endpoint(endpoint) => format!("the AWS endpoint {endpoint}"),
            Self::Real => "real AWS (SDK default chain)".into(),
        }
    }

    /// Whether the harness uses fake credentials: always with our moto, and with another
    /// endpoint when the caller set none.
    fn fake_credentials(&self) -> bool {
        std::env::var_os("AWS_ACCESS_KEY_ID").is_none() || matches!(self, Self::Moto(_))
    }

    /// Credentials for the harness and Terraform: fake ones for an emulator unless the caller
    /// set their own.
    pub fn env(&self, region: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("AWS_REGION".to_string(), region.to_string()),
            ("AWS_DEFAULT_REGION".into(), region.into()),
        ];
        if let Some(endpoint) = self.endpoint() {
            env.push(("AWS_ENDPOINT_URL".into(), endpoint.into()));
            if self.fake_credentials() {
                env.push(("AWS_ACCESS_KEY_ID".into(), "test".into()));
                env.push(("AWS_SECRET_ACCESS_KEY".into(), "test".into()));
            }
        }
        env
    }

    /// The SDK configuration for the harness's own calls.
    pub async fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()));
        if let Some(endpoint) = self.endpoint() {
            loader = loader.endpoint_url(endpoint);
            if self.fake_credentials() {
                loader = loader.credentials_provider(aws_sdk_lambda::config::Credentials::new(
                    "test", "test", None, None, "e2e",
                ));
            }
        }
        loader.load().await
    }
}

/// Creates the assets bucket unless it exists.
pub async fn ensure_bucket(
    config: &aws_config::SdkConfig,
    custom_endpoint: bool,
    bucket: &str,
    region: &str,
) -> anyhow::Result<()> {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(custom_endpoint)
            .build(),
    );
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    let mut create = s3.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    create.send().await.map_err(|e| {
        anyhow::anyhow!(
            "creating bucket {bucket}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        )
    })?;
    Ok(())
}
