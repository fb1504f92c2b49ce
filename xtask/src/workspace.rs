//! What `cargo metadata` says about the workspace, and where its root is.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, ensure};
use serde::Deserialize;

/// The workspace root (xtask's parent directory).
pub fn project_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// What `cargo metadata` says about the workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    pub packages: Vec<String>,
}

impl Workspace {
    pub fn load() -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct Metadata {
            workspace_root: PathBuf,
            target_directory: PathBuf,
            packages: Vec<Package>,
        }
        #[derive(Deserialize)]
        struct Package {
            name: String,
        }
        let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(project_root())
            .output()
            .context("running `cargo metadata`")?;
        ensure!(
            output.status.success(),
            "`cargo metadata` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let metadata: Metadata =
            serde_json::from_slice(&output.stdout).context("parsing `cargo metadata` output")?;
        Ok(Self {
            root: metadata.workspace_root,
            target_dir: metadata.target_directory,
            packages: metadata.packages.into_iter().map(|p| p.name).collect(),
        })
    }

    /// `<target dir>/lambda`.
    pub fn default_out_dir(&self) -> PathBuf {
        self.target_dir.join("lambda")
    }
}
