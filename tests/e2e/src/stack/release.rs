//! The release artifacts the run deploys: `cargo xtask package` and `cargo xtask publish --json`
//! run as child processes (their command lines are the interface; of xtask this crate links only
//! its `arch` definitions), and the zips they leave in `<cargo target dir>/lambda`.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, ensure};

pub use xtask::arch::{Arch, ArchChoice};

/// The workspace root (this crate is `tests/e2e`).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `cargo <args>` in the workspace root, with this process's environment (so `package`,
/// `publish` and this run agree on `CARGO_TARGET_DIR`).
pub fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(args)
        .current_dir(project_root())
        .stdin(Stdio::null());
    command
}

/// `<cargo target dir>/lambda`, where `cargo xtask package` writes the zips.
pub fn zips_dir() -> anyhow::Result<PathBuf> {
    Ok(xtask::workspace::Workspace::load()?.default_out_dir())
}

/// `cargo xtask package --arch <arch>`.
pub fn package(arch: ArchChoice) -> anyhow::Result<()> {
    let arch = arch.arg();
    let status = cargo(&["xtask", "package", "--arch", arch])
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
    arch: ArchChoice,
    env: &[(String, String)],
) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    let mut args = vec![
        "xtask",
        "publish",
        "--bucket",
        bucket,
        "--region",
        region,
        "--json",
        "--arch",
        arch.arg(),
    ];
    if let Some(endpoint) = endpoint {
        args.extend(["--endpoint-url", endpoint]);
    }
    let output = cargo(&args)
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
