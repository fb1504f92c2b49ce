//! Test tooling shared by the crates' tests, `cargo xtask` and the end-to-end harness.
//!
//! - [`Registry`]: Debian's `docker-registry` (distribution 2.8), filesystem storage in a temp dir.
//! - [`Moto`]: `moto_server` from `moto[server]` (S3, ECR control plane, IAM, Lambda, EventBridge).
//! - [`image`]: OCI images generated in code (gzip tar layers, configs, manifests, indexes).
//! - [`faults::FaultProxy`] (feature `faults`): a fault-injecting HTTP proxy and fake blob store
//!   (resets, truncated and corrupted bodies, 403/429/503 with `Retry-After`, slow drips,
//!   presigned redirects).
//! - [`link::ThrottledLink`]: a TCP proxy that caps the bandwidth from a server to its clients.
//! - [`terraform`]: runs the `terraform` CLI on a copy of a module, in automation mode.
//! - [`temp_dir`] / [`work_dir`]: `tempfile` directories, the latter kept on request.
//!
//! Services are child processes on 127.0.0.1, stopped (by process id) when dropped. A missing
//! binary is an error that says how to install it (`cargo xtask setup`), never a skip. Set
//! `SOCI_TEST_REGISTRY=host:port` or `SOCI_TEST_AWS_ENDPOINT=url` to use a service that is
//! already running (LocalStack, a shared registry) instead of starting one.

mod error;
#[cfg(feature = "faults")]
pub mod faults;
pub mod image;
pub mod link;
mod moto;
mod process;
mod registry;
pub mod terraform;

pub use error::{Context, Error, Result};
pub use moto::Moto;
pub use process::{find_binary, free_port, http_status, stop_with_parent};
pub use registry::Registry;

/// A fresh temporary directory named `<prefix>-<random>`, removed on drop.
pub fn temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir()
        .context("creating a temporary directory")
}

/// A harness's working directory: like [`temp_dir`], but left in place when `keep` is set (for
/// reading logs and state after a run).
pub fn work_dir(prefix: &str, keep: bool) -> Result<tempfile::TempDir> {
    let mut dir = temp_dir(prefix)?;
    dir.disable_cleanup(keep);
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_work_dir_survives_its_guard() {
        let kept = work_dir("soci-kept", true).unwrap();
        let path = kept.path().to_path_buf();
        drop(kept);
        assert!(path.is_dir());
        std::fs::remove_dir_all(&path).unwrap();
        let removed = work_dir("soci-removed", false).unwrap();
        let path = removed.path().to_path_buf();
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("soci-removed-")
        );
        drop(removed);
        assert!(!path.exists());
    }
}
