//! `cargo xtask package`: reproducible Lambda zips for `provided.al2023`, x86_64 and arm64.
//!
//! - Builds every Lambda package of the workspace ([`FUNCTIONS`] that exist in `cargo metadata`) in
//!   release, in ONE `cargo zigbuild` per architecture (dependencies shared), for the glibc-pinned
//!   targets `x86_64-unknown-linux-gnu.2.34` / `aarch64-unknown-linux-gnu.2.34`: zig links against
//!   glibc 2.34 symbol versions, which is what Amazon Linux 2023 ships, whatever glibc this machine
//!   has. aws-lc-sys (the SDK's default rustls crypto) builds with zig's C compiler, so the default
//!   TLS stack is kept. Each binary is then checked: right ELF machine, no `GLIBC_` version newer
//!   than 2.34, no absolute path of this machine (workspace, cargo home, target dir) inside.
//! - Paths: `--remap-path-prefix` for Rust (through `CARGO_ENCODED_RUSTFLAGS`, so only these
//!   target builds are affected) and `-ffile-prefix-map` in `CFLAGS_<target>` for C code
//!   (aws-lc's `__FILE__`). `strip = true` comes from the workspace release profile.
//! - Writes `<out>/<function>-<arch>.zip` holding one entry `bootstrap` (mode 0755, Unix, time
//!   1980-01-01 00:00, deflate level 9, no extra fields): byte-identical across runs.
//! - Writes `<out>/manifest.json` (function, architecture, file, size, sha256 hex, base64 of the raw
//!   sha256 = Terraform's `source_code_hash`) and `<out>/SHA256SUMS` (`sha256sum -c` format).
//!   Entries of the other architecture from an earlier run are kept while their zip is unchanged.
//!
//! `<out>` defaults to `<target directory>/lambda`, the target directory being `cargo metadata`'s
//! `target_directory`: `<workspace>/target` unless `CARGO_TARGET_DIR` (or cargo config) says
//! otherwise; the build itself uses the same target directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
pub use xtask::arch::{Arch, ArchChoice};

/// The Lambda packages (package name = binary name = function name in the zip file names).
pub const FUNCTIONS: [&str; 2] = ["ecr-image-filter", "soci-index-generator"];

/// The newest glibc symbol version allowed (Amazon Linux 2023).
pub const MAX_GLIBC: (u32, u32) = (2, 34);

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Architecture(s) to build.
    #[arg(long, value_enum, default_value_t = ArchChoice::All)]
    pub arch: ArchChoice,
    /// Only these functions (repeatable; default: every Lambda package in the workspace).
    #[arg(long = "function", value_name = "NAME")]
    pub functions: Vec<String>,
    /// Output directory (default: `<cargo target directory>/lambda`).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// The ELF machine a bootstrap for `arch` must be built for.
fn elf_machine(arch: Arch) -> object::elf::Machine {
    match arch {
        Arch::X86_64 => object::elf::EM_X86_64,
        Arch::Arm64 => object::elf::EM_AARCH64,
    }
}

/// The cargo-zigbuild target: the triple pinned to glibc 2.34.
fn zig_target(arch: Arch) -> String {
    format!("{}.{}.{}", arch.rust_target(), MAX_GLIBC.0, MAX_GLIBC.1)
}

/// One zip in `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub function: String,
    pub architecture: Arch,
    /// File name inside the output directory.
    pub file: String,
    pub size: u64,
    /// Lowercase hex sha256 of the zip.
    pub sha256: String,
    /// base64 of the raw sha256 (Terraform's `source_code_hash` / `filebase64sha256`).
    pub sha256_base64: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub artifacts: Vec<Artifact>,
}

impl Manifest {
    pub fn find(&self, function: &str, arch: Arch) -> Option<&Artifact> {
        self.artifacts
            .iter()
            .find(|a| a.function == function && a.architecture == arch)
    }

    /// Reads `<dir>/manifest.json`.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("manifest.json");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }
}

pub use xtask::workspace::Workspace;

