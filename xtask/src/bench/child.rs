//! Runs a command as a child process and measures it from outside: wall time, CPU time and peak
//! RSS come from the kernel (`wait4`'s `rusage`), so what is measured is exactly the command a
//! user would run, with no reporting code inside it.

use std::io::Read;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

/// What one measured child did.
pub struct ChildRun {
    /// Wall time from spawn to exit.
    pub seconds: f64,
    /// User + system CPU time of the child (all its threads).
    pub cpu_seconds: f64,
    /// The child's peak resident set size.
    pub peak_rss_kib: u64,
    /// Bytes the child caused to be written to storage (the kernel's `write_bytes`, which
    /// `rusage` reports in 512-byte blocks).
    pub written_bytes: u64,
    pub stdout: String,
}

/// Runs `command` to completion; fails with its output when it exits unsuccessfully.
pub fn run_measured(command: &mut Command) -> anyhow::Result<ChildRun> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let (status, usage) = wait4(pid).with_context(|| format!("waiting for {command:?}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        bail!("{command:?} failed ({status}):\n{stdout}\n{stderr}");
    }
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(ChildRun {
        seconds,
        cpu_seconds: cpu(usage.ru_utime) + cpu(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        peak_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        written_bytes: u64::try_from(usage.ru_oublock).unwrap_or(0) * 512,
        stdout,
    })
}

/// Reads a pipe to its end on a thread, so a chatty child never blocks on a full pipe.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// Reaps `pid` and returns its exit status and resource usage. `std::process::Child::wait`
/// discards the `rusage` the kernel hands back, hence the direct call.
fn wait4(pid: libc::pid_t) -> std::io::Result<(ExitStatus, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct; wait4 overwrites it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live, writable locals of the types wait4 expects, and
        // `pid` is our own child, which nothing else reaps.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            return Ok((ExitStatus::from_raw(status), usage));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}
