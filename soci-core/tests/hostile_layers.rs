//! Hostile layers: each is built in a child process (this test binary re-run on one ignored
//! test) whose peak RSS the parent reads with `wait4`, so the assertions are about the whole
//! build's memory, not an estimate. The outcome must be a zTOC or a typed refusal naming the
//! limit, never a panic or an OOM, and the peak stays within 1.5x the zTOC plus a constant.

#[path = "hostile/layers.rs"]
#[allow(dead_code)]
mod layers;

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use soci_core::{BuildOptions, Compression, Error, MemoryBudget, build_ztoc};

const MIB: u64 = 1 << 20;
/// What a build holds besides the zTOC: the test binary, the hashing queue (~8.5 MiB of
/// chunks), inflate buffers, the largest PAX record twice.
const CONSTANT: u64 = 48 * MIB;

const LAYER_ENV: &str = "SOCI_HOSTILE_LAYER";
const MEMORY_ENV: &str = "SOCI_HOSTILE_MEMORY_MIB";
const GENERATE_ENV: &str = "SOCI_HOSTILE_GENERATE";
/// Where the child writes the zTOC it built; or, with [`VERIFY_ENV`], the zTOC it verifies.
const ZTOC_ENV: &str = "SOCI_HOSTILE_ZTOC";
const VERIFY_ENV: &str = "SOCI_HOSTILE_VERIFY";

/// The child: writes the layer the environment names (`SOCI_HOSTILE_GENERATE`), or builds it
/// within the budget of the memory size it names and prints the outcome. Run only by
/// [`LayerFile::generate`] and [`build_in_child`]: generating in a child too keeps the parent
/// small, and it must be, because a child's `ru_maxrss` starts from its parent's peak (the
/// child runs in the parent's address space until it execs).
#[test]
#[ignore = "the child process of the hostile-layer tests, run by them"]
fn child_builds_one_layer() {
    let layer = std::env::var(LAYER_ENV).expect("run by build_in_child");
    if let Ok(case) = std::env::var(GENERATE_ENV) {
        let bytes = match case.as_str() {
            "pax300" => layers::pax_amplification(300),
            "pax2100" => layers::pax_amplification(2100),
            "trailing-bomb" => layers::trailing_gzip_bomb(40),
            "inner-bomb" => layers::inner_gzip_bomb(8),
            "empty1m" => layers::empty_files(1_000_000),
            "sparse" => layers::sparse_map(500_000_000, 546_000_000),
            other => panic!("no layer {other}"),
        };
        std::fs::write(&layer, bytes).unwrap();
        return;
    }
    if std::env::var_os(VERIFY_ENV).is_some() {
        let ztoc = std::fs::read(std::env::var(ZTOC_ENV).unwrap()).unwrap();
        let layer = std::fs::File::open(layer).unwrap();
        let outcome = match soci_core::verify(&ztoc, &layer) {
            Ok(report) if report.is_ok() => format!("ok {}", ztoc.len()),
            Ok(report) => format!("problems {:?}", report.problems),
            Err(e) => format!("error {e}"),
        };
        println!("HOSTILE-OUTCOME {outcome}");
        return;
    }
    let memory: u64 = std::env::var(MEMORY_ENV).unwrap().parse().unwrap();
    let options = BuildOptions {
        span_size: soci_core::DEFAULT_SPAN_SIZE,
        build_tool: "hostile".into(),
        compression: Compression::Gzip,
        expected_digest: None,
        budget: MemoryBudget::for_memory_mib(memory),
    };
    let file = std::fs::File::open(layer).unwrap();
    let outcome = match build_ztoc(BufReader::new(file), &options) {
        Ok(built) => {
            if let Ok(path) = std::env::var(ZTOC_ENV) {
                std::fs::write(path, &built.ztoc).unwrap();
            }
            format!("ok {}", built.ztoc.len())
        }
        Err(Error::Unindexable(why)) => format!("unindexable {why}"),
        Err(Error::Rejected(why)) => format!("rejected {why}"),
        Err(other) => format!("error {other}"),
    };
    println!("HOSTILE-OUTCOME {outcome}");
}

fn child() -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            "child_builds_one_layer",
            "--nocapture",
        ])
        .args(["--test-threads", "1"]);
    command
}

struct Outcome {
    line: String,
    peak_rss: u64,
    seconds: f64,
}

impl Outcome {
    fn ztoc_len(&self) -> Option<u64> {
        self.line.strip_prefix("ok ")?.parse().ok()
    }
}

/// Runs [`child_builds_one_layer`] on `layer` in a child and reads its peak RSS.
fn build_in_child(layer: &Path, memory_mib: u64) -> Outcome {
    let mut command = child();
    command
        .env(LAYER_ENV, layer)
        .env(MEMORY_ENV, memory_mib.to_string());
    run_child(command, layer)
}