/// The Lambda packages present in the workspace.
pub fn functions(workspace: &Workspace) -> Vec<&'static str> {
    FUNCTIONS
        .into_iter()
        .filter(|f| workspace.packages.iter().any(|p| p == f))
        .collect()
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn step(message: impl std::fmt::Display) {
    eprintln!("==> {message}");
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let artifacts = package(&args)?;
    println!("{:<44} {:>12}  sha256", "zip", "bytes");
    for artifact in &artifacts {
        println!(
            "{:<44} {:>12}  {}",
            artifact.file, artifact.size, artifact.sha256
        );
    }
    Ok(())
}

/// Builds, checks and zips; returns the artifacts built by this run.
pub fn package(args: &Args) -> anyhow::Result<Vec<Artifact>> {
    let workspace = Workspace::load()?;
    let available = functions(&workspace);
    let functions: Vec<&str> = if args.functions.is_empty() {
        for missing in FUNCTIONS.iter().filter(|f| !available.contains(f)) {
            eprintln!("warning: package `{missing}` is not in the workspace yet; not packaged");
        }
        available.clone()
    } else {
        let mut chosen = Vec::new();
        for name in &args.functions {
            let Some(found) = available.iter().find(|f| **f == name.as_str()) else {
                bail!("unknown function {name:?}; the workspace has {available:?}");
            };
            chosen.push(*found);
        }
        chosen
    };
    ensure!(
        !functions.is_empty(),
        "no Lambda package found in the workspace ({FUNCTIONS:?})"
    );
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| workspace.default_out_dir());
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let arches = args.arch.arches();
    let total = arches.len();
    let mut built = Vec::new();
    for (index, arch) in arches.into_iter().enumerate() {
        step(format!(
            "[{}/{total}] building {} for {arch} ({})",
            index + 1,
            functions.join(", "),
            zig_target(arch)
        ));
        build(&workspace, arch, &functions)?;
        for function in &functions {
            let binary = workspace
                .target_dir
                .join(arch.rust_target())
                .join("release")
                .join(function);
            let elf = std::fs::read(&binary)
                .with_context(|| format!("reading the built binary {}", binary.display()))?;
            let glibc =
                check_elf(&elf, arch).with_context(|| format!("checking {}", binary.display()))?;
            check_no_build_paths(&elf, &build_paths(&workspace))
                .with_context(|| format!("checking {}", binary.display()))?;
            let zip = bootstrap_zip(&elf)?;
            let file = format!("{function}-{arch}.zip");
            let path = out_dir.join(&file);
            std::fs::write(&path, &zip).with_context(|| format!("writing {}", path.display()))?;
            let artifact = artifact(function, arch, file, &zip);
            step(format!(
                "      {} ({} bytes, binary {} bytes, {})",
                path.display(),
                artifact.size,
                elf.len(),
                match glibc {
                    Some((major, minor)) => format!("needs glibc {major}.{minor}"),
                    None => "static".to_owned(),
                }
            ));
            built.push(artifact);
        }
    }
    write_manifest(&out_dir, &built)?;
    step(format!(
        "wrote {} and {}",
        out_dir.join("manifest.json").display(),
        out_dir.join("SHA256SUMS").display()
    ));
    Ok(built)
}

