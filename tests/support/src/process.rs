//! Child processes of a harness: finding their binaries, tying their lives to the harness's,
//! and waiting until they answer.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::{Context, Result};

/// A port the kernel just handed out and released; good enough for a child to bind right away.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The project's Python virtual environment, where `cargo xtask setup` installs the Python tools
/// (moto, checkov, zig, cargo-zigbuild, actionlint, zizmor) so that the system's and the user's
/// site-packages are never touched: `$SOCI_VENV`, or `<workspace>/target/venv`. `xtask/setup.sh`
/// and `cargo xtask` (which sets `SOCI_VENV` for its children) use the same rule.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("SOCI_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // tests/support -> the workspace root.
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv"),
    }
}

/// Finds `name` in the project's virtual environment (see [`venv_dir`]) first, then on PATH and
/// in the usual apt places.
pub fn find_binary(name: &str) -> Result<PathBuf> {
    find_in(name, &venv_dir().join("bin"), std::env::var_os("PATH"))
}

fn find_in(name: &str, venv_bin: &Path, path: Option<std::ffi::OsString>) -> Result<PathBuf> {
    let mut dirs = vec![venv_bin.to_path_buf()];
    if let Some(path) = path {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.extend(["/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "`{name}` not found in {} nor on PATH: `cargo xtask setup` (run by `cargo xtask test`) installs it",
                venv_bin.display()
            )
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
    let status = std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .with_context(|| {
            format!(
                "{addr} answered {:?}, not HTTP",
                String::from_utf8_lossy(&head)
            )
        })?;
    Ok(status)
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

/// A service's child process, killed (by pid) and reaped on drop; `None` for a service someone
/// else runs.
pub(crate) struct Service {
    child: Option<Child>,
    /// Says so on stderr when stopped (for harnesses whose log shows every process).
    announce: Option<String>,
}

impl Service {
    pub(crate) fn external() -> Self {
        Self {
            child: None,
            announce: None,
        }
    }

    /// Waits until `addr` answers `path` with a status below 500; the child is stopped (by the
    /// returned guard's drop, or right here on failure) if it does not.
    pub(crate) fn ready(mut child: Child, what: &str, addr: &str, path: &str) -> Result<Self> {
        let ready = wait_until_ready(&mut child, what, addr, path);
        let service = Self {
            child: Some(child),
            announce: None,
        };
        ready.map(|()| service)
    }

    /// Prints the process id now and when the service stops.
    pub(crate) fn announced(mut self, what: &str, endpoint: &str) -> Self {
        if let Some(child) = &self.child {
            eprintln!("{what} pid {} on {endpoint}", child.id());
            self.announce = Some(what.to_string());
        }
        self
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            let _ = child.kill();
            let _ = child.wait();
            if let Some(what) = &self.announce {
                eprintln!("{what} pid {pid} stopped");
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A tool in the project's venv wins over one of the same name on PATH, so tests run the
    /// versions `cargo xtask setup` pinned, not whatever the system Python carries.
    #[test]
    fn the_project_venv_comes_before_path() {
        let venv = crate::temp_dir("soci-venv").unwrap();
        let bin = venv.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("sh"), "#!/bin/false\n").unwrap();
        let path = std::env::var_os("PATH");
        // `sh` is on every PATH; the venv's own must shadow it.
        assert_eq!(find_in("sh", &bin, path.clone()).unwrap(), bin.join("sh"));
        // Tools the venv lacks still come from PATH.
        assert_ne!(find_in("ls", &bin, path.clone()).unwrap(), bin.join("ls"));
        let message = find_in("soci-no-such-tool", &bin, path)
            .unwrap_err()
            .to_string();
        assert!(message.contains("cargo xtask setup"), "{message}");
        assert!(message.contains(&bin.display().to_string()), "{message}");
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
