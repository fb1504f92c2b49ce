//! `cargo xtask demo` on a machine with nothing but Rust: `docker-registry`, `moto_server`,
//! `skopeo` and the project's venv are hidden in a private mount namespace (an empty file bound
//! over each program, an empty directory over the venv), then the built `xtask demo` must still
//! succeed and print a verified graph.
//!
//! Hiding needs `unshare --mount`: as root (CI), or as a user through an unprivileged user
//! namespace. Where neither is possible the test fails saying so: it cannot prove anything
//! without hiding the tools.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the demo must not need.
const PROGRAMS: [&str; 3] = ["docker-registry", "moto_server", "skopeo"];

/// Every file named `program` on PATH (and in the usual system directories), symlinks resolved:
/// a bind mount over the file itself hides every name that leads to it.
fn installed(program: &str) -> BTreeSet<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/local/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .filter(|p| p.is_file())
        .filter_map(|p| p.canonicalize().ok())
        .collect()
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn the_demo_runs_with_registry_moto_skopeo_and_venv_hidden() {
    let tmp = tempfile::tempdir().unwrap();
    let empty_file = tmp.path().join("empty-file");
    let empty_dir = tmp.path().join("empty-dir");
    std::fs::write(&empty_file, b"").unwrap();
    std::fs::create_dir(&empty_dir).unwrap();

    let mut script = String::from("set -e\n");
    for file in PROGRAMS.iter().flat_map(|p| installed(p)) {
        script += &format!(
            "mount --bind {} {}\n",
            shell_quote(&empty_file),
            shell_quote(&file)
        );
    }
    let root = xtask::workspace::project_root();
    let venvs = [
        Some(root.join("target/venv")),
        std::env::var_os("SOCI_VENV").map(PathBuf::from),
    ];
    for venv in venvs.into_iter().flatten().filter(|v| v.is_dir()) {
        script += &format!(
            "mount --bind {} {}\n",
            shell_quote(&empty_dir),
            shell_quote(&venv)
        );
    }
    // Prove the hiding worked before trusting the demo's success: no non-empty executable of
    // these names is left on PATH or in the venv (which `xtask` puts first on its PATH).
    let venv_bin = shell_quote(&root.join("target/venv/bin"));
    for program in PROGRAMS {
        script += &format!(
            "for d in $(echo \"$PATH\" | tr ':' ' ') {venv_bin}; do if [ -x \"$d/{program}\" ] && [ -s \"$d/{program}\" ]; then echo \"still runnable: $d/{program}\"; exit 97; fi; done\n"
        );
    }
    script += &format!(
        "exec {} demo --layout {}\n",
        shell_quote(Path::new(env!("CARGO_BIN_EXE_xtask"))),
        shell_quote(&tmp.path().join("layout"))
    );

    // SAFETY: getuid has no preconditions.
    let root_user = unsafe { libc::getuid() } == 0;
    let mut unshare = Command::new("unshare");
    if !root_user {
        unshare.args(["--user", "--map-root-user"]);
    }
    unshare.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    for variable in [
        "min_layer_size",
        "span_size",
        "index_tag_suffix",
        "platforms",
    ] {
        unshare.env_remove(variable);
    }
    let out = unshare
        .output()
        .expect("unshare (util-linux) must be installed to run this test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success()
        && !root_user
        && (text.contains("unshare failed") || text.contains("Operation not permitted"))
    {
        panic!(
            "cannot hide the tools: this test needs root or unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), and neither is available:\n{text}"
        );
    }
    assert!(out.status.success(), "demo with the tools hidden:\n{text}");
    assert!(!text.contains("still runnable"), "{text}");
    for expected in ["== OCI image layout:", "verify: OK", "== demo OK"] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    assert!(!text.contains("docker-registry on"), "{text}");
    assert!(!text.contains("PROBLEM"), "{text}");
}
