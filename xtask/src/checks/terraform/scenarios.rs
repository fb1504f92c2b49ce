//! The two moto scenarios after the `examples/basic` round trip, on the same moto server:
//!
//! - **copy-lambda-code**: `cargo xtask publish --release` into a release bucket named as the
//!   module expects, then `examples/copy-lambda-code` (the port's README usage) applied: the
//!   functions must run the released zips (Lambda's `CodeSha256` = the manifest's hash = the
//!   hash of the copy in the user's bucket).
//! - **migration**: the Terraform port's resources (`port/main.tf`: the port's addresses and
//!   names) applied, then the same module block pointed at `terraform/` and planned: no function,
//!   log group, rule or role may be destroyed (the `moved` blocks in `migration.tf`).

use std::path::Path;

use anyhow::{Context, bail};
use test_support::Moto;
use test_support::terraform::{Terraform, provider_override};
use xshell::cmd;

use super::moto::Assets;
use super::{Harness, step};

/// The port-shaped configuration the migration starts from.
const PORT_MAIN_TF: &str = include_str!("port/main.tf");

/// Resource types whose destruction a switch must avoid: they carry names that the replacement
/// would collide with, or (roles) the functions would run without permissions in between.
const KEPT_TYPES: [&str; 6] = [
    "aws_lambda_function",
    "aws_cloudwatch_log_group",
    "aws_cloudwatch_event_rule",
    "aws_iam_role",
    "aws_cloudwatch_event_target",
    "aws_lambda_permission",
];

/// `python3 check_code.py ENDPOINT REGION RELEASE_BUCKET MANIFEST_KEY ASSETS_BUCKET ARCH PREFIX`:
/// each function's CodeSha256 equals the manifest's hash and the hash of its copy.
const CHECK_CODE_PY: &str = r##"
import base64, hashlib, json, sys
import boto3

endpoint, region, release_bucket, manifest_key, assets_bucket, arch, prefix = sys.argv[1:8]
session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=region)
s3 = session.client("s3", endpoint_url=endpoint)
lam = session.client("lambda", endpoint_url=endpoint)
manifest = json.loads(s3.get_object(Bucket=release_bucket, Key=manifest_key)["Body"].read())
names = {"ecr-image-filter": "ECRImageActionEventFilter", "soci-index-generator": "SociIndexGenerator"}
failures = 0
for entry in manifest["artifacts"]:
    if entry["architecture"] != arch:
        continue
    name = f"{prefix}-{names[entry['function']]}"
    fn = lam.get_function(FunctionName=name)
    code = fn["Configuration"]["CodeSha256"]
    key = fn["Code"].get("Location", "")
    copied = None
    for obj in s3.list_objects_v2(Bucket=assets_bucket).get("Contents", []):
        if obj["Key"].endswith(f"/{entry['function']}-{arch}.zip"):
            copied = base64.b64encode(hashlib.sha256(s3.get_object(Bucket=assets_bucket, Key=obj["Key"])["Body"].read()).digest()).decode()
    ok = code == entry["sha256_base64"] == copied
    print(f"  {'ok  ' if ok else 'FAIL'} {name}: CodeSha256 {code}, release manifest {entry['sha256_base64']}, copy {copied}")
    failures += 0 if ok else 1
if failures or not any(e["architecture"] == arch for e in manifest["artifacts"]):
    sys.exit(1)
"##;

impl Harness {
    /// publish --release, then examples/copy-lambda-code applied; the functions run the release.
    pub(super) fn copy_lambda_code(&self, moto: &Moto, python: &Path) -> anyhow::Result<String> {
        step("copy-lambda-code: cargo xtask publish --release into the release bucket");
        let version = self.module_release_version()?;
        let release_bucket = format!("soci-lambda-releases-{}", Moto::REGION);
        let assets_bucket = "my-soci-index-assets-bucket";
        let stub_py = self.temp.join("stub_assets.py");
        for bucket in [release_bucket.as_str(), assets_bucket] {
            let endpoint = &moto.endpoint;
            cmd!(
                self.sh,
                "{python} {stub_py} {endpoint} {bucket} --bucket-only"
            )
            .envs(moto.env())
            .run()?;
        }
        super::publish(
            (&self.xtask, &self.root),
            moto,
            &release_bucket,
            &["--release", &version, "--arch", "x86-64"],
        )?;

        step("copy-lambda-code: terraform apply of examples/copy-lambda-code against moto");
        let dir = self.work.join("examples/copy-lambda-code");
        std::fs::write(
            dir.join("moto_override.tf"),
            provider_override(&moto.endpoint),
        )?;
        let vars = serde_json::json!({
            "region": Moto::REGION,
            "deployment_assets_bucket": assets_bucket,
        });
        std::fs::write(dir.join("harness.auto.tfvars.json"), vars.to_string())?;
        self.terraform
            .run_quiet(&dir, &["init", "-no-color"])
            .map_err(anyhow::Error::from)?;
        self.terraform(&dir, &["apply", "-auto-approve", "-no-color"])
            .context("terraform apply of examples/copy-lambda-code failed")?;

        step("copy-lambda-code: the functions run the released zips");
        let script = self.temp.join("check_code.py");
        std::fs::write(&script, CHECK_CODE_PY)?;
        let (endpoint, region) = (&moto.endpoint, Moto::REGION);
        let manifest_key = format!("soci-index-builder/{version}/manifest.json");
        cmd!(
            self.sh,
            "{python} {script} {endpoint} {region} {release_bucket} {manifest_key} {assets_bucket} x86_64 my-soci-indexer"
        )
        .envs(moto.env())
        .run()
        .context("the deployed functions do not run the released zips")?;
        Ok(format!(
            "copy-lambda-code on moto: release {version} published, copied and deployed; both functions' CodeSha256 = the release manifest's = the copy's"
        ))
    }

