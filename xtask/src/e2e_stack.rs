//! The moving parts `cargo xtask e2e` starts and stops: the temp folder, phase timings, the
//! AWS side (moto / LocalStack / AWS), `cargo xtask package` + `publish`, the Terraform root,
//! and the packaged `bootstrap` processes. Everything started is owned by a guard whose `Drop`
//! stops it by process id (or destroys it), so every exit path (errors, panics) cleans up.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::package::Arch;

// ---------------------------------------------------------------------------------------------
// Temp folder and timings
// ---------------------------------------------------------------------------------------------

/// The run's temporary folder: everything the run writes goes under it. Removed on drop unless
/// kept.
pub struct TempDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl TempDir {
    pub fn new(keep: bool) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let path = std::env::temp_dir().join(format!("soci-e2e-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path, keep })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("e2e: kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

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

// ---------------------------------------------------------------------------------------------
// The AWS side
// ---------------------------------------------------------------------------------------------

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

    /// Credentials for the harness and Terraform: fake ones for an emulator unless the caller
    /// set their own.
    pub fn env(&self, region: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("AWS_REGION".to_string(), region.to_string()),
            ("AWS_DEFAULT_REGION".into(), region.into()),
        ];
        if let Some(endpoint) = self.endpoint() {
            env.push(("AWS_ENDPOINT_URL".into(), endpoint.into()));
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() || matches!(self, Self::Moto(_)) {
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
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() || matches!(self, Self::Moto(_)) {
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

// ---------------------------------------------------------------------------------------------
// package + publish (the xtask binary itself, as child processes)
// ---------------------------------------------------------------------------------------------

fn xtask_command() -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let mut command = Command::new(exe);
    command
        .current_dir(crate::project_root())
        .stdin(Stdio::null());
    Ok(command)
}

fn arch_arg(arch: crate::package::ArchChoice) -> &'static str {
    match arch {
        crate::package::ArchChoice::X86_64 => "x86-64",
        crate::package::ArchChoice::Arm64 => "arm64",
        crate::package::ArchChoice::All => "all",
    }
}

/// `cargo xtask package --arch <arch>`.
pub fn package(arch: crate::package::ArchChoice) -> anyhow::Result<()> {
    let arch = arch_arg(arch);
    let status = xtask_command()?
        .args(["package", "--arch", arch])
        .status()
        .context("running `cargo xtask package`")?;
    ensure!(
        status.success(),
        "`cargo xtask package --arch {arch}` failed ({status})"
    );
    Ok(())
}

/// The module inputs `cargo xtask publish --json` printed, per architecture.
pub fn publish(
    bucket: &str,
    endpoint: Option<&str>,
    region: &str,
    arch: crate::package::ArchChoice,
    env: &[(String, String)],
) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    let mut command = xtask_command()?;
    command.args([
        "publish",
        "--bucket",
        bucket,
        "--region",
        region,
        "--json",
        "--arch",
        arch_arg(arch),
    ]);
    if let Some(endpoint) = endpoint {
        command.args(["--endpoint-url", endpoint]);
    }
    let output = command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stderr(Stdio::inherit())
        .output()
        .context("running `cargo xtask publish`")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "`cargo xtask publish` failed ({}): {stdout}",
        output.status
    );
    let value: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.trim()).ok())
        .with_context(|| {
            format!("`cargo xtask publish --json` printed no JSON object:\n{stdout}")
        })?;
    let architectures = value
        .get("architectures")
        .and_then(|a| a.as_object())
        .with_context(|| format!("publish output has no `architectures` map: {value}"))?;
    Ok(architectures
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

/// Extracts `bootstrap` from a packaged zip into `dir` (mode 0755); returns its path.
pub fn unzip_bootstrap(zip_path: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let file =
        std::fs::File::open(zip_path).with_context(|| format!("opening {}", zip_path.display()))?;
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("reading {}", zip_path.display()))?;
    ensure!(
        archive.len() == 1,
        "{} holds {} entries, want exactly `bootstrap`",
        zip_path.display(),
        archive.len()
    );
    let mut entry = archive
        .by_name("bootstrap")
        .with_context(|| format!("{} has no `bootstrap`", zip_path.display()))?;
    ensure!(
        entry.unix_mode().is_some_and(|m| m & 0o111 != 0),
        "`bootstrap` in {} is not executable (mode {:?})",
        zip_path.display(),
        entry.unix_mode()
    );
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes)?;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("bootstrap");
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(path)
}

