//! A real OCI registry: Debian's `docker-registry`.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::process::{Service, find_binary, free_port, stop_with_parent};
use crate::{Result, temp_dir};

/// A running OCI registry.
pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    _service: Service,
    _dir: Option<tempfile::TempDir>,
}

impl Registry {
    /// Starts `docker-registry` on a free port with storage in a fresh temp dir (removed when
    /// the registry is dropped), or uses `SOCI_TEST_REGISTRY` when set.
    pub fn start() -> Result<Self> {
        if let Some(registry) = Self::external() {
            return Ok(registry);
        }
        let dir = temp_dir("soci-registry")?;
        let mut registry = Self::spawn(dir.path())?;
        registry._dir = Some(dir);
        Ok(registry)
    }

    /// Like [`Registry::start`], with the configuration, storage and log in `dir` (created if
    /// needed, left in place), for a harness that keeps all its files in its own folder.
    pub fn start_in(dir: &Path) -> Result<Self> {
        if let Some(registry) = Self::external() {
            return Ok(registry);
        }
        std::fs::create_dir_all(dir)?;
        Self::spawn(dir)
    }

    /// The registry `SOCI_TEST_REGISTRY` names, when set.
    fn external() -> Option<Self> {
        let addr = std::env::var("SOCI_TEST_REGISTRY").ok()?;
        Some(Self {
            addr,
            _service: Service::external(),
            _dir: None,
        })
    }

    fn spawn(dir: &Path) -> Result<Self> {
        let binary = find_binary("docker-registry")?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let child = stop_with_parent(&mut Command::new(binary))
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let service = Service::ready(child, "docker-registry", &addr, "/v2/")?;
        Ok(Self {
            addr,
            _service: service,
            _dir: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_status;

    #[test]
    fn registry_answers_v2() {
        let registry = Registry::start().expect("start docker-registry");
        assert_eq!(http_status(&registry.addr, "/v2/").unwrap(), 200);
    }

    #[test]
    fn a_registry_started_in_a_folder_keeps_its_files_there() {
        let dir = temp_dir("soci-registry-in").unwrap();
        let inside = dir.path().join("registry");
        let registry = Registry::start_in(&inside).expect("start docker-registry");
        assert_eq!(http_status(&registry.addr, "/v2/").unwrap(), 200);
        assert!(inside.join("config.yml").is_file());
        assert!(inside.join("registry.log").is_file());
        drop(registry);
        assert!(inside.is_dir(), "the caller's folder is left in place");
    }
}
