//! `cargo xtask terraform`: proves the Terraform module in `terraform/` with Terraform itself.
//!
//! 1. `terraform fmt -check -recursive terraform`
//! 2. `terraform init` + `terraform validate` of the module
//! 3. `terraform test` (mocked AWS provider, `terraform/tests/*.tftest.hcl`), which also plans
//!    `modules/copy-lambda-code` and every example from scratch
//! 4. `checkov` over `terraform/`: no failed check (skips are inline, each with its reason)
//! 5. `examples/basic` against a moto server of our own: apply, plan again (must be empty,
//!    `-detailed-exitcode` 0), read everything back through the AWS API (boto3), destroy, check
//!    that it is gone. The zips come from `cargo xtask publish --json`.
//! 6. On the same server (`scenarios`): `publish --release` + `examples/copy-lambda-code` (the
//!    functions run the released zips), and the switch from the Terraform port's resources to this
//!    module (nothing with a name is destroyed).
//!
//! Everything Terraform writes (`.terraform/`, lock files, state, plans) goes to a temporary copy
//! of `terraform/`, never into the repository. Missing tools are errors that say how to install
//! them, never skips. Where `/opt/tf-plugins` holds a provider mirror, Terraform installs
//! `hashicorp/aws` from it (no registry access needed); elsewhere from the registry.

mod moto;
mod scenarios;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use test_support::Moto;
use test_support::terraform::{Terraform, copy_module, provider_override};
use xshell::{Shell, cmd};

use moto::Assets;

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

/// What every step works with.
struct Harness {
    sh: Shell,
    root: PathBuf,
    /// The copy of `terraform/` that Terraform runs in.
    work: PathBuf,
    temp: PathBuf,
    terraform: Terraform,
    tools: Tools,
    /// A snapshot of this xtask binary, which runs `publish`: the shared target directory may
    /// rebuild (replace) the original while the harness runs.
    xtask: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root = crate::project_root();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    let temp =
        test_support::work_dir("soci-terraform", args.keep_temp).map_err(anyhow::Error::from)?;
    let terraform = Terraform::new(temp.path()).map_err(anyhow::Error::from)?;
    let tools = Tools::find(&sh, &terraform, !args.skip_apply)?;
    let work = temp.path().join("terraform");
    copy_module(&root.join("terraform"), &work).map_err(anyhow::Error::from)?;
    if terraform.uses_mirror() {
        println!(
            "terraform: hashicorp/aws from the mirror in {}",
            test_support::terraform::PROVIDER_MIRROR
        );
    } else {
        println!(
            "terraform: no mirror in {}, providers come from the registry",
            test_support::terraform::PROVIDER_MIRROR
        );
    }
    let xtask = snapshot_xtask(temp.path())?;
    let harness = Harness {
        sh,
        root,
        work,
        temp: temp.path().to_path_buf(),
        terraform,
        tools,
        xtask,
    };

    step("start");
    let mut report = harness.static_checks()?;
    step("checkov -d terraform");
    let module = harness.root.join("terraform");
    report.push(format!(
        "checkov: {}",
        checkov(&harness.sh, &harness.tools.checkov, &module, &harness.temp)?
    ));
    if args.skip_apply {
        report.push("apply/plan/destroy against moto: NOT RUN (--skip-apply)".to_string());
    } else {
        report.push(harness.moto_round_trip(args.assets)?);
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

/// Links (or copies) the running xtask binary into `dir`.
fn snapshot_xtask(dir: &Path) -> anyhow::Result<PathBuf> {
    let snapshot = dir.join("xtask");
    let linked =
        std::env::current_exe().is_ok_and(|exe| std::fs::hard_link(exe, &snapshot).is_ok());
    if !linked {
        // `cargo test --workspace` may have rebuilt this binary since it started, leaving
        // `current_exe()` naming a deleted file; /proc/self/exe still opens the running image.
        let running = Path::new("/proc/self/exe");
        std::fs::copy(running, &snapshot)
            .with_context(|| format!("copying {} to {}", running.display(), snapshot.display()))?;
    }
    Ok(snapshot)
}

fn step(what: &str) {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs();
    println!("\n== [{elapsed:>4} s] {what} ==");
}

/// The tools this needs besides Terraform, found up front so a missing one fails before any
/// work is done.
struct Tools {
    checkov: PathBuf,
    python: Option<PathBuf>,
}

impl Tools {
    fn find(sh: &Shell, terraform: &Terraform, apply: bool) -> anyhow::Result<Self> {
        let (version, major_minor) = terraform.version().map_err(anyhow::Error::from)?;
        if major_minor < (1, 7) {
            bail!(
                "terraform {version} is too old: `terraform test` with mock providers needs >= 1.7"
            );
        }
        println!("terraform {version}: {}", terraform.binary().display());
        let checkov = find_binary(
            "checkov",
            "run `cargo xtask setup` (installs it into the project's venv)",
        )?;
        let python = if apply {
            find_binary(
                "moto_server",
                "run `cargo xtask setup` (installs it into the project's venv)",
            )?;
            let python = find_binary(
                "python3",
                "install Python 3, then run `cargo xtask setup` (moto brings boto3 into the project's venv)",
            )?;
            cmd!(sh, "{python} -c 'import boto3'")
                .quiet()
                .run()
                .context("python3 cannot import boto3: run `cargo xtask setup` (the project's venv has it)")?;
            Some(python)
        } else {
            None
        };
        Ok(Tools { checkov, python })
    }
}

fn find_binary(name: &str, install: &str) -> anyhow::Result<PathBuf> {
    test_support::find_binary(name)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("`{name}`: {install}"))
}

impl Harness {
    fn terraform(&self, dir: &Path, args: &[&str]) -> anyhow::Result<()> {
        self.terraform.run(dir, args).map_err(anyhow::Error::from)
    }