/// One `cargo zigbuild --release --target <arch>.2.34 -p A -p B`.
fn build(workspace: &Workspace, arch: Arch, functions: &[&str]) -> anyhow::Result<()> {
    check_tools(arch)?;
    let paths = build_paths(workspace);
    let remap = |from: &Path, to: &str| format!("{}={to}", from.display());
    let mut rustflags = Vec::new();
    let mut cflags = Vec::new();
    for (from, to) in &paths {
        rustflags.push(format!("--remap-path-prefix={}", remap(from, to)));
        cflags.push(format!("-ffile-prefix-map={}", remap(from, to)));
    }
    let mut command = Command::new(cargo());
    command
        .arg("zigbuild")
        .args(["--release", "--target", &zig_target(arch)])
        .current_dir(&workspace.root)
        .env("CARGO_TARGET_DIR", &workspace.target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"))
        .env(
            format!("CFLAGS_{}", arch.rust_target().replace('-', "_")),
            cflags.join(" "),
        )
        .env_remove("RUSTFLAGS");
    for function in functions {
        command.args(["-p", function]);
    }
    let status = command.status().context("running `cargo zigbuild`")?;
    ensure!(
        status.success(),
        "`cargo zigbuild` for {arch} failed ({status})"
    );
    Ok(())
}

/// Fails early, with the fix, when cargo-zigbuild, zig or the rust target is missing.
fn check_tools(arch: Arch) -> anyhow::Result<()> {
    let zigbuild = Command::new(cargo()).args(["zigbuild", "--help"]).output();
    if !zigbuild.is_ok_and(|o| o.status.success()) {
        bail!(
            "`cargo zigbuild` is not available: run `cargo xtask setup` (installs zig and cargo-zigbuild into the project's venv)"
        );
    }
    if let Ok(output) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        && output.status.success()
        && !String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|l| l.trim() == arch.rust_target())
    {
        bail!(
            "rust target {} is not installed: run `cargo xtask setup` (or `rustup target add {}`)",
            arch.rust_target(),
            arch.rust_target()
        );
    }
    Ok(())
}

/// Absolute paths of this machine that must not end up in a binary, with their replacement.
pub fn build_paths(workspace: &Workspace) -> Vec<(PathBuf, &'static str)> {
    let mut paths = vec![(workspace.root.clone(), "/build")];
    if !workspace.target_dir.starts_with(&workspace.root) {
        paths.push((workspace.target_dir.clone(), "/build/target"));
    }
    paths.push((cargo_home(), "/cargo"));
    if let Some(rustup_home) = rustup_home() {
        paths.push((rustup_home, "/rustup"));
    }
    paths
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent/.cargo"))
}

fn rustup_home() -> Option<PathBuf> {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".rustup")))
}

/// Checks the ELF machine and the glibc symbol versions; returns the newest glibc needed (`None`
/// for a binary with no glibc version requirement, e.g. static).
pub fn check_elf(elf: &[u8], arch: Arch) -> anyhow::Result<Option<(u32, u32)>> {
    use object::Object;
    use object::read::elf::{ElfFile64, FileHeader};
    let file = ElfFile64::<object::Endianness>::parse(elf).context("not a 64-bit ELF file")?;
    let machine = file.elf_header().e_machine(file.endian());
    ensure!(
        machine == elf_machine(arch),
        "ELF machine {machine} is not {arch}"
    );
    let newest = glibc_versions(&file)?.into_iter().max();
    if let Some(version @ (major, minor)) = newest {
        ensure!(
            version <= MAX_GLIBC,
            "needs GLIBC_{major}.{minor}, newer than Amazon Linux 2023's {}.{}",
            MAX_GLIBC.0,
            MAX_GLIBC.1
        );
    }
    // A dynamic binary must at least have its interpreter; a static one has neither.
    let dynamic = file.section_by_name(".interp").is_some();
    ensure!(
        !dynamic || newest.is_some(),
        "dynamic binary without glibc version requirements"
    );
    Ok(newest)
}

/// All `GLIBC_x.y[.z]` version names the binary refers to (from `.dynstr`).
pub fn glibc_versions(
    file: &object::read::elf::ElfFile64<'_, object::Endianness>,
) -> anyhow::Result<Vec<(u32, u32)>> {
    use object::{Object, ObjectSection};
    let Some(dynstr) = file.section_by_name(".dynstr") else {
        return Ok(Vec::new());
    };
    let data = dynstr.data().context("reading .dynstr")?;
    let mut versions = Vec::new();
    for name in data.split(|&b| b == 0) {
        let Some(rest) = name.strip_prefix(b"GLIBC_") else {
            continue;
        };
        let text = std::str::from_utf8(rest).context("non-UTF-8 GLIBC_ version name")?;
        if text == "PRIVATE" {
            bail!("binary uses GLIBC_PRIVATE symbols");
        }
        let mut parts = text.split('.').map(str::parse::<u32>);
        let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
            bail!("unexpected glibc version name GLIBC_{text}");
        };
        versions.push((major, minor));
    }
    Ok(versions)
}

