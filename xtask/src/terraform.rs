//! `cargo xtask terraform`: proves the Terraform module in `terraform/` with Terraform itself.
//!
//! 1. `terraform fmt -check -recursive terraform`
//! 2. `terraform init` + `terraform validate` of the module, `examples/basic`, `examples/complete`
//! 3. `terraform test` (mocked AWS provider, `terraform/tests/*.tftest.hcl`)
//! 4. `checkov` over `terraform/`: no failed check (skips are inline, each with its reason)
//! 5. `examples/basic` against a moto server of our own: apply, plan again (must be empty,
//!    `-detailed-exitcode` 0), read everything back through the AWS API (boto3), destroy, check
//!    that it is gone. The zips come from `cargo xtask publish --json`.
//!
//! Everything Terraform writes (`.terraform/`, lock files, state, plans) goes to a temporary copy
//! of `terraform/`, never into the repository. Missing tools are errors that say how to install
//! them, never skips. Where `/opt/tf-plugins` holds a provider mirror, Terraform installs
//! `hashicorp/aws` from it (no registry access needed); elsewhere from the registry.

#[path = "terraform_moto.rs"]
mod moto;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use moto::{Assets, MotoServer};

const PROVIDER_MIRROR: &str = "/opt/tf-plugins";
const ASSETS_BUCKET: &str = "soci-terraform-harness-assets";

#[derive(clap::Args)]
pub struct Args {
    /// Skip the apply / plan / destroy round trip against moto.
    #[arg(long)]
    skip_apply: bool,
    /// Where the Lambda zips for the moto round trip come from: `publish` runs `cargo xtask
    /// publish --json` and fails if it fails (the default, as in CI: the apply must deploy the
    /// real zips); `stub` uploads two tiny zips; `auto` tries publish and falls back to stubs
    /// with a warning.
    #[arg(long, value_enum, default_value_t = AssetSource::Publish)]
    assets: AssetSource,
    /// Keep the temporary directory (module copy, state, plans, moto log) and print its path.
    #[arg(long)]
    keep_temp: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
enum AssetSource {
    Auto,
    Publish,
    Stub,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root = crate::project_root();
    let module_src = root.join("terraform");
    let sh = Shell::new()?;
    sh.change_dir(&root);

    let tools = Tools::find(&sh, !args.skip_apply)?;
    let temp = TempDir::new(args.keep_temp)?;
    let work = temp.path().join("terraform");
    copy_module(&module_src, &work)?;

    sh.set_var("TF_IN_AUTOMATION", "1");
    sh.set_var("TF_INPUT", "0");
    sh.set_var("CHECKPOINT_DISABLE", "1");
    if Path::new(PROVIDER_MIRROR)
        .join("registry.terraform.io")
        .is_dir()
    {
        let config = temp.path().join("terraformrc");
        std::fs::write(&config, cli_config(PROVIDER_MIRROR))?;
        sh.set_var("TF_CLI_CONFIG_FILE", &config);
        println!("terraform: hashicorp/aws from the mirror in {PROVIDER_MIRROR}");
    } else {
        println!("terraform: no mirror in {PROVIDER_MIRROR}, providers come from the registry");
    }

    let mut report = Vec::new();
    let terraform = &tools.terraform;
    step("start");

    step("terraform fmt -check -recursive terraform");
    cmd!(sh, "{terraform} fmt -check -recursive -diff {module_src}")
        .run()
        .context(
            "terraform fmt found unformatted files: run `terraform fmt -recursive terraform`",
        )?;
    report.push("fmt: clean".to_string());

    for dir in [".", "examples/basic", "examples/complete"] {
        step(&format!("terraform init + validate: {dir}"));
        let chdir = work.join(dir);
        cmd!(
            sh,
            "{terraform} -chdir={chdir} init -backend=false -no-color"
        )
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| format!("terraform init failed in terraform/{dir}"))?;
        cmd!(sh, "{terraform} -chdir={chdir} validate -no-color")
            .run()
            .with_context(|| format!("terraform validate failed in terraform/{dir}"))?;
    }
    report.push("init + validate: module, examples/basic, examples/complete".to_string());

