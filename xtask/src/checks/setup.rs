//! `cargo xtask setup`: installs what the tests need, only what is missing (`xtask/setup.sh`,
//! which `cargo xtask test` runs first), then checks that the system Python's packages are
//! exactly as they were: the Python tools go into the project's own virtual environment.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    ensure()
}

/// The project's Python virtual environment: `$SOCI_VENV`, or `<root>/target/venv` (the rule
/// `xtask/setup.sh` and tests/support's `venv_dir` follow).
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("SOCI_VENV") {
        Some(dir) if !dir.is_empty() => std::path::absolute(&dir).unwrap_or_else(|_| dir.into()),
        _ => crate::project_root().join("target/venv"),
    }
}

/// Puts the venv's `bin/` first on this process's PATH and exports `SOCI_VENV`, so that every
/// command (`package`'s `cargo zigbuild`, which finds zig through `python3 -m ziglang`;
/// `terraform`'s checkov and boto3; the tests `test` runs) uses the venv's tools. Call it first
/// thing in `main`, before any thread exists.
pub fn activate_venv() {
    let venv = venv_dir();
    let bin = venv.join("bin");
    let mut dirs = vec![bin.clone()];
    dirs.extend(path_without(&bin));
    if let Ok(path) = std::env::join_paths(dirs) {
        // SAFETY: called at the start of `main`, while the process has a single thread, so no
        // other thread can be reading the environment.
        unsafe {
            std::env::set_var("PATH", path);
            std::env::set_var("SOCI_VENV", &venv);
        }
    }
}

/// PATH's directories without `dir` (the venv's `bin/`), i.e. what the user had.
fn path_without(dir: &Path) -> Vec<PathBuf> {
    dirs_without(&std::env::var_os("PATH").unwrap_or_default(), dir)
}

fn dirs_without(path: &OsStr, dir: &Path) -> Vec<PathBuf> {
    std::env::split_paths(path).filter(|d| d != dir).collect()
}

/// Runs `xtask/setup.sh` with the user's own PATH (so its `python3` is the system's, the one the
/// venv is made from), and fails if the system Python's `pip list` or `pip check` changed.
pub fn ensure() -> anyhow::Result<()> {
    let venv = venv_dir();
    let user_path = std::env::join_paths(path_without(&venv.join("bin")))?;
    let python = find_in(&user_path, "python3");
    let before = python.as_deref().map(PythonPackages::read).transpose()?;
    let status = Command::new("bash")
        .arg(crate::project_root().join("xtask/setup.sh"))
        .env("PATH", &user_path)
        .env("SOCI_VENV", &venv)
        .status()
        .context("running bash xtask/setup.sh")?;
    if !status.success() {
        bail!("xtask/setup.sh failed ({status})");
    }
    // A python3 only there after setup (apt installed it) had nothing to change before.
    if let (Some(python), Some(before)) = (&python, before) {
        let after = PythonPackages::read(python)?;
        if let Some(change) = before.change_to(&after) {
            bail!(
                "setup changed the packages of {} (it must only touch {}):\n{change}",
                python.display(),
                venv.display()
            );
        }
    }
    Ok(())
}

fn find_in(path: &OsStr, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What a Python's pip says about its installed packages (system and user site-packages).
#[derive(Debug, PartialEq, Eq)]
struct PythonPackages {
    /// `pip list --format=freeze`, or pip's error where there is no pip.
    list: String,
    /// `pip check`: its report of broken requirements (it exits 1 when there are some).
    check: String,
}

impl PythonPackages {
    fn read(python: &Path) -> anyhow::Result<Self> {
        let pip = |args: &[&str]| -> anyhow::Result<String> {
            let out = Command::new(python)
                .args(["-m", "pip", "--disable-pip-version-check"])
                .args(args)
                .env_remove("PIP_REQUIRE_VIRTUALENV")
                .output()
                .with_context(|| format!("running {} -m pip {}", python.display(), args[0]))?;
            Ok(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        };
        Ok(Self {
            list: pip(&["list", "--format=freeze"])?,
            check: pip(&["check"])?,
        })
    }

    /// The lines that appeared (`+`) or went (`-`) in either report; `None` when equal.
    fn change_to(&self, after: &Self) -> Option<String> {
        let mut lines = Vec::new();
        for (name, old, new) in [
            ("pip list", &self.list, &after.list),
            ("pip check", &self.check, &after.check),
        ] {
            let old_lines: Vec<&str> = old.lines().collect();
            let new_lines: Vec<&str> = new.lines().collect();
            lines.extend(
                old_lines
                    .iter()
                    .filter(|l| !new_lines.contains(l))
                    .map(|l| format!("{name}: - {l}")),
            );
            lines.extend(
                new_lines
                    .iter()
                    .filter(|l| !old_lines.contains(l))
                    .map(|l| format!("{name}: + {l}")),
            );
        }
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packages(list: &str, check: &str) -> PythonPackages {
        PythonPackages {
            list: list.into(),
            check: check.into(),
        }
    }

    /// The failure the issue reported: checkov's pin downgraded botocore under the AWS CLI.
    #[test]
    fn a_downgraded_package_and_a_new_conflict_are_both_named() {
        let before = packages(
            "awscli==1.43.11\nbotocore==1.43.11\n",
            "No broken requirements found.\n",
        );
        let after = packages(
            "awscli==1.43.11\nbotocore==1.35.99\ncheckov==3.3.30\n",
            "awscli 1.43.11 has requirement botocore==1.43.11, but you have botocore 1.35.99.\n",
        );
        let change = before.change_to(&after).expect("a change");
        assert_eq!(
            change,
            "pip list: - botocore==1.43.11\n\
             pip list: + botocore==1.35.99\n\
             pip list: + checkov==3.3.30\n\
             pip check: - No broken requirements found.\n\
             pip check: + awscli 1.43.11 has requirement botocore==1.43.11, but you have botocore 1.35.99."
        );
        assert_eq!(
            before.change_to(&packages(&before.list, &before.check)),
            None
        );
    }

    /// `ensure` gives setup.sh the PATH the user had: activate_venv's entry goes, wherever it
    /// is, and the rest keeps its order.
    #[test]
    fn the_users_path_is_path_without_the_venv() {
        let venv = Path::new("/nonexistent/soci-venv/bin");
        let path =
            std::env::join_paths([venv, Path::new("/usr/bin"), venv, Path::new("/bin")]).unwrap();
        assert_eq!(
            dirs_without(&path, venv),
            [PathBuf::from("/usr/bin"), PathBuf::from("/bin")]
        );
    }
}