// ---------------------------------------------------------------------------------------------
// Terraform
// ---------------------------------------------------------------------------------------------

const PROVIDER_MIRROR: &str = "/opt/tf-plugins";

/// One module instance per architecture, its name and its prefix.
pub fn module_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64",
        Arch::Arm64 => "arm64",
    }
}

/// The Terraform root in the temp folder: a copy of the module and a `main.tf.json` calling it
/// once per architecture. `destroy` on drop when the stack outlives us (not our own moto).
pub struct Terraform {
    binary: PathBuf,
    root: PathBuf,
    env: Vec<(String, String)>,
    applied: bool,
    destroy_on_drop: bool,
}

/// What the harness needs from the module, per architecture (root outputs).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Deployment {
    pub filter_name: String,
    pub filter_arn: String,
    pub generator_name: String,
    pub generator_arn: String,
    pub rule_name: String,
}

pub struct TerraformSettings<'a> {
    pub region: &'a str,
    pub endpoint: Option<&'a str>,
    pub prefix: &'a str,
    pub filters: &'a [String],
    pub min_layer_size: u64,
    pub span_size: u64,
    pub assets: &'a BTreeMap<String, serde_json::Value>,
    pub arches: &'a [Arch],
}

impl Terraform {
    pub fn new(
        temp: &Path,
        aws_env: &[(String, String)],
        destroy_on_drop: bool,
    ) -> anyhow::Result<Self> {
        let binary = test_support::find_binary("terraform")
            .map_err(|e| anyhow::anyhow!("{e} (install Terraform >= 1.5)"))?;
        let dir = temp.join("terraform");
        let module = dir.join("module");
        std::fs::create_dir_all(&module)?;
        // The module itself: the top-level *.tf files (no examples, tests or local state).
        let source = crate::project_root().join("terraform");
        for entry in
            std::fs::read_dir(&source).with_context(|| format!("reading {}", source.display()))?
        {
            let entry = entry?;
            let name = entry.file_name();
            if entry.file_type()?.is_file() && name.to_string_lossy().ends_with(".tf") {
                std::fs::copy(entry.path(), module.join(&name))?;
            }
        }
        let root = dir.join("e2e");
        std::fs::create_dir_all(&root)?;
        let mut env = aws_env.to_vec();
        env.extend([
            ("TF_IN_AUTOMATION".to_string(), "1".to_string()),
            ("TF_INPUT".into(), "0".into()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            (
                "TF_DATA_DIR".into(),
                root.join(".terraform").display().to_string(),
            ),
        ]);
        if Path::new(PROVIDER_MIRROR)
            .join("registry.terraform.io")
            .is_dir()
        {
            let config = dir.join("terraformrc");
            std::fs::write(
                &config,
                format!(
                    "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{PROVIDER_MIRROR}\"\n    include = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n}}\n"
                ),
            )?;
            env.push(("TF_CLI_CONFIG_FILE".into(), config.display().to_string()));
        }
        Ok(Self {
            binary,
            root,
            env,
            applied: false,
            destroy_on_drop,
        })
    }

    /// Writes `main.tf.json`.
    pub fn write_root(&self, settings: &TerraformSettings<'_>) -> anyhow::Result<()> {
        let mut provider = serde_json::json!({ "region": settings.region });
        if let Some(endpoint) = settings.endpoint {
            let services = ["lambda", "iam", "s3", "events", "logs", "ecr", "sts"];
            provider["access_key"] = "test".into();
            provider["secret_key"] = "test".into();
            if let (Ok(key), Ok(secret)) = (
                std::env::var("AWS_ACCESS_KEY_ID"),
                std::env::var("AWS_SECRET_ACCESS_KEY"),
            ) {
                provider["access_key"] = key.into();
                provider["secret_key"] = secret.into();
            }
            provider["skip_credentials_validation"] = true.into();
            provider["skip_metadata_api_check"] = true.into();
            provider["skip_region_validation"] = true.into();
            provider["s3_use_path_style"] = true.into();
            provider["endpoints"] = serde_json::Value::Array(vec![
                services
                    .iter()
                    .map(|s| (s.to_string(), serde_json::Value::from(endpoint)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            ]);
        }
        let mut modules = serde_json::Map::new();
        let mut outputs = serde_json::Map::new();
        for &arch in settings.arches {
            let name = module_name(arch);
            let inputs = settings
                .assets
                .get(arch.lambda_name())
                .with_context(|| format!("publish gave no inputs for {arch}"))?;
            let field = |key: &str| -> anyhow::Result<serde_json::Value> {
                inputs
                    .get(key)
                    .cloned()
                    .with_context(|| format!("publish output for {arch} lacks {key}"))
            };
            modules.insert(
                name.to_string(),
                serde_json::json!({
                    "source": "../module",
                    "resource_prefix": format!("{}-{}", settings.prefix, name.replace('_', "-")),
                    "deployment_assets_bucket": field("deployment_assets_bucket")?,
                    "ecr_image_filter_lambda_asset_path": field("ecr_image_filter_lambda_asset_path")?,
                    "soci_index_generator_lambda_asset_path": field("soci_index_generator_lambda_asset_path")?,
                    "ecr_image_filter_lambda_source_code_hash": field("ecr_image_filter_lambda_source_code_hash")?,
                    "soci_index_generator_lambda_source_code_hash": field("soci_index_generator_lambda_source_code_hash")?,
                    "architecture": arch.lambda_name(),
                    "soci_repository_image_tag_filters": settings.filters,
                    "min_layer_size": settings.min_layer_size,
                    "span_size": settings.span_size,
                    "rust_log": "info",
                }),
            );
            outputs.insert(
                name.to_string(),
                serde_json::json!({ "value": {
                    "filter_name": format!("${{module.{name}.ecr_image_filter_lambda_function_name}}"),
                    "filter_arn": format!("${{module.{name}.ecr_image_filter_lambda_function_arn}}"),
                    "generator_name": format!("${{module.{name}.soci_index_generator_lambda_function_name}}"),
                    "generator_arn": format!("${{module.{name}.soci_index_generator_lambda_function_arn}}"),
                    "rule_name": format!("${{module.{name}.event_rule_name}}"),
                }}),
            );
        }
        let root = serde_json::json!({
            "terraform": { "required_providers": { "aws": { "source": "hashicorp/aws", "version": ">= 5.46, < 7" } } },
            "provider": { "aws": provider },
            "module": modules,
            "output": outputs,
        });
        std::fs::write(
            self.root.join("main.tf.json"),
            serde_json::to_vec_pretty(&root)?,
        )?;
        Ok(())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg(format!("-chdir={}", self.root.display()))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        command
    }

    fn run_quiet(&self, args: &[&str], what: &str) -> anyhow::Result<String> {
        let output = self
            .command(args)
            .output()
            .with_context(|| format!("running terraform {what}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "terraform {what} failed ({}):\n{}\n{}",
                output.status,
                stdout
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n"),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(stdout)
    }

    /// init + apply; returns the deployments by architecture.
    pub fn apply(&mut self, arches: &[Arch]) -> anyhow::Result<BTreeMap<Arch, Deployment>> {
        self.run_quiet(&["init", "-no-color"], "init")?;
        self.applied = true; // from here on, a partial apply needs a destroy too
        let out = self.run_quiet(&["apply", "-auto-approve", "-no-color"], "apply")?;
        if let Some(summary) = out.lines().find(|l| l.starts_with("Apply complete!")) {
            println!("terraform: {summary}");
        }
        let json = self.run_quiet(&["output", "-json", "-no-color"], "output")?;
        let outputs: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&json).context("parsing terraform output -json")?;
        arches
            .iter()
            .map(|&arch| {
                let value = outputs
                    .get(module_name(arch))
                    .and_then(|o| o.get("value"))
                    .with_context(|| format!("terraform output has no `{}`", module_name(arch)))?;
                let deployment: Deployment =
                    serde_json::from_value(value.clone()).context("parsing the module outputs")?;
                Ok((arch, deployment))
            })
            .collect()
    }
}

impl Drop for Terraform {
    fn drop(&mut self) {
        if self.applied && self.destroy_on_drop {
            eprintln!("e2e: terraform destroy");
            match self
                .command(&["destroy", "-auto-approve", "-no-color"])
                .stdout(Stdio::null())
                .status()
            {
                Ok(status) if status.success() => {}
                other => eprintln!(
                    "e2e: WARNING: terraform destroy failed ({other:?}); state is in {}",
                    self.root.display()
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Lambda functions as Terraform configured them, and their processes
// ---------------------------------------------------------------------------------------------

/// `GetFunctionConfiguration`, the parts the run needs.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    pub name: String,
    pub arn: String,
    pub env: BTreeMap<String, String>,
    pub timeout: u64,
    pub memory: i32,
    pub handler: String,
    pub runtime: String,
    pub architectures: Vec<String>,
    pub code_sha256: String,
}

pub async fn function_config(
    client: &aws_sdk_lambda::Client,
    name: &str,
) -> anyhow::Result<FunctionConfig> {
    let out = client
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "GetFunctionConfiguration {name}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(FunctionConfig {
        name: name.to_string(),
        arn: out.function_arn().unwrap_or_default().to_string(),
        env: out
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        timeout: out.timeout().map_or(3, |t| u64::try_from(t).unwrap_or(3)),
        memory: out.memory_size().unwrap_or(128),
        handler: out.handler().unwrap_or_default().to_string(),
        runtime: out
            .runtime()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        architectures: out
            .architectures()
            .iter()
            .map(|a| a.as_str().to_string())
            .collect(),
        code_sha256: out.code_sha256().unwrap_or_default().to_string(),
    })
}

/// A packaged `bootstrap` running against the emulator; killed by pid on drop.
pub struct LambdaProcess {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

/// How to start a bootstrap for an architecture (qemu for arm64 on another host).
pub fn launcher(arch: Arch) -> anyhow::Result<Option<(PathBuf, Vec<String>)>> {
    let host_is_arm = std::env::consts::ARCH == "aarch64";
    match arch {
        Arch::X86_64 if !host_is_arm => Ok(None),
        Arch::Arm64 if host_is_arm => Ok(None),
        Arch::Arm64 => {
            let qemu = test_support::find_binary("qemu-aarch64-static")
                .map_err(|e| anyhow::anyhow!("{e} (Debian: apt-get install qemu-user-static)"))?;
            let sysroot = Path::new("/usr/aarch64-linux-gnu");
            ensure!(
                sysroot.join("lib/ld-linux-aarch64.so.1").is_file()
                    && sysroot.join("lib/libgcc_s.so.1").is_file(),
                "the arm64 bootstrap is a glibc binary: qemu needs an aarch64 glibc and libgcc in {} \
                 (Debian: apt-get install libc6-arm64-cross libgcc-s1-arm64-cross)",
                sysroot.display()
            );
            Ok(Some((
                qemu,
                vec!["-L".into(), sysroot.display().to_string()],
            )))
        }
        Arch::X86_64 => {
            let qemu = test_support::find_binary("qemu-x86_64-static")
                .map_err(|e| anyhow::anyhow!("{e} (Debian: apt-get install qemu-user-static)"))?;
            Ok(Some((
                qemu,
                vec!["-L".into(), "/usr/x86_64-linux-gnu".into()],
            )))
        }
    }
}

impl LambdaProcess {
    pub fn start(
        name: &str,
        bootstrap: &Path,
        launcher: Option<&(PathBuf, Vec<String>)>,
        env: &[(String, String)],
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let task_root = bootstrap.parent().unwrap_or(Path::new("/"));
        let mut command = match launcher {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bootstrap);
                c
            }
            None => Command::new(bootstrap),
        };
        let child = test_support::stop_with_parent(&mut command)
            .current_dir(task_root)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {} ({})", bootstrap.display(), name))?;
        println!("started {name} (pid {})", child.id());
        Ok(Self {
            name: name.to_string(),
            log,
            child,
        })
    }

    /// An error when the process has exited (a Lambda runtime never exits by itself).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); its log:\n{}",
                self.name,
                tail(&self.log, 30)
            );
        }
        Ok(())
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = self.child.kill();
        let _ = self.child.wait();
        println!("stopped {} (pid {pid})", self.name);
    }
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
