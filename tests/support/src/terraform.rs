//! The `terraform` CLI as harnesses run it: in automation mode, on a copy of a module (so
//! nothing Terraform writes lands in the repository), installing `hashicorp/aws` from the
//! provider mirror in [`PROVIDER_MIRROR`] when there is one (no registry access needed), and
//! with the AWS services pointed at an emulator when asked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::{Context, Result};

/// Where CI images keep a filesystem mirror of the AWS provider.
pub const PROVIDER_MIRROR: &str = "/opt/tf-plugins";

/// The AWS services the module talks to: each gets the emulator's endpoint.
pub const AWS_SERVICES: [&str; 7] = ["lambda", "iam", "s3", "events", "logs", "ecr", "sts"];

/// A `terraform` binary and the environment every command runs with.
pub struct Terraform {
    binary: PathBuf,
    env: Vec<(String, String)>,
    mirror: bool,
}

impl Terraform {
    /// Finds `terraform`; when the provider mirror exists, writes a CLI configuration using it
    /// into `config_dir`.
    pub fn new(config_dir: &Path) -> Result<Self> {
        let binary = crate::find_binary("terraform").context(
            "install Terraform >= 1.7 (https://developer.hashicorp.com/terraform/install, \
             or the hashicorp apt repository: apt-get install terraform)",
        )?;
        let mut env: Vec<(String, String)> = [
            ("TF_IN_AUTOMATION", "1"),
            ("TF_INPUT", "0"),
            ("CHECKPOINT_DISABLE", "1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        let mirror = Path::new(PROVIDER_MIRROR)
            .join("registry.terraform.io")
            .is_dir();
        if mirror {
            // One provider cache for every configuration of the run: each `init` links the
            // provider from it instead of copying the (several hundred MB) binary again.
            let cache = config_dir.join("plugin-cache");
            std::fs::create_dir_all(&cache)?;
            let config = config_dir.join("terraformrc");
            std::fs::write(&config, cli_config(PROVIDER_MIRROR, &cache))
                .with_context(|| format!("writing {}", config.display()))?;
            env.push(("TF_CLI_CONFIG_FILE".into(), config.display().to_string()));
        }
        Ok(Self {
            binary,
            env,
            mirror,
        })
    }

    /// Whether `hashicorp/aws` comes from [`PROVIDER_MIRROR`] (else from the registry).
    pub fn uses_mirror(&self) -> bool {
        self.mirror
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Adds variables to the environment of every command.
    pub fn with_env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// `terraform version`: the version string and its (major, minor).
    pub fn version(&self) -> Result<(String, (u32, u32))> {
        let output = self.output(Path::new("."), &["version", "-json"])?;
        let value: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("parsing terraform version -json")?;
        let version = value["terraform_version"]
            .as_str()
            .unwrap_or("0.0.0")
            .to_string();
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let major_minor = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        Ok((version, major_minor))
    }

    /// `terraform -chdir=<dir> <args>` with the environment, stdin closed.
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg(format!("-chdir={}", dir.display()))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        command
    }

    fn echo(&self, dir: &Path, args: &[&str]) {
        eprintln!(
            "$ {} -chdir={} {}",
            self.binary.display(),
            dir.display(),
            args.join(" ")
        );
    }

    /// Runs a command with its output on the console; an error when it fails.
    pub fn run(&self, dir: &Path, args: &[&str]) -> Result<()> {
        self.echo(dir, args);
        let status = self
            .command(dir, args)
            .status()
            .with_context(|| format!("running terraform {}", args.join(" ")))?;
        if !status.success() {
            return Err(format!("terraform {} failed ({status})", args.join(" ")).into());
        }
        Ok(())
    }

    /// Runs a command, its output captured whatever its exit status.
    pub fn output(&self, dir: &Path, args: &[&str]) -> Result<Output> {
        self.command(dir, args)
            .output()
            .with_context(|| format!("running terraform {}", args.join(" ")))
    }

    /// Runs a command quietly and returns its stdout; when it fails, the error holds the last
    /// 40 lines of stdout and all of stderr.
    pub fn run_quiet(&self, dir: &Path, args: &[&str]) -> Result<String> {
        let what = args.first().copied().unwrap_or("");
        let output = self.output(dir, args)?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            let lines: Vec<&str> = stdout.lines().collect();
            return Err(format!(
                "terraform {what} failed ({}):\n{}\n{}",
                output.status,
                lines[lines.len().saturating_sub(40)..].join("\n"),
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(stdout)
    }
}

/// A CLI configuration installing `hashicorp/aws` from the filesystem mirror at `mirror` and
/// every other provider from the registry, through the plugin cache at `cache`.
pub fn cli_config(mirror: &str, cache: &Path) -> String {
    format!(
        "plugin_cache_dir = \"{}\"\n\
         provider_installation {{\n  \
           filesystem_mirror {{\n    \
             path    = \"{mirror}\"\n    \
             include = [\"registry.terraform.io/hashicorp/aws\"]\n  \
           }}\n  \
           direct {{\n    \
             exclude = [\"registry.terraform.io/hashicorp/aws\"]\n  \
           }}\n\
         }}\n",
        cache.display()
    )
}

/// Copies a module tree, leaving out anything a local `terraform` run may have left behind.
pub fn copy_module(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let local_leftover = name == ".terraform"
            || name == ".terraform.lock.hcl"
            || name.contains(".tfstate")
            || name.ends_with(".tfvars")
            || name.ends_with(".tfvars.json")
            || name.ends_with(".tfplan")
            || name.ends_with("_override.tf")
            || name == "override.tf";
        if local_leftover {
            continue;
        }
        let target = to.join(&*name);
        if entry.file_type()?.is_dir() {
            copy_module(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// An override file (`*_override.tf`) for a configuration's `aws` provider block, merged in by
/// Terraform's override-file rules: fake credentials and every service at `endpoint`.
pub fn provider_override(endpoint: &str) -> String {
    let endpoints: String = AWS_SERVICES
        .iter()
        .map(|s| format!("    {s:<6} = \"{endpoint}\"\n"))
        .collect();
    format!(
        "# Generated by `cargo xtask terraform`: points the example at moto_server.\n\
         provider \"aws\" {{\n  \
           access_key                  = \"test\"\n  \
           secret_key                  = \"test\"\n  \
           skip_credentials_validation = true\n  \
           skip_metadata_api_check     = true\n  \
           skip_region_validation      = true\n  \
           s3_use_path_style           = true\n  \
           endpoints {{\n{endpoints}  }}\n\
         }}\n"
    )
}

/// The same settings as [`provider_override`] for a JSON configuration's `provider.aws`,
/// with the given credentials.
pub fn provider_json(
    region: &str,
    endpoint: &str,
    (access_key, secret_key): (&str, &str),
) -> serde_json::Value {
    let endpoints: serde_json::Map<String, serde_json::Value> = AWS_SERVICES
        .iter()
        .map(|s| (s.to_string(), endpoint.into()))
        .collect();
    serde_json::json!({
        "region": region,
        "access_key": access_key,
        "secret_key": secret_key,
        "skip_credentials_validation": true,
        "skip_metadata_api_check": true,
        "skip_region_validation": true,
        "s3_use_path_style": true,
        "endpoints": [endpoints],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_leaves_out_local_terraform_files() {
        let temp = crate::temp_dir("soci-copy-module").unwrap();
        let src = temp.path().join("src");
        std::fs::create_dir_all(src.join(".terraform/providers")).unwrap();
        std::fs::create_dir_all(src.join("examples/basic")).unwrap();
        for f in [
            "main.tf",
            ".terraform.lock.hcl",
            "terraform.tfstate",
            "examples/basic/main.tf",
            "examples/basic/x.tfvars",
        ] {
            std::fs::write(src.join(f), "").unwrap();
        }
        let dst = temp.path().join("dst");
        copy_module(&src, &dst).unwrap();
        assert!(dst.join("main.tf").is_file());
        assert!(dst.join("examples/basic/main.tf").is_file());
        for f in [
            ".terraform",
            ".terraform.lock.hcl",
            "terraform.tfstate",
            "examples/basic/x.tfvars",
        ] {
            assert!(!dst.join(f).exists(), "{f} was copied");
        }
    }

    #[test]
    fn cli_config_uses_the_mirror_through_one_cache() {
        let text = cli_config("/opt/tf-plugins", Path::new("/tmp/x/plugin-cache"));
        assert!(
            text.starts_with("plugin_cache_dir = \"/tmp/x/plugin-cache\"\n"),
            "{text}"
        );
        assert!(text.contains("path    = \"/opt/tf-plugins\""), "{text}");
    }

    #[test]
    fn provider_override_points_every_service_at_moto() {
        let text = provider_override("http://127.0.0.1:1");
        for service in ["lambda", "iam", "s3", "events", "logs", "ecr", "sts"] {
            assert!(
                text.contains(&format!("{service:<6} = \"http://127.0.0.1:1\"")),
                "{service} missing:\n{text}"
            );
        }
    }

    #[test]
    fn provider_json_points_every_service_at_the_endpoint() {
        let json = provider_json("eu-west-1", "http://127.0.0.1:1", ("a", "b"));
        assert_eq!(json["region"], "eu-west-1");
        assert_eq!(json["access_key"], "a");
        for service in AWS_SERVICES {
            assert_eq!(json["endpoints"][0][service], "http://127.0.0.1:1");
        }
    }
}
