//! Real services for tests, started as child processes on 127.0.0.1 and stopped (by process id)
//! when dropped.
//!
//! - [`Registry`]: Debian's `docker-registry` (distribution 2.8), filesystem storage in a temp dir.
//! - [`Moto`]: `moto_server` from `moto[server]` (S3, ECR control plane, IAM, Lambda, EventBridge).
//!
//! A missing binary is an error that says how to install it (`cargo xtask setup`), never a skip.
//! Set `SOCI_TEST_REGISTRY=host:port` or `SOCI_TEST_AWS_ENDPOINT=url` to use a service that is
//! already running (LocalStack, a shared registry) instead of starting one.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A fresh temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port the kernel just handed out and released; good enough for a child to bind right away.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Finds `name` on PATH (and in the usual pip/apt places CI installs into).
pub fn find_binary(name: &str) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".local/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "`{name}` not found on PATH: run `cargo xtask setup` (or .ci/run) to install it"
            )
            .into()
        })
}

/// Sends a bare HTTP/1.1 GET and returns the status code (no client crate needed for a probe).
pub fn http_status(addr: &str, path: &str) -> Result<u16> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let status = std::str::from_utf8(&head[9..12])?.parse()?;
    Ok(status)
}

fn wait_until_ready(child: &mut Child, what: &str, addr: &str, path: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(format!("{what} exited during start-up ({status})").into());
        }
        if let Ok(code) = http_status(addr, path)
            && code < 500
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{what} did not answer on {addr} within 60 s").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Has the kernel send SIGTERM to `command`'s process when the thread that spawns it ends, so a
/// service never outlives its harness, even when a signal kills the harness before its `Drop`
/// can stop the service. Spawn from a thread that lives as long as the service should (the main
/// thread, or the test's own thread).
pub fn stop_with_parent(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls only prctl, getppid
    // and _exit, which are async-signal-safe; it touches no memory of the parent.
    let parent = std::process::id() as libc::pid_t;
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would signal us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        })
    }
}

/// A child process killed (by pid) and reaped on drop.
struct Service {
    child: Option<Child>,
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running OCI registry.
pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    _service: Service,
    _dir: Option<TempDir>,
}

impl Registry {
    /// Starts `docker-registry` on a free port with storage in a fresh temp dir (removed when
    /// the registry is dropped), or uses `SOCI_TEST_REGISTRY` when set.
    pub fn start() -> Result<Self> {
        if let Some(registry) = Self::external() {
            return Ok(registry);
        }
        let dir = TempDir::new("soci-registry")?;
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
            _service: Service { child: None },
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
        let mut child = stop_with_parent(&mut Command::new(binary))
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let ready = wait_until_ready(&mut child, "docker-registry", &addr, "/v2/");
        let service = Service { child: Some(child) };
        ready?;
        Ok(Self {
            addr,
            _service: service,
            _dir: None,
        })
    }
}

/// A running AWS emulator endpoint.
pub struct Moto {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    _service: Service,
}

impl Moto {
    /// Starts `moto_server` on a free port, or uses `SOCI_TEST_AWS_ENDPOINT` when set.
    pub fn start() -> Result<Self> {
        if let Ok(endpoint) = std::env::var("SOCI_TEST_AWS_ENDPOINT") {
            return Ok(Self {
                endpoint,
                _service: Service { child: None },
            });
        }
        let binary = find_binary("moto_server")?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut child = stop_with_parent(&mut Command::new(binary))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let ready = wait_until_ready(&mut child, "moto_server", &addr, "/moto-api/");
        let service = Service { child: Some(child) };
        ready?;
        Ok(Self {
            endpoint: format!("http://{addr}"),
            _service: service,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_answers_v2() {
        let registry = Registry::start().expect("start docker-registry");
        assert_eq!(http_status(&registry.addr, "/v2/").unwrap(), 200);
    }

    #[test]
    fn a_registry_started_in_a_folder_keeps_its_files_there() {
        let dir = TempDir::new("soci-registry-in").unwrap();
        let inside = dir.path().join("registry");
        let registry = Registry::start_in(&inside).expect("start docker-registry");
        assert_eq!(http_status(&registry.addr, "/v2/").unwrap(), 200);
        assert!(inside.join("config.yml").is_file());
        assert!(inside.join("registry.log").is_file());
        drop(registry);
        assert!(inside.is_dir(), "the caller's folder is left in place");
    }

    /// What happens to a service when the harness is killed: its spawning thread ends without
    /// any `Drop`, and the kernel sends the service SIGTERM.
    #[test]
    fn a_service_ends_when_its_spawner_does() {
        use std::os::unix::process::ExitStatusExt;
        let mut child = std::thread::spawn(|| {
            stop_with_parent(&mut Command::new("sleep"))
                .arg("60")
                .spawn()
                .expect("spawn sleep")
        })
        .join()
        .expect("spawning thread");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the child outlived its spawner by 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}");
    }
}