/// Runs `command` (a [`child`]) and reads its outcome and peak RSS.
fn run_child(mut command: Command, layer: &Path) -> Outcome {
    let started = std::time::Instant::now();
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also reads its rusage"
    )]
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained on a thread: a child writing much to both pipes must not block on either.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let stderr = stderr.join().unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 reaps our own child exactly once (the `Child`
    // is never waited on).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("HOSTILE-OUTCOME ").map(|(_, outcome)| outcome))
        .unwrap_or_else(|| panic!("the child failed (status {status}):\n{stdout}\n{stderr}"))
        .to_string();
    let outcome = Outcome {
        line,
        peak_rss: usage.ru_maxrss as u64 * 1024,
        seconds: started.elapsed().as_secs_f64(),
    };
    eprintln!(
        "{}: {} MiB peak RSS, {:.1} s: {}",
        layer.display(),
        outcome.peak_rss / MIB,
        outcome.seconds,
        outcome.line.chars().take(300).collect::<String>()
    );
    outcome
}

/// A generated layer in the temporary directory, removed on drop.
struct LayerFile(PathBuf);

impl LayerFile {
    /// Generates layer `case` (see [`child_builds_one_layer`]) in a child process.
    fn generate(case: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("soci-hostile-{}-{case}.tar.gz", std::process::id()));
        let layer = Self(path);
        let status = child()
            .env(LAYER_ENV, &layer.0)
            .env(GENERATE_ENV, case)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "generating {case}: {status}");
        layer
    }
}

impl Drop for LayerFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn assert_within_1_5x(outcome: &Outcome) {
    let ztoc = outcome.ztoc_len().expect("a zTOC");
    assert!(
        outcome.peak_rss <= ztoc * 3 / 2 + CONSTANT,
        "peak RSS {} for a {ztoc}-byte zTOC: over 1.5x plus {CONSTANT}",
        outcome.peak_rss
    );
}

#[test]
fn pax_amplification_over_the_toc_budget_is_unindexable_naming_the_limit() {
    // 300 entries with a ~1 MB PAX record each: a ~315 MB zTOC from a ~330 KB layer.
    let layer = LayerFile::generate("pax300");
    let budget = MemoryBudget::for_memory_mib(1024);
    let outcome = build_in_child(&layer.0, 1024);
    assert!(
        outcome.line.starts_with("unindexable") && outcome.line.contains("max_toc_bytes"),
        "{}",
        outcome.line
    );
    assert!(
        outcome.peak_rss <= budget.max_toc_bytes * 3 / 2 + CONSTANT,
        "peak RSS {} with a {}-byte TOC budget",
        outcome.peak_rss,
        budget.max_toc_bytes
    );
}

#[test]
fn pax_amplification_within_the_budget_peaks_within_1_5x_the_ztoc() {
    let layer = LayerFile::generate("pax300");
    let outcome = build_in_child(&layer.0, 2048);
    assert!(
        outcome.ztoc_len().unwrap_or(0) > 300 * MIB,
        "{}",
        outcome.line
    );
    assert_within_1_5x(&outcome);
}

#[test]
fn pax_amplification_beyond_2_gib_is_refused_not_a_flatbuffer_panic() {
    // 2,100 such entries: over 2 GiB of zTOC, where the flatbuffers builder panics. The largest
    // Lambda (10,240 MiB) still refuses it on the TOC budget, before holding 2 GiB.
    let layer = LayerFile::generate("pax2100");
    let budget = MemoryBudget::for_memory_mib(1024);
    let outcome = build_in_child(&layer.0, 1024);
    assert!(outcome.line.starts_with("unindexable"), "{}", outcome.line);
    assert!(outcome.peak_rss <= budget.max_toc_bytes * 3 / 2 + CONSTANT);
    let largest = MemoryBudget::for_memory_mib(10_240);
    assert!(
        largest.max_toc_bytes + largest.max_checkpoint_bytes
            < soci_core::ztoc::FLATBUFFER_MAX_BYTES
    );
}