    /// The version `modules/copy-lambda-code` copies by default (its `release_version` default).
    fn module_release_version(&self) -> anyhow::Result<String> {
        let text =
            std::fs::read_to_string(self.work.join("modules/copy-lambda-code/variables.tf"))?;
        release_version_default(&text)
            .context("modules/copy-lambda-code/variables.tf has no release_version default")
    }
}

/// The port's configuration applied, the module switched to `work` (the copy of terraform/),
/// planned: nothing kept is destroyed. Free of the harness's shell, so it can run on its own
/// thread next to the copy-lambda-code scenario; its Terraform output is captured (printed on
/// failure), so the two do not interleave.
pub(super) fn migration(
    terraform: &Terraform,
    temp: &Path,
    work: &Path,
    moto: &Moto,
    assets: &Assets,
) -> anyhow::Result<String> {
    step("migration: apply the Terraform port's resources (its addresses and names)");
    let dir = temp.join("migration");
    std::fs::create_dir_all(dir.join("port"))?;
    std::fs::write(dir.join("port/main.tf"), PORT_MAIN_TF)?;
    std::fs::write(
        dir.join("moto_override.tf"),
        provider_override(&moto.endpoint),
    )?;
    let write_root = |source: &str| {
        std::fs::write(
            dir.join("main.tf"),
            migration_root(source, assets, Moto::REGION),
        )
    };
    let run = |args: &[&str]| terraform.run_quiet(&dir, args).map_err(anyhow::Error::from);
    write_root("./port")?;
    run(&["init", "-no-color"])?;
    run(&["apply", "-auto-approve", "-no-color"])
        .context("terraform apply of the port's configuration failed")?;

    step("migration: switch source to terraform/ and plan");
    write_root(&pathdiff(work, &dir))?;
    run(&["init", "-no-color"])?;
    let plan = dir.join("switch.tfplan");
    run(&["plan", "-no-color", &format!("-out={}", plan.display())])?;
    let json = run(&["show", "-json", "-no-color", &plan.display().to_string()])?;
    let summary = check_switch_plan(&serde_json::from_str(&json)?)?;
    println!("migration: {summary}");
    Ok(format!("migration from the port on moto: {summary}"))
}

/// The root configuration of the migration scenario: one module block, as a port user has it.
fn migration_root(source: &str, assets: &Assets, region: &str) -> String {
    format!(
        "provider \"aws\" {{\n  region = \"{region}\"\n}}\n\n\
         module \"soci_index_builder\" {{\n  \
           source                                 = \"{source}\"\n  \
           deployment_assets_bucket               = \"{}\"\n  \
           ecr_image_filter_lambda_asset_path     = \"{}\"\n  \
           soci_index_generator_lambda_asset_path = \"{}\"\n  \
           region                                 = \"{region}\"\n  \
           account_id                             = \"{}\"\n  \
           resource_prefix                        = \"port-soci-indexer\"\n  \
           soci_repository_image_tag_filters      = [\"repo1:tag1\", \"repo2:*\"]\n\
         }}\n",
        assets.deployment_assets_bucket,
        assets.ecr_image_filter_lambda_asset_path,
        assets.soci_index_generator_lambda_asset_path,
        Moto::ACCOUNT_ID,
    )
}

/// `to` relative to `from` when both sit in the same parent (the harness's temp directory).
fn pathdiff(to: &Path, from: &Path) -> String {
    match (to.parent(), from.parent(), to.file_name()) {
        (Some(a), Some(b), Some(name)) if a == b => format!("../{}", name.to_string_lossy()),
        _ => to.display().to_string(),
    }
}

/// `default = "..."` of `variable "release_version"`.
fn release_version_default(variables_tf: &str) -> Option<String> {
    let block = variables_tf.split("variable \"release_version\"").nth(1)?;
    let block = &block[..block.find("\n}").unwrap_or(block.len())];
    let line = block
        .lines()
        .find(|l| l.trim_start().starts_with("default"))?;
    Some(line.split('"').nth(1)?.to_string())
}