    /// fmt, init + validate of the module and the examples, `terraform test`.
    fn static_checks(&self) -> anyhow::Result<Vec<String>> {
        let mut report = Vec::new();
        step("terraform fmt -check -recursive terraform");
        let module = self.root.join("terraform").display().to_string();
        self.terraform(
            &self.root,
            &["fmt", "-check", "-recursive", "-diff", &module],
        )
        .context(
            "terraform fmt found unformatted files: run `terraform fmt -recursive terraform`",
        )?;
        report.push("fmt: clean".to_string());

        // The submodule and the examples are validated by `terraform test`, which plans each of
        // them from scratch (tests/examples.tftest.hcl, tests/copy_lambda_code.tftest.hcl): a
        // plan validates everything `terraform validate` does, and more.
        step("terraform init + validate: the module");
        self.terraform
            .run_quiet(&self.work, &["init", "-backend=false", "-no-color"])
            .map_err(anyhow::Error::from)
            .context("terraform init failed in terraform/")?;
        self.terraform(&self.work, &["validate", "-no-color"])
            .context("terraform validate failed in terraform/")?;
        report.push(
            "init + validate: the module (submodule and examples: planned by terraform test)"
                .to_string(),
        );

        step("terraform test (mocked AWS provider)");
        report.push(format!("terraform test: {}", self.terraform_test()?));
        Ok(report)
    }

    /// `terraform test`; its summary line, which must report tests that ran and passed.
    fn terraform_test(&self) -> anyhow::Result<String> {
        let output = self
            .terraform
            .output(&self.work, &["test", "-no-color"])
            .map_err(anyhow::Error::from)?;
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
        Ok(summary)
    }
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

/// The module inputs `examples/basic` gets and what the API checks expect.
struct ExampleInputs {
    dir: PathBuf,
    expect: String,
}

impl Harness {
    /// examples/basic against moto: apply, plan (must be empty), API checks, destroy, gone checks.
    fn moto_round_trip(&self, source: AssetSource) -> anyhow::Result<String> {
        let Some(python) = &self.tools.python else {
            bail!("moto_server and python3 are required for the apply round trip");
        };
        step("moto_server");
        // Dropped (killed by pid) when this function returns, whatever the path.
        let moto = Moto::start_own(&self.temp.join("moto.log")).map_err(anyhow::Error::from)?;
        let (stub_py, check_py) = moto::write_scripts(&self.temp)?;

        step("Lambda assets");
        let endpoint = &moto.endpoint;
        cmd!(
            self.sh,
            "{python} {stub_py} {endpoint} {ASSETS_BUCKET} --bucket-only"
        )
        .envs(moto.env())
        .run()?;
        let (assets, origin) = self.assets(source, &moto, python, &stub_py)?;
        println!("assets ({origin}): {}", serde_json::to_string(&assets)?);
        let example = self.write_example_inputs(&assets, endpoint)?;

        step("terraform init + apply: examples/basic against moto");
        self.terraform
            .run_quiet(&example.dir, &["init", "-no-color"])
            .map_err(anyhow::Error::from)?;
        let check = |gone: &[&str]| {
            let expect = &example.expect;
            cmd!(self.sh, "{python} {check_py} {endpoint} {expect} {gone...}")
                .envs(moto.env())
                .run()
        };
        let applied = self.apply_and_check(&example, || {
            check(&[]).context("the deployed resources do not match the module's promises")
        });

        step("terraform destroy: examples/basic");
        let destroyed = self
            .terraform(&example.dir, &["destroy", "-auto-approve", "-no-color"])
            .context("terraform destroy failed");
        applied?;
        destroyed?;
        let state = self
            .terraform
            .run_quiet(&example.dir, &["state", "list"])
            .map_err(anyhow::Error::from)?;
        if !state.trim().is_empty() {
            bail!("resources left in state after destroy:\n{state}");
        }
        check(&["--gone"]).context("destroy left resources behind")?;
        let mut report = vec![format!(
            "examples/basic on moto: apply ok, plan after apply empty (exit 0), API checks ok, destroy ok; assets: {origin}"
        )];
        // Independent (own buckets, own resource prefixes): the migration runs on its own thread.
        let (terraform, temp, work) = (&self.terraform, &self.temp, &self.work);
        let (copied, migrated) = std::thread::scope(|scope| {
            let migration =
                scope.spawn(|| scenarios::migration(terraform, temp, work, &moto, &assets));
            let copied = if source == AssetSource::Stub {
                Ok("copy-lambda-code on moto: NOT RUN (--assets stub: it needs `cargo xtask publish --release`)".to_string())
            } else {
                self.copy_lambda_code(&moto, python)
            };
            let migrated = migration
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the migration scenario panicked")));
            (copied, migrated)
        });
        report.push(copied?);
        report.push(migrated?);
        drop(moto);
        Ok(report.join("\n  "))
    }