    step("terraform test (mocked AWS provider)");
    let output = cmd!(sh, "{terraform} -chdir={work} test -no-color")
        .ignore_status()
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("Success!") || l.starts_with("Failure!"))
        .unwrap_or("no summary")
        .to_string();
    if !output.status.success() {
        bail!("terraform test failed: {summary}");
    }
    if !summary.starts_with("Success!")
        || summary.contains(" 0 passed")
        || summary.contains("skipped")
    {
        bail!("terraform test ran nothing useful ({summary})");
    }
    report.push(format!("terraform test: {summary}"));

    step("checkov -d terraform");
    report.push(format!(
        "checkov: {}",
        checkov(&sh, &tools.checkov, &module_src, temp.path())?
    ));

    if args.skip_apply {
        report.push("apply/plan/destroy against moto: NOT RUN (--skip-apply)".to_string());
    } else {
        report.push(moto_round_trip(
            &sh,
            &tools,
            &root,
            &work,
            temp.path(),
            args.assets,
        )?);
    }

    step("cargo xtask terraform: all steps passed");
    for line in &report {
        println!("  {line}");
    }
    if args.keep_temp {
        println!("  kept {}", temp.path().display());
    }
    Ok(())
}

fn step(what: &str) {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs();
    println!("\n== [{elapsed:>4} s] {what} ==");
}

/// The tools this needs, found up front so a missing one fails before any work is done.
struct Tools {
    terraform: PathBuf,
    checkov: PathBuf,
    moto_server: Option<PathBuf>,
    python: Option<PathBuf>,
}

impl Tools {
    fn find(sh: &Shell, apply: bool) -> anyhow::Result<Self> {
        let terraform = find_binary(
            "terraform",
            "install Terraform >= 1.7 (https://developer.hashicorp.com/terraform/install, \
             or the hashicorp apt repository: apt-get install terraform)",
        )?;
        let version = cmd!(sh, "{terraform} version -json").quiet().read()?;
        let version: serde_json::Value = serde_json::from_str(&version)?;
        let version = version["terraform_version"]
            .as_str()
            .unwrap_or("0.0.0")
            .to_string();
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if (major, minor) < (1, 7) {
            bail!(
                "terraform {version} is too old: `terraform test` with mock providers needs >= 1.7"
            );
        }
        println!("terraform {version}: {}", terraform.display());
        let checkov = find_binary("checkov", "pip install checkov")?;
        let (moto_server, python) = if apply {
            let moto = find_binary("moto_server", "pip install 'moto[server]'")?;
            let python = find_binary(
                "python3",
                "install Python 3 and `pip install 'moto[server]'` (brings boto3)",
            )?;
            cmd!(sh, "{python} -c 'import boto3'")
                .quiet()
                .run()
                .context("python3 cannot import boto3: pip install 'moto[server]' (or boto3)")?;
            (Some(moto), Some(python))
        } else {
            (None, None)
        };
        Ok(Tools {
            terraform,
            checkov,
            moto_server,
            python,
        })
    }
}

fn find_binary(name: &str, install: &str) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/local/bin", "/usr/bin"].map(PathBuf::from));
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".local/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("`{name}` not found on PATH: {install}"))
}

fn cli_config(mirror: &str) -> String {
    format!(
        "provider_installation {{\n  \
           filesystem_mirror {{\n    \
             path    = \"{mirror}\"\n    \
             include = [\"registry.terraform.io/hashicorp/aws\"]\n  \
           }}\n  \
           direct {{\n    \
             exclude = [\"registry.terraform.io/hashicorp/aws\"]\n  \
           }}\n\
         }}\n"
    )
}

