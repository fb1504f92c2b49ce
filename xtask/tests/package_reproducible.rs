//! `cargo xtask package` end to end: real cross builds for x86_64 and arm64, packaged twice into
//! two directories; the zips must be byte-identical, hold one executable `bootstrap`, need no
//! glibc newer than 2.34 (checked with binutils' `readelf`, independently of xtask's own check),
//! and contain no absolute path of this machine.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::find_binary;

const FUNCTIONS: [&str; 2] = ["ecr-image-filter", "soci-index-generator"];
const ARCHES: [(&str, &str); 2] = [("x86_64", "X86-64"), ("arm64", "AArch64")];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn package(out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["package", "--arch", "all", "--out-dir"])
        .arg(out)
        .current_dir(workspace_root())
        .status()
        .expect("run xtask package");
    assert!(
        status.success(),
        "xtask package failed ({status}); `cargo xtask setup` installs zig, cargo-zigbuild and the rust targets"
    );
}

fn bootstrap(zip_bytes: &[u8]) -> (Vec<u8>, Option<u32>, zip::DateTime) {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    assert_eq!(archive.len(), 1, "exactly one entry");
    let mut entry = archive.by_index(0).unwrap();
    assert_eq!(entry.name().unwrap(), "bootstrap");
    let mode = entry.unix_mode();
    let time = entry.last_modified().unwrap();
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    (bytes, mode, time)
}

/// `GLIBC_x.y` versions the binary needs, per `readelf -V`.
fn readelf_glibc(path: &Path) -> Vec<(u32, u32)> {
    let readelf =
        find_binary("readelf").expect("readelf (binutils) is needed: run `cargo xtask setup`");
    let out = Command::new(readelf)
        .args(["-V", "--wide"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut p = v.split('.').map(|n| n.parse::<u32>());
            Some((p.next()?.ok()?, p.next()?.ok()?))
        })
        .collect()
}

fn readelf_machine(path: &Path) -> String {
    let out = Command::new(find_binary("readelf").unwrap())
        .arg("-h")
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find(|l| l.trim_start().starts_with("Machine:"))
        .unwrap_or_default()
        .to_owned()
}

/// The zip's `bootstrap`: mode 0755, fixed timestamp, no build paths, the right machine, and
/// glibc symbol versions Amazon Linux 2023 (glibc 2.34) provides. Leaves the binary at `elf`.
fn assert_bootstrap_fits_al2023(
    file: &str,
    zip: &[u8],
    forbidden: &[String],
    elf: &Path,
    machine: &str,
) {
    let (binary, mode, time) = bootstrap(zip);
    assert_eq!(
        mode.map(|m| m & 0o777),
        Some(0o755),
        "{file}: bootstrap mode"
    );
    assert_eq!(time, zip::DateTime::default(), "{file}: fixed timestamp");
    for path in forbidden {
        assert!(
            !binary.windows(path.len()).any(|w| w == path.as_bytes()),
            "{file}: bootstrap contains the build path {path}"
        );
    }
    std::fs::write(elf, &binary).unwrap();
    assert!(
        readelf_machine(elf).contains(machine),
        "{file}: {}",
        readelf_machine(elf)
    );
    let versions = readelf_glibc(elf);
    assert!(
        !versions.is_empty(),
        "{file}: dynamic glibc binary expected"
    );
    let newest = versions.iter().max().unwrap();
    assert!(
        *newest <= (2, 34),
        "{file}: needs GLIBC_{}.{} > 2.34",
        newest.0,
        newest.1
    );
}

#[test]
fn package_is_reproducible_and_fits_amazon_linux_2023() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    package(first.path());
    package(second.path());

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.path().join("manifest.json")).unwrap())
            .unwrap();
    let artifacts = manifest["artifacts"].as_array().unwrap();
    assert_eq!(
        artifacts.len(),
        FUNCTIONS.len() * ARCHES.len(),
        "{manifest:#}"
    );
    for name in ["manifest.json", "SHA256SUMS"] {
        assert_eq!(
            std::fs::read(first.path().join(name)).unwrap(),
            std::fs::read(second.path().join(name)).unwrap(),
            "{name} differs between runs"
        );
    }
    let sums = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(first.path())
        .output()
        .unwrap();
    assert!(
        sums.status.success(),
        "sha256sum -c: {}",
        String::from_utf8_lossy(&sums.stdout)
    );

    let root = workspace_root();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let forbidden = [
        root.to_string_lossy().to_string(),
        format!("{home}/.cargo"),
        format!("{home}/.rustup"),
    ];
    let scratch = tempfile::tempdir().unwrap();
    for function in FUNCTIONS {
        for (arch, machine) in ARCHES {
            let file = format!("{function}-{arch}.zip");
            let a =
                std::fs::read(first.path().join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let b = std::fs::read(second.path().join(&file)).unwrap();
            assert_eq!(a, b, "{file} is not byte-identical across runs");
            let entry = artifacts
                .iter()
                .find(|x| x["file"] == file.as_str())
                .expect("in manifest");
            assert_eq!(entry["function"], function);
            assert_eq!(entry["architecture"], arch);
            assert_eq!(entry["size"], a.len() as u64);

            let elf = scratch.path().join(format!("{function}-{arch}"));
            assert_bootstrap_fits_al2023(&file, &a, &forbidden, &elf, machine);
        }
    }

    // The x86_64 filter really starts here (and stops at its configuration check).
    let elf = scratch.path().join("ecr-image-filter-x86_64");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&elf, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = Command::new(&elf).env_clear().output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!run.status.success());
    assert!(all.contains("soci_index_generator_lambda_arn"), "{all}");
}