    /// The Lambda zips to deploy, and where they came from.
    fn assets(
        &self,
        source: AssetSource,
        moto: &Moto,
        python: &Path,
        stub_py: &Path,
    ) -> anyhow::Result<(Assets, String)> {
        let stub = || stub_assets(&self.sh, python, stub_py, moto);
        Ok(match source {
            AssetSource::Stub => (stub()?, "stub zips (--assets stub)".to_string()),
            AssetSource::Publish => (
                publish((&self.xtask, &self.root), moto, ASSETS_BUCKET, &[])?,
                "cargo xtask publish".to_string(),
            ),
            AssetSource::Auto => match publish((&self.xtask, &self.root), moto, ASSETS_BUCKET, &[])
            {
                Ok(assets) => (assets, "cargo xtask publish".to_string()),
                Err(err) => {
                    eprintln!(
                        "\n!!! WARNING: `cargo xtask publish` failed, the round trip uses STUB zips instead:\n!!! {err:#}\n\
                         !!! (use --assets publish to make this an error)\n"
                    );
                    (stub()?, "STUB zips: cargo xtask publish failed".to_string())
                }
            },
        })
    }

    /// Points `examples/basic` at moto (an override file, only in the temporary copy, so the
    /// example stays clean for real users) and gives it the assets as variables.
    fn write_example_inputs(
        &self,
        assets: &Assets,
        endpoint: &str,
    ) -> anyhow::Result<ExampleInputs> {
        let dir = self.work.join("examples/basic");
        std::fs::write(dir.join("moto_override.tf"), provider_override(endpoint))?;
        let mut vars = serde_json::to_value(assets)?;
        vars["region"] = Moto::REGION.into();
        if vars.get("architecture").is_none() {
            vars["architecture"] = "x86_64".into();
        }
        std::fs::write(
            dir.join("harness.auto.tfvars.json"),
            serde_json::to_string_pretty(&vars)?,
        )?;
        let mut expect = vars;
        expect["resource_prefix"] = "ecr-soci-indexer".into();
        expect["account_id"] = Moto::ACCOUNT_ID.into();
        Ok(ExampleInputs {
            dir,
            expect: serde_json::to_string(&expect)?,
        })
    }

