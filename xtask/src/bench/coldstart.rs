//! `cargo xtask bench coldstart`: cold start of the packaged Lambda `bootstrap`s, measured as the
//! time from process start to the first Lambda Runtime API request
//! (`GET /2018-06-01/runtime/invocation/next`) against a local listener.
//!
//! Only the x86_64 zips run: arm64 ones under qemu would measure qemu, not us.

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use crate::release::package::FUNCTIONS;

#[derive(clap::Args)]
pub struct ColdstartArgs {
    /// Where `cargo xtask package` wrote the zips.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Starts measured per function.
    #[arg(long, default_value_t = 20)]
    runs: usize,
}

/// The environment a Lambda gives its process, minus the Runtime API address.
const LAMBDA_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/bin:/bin"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_SESSION_TOKEN", "testing"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ("AWS_LAMBDA_LOG_STREAM_NAME", "cold"),
    ("AWS_LAMBDA_LOG_GROUP_NAME", "cold"),
    (
        "soci_index_generator_lambda_arn",
        "arn:aws:lambda:us-east-1:123456789012:function:gen",
    ),
];

pub fn bench(args: ColdstartArgs) -> anyhow::Result<()> {
    let dir = args
        .dir
        .unwrap_or_else(|| crate::project_root().join("target/lambda"));
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    for function in FUNCTIONS {
        let zip = dir.join(format!("{function}-x86_64.zip"));
        let exe = extract_bootstrap(&zip, &scratch.path().join(function))?;
        let mut times = (0..args.runs.max(1))
            .map(|_| start_once(&exe, function))
            .collect::<anyhow::Result<Vec<f64>>>()?;
        times.sort_by(f64::total_cmp);
        let size = std::fs::metadata(&zip)?.len();
        println!(
            "{function}: zip {size} bytes; process start -> first runtime API request: median {:.1} ms, min {:.1} ms, max {:.1} ms ({} runs)",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            times.len()
        );
    }
    Ok(())
}

fn extract_bootstrap(zip: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let file = std::fs::File::open(zip)
        .with_context(|| format!("opening {} (run `cargo xtask package`)", zip.display()))?;
    let mut archive = zip::ZipArchive::new(file).with_context(|| zip.display().to_string())?;
    let mut entry = archive
        .by_name("bootstrap")
        .with_context(|| format!("{}: no `bootstrap`", zip.display()))?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes)?;
    std::fs::create_dir_all(dir)?;
    let exe = dir.join("bootstrap");
    std::fs::write(&exe, bytes)?;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))?;
    Ok(exe)
}

/// Milliseconds from spawning `exe` to its first Runtime API request.
fn start_once(exe: &Path, function: &str) -> anyhow::Result<f64> {
    let server = TcpListener::bind("127.0.0.1:0")?;
    let port = server.local_addr()?.port();
    let started = Instant::now();
    let mut child = Command::new(exe)
        .env_clear()
        .envs(LAMBDA_ENV.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let accepted = accept_within(&server, &mut child, Duration::from_secs(10));
    let mut conn = match accepted {
        Ok(conn) => conn,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e.context(format!("{function}: no Runtime API request")));
        }
    };
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = [0u8; 4096];
    let n = conn.read(&mut request)?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let _ = child.kill();
    let _ = child.wait();
    let head = String::from_utf8_lossy(&request[..n]);
    ensure!(
        head.contains("/runtime/invocation/next"),
        "{function}: first request was not the Runtime API's next invocation: {head:.200}"
    );
    Ok(elapsed)
}

/// Polls for the first connection, so a bootstrap that dies or hangs ends the run with an error.
fn accept_within(
    server: &TcpListener,
    child: &mut Child,
    limit: Duration,
) -> anyhow::Result<TcpStream> {
    server.set_nonblocking(true)?;
    let started = Instant::now();
    loop {
        match server.accept() {
            Ok((conn, _)) => return Ok(conn),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the bootstrap exited ({status}) before its first request");
        }
        ensure!(started.elapsed() < limit, "none within {limit:?}");
        std::thread::sleep(Duration::from_micros(100));
    }
}