/// Checks `terraform show -json` of the switch plan: no resource of a kept type is deleted
/// (nor replaced), and every kept resource was moved from the port's address.
fn check_switch_plan(plan: &serde_json::Value) -> anyhow::Result<String> {
    let changes = plan["resource_changes"]
        .as_array()
        .context("the plan has no resource_changes")?;
    let (mut destroyed, mut moved, mut removed) = (Vec::new(), 0, Vec::new());
    for change in changes {
        let address = change["address"].as_str().unwrap_or("?");
        let kind = change["type"].as_str().unwrap_or("?");
        let deletes = change["change"]["actions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "delete"));
        if KEPT_TYPES.contains(&kind) {
            if deletes {
                destroyed.push(address.to_string());
            }
            if change["previous_address"].is_string() {
                moved += 1;
            }
        } else if deletes {
            removed.push(address.to_string());
        }
    }
    if !destroyed.is_empty() {
        bail!(
            "switching from the port destroys {} resource(s) that must be kept: {}",
            destroyed.len(),
            destroyed.join(", ")
        );
    }
    // Two functions, two roles, two log groups, the rule, its target and the permission.
    if moved < 9 {
        bail!("only {moved} of the port's 9 kept resources were moved (moved blocks missing?)");
    }
    Ok(format!(
        "{moved} resources moved, none of {KEPT_TYPES:?} destroyed; destroyed without counterpart: {}",
        if removed.is_empty() {
            "none".to_string()
        } else {
            removed.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(
        address: &str,
        kind: &str,
        actions: &[&str],
        moved_from: Option<&str>,
    ) -> serde_json::Value {
        let mut c =
            serde_json::json!({"address": address, "type": kind, "change": {"actions": actions}});
        if let Some(from) = moved_from {
            c["previous_address"] = from.into();
        }
        c
    }

    fn kept(actions: &[&str]) -> Vec<serde_json::Value> {
        (0..9)
            .map(|i| {
                change(
                    &format!("module.m.aws_iam_role.r{i}"),
                    "aws_iam_role",
                    actions,
                    Some("old"),
                )
            })
            .collect()
    }

    #[test]
    fn switch_plan_in_place_passes() {
        let mut changes = kept(&["update"]);
        changes.push(change(
            "module.m.aws_iam_policy.p",
            "aws_iam_policy",
            &["delete"],
            None,
        ));
        let summary = check_switch_plan(&serde_json::json!({"resource_changes": changes})).unwrap();
        assert!(summary.contains("9 resources moved"), "{summary}");
        assert!(summary.contains("module.m.aws_iam_policy.p"), "{summary}");
    }

    #[test]
    fn switch_plan_that_replaces_a_function_fails() {
        let mut changes = kept(&["no-op"]);
        changes.push(change(
            "module.m.aws_lambda_function.filter",
            "aws_lambda_function",
            &["delete", "create"],
            None,
        ));
        let err = check_switch_plan(&serde_json::json!({"resource_changes": changes})).unwrap_err();
        assert!(
            err.to_string().contains("aws_lambda_function.filter"),
            "{err}"
        );
    }

    #[test]
    fn switch_plan_without_moves_fails() {
        let changes: Vec<_> = (0..9)
            .map(|i| change(&format!("a{i}"), "aws_iam_role", &["create"], None))
            .collect();
        let err = check_switch_plan(&serde_json::json!({"resource_changes": changes})).unwrap_err();
        assert!(err.to_string().contains("only 0"), "{err}");
    }

    #[test]
    fn release_version_is_read_from_the_module() {
        let text = "variable \"x\" {\n  default = \"no\"\n}\nvariable \"release_version\" {\n  type    = string\n  default = \"1.2.3\"\n}\n";
        assert_eq!(release_version_default(text).as_deref(), Some("1.2.3"));
    }

    /// The copy module's default release is the workspace's version: a module release copies
    /// the zips built from the same sources.
    #[test]
    fn copy_module_default_release_is_the_workspace_version() {
        let path = crate::project_root().join("terraform/modules/copy-lambda-code/variables.tf");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            release_version_default(&text).as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
    }

    /// Every resource of the port's configuration either has a `moved` block in migration.tf,
    /// or is one the README says the switch destroys.
    #[test]
    fn every_port_address_is_moved_or_documented() {
        let migration =
            std::fs::read_to_string(crate::project_root().join("terraform/migration.tf")).unwrap();
        let moved_from: Vec<&str> = migration
            .lines()
            .filter_map(|l| l.trim().strip_prefix("from = "))
            .collect();
        let without_counterpart = ["aws_iam_policy", "aws_iam_role_policy_attachment"];
        for line in PORT_MAIN_TF
            .lines()
            .filter(|l| l.starts_with("resource \""))
        {
            let mut parts = line.split('"');
            let (kind, name) = (parts.nth(1).unwrap(), parts.nth(1).unwrap());
            let address = format!("{kind}.{name}");
            assert!(
                moved_from.contains(&address.as_str()) || without_counterpart.contains(&kind),
                "{address} of the port has no moved block"
            );
            if KEPT_TYPES.contains(&kind) {
                assert!(
                    moved_from.contains(&address.as_str()),
                    "{address} must be moved"
                );
            }
        }
        assert_eq!(moved_from.len(), 9, "{moved_from:?}");
    }
}