/// Fails if any of `paths` occurs in the bytes.
pub fn check_no_build_paths(bytes: &[u8], paths: &[(PathBuf, &str)]) -> anyhow::Result<()> {
    for (path, _) in paths {
        let needle = path.to_string_lossy();
        let needle = needle.trim_end_matches('/');
        if needle.len() < 4 {
            continue;
        }
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            bail!("the binary contains the build path {needle}");
        }
    }
    Ok(())
}

/// A zip with the single executable entry `bootstrap`, byte-identical for identical input.
pub fn bootstrap_zip(binary: &[u8]) -> anyhow::Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(zip::DateTime::default())
        .system(zip::System::Unix)
        .unix_permissions(0o755)
        .large_file(false);
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file("bootstrap", options)
        .context("starting the zip entry")?;
    writer.write_all(binary).context("compressing bootstrap")?;
    let cursor = writer.finish().context("finishing the zip")?;
    Ok(cursor.into_inner())
}

pub fn artifact(function: &str, arch: Arch, file: String, zip: &[u8]) -> Artifact {
    let digest = Sha256::digest(zip);
    Artifact {
        function: function.to_owned(),
        architecture: arch,
        file,
        size: zip.len() as u64,
        sha256: hex::encode(digest),
        sha256_base64: base64::engine::general_purpose::STANDARD.encode(digest),
    }
}

/// Writes manifest.json and SHA256SUMS: this run's artifacts plus earlier entries (other arch or
/// function) whose zip is still on disk with the recorded hash.
fn write_manifest(out_dir: &Path, built: &[Artifact]) -> anyhow::Result<()> {
    let mut entries: BTreeMap<(String, Arch), Artifact> = BTreeMap::new();
    if let Ok(previous) = Manifest::read(out_dir) {
        for old in previous.artifacts {
            let still_there = std::fs::read(out_dir.join(&old.file))
                .is_ok_and(|bytes| hex::encode(Sha256::digest(&bytes)) == old.sha256);
            if still_there {
                entries.insert((old.function.clone(), old.architecture), old);
            }
        }
    }
    for artifact in built {
        entries.insert(
            (artifact.function.clone(), artifact.architecture),
            artifact.clone(),
        );
    }
    let manifest = Manifest {
        artifacts: entries.into_values().collect(),
    };
    let mut json = serde_json::to_vec_pretty(&manifest).context("serializing manifest.json")?;
    json.push(b'\n');
    let path = out_dir.join("manifest.json");
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    let sums: String = manifest
        .artifacts
        .iter()
        .map(|a| format!("{}  {}\n", a.sha256, a.file))
        .collect();
    let path = out_dir.join("SHA256SUMS");
    std::fs::write(&path, sums).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_is_deterministic_and_executable() {
        let binary = b"\x7fELF pretend binary".repeat(1000);
        let first = bootstrap_zip(&binary).unwrap();
        let second = bootstrap_zip(&binary).unwrap();
        assert_eq!(first, second);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(first)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        assert_eq!(entry.last_modified(), Some(zip::DateTime::default()));
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        assert_eq!(content, binary);
    }

    #[test]
    fn artifact_hashes() {
        let a = artifact("f", Arch::Arm64, "f-arm64.zip".into(), b"abc");
        assert_eq!(
            a.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            a.sha256_base64,
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(serde_json::to_value(a.architecture).unwrap(), "arm64");
    }

    #[test]
    fn build_paths_are_found() {
        let paths = vec![(PathBuf::from("/work/main"), "/build")];
        assert!(check_no_build_paths(b"panic at /work/main/src/x.rs", &paths).is_err());
        assert!(check_no_build_paths(b"panic at /build/src/x.rs", &paths).is_ok());
    }
}
