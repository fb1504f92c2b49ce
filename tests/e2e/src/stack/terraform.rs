//! The Terraform root of the run: a copy of the module and a `main.tf.json` calling it once per
//! architecture, applied with `test_support::terraform`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use test_support::terraform::{Terraform as Cli, copy_module, provider_json};

use super::Arch;
use super::release::project_root;

/// The root and the CLI that applies it; `destroy` on drop when the stack outlives us (not our
/// own moto).
pub struct Terraform {
    cli: Cli,
    root: PathBuf,
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

/// The module inputs that come from `cargo xtask publish`.
const ASSET_INPUTS: [&str; 5] = [
    "deployment_assets_bucket",
    "ecr_image_filter_lambda_asset_path",
    "soci_index_generator_lambda_asset_path",
    "ecr_image_filter_lambda_source_code_hash",
    "soci_index_generator_lambda_source_code_hash",
];

impl Terraform {
    pub fn new(
        temp: &Path,
        aws_env: &[(String, String)],
        destroy_on_drop: bool,
    ) -> anyhow::Result<Self> {
        let dir = temp.join("terraform");
        copy_module(&project_root().join("terraform"), &dir.join("module"))
            .map_err(anyhow::Error::from)?;
        let root = dir.join("e2e");
        std::fs::create_dir_all(&root)?;
        let data_dir = root.join(".terraform").display().to_string();
        let cli = Cli::new(&dir)
            .map_err(anyhow::Error::from)?
            .with_env(aws_env.iter().cloned())
            .with_env([("TF_DATA_DIR", data_dir)]);
        Ok(Self {
            cli,
            root,
            applied: false,
            destroy_on_drop,
        })
    }

    /// Writes `main.tf.json`.
    pub fn write_root(&self, settings: &TerraformSettings<'_>) -> anyhow::Result<()> {
        let mut modules = serde_json::Map::new();
        let mut outputs = serde_json::Map::new();
        for &arch in settings.arches {
            let name = arch.lambda_name();
            modules.insert(name.to_string(), module_call(settings, arch)?);
            outputs.insert(name.to_string(), module_outputs(name));
        }
        let root = serde_json::json!({
            "terraform": { "required_providers": { "aws": { "source": "hashicorp/aws", "version": ">= 5.46, < 7" } } },
            "provider": { "aws": provider(settings) },
            "module": modules,
            "output": outputs,
        });
        std::fs::write(
            self.root.join("main.tf.json"),
            serde_json::to_vec_pretty(&root)?,
        )?;
        Ok(())
    }

    /// init + apply; returns the deployments by architecture.
    pub fn apply(&mut self, arches: &[Arch]) -> anyhow::Result<BTreeMap<Arch, Deployment>> {
        self.run_quiet(&["init", "-no-color"])?;
        self.applied = true; // from here on, a partial apply needs a destroy too
        let out = self.run_quiet(&["apply", "-auto-approve", "-no-color"])?;
        if let Some(summary) = out.lines().find(|l| l.starts_with("Apply complete!")) {
            println!("terraform: {summary}");
        }
        let json = self.run_quiet(&["output", "-json", "-no-color"])?;
        let outputs: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&json).context("parsing terraform output -json")?;
        arches
            .iter()
            .map(|&arch| {
                let name = arch.lambda_name();
                let value = outputs
                    .get(name)
                    .and_then(|o| o.get("value"))
                    .with_context(|| format!("terraform output has no `{name}`"))?;
                let deployment: Deployment =
                    serde_json::from_value(value.clone()).context("parsing the module outputs")?;
                Ok((arch, deployment))
            })
            .collect()
    }

    fn run_quiet(&self, args: &[&str]) -> anyhow::Result<String> {
        self.cli
            .run_quiet(&self.root, args)
            .map_err(anyhow::Error::from)
    }
}

impl Drop for Terraform {
    fn drop(&mut self) {
        if self.applied && self.destroy_on_drop {
            eprintln!("e2e: terraform destroy");
            match self
                .cli
                .command(&self.root, &["destroy", "-auto-approve", "-no-color"])
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

/// The `aws` provider: the region, and with an endpoint, every service there with the caller's
/// credentials (or fake ones).
fn provider(settings: &TerraformSettings<'_>) -> serde_json::Value {
    let Some(endpoint) = settings.endpoint else {
        return serde_json::json!({ "region": settings.region });
    };
    let own = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    );
    let credentials = match &own {
        (Ok(key), Ok(secret)) => (key.as_str(), secret.as_str()),
        _ => ("test", "test"),
    };
    provider_json(settings.region, endpoint, credentials)
}

/// The module block for one architecture.
fn module_call(settings: &TerraformSettings<'_>, arch: Arch) -> anyhow::Result<serde_json::Value> {
    let inputs = settings
        .assets
        .get(arch.lambda_name())
        .with_context(|| format!("publish gave no inputs for {arch}"))?;
    let mut call = serde_json::json!({
        "source": "../module",
        "resource_prefix": format!("{}-{}", settings.prefix, arch.tag()),
        "architecture": arch.lambda_name(),
        "soci_repository_image_tag_filters": settings.filters,
        "min_layer_size": settings.min_layer_size,
        "span_size": settings.span_size,
        "rust_log": "info",
        // Every event shape the rule can take (scenarios/image_sources.rs).
        "index_pull_through_cache_images": true,
        "index_replicated_images": true,
        "index_tag_cleanup": true,
        // The zTOC cache: its repository created by the module, its name in both environments
        // (scenarios/image_sources.rs checks a hit).
        "ztoc_cache": true,
    });
    for key in ASSET_INPUTS {
        call[key] = inputs
            .get(key)
            .cloned()
            .with_context(|| format!("publish output for {arch} lacks {key}"))?;
    }
    Ok(call)
}

/// The root output exposing what the harness needs from module `name`.
fn module_outputs(name: &str) -> serde_json::Value {
    serde_json::json!({ "value": {
        "filter_name": format!("${{module.{name}.ecr_image_filter_lambda_function_name}}"),
        "filter_arn": format!("${{module.{name}.ecr_image_filter_lambda_function_arn}}"),
        "generator_name": format!("${{module.{name}.soci_index_generator_lambda_function_name}}"),
        "generator_arn": format!("${{module.{name}.soci_index_generator_lambda_function_arn}}"),
        "rule_name": format!("${{module.{name}.event_rule_name}}"),
    }})
}