/// Copies the module tree, leaving out anything a local `terraform` run may have left behind.
fn copy_module(from: &Path, to: &Path) -> anyhow::Result<()> {
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
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Runs checkov (offline) and returns its counts; any failed check or parse error is an error.
fn checkov(sh: &Shell, checkov: &Path, module: &Path, temp: &Path) -> anyhow::Result<String> {
    let out_dir = temp.join("checkov");
    std::fs::create_dir_all(&out_dir)?;
    let json_path = out_dir.join("results.json");
    let output = cmd!(
        sh,
        "{checkov} -d {module} --framework terraform --skip-download --skip-path .terraform --compact -o cli -o json --output-file-path console,{json_path}"
    )
    .env("BC_SKIP_MAPPING", "TRUE")
    .ignore_status()
    .output()?;
    print!("{}", String::from_utf8_lossy(&output.stdout));
    let json = std::fs::read_to_string(&json_path).with_context(|| {
        format!(
            "checkov wrote no {} ({}): {}",
            json_path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&json)?;
    let reports = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    let (mut passed, mut failed, mut skipped, mut errors) = (0, 0, 0, 0);
    for report in &reports {
        let summary = &report["summary"];
        passed += summary["passed"].as_u64().unwrap_or(0);
        failed += summary["failed"].as_u64().unwrap_or(0);
        skipped += summary["skipped"].as_u64().unwrap_or(0);
        errors += summary["parsing_errors"].as_u64().unwrap_or(0);
        for check in report["results"]["skipped_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            println!(
                "  skipped {} on {} ({}): {}",
                check["check_id"].as_str().unwrap_or("?"),
                check["resource"].as_str().unwrap_or("?"),
                check["file_path"].as_str().unwrap_or("?"),
                check["check_result"]["suppress_comment"]
                    .as_str()
                    .unwrap_or("no reason")
            );
        }
    }
    let counts = format!(
        "{passed} passed, {failed} failed, {skipped} skipped (inline, with reasons), {errors} parse errors"
    );
    if failed > 0 || errors > 0 || !output.status.success() {
        bail!("checkov: {counts}");
    }
    if passed == 0 {
        bail!(
            "checkov scanned nothing ({counts}): is {} a Terraform module?",
            module.display()
        );
    }
    Ok(counts)
}

/// examples/basic against moto: apply, plan (must be empty), API checks, destroy, gone checks.
fn moto_round_trip(
    sh: &Shell,
    tools: &Tools,
    root: &Path,
    work: &Path,
    temp: &Path,
    source: AssetSource,
) -> anyhow::Result<String> {
    let (Some(moto_bin), Some(python)) = (&tools.moto_server, &tools.python) else {
        bail!("moto_server and python3 are required for the apply round trip");
    };
    step("moto_server");
    // Dropped (killed by pid) when this function returns, whatever the path.
    let moto = MotoServer::start(moto_bin, &temp.join("moto.log"))?;
    let endpoint = moto.endpoint.clone();
    let (stub_py, check_py) = moto::write_scripts(temp)?;
    let aws_env = moto::aws_env(&endpoint);

    step("Lambda assets");
    cmd!(
        sh,
        "{python} {stub_py} {endpoint} {ASSETS_BUCKET} --bucket-only"
    )
    .envs(aws_env.clone())
    .run()?;
    let (assets, origin) = match source {
        AssetSource::Stub => (
            stub_assets(sh, python, &stub_py, &endpoint)?,
            "stub zips (--assets stub)".to_string(),
        ),
        AssetSource::Publish => (
            publish(root, &endpoint, &aws_env)?,
            "cargo xtask publish".to_string(),
        ),
        AssetSource::Auto => match publish(root, &endpoint, &aws_env) {
            Ok(assets) => (assets, "cargo xtask publish".to_string()),
            Err(err) => {
                eprintln!(
                    "\n!!! WARNING: `cargo xtask publish` failed, the round trip uses STUB zips instead:\n!!! {err:#}\n\
                     !!! (use --assets publish to make this an error)\n"
                );
                (
                    stub_assets(sh, python, &stub_py, &endpoint)?,
                    "STUB zips: cargo xtask publish failed".to_string(),
                )
            }
        },
    };
    println!("assets ({origin}): {}", serde_json::to_string(&assets)?);

    let basic = work.join("examples/basic");
    std::fs::write(
        basic.join("moto_override.tf"),
        moto::provider_override(&endpoint),
    )?;
    let mut vars = serde_json::to_value(&assets)?;
    vars["region"] = moto::REGION.into();
    if vars.get("architecture").is_none() {
        vars["architecture"] = "x86_64".into();
    }
    std::fs::write(
        basic.join("harness.auto.tfvars.json"),
        serde_json::to_string_pretty(&vars)?,
    )?;
    let mut expect = vars.clone();
    expect["resource_prefix"] = "ecr-soci-indexer".into();
    expect["account_id"] = moto::ACCOUNT_ID.into();
    let expect = serde_json::to_string(&expect)?;

    let terraform = &tools.terraform;
    let plan_file = temp.join("basic.tfplan");
    step("terraform init + apply: examples/basic against moto");
    cmd!(sh, "{terraform} -chdir={basic} init -no-color")
        .quiet()
        .ignore_stdout()
        .run()?;
    let applied = (|| -> anyhow::Result<()> {
        cmd!(
            sh,
            "{terraform} -chdir={basic} apply -auto-approve -no-color"
        )
        .run()
        .context("terraform apply failed")?;

        step("terraform plan -detailed-exitcode after apply (must be 0: no changes)");
        let status = cmd!(
            sh,
            "{terraform} -chdir={basic} plan -detailed-exitcode -no-color -out={plan_file}"
        )
        .ignore_status()
        .output()?;
        print!("{}", String::from_utf8_lossy(&status.stdout));
        eprint!("{}", String::from_utf8_lossy(&status.stderr));
        match status.status.code() {
            Some(0) => println!("plan after apply: no changes"),
            Some(2) => {
                bail!("plan after apply is not empty (exit 2): the module does not converge")
            }
            code => bail!("terraform plan failed (exit {code:?})"),
        }

        step("deployment read back through the AWS API");
        cmd!(sh, "{python} {check_py} {endpoint} {expect}")
            .envs(aws_env.clone())
            .run()
            .context("the deployed resources do not match the module's promises")?;
        Ok(())
    })();

    step("terraform destroy: examples/basic");
    let destroyed = cmd!(
        sh,
        "{terraform} -chdir={basic} destroy -auto-approve -no-color"
    )
    .run()
    .context("terraform destroy failed");
    applied?;
    destroyed?;
    let state = cmd!(sh, "{terraform} -chdir={basic} state list")
        .quiet()
        .read()?;
    if !state.trim().is_empty() {
        bail!("resources left in state after destroy:\n{state}");
    }
    cmd!(sh, "{python} {check_py} {endpoint} {expect} --gone")
        .envs(aws_env.clone())
        .run()
        .context("destroy left resources behind")?;
    drop(moto);
    Ok(format!(
        "examples/basic on moto: apply ok, plan after apply empty (exit 0), API checks ok, destroy ok; assets: {origin}"
    ))
}

fn stub_assets(sh: &Shell, python: &Path, script: &Path, endpoint: &str) -> anyhow::Result<Assets> {
    let out = cmd!(sh, "{python} {script} {endpoint} {ASSETS_BUCKET}")
        .envs(moto::aws_env(endpoint))
        .read()?;
    Ok(serde_json::from_str(&out)?)
}

/// `cargo xtask publish --bucket B --endpoint-url E --json` (a separate process, so this works
/// with whatever publish's own arguments struct looks like). Its build output streams to stderr.
fn publish(root: &Path, endpoint: &str, env: &[(&'static str, String)]) -> anyhow::Result<Assets> {
    step("cargo xtask publish --json");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "xtask",
            "publish",
            "--bucket",
            ASSETS_BUCKET,
            "--endpoint-url",
            endpoint,
            "--json",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo xtask publish")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("`cargo xtask publish` exited with {}", output.status);
    }
    let assets = Assets::from_publish_output(&stdout)?;
    if assets.deployment_assets_bucket != ASSETS_BUCKET {
        bail!(
            "publish uploaded to {} instead of {ASSETS_BUCKET}",
            assets.deployment_assets_bucket
        );
    }
    Ok(assets)
}

/// A temporary directory, removed on drop unless kept.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    fn new(keep: bool) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!("soci-terraform-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path, keep })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_json_is_found_after_log_lines() {
        let out = "uploading...\n{\"deployment_assets_bucket\":\"b\",\"ecr_image_filter_lambda_asset_path\":\"f.zip\",\
                   \"soci_index_generator_lambda_asset_path\":\"g.zip\",\"ecr_image_filter_lambda_source_code_hash\":\"aA==\",\
                   \"soci_index_generator_lambda_source_code_hash\":\"bB==\"}\n";
        let assets = Assets::from_publish_output(out).unwrap();
        assert_eq!(assets.soci_index_generator_lambda_asset_path, "g.zip");
        assert_eq!(assets.architecture, None);
        assert!(Assets::from_publish_output("{\"deployment_assets_bucket\":\"b\"}").is_err());
    }

    #[test]
    fn copy_leaves_out_local_terraform_files() {
        let temp = TempDir::new(false).unwrap();
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
    fn provider_override_points_every_service_at_moto() {
        let text = moto::provider_override("http://127.0.0.1:1");
        for service in ["lambda", "iam", "s3", "events", "logs", "ecr", "sts"] {
            assert!(
                text.contains(&format!("{service:<6} = \"http://127.0.0.1:1\"")),
                "{service} missing:\n{text}"
            );
        }
    }
}

/// Repository hygiene: the README's inputs and outputs tables list exactly the module's
/// variables and outputs, with the defaults the code has.
#[cfg(test)]
mod readme {
    use std::collections::BTreeMap;

    fn module_file(name: &str) -> String {
        let path = crate::project_root().join("terraform").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// `block "name" {` ... `}` at the top level -> name -> the block's `  default = ...` text.
    fn blocks(text: &str, kind: &str) -> BTreeMap<String, Option<String>> {
        let mut out = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(&format!("{kind} \"")) {
                let name = rest.split('"').next().unwrap_or_default().to_string();
                out.insert(name.clone(), None);
                current = Some(name);
            } else if line == "}" {
                current = None;
            } else if let (Some(name), Some(rest)) = (&current, line.strip_prefix("  default ")) {
                let value = rest.trim_start().trim_start_matches('=').trim().to_string();
                out.insert(name.clone(), Some(value));
            }
        }
        out
    }

    /// Rows of the README table under `## <section>`: first column -> the given column's text.
    fn table(readme: &str, section: &str, column: usize) -> BTreeMap<String, String> {
        let start = readme
            .find(&format!("\n## {section}\n"))
            .unwrap_or_else(|| panic!("no ## {section}"));
        let body = &readme[start + section.len() + 5..];
        let body = &body[..body.find("\n## ").unwrap_or(body.len())];
        body.lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.split(" | ").collect();
                let name = cells[0]
                    .trim_start_matches("| ")
                    .trim_matches('`')
                    .to_string();
                (
                    name,
                    cells
                        .get(column)
                        .copied()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn inputs_table_matches_variables_tf() {
        let code = blocks(&module_file("variables.tf"), "variable");
        let readme = table(&module_file("README.md"), "Inputs", 3);
        assert!(code.len() > 20, "parsed only {} variables", code.len());
        let code_names: Vec<_> = code.keys().collect();
        let readme_names: Vec<_> = readme.keys().collect();
        assert_eq!(
            code_names, readme_names,
            "README inputs table and variables.tf disagree"
        );
        for (name, default) in &code {
            let want = match default {
                Some(value) => format!("`{value}`"),
                None => "n/a".to_string(),
            };
            assert_eq!(readme[name], want, "README default of `{name}`");
        }
    }

    #[test]
    fn outputs_table_matches_outputs_tf() {
        let code = blocks(&module_file("outputs.tf"), "output");
        let readme = table(&module_file("README.md"), "Outputs", 1);
        assert!(code.len() >= 9, "parsed only {} outputs", code.len());
        assert_eq!(
            code.keys().collect::<Vec<_>>(),
            readme.keys().collect::<Vec<_>>()
        );
    }
}
