//! An AWS emulator: `moto_server` from `moto[server]`.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::process::{Service, find_binary, free_port, stop_with_parent};
use crate::{Context, Result};

/// A running AWS emulator endpoint.
pub struct Moto {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    _service: Service,
}

impl Moto {
    /// Region moto serves by default, and its fixed account.
    pub const REGION: &str = "us-east-1";
    pub const ACCOUNT_ID: &str = "123456789012";

    /// Starts `moto_server` on a free port, or uses `SOCI_TEST_AWS_ENDPOINT` when set.
    pub fn start() -> Result<Self> {
        if let Ok(endpoint) = std::env::var("SOCI_TEST_AWS_ENDPOINT") {
            return Ok(Self {
                endpoint,
                _service: Service::external(),
            });
        }
        Self::spawn(None)
    }

    /// Starts a `moto_server` of our own (never a shared one: the caller checks moto's account
    /// and behaviour), its output in `log`, and says on stderr when it starts and stops.
    pub fn start_own(log: &Path) -> Result<Self> {
        let moto = Self::spawn(Some(log))?;
        Ok(Self {
            _service: moto._service.announced("moto_server", &moto.endpoint),
            endpoint: moto.endpoint,
        })
    }

    fn spawn(log: Option<&Path>) -> Result<Self> {
        let binary = find_binary("moto_server")?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let (stdout, stderr) = match log {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                (Stdio::from(file.try_clone()?), Stdio::from(file))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = stop_with_parent(&mut Command::new(binary))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()?;
        let service = Service::ready(child, "moto_server", &addr, "/moto-api/")?;
        Ok(Self {
            endpoint: format!("http://{addr}"),
            _service: service,
        })
    }

    /// The environment the AWS SDKs, the AWS CLI, boto3 and Terraform need to talk to this
    /// moto: fake credentials, its region and the endpoint.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", Self::REGION.into()),
            ("AWS_DEFAULT_REGION", Self::REGION.into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_moto_answers_and_logs() {
        let dir = crate::temp_dir("soci-moto").unwrap();
        let log = dir.path().join("moto.log");
        let moto = Moto::start_own(&log).expect("start moto_server");
        let addr = moto.endpoint.trim_start_matches("http://");
        assert!(crate::http_status(addr, "/moto-api/").unwrap() < 500);
        assert!(log.is_file());
        assert!(
            moto.env()
                .contains(&("AWS_ENDPOINT_URL", moto.endpoint.clone()))
        );
    }
}
