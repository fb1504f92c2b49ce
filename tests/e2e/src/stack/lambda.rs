//! The Lambda functions as Terraform configured them, and the packaged `bootstrap` processes
//! that run them here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail, ensure};

use super::Arch;

/// `GetFunctionConfiguration`, the parts the run needs.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    pub name: String,
    pub arn: String,
    pub env: BTreeMap<String, String>,
    pub timeout: u64,
    pub memory: i32,
    pub handler: String,
    pub runtime: String,
    pub architectures: Vec<String>,
    pub code_sha256: String,
}

pub async fn function_config(
    client: &aws_sdk_lambda::Client,
    name: &str,
) -> anyhow::Result<FunctionConfig> {
    let out = client
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "GetFunctionConfiguration {name}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(FunctionConfig {
        name: name.to_string(),
        arn: out.function_arn().unwrap_or_default().to_string(),
        env: out
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        timeout: out.timeout().map_or(3, |t| u64::try_from(t).unwrap_or(3)),
        memory: out.memory_size().unwrap_or(128),
        handler: out.handler().unwrap_or_default().to_string(),
        runtime: out
            .runtime()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        architectures: out
            .architectures()
            .iter()
            .map(|a| a.as_str().to_string())
            .collect(),
        code_sha256: out.code_sha256().unwrap_or_default().to_string(),
    })
}

/// A packaged `bootstrap` running against the emulator; killed by pid on drop.
pub struct LambdaProcess {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

/// How to start a bootstrap for an architecture (qemu for arm64 on another host).
pub fn launcher(arch: Arch) -> anyhow::Result<Option<(PathBuf, Vec<String>)>> {
    let host_is_arm = std::env::consts::ARCH == "aarch64";
    match arch {
        Arch::X86_64 if !host_is_arm => Ok(None),
        Arch::Arm64 if host_is_arm => Ok(None),
        Arch::Arm64 => {
            let qemu = test_support::find_binary("qemu-aarch64-static")
                .map_err(|e| anyhow::anyhow!("{e} (Debian: apt-get install qemu-user-static)"))?;
            let sysroot = Path::new("/usr/aarch64-linux-gnu");
            ensure!(
                sysroot.join("lib/ld-linux-aarch64.so.1").is_file()
                    && sysroot.join("lib/libgcc_s.so.1").is_file(),
                "the arm64 bootstrap is a glibc binary: qemu needs an aarch64 glibc and libgcc in {} \
                 (Debian: apt-get install libc6-arm64-cross libgcc-s1-arm64-cross)",
                sysroot.display()
            );
            Ok(Some((
                qemu,
                vec!["-L".into(), sysroot.display().to_string()],
            )))
        }
        Arch::X86_64 => {
            let qemu = test_support::find_binary("qemu-x86_64-static")
                .map_err(|e| anyhow::anyhow!("{e} (Debian: apt-get install qemu-user-static)"))?;
            Ok(Some((
                qemu,
                vec!["-L".into(), "/usr/x86_64-linux-gnu".into()],
            )))
        }
    }
}

impl LambdaProcess {
    pub fn start(
        name: &str,
        bootstrap: &Path,
        launcher: Option<&(PathBuf, Vec<String>)>,
        env: &[(String, String)],
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let task_root = bootstrap.parent().unwrap_or(Path::new("/"));
        let mut command = match launcher {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bootstrap);
                c
            }
            None => Command::new(bootstrap),
        };
        let child = test_support::stop_with_parent(&mut command)
            .current_dir(task_root)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {} ({})", bootstrap.display(), name))?;
        println!("started {name} (pid {})", child.id());
        Ok(Self {
            name: name.to_string(),
            log,
            child,
        })
    }

    /// An error when the process has exited (a Lambda runtime never exits by itself).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); its log:\n{}",
                self.name,
                tail(&self.log, 30)
            );
        }
        Ok(())
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = self.child.kill();
        let _ = self.child.wait();
        println!("stopped {} (pid {pid})", self.name);
    }
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