#[test]
fn verifying_a_pax_heavy_layer_holds_its_ztoc_not_a_second_copy_of_the_records() {
    // The verifier reads the zTOC (bytes, then its parsed form) and re-reads the layer's tar
    // headers; those must be compared one by one as they stream past, never all kept.
    let layer = LayerFile::generate("pax300");
    let ztoc_path = layer.0.with_extension("ztoc");
    let mut build = child();
    build
        .env(LAYER_ENV, &layer.0)
        .env(MEMORY_ENV, "2048")
        .env(ZTOC_ENV, &ztoc_path);
    let built = run_child(build, &layer.0);
    let ztoc = built.ztoc_len().expect("a zTOC");
    let mut verify = child();
    verify
        .env(LAYER_ENV, &layer.0)
        .env(ZTOC_ENV, &ztoc_path)
        .env(VERIFY_ENV, "1");
    let verified = run_child(verify, &layer.0);
    let _ = std::fs::remove_file(&ztoc_path);
    assert_eq!(verified.ztoc_len(), Some(ztoc), "{}", verified.line);
    assert!(
        verified.peak_rss <= ztoc * 5 / 2 + CONSTANT,
        "verify peaked at {} for a {ztoc}-byte zTOC: over its bytes and parsed form (2.5x) plus {CONSTANT}",
        verified.peak_rss
    );
}

#[test]
fn gzip_bomb_after_the_end_of_archive_is_not_inflated_to_its_end() {
    // 40 members of 1 GiB of zeros after a valid tar: ~41 MB of layer, 40 GiB inflated.
    let layer = LayerFile::generate("trailing-bomb");
    let outcome = build_in_child(&layer.0, 1024);
    assert!(
        outcome.line.starts_with("unindexable") && outcome.line.contains("max_trailing_bytes"),
        "{}",
        outcome.line
    );
    assert!(
        outcome.peak_rss <= CONSTANT,
        "peak RSS {}",
        outcome.peak_rss
    );
    // Inflating 40 GiB takes minutes in a debug build; stopping after a span takes well under one.
    assert!(outcome.seconds < 60.0, "{} s", outcome.seconds);
}

#[test]
fn gzip_bomb_inside_a_file_stops_at_the_checkpoint_budget() {
    // 8 GiB of zeros in one file: 2,048 checkpoints (67 MB) at the default span; a 256 MiB
    // process allows 32 MiB of checkpoints.
    let layer = LayerFile::generate("inner-bomb");
    let budget = MemoryBudget::for_memory_mib(256);
    let outcome = build_in_child(&layer.0, 256);
    assert!(
        outcome.line.starts_with("unindexable") && outcome.line.contains("max_checkpoint_bytes"),
        "{}",
        outcome.line
    );
    assert!(outcome.peak_rss <= budget.max_checkpoint_bytes * 3 / 2 + CONSTANT);
}

#[test]
fn a_million_empty_files_peak_within_1_5x_the_ztoc() {
    let layer = LayerFile::generate("empty1m");
    let outcome = build_in_child(&layer.0, 1024);
    assert!(
        outcome.ztoc_len().unwrap_or(0) > 100 * MIB,
        "{}",
        outcome.line
    );
    assert_within_1_5x(&outcome);
}

#[test]
fn gnu_sparse_map_stops_at_1_mib_like_go() {
    // A map claiming 500 M entries followed by ~546 MB of empty lines (a ~530 KB layer).
    let layer = LayerFile::generate("sparse");
    let outcome = build_in_child(&layer.0, 1024);
    assert!(
        outcome.line.starts_with("rejected") && outcome.line.contains("sparse map too long"),
        "{}",
        outcome.line
    );
    assert!(
        outcome.peak_rss <= CONSTANT,
        "peak RSS {}",
        outcome.peak_rss
    );
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn options_expecting(digest: &str) -> BuildOptions {
    BuildOptions {
        span_size: soci_core::DEFAULT_SPAN_SIZE,
        build_tool: "hostile".into(),
        compression: Compression::Gzip,
        expected_digest: Some(digest.to_string()),
        budget: MemoryBudget::for_memory_mib(1024),
    }
}

#[test]
fn a_layer_refused_part_way_is_checked_against_its_digest_first() {
    let layer = layers::trailing_gzip_bomb(1);
    let right = options_expecting(&sha256(&layer));
    let err = build_ztoc(&layer[..], &right).unwrap_err();
    assert!(matches!(err, Error::Unindexable(_)), "{err}");
    // The same refusal on bytes that are not the expected ones is a download failure.
    let wrong = options_expecting(&sha256(b"another layer"));
    let err = build_ztoc(&layer[..], &wrong).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[test]
fn a_corrupted_download_is_a_digest_mismatch_not_a_rejected_layer() {
    let layer = layers::plain_layer(2, 50_000);
    let options = options_expecting(&sha256(&layer));
    let mut flipped = layer.clone();
    flipped[layer.len() / 2] ^= 0x40;
    let err = build_ztoc(&flipped[..], &options).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let truncated = &layer[..layer.len() / 2];
    let err = build_ztoc(truncated, &options).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    build_ztoc(&layer[..], &options).unwrap();
}