    /// apply, then plan (must show no changes), then `check` the deployment.
    fn apply_and_check(
        &self,
        example: &ExampleInputs,
        check: impl FnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.terraform(&example.dir, &["apply", "-auto-approve", "-no-color"])
            .context("terraform apply failed")?;

        step("terraform plan -detailed-exitcode after apply (must be 0: no changes)");
        let plan_file = self.temp.join("basic.tfplan");
        let out = format!("-out={}", plan_file.display());
        let status = self
            .terraform
            .output(
                &example.dir,
                &["plan", "-detailed-exitcode", "-no-color", &out],
            )
            .map_err(anyhow::Error::from)?;
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
        check()
    }
}

fn stub_assets(sh: &Shell, python: &Path, script: &Path, moto: &Moto) -> anyhow::Result<Assets> {
    let endpoint = &moto.endpoint;
    let out = cmd!(sh, "{python} {script} {endpoint} {ASSETS_BUCKET}")
        .envs(moto.env())
        .read()?;
    Ok(serde_json::from_str(&out)?)
}

/// `xtask publish --bucket B --endpoint-url E --json [extra]`, run as a separate process of this
/// very binary (its snapshot: no second `cargo` run that could wait on the build lock or
/// rebuild), so this works with whatever publish's own arguments struct looks like. Its build
/// output streams to stderr.
fn publish(
    (xtask, root): (&Path, &Path),
    moto: &Moto,
    bucket: &str,
    extra: &[&str],
) -> anyhow::Result<Assets> {
    step(&format!("xtask publish --json {}", extra.join(" ")));
    let output = Command::new(xtask)
        .current_dir(root)
        .args([
            "publish",
            "--bucket",
            bucket,
            "--endpoint-url",
            &moto.endpoint,
            "--json",
        ])
        .args(extra)
        .envs(moto.env())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running xtask publish")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("`cargo xtask publish` exited with {}", output.status);
    }
    let assets = Assets::from_publish_output(&stdout)?;
    if assets.deployment_assets_bucket != bucket {
        bail!(
            "publish uploaded to {} instead of {bucket}",
            assets.deployment_assets_bucket
        );
    }
    Ok(assets)
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

    /// Every `.tf` file under `terraform/` (module, submodules, examples), with its path.
    fn tf_files(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() && !name.starts_with('.') {
                tf_files(&path, out);
            } else if name.ends_with(".tf") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }

    /// Provider 6.x (which versions.tf allows) deprecates `aws_region`'s `name` in favour of
    /// `region`, which 5.x lacks; `id` is the region name under both, so only `id` is used.
    /// (The mirror here holds 5.x only, so `terraform validate` cannot show the 6.x warning.)
    #[test]
    fn no_attribute_that_provider_6_deprecates() {
        let mut files = Vec::new();
        tf_files(&crate::project_root().join("terraform"), &mut files);
        assert!(files.len() > 10, "found only {} .tf files", files.len());
        for (path, text) in files {
            for (n, line) in text.lines().enumerate() {
                let code = line.split('#').next().unwrap_or_default();
                let Some(at) = code.find("data.aws_region.") else {
                    continue;
                };
                let attribute = code[at..].split('.').nth(3).unwrap_or_default();
                let attribute: String = attribute
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert_ne!(
                    attribute,
                    "name",
                    "{}:{}: data.aws_region.<x>.name is deprecated under provider 6.x: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
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

    #[test]
    fn copy_module_readme_tables_match_its_code() {
        let dir = "modules/copy-lambda-code";
        let code = blocks(&module_file(&format!("{dir}/variables.tf")), "variable");
        let readme_text = module_file(&format!("{dir}/README.md"));
        let readme = table(&readme_text, "Inputs", 3);
        assert!(code.len() >= 7, "parsed only {} variables", code.len());
        assert_eq!(
            code.keys().collect::<Vec<_>>(),
            readme.keys().collect::<Vec<_>>()
        );
        for (name, default) in &code {
            let want = match default {
                Some(value) => format!("`{value}`"),
                None => "n/a".to_string(),
            };
            assert_eq!(readme[name], want, "README default of `{name}`");
        }
        let outputs = blocks(&module_file(&format!("{dir}/outputs.tf")), "output");
        assert_eq!(
            outputs.keys().collect::<Vec<_>>(),
            table(&readme_text, "Outputs", 1).keys().collect::<Vec<_>>()
        );
    }

    /// Each example has a README that names every variable it takes.
    #[test]
    fn every_example_has_a_readme_naming_its_inputs() {
        let examples = crate::project_root().join("terraform/examples");
        let mut count = 0;
        for entry in std::fs::read_dir(&examples).unwrap() {
            let dir = entry.unwrap().path();
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            let readme = std::fs::read_to_string(dir.join("README.md"))
                .unwrap_or_else(|e| panic!("examples/{name}/README.md: {e}"));
            let variables = blocks(
                &module_file(&format!("examples/{name}/variables.tf")),
                "variable",
            );
            for variable in variables.keys() {
                assert!(
                    readme.contains(&format!("`{variable}`")),
                    "examples/{name}/README.md does not mention `{variable}`"
                );
            }
            count += 1;
        }
        assert!(count >= 3, "only {count} examples");
    }
}
