//! The parallel inflate (two cores, speculative) must give the sequential inflate's zTOC byte
//! for byte, and refuse what it refuses: every gzip conformance case and generated multi-MiB
//! layers (levels 0 to 9, several members, stored blocks, tiny and huge spans), each built with
//! tunings that make it speculate every few KiB as well as with the default one.

use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use soci_core::zran::{Inflation, ParallelTuning, spliced_bytes};
use soci_core::{BuildOptions, Compression, MemoryBudget, build_reference_ztoc_with};

/// Speculation from the first bytes on, in stretches of a few KiB: many splices per layer.
const TIGHT: ParallelTuning = ParallelTuning {
    start_after: 0,
    direct: 3000,
    speculative: 5000,
};
/// Stretches in the tens of KiB, around the size of a deflate block.
const MEDIUM: ParallelTuning = ParallelTuning {
    start_after: 1 << 10,
    direct: 40 << 10,
    speculative: 60 << 10,
};
const TUNINGS: [ParallelTuning; 3] = [TIGHT, MEDIUM, ParallelTuning::DEFAULT];

/// The outcome of one build, comparable: the zTOC bytes, or the error's kind.
fn outcome(layer: &[u8], options: &BuildOptions, inflation: Inflation) -> Result<Vec<u8>, String> {
    match build_reference_ztoc_with(layer, options, inflation) {
        Ok(built) => Ok(built.ztoc.ztoc),
        Err(e) => Err(format!("{:?}", std::mem::discriminant(&e))),
    }
}

/// Fails when any parallel tuning differs from the sequential build.
fn assert_same(name: &str, layer: &[u8], options: &BuildOptions) {
    let sequential = outcome(layer, options, Inflation::Sequential);
    for tuning in TUNINGS {
        let parallel = outcome(layer, options, Inflation::Parallel(tuning));
        match (&sequential, &parallel) {
            (Ok(a), Ok(b)) if a == b => {}
            (Err(a), Err(b)) if a == b => {}
            (a, b) => panic!(
                "{name} with {tuning:?}: sequential {} vs parallel {}",
                describe(a),
                describe(b)
            ),
        }
    }
}

fn describe(outcome: &Result<Vec<u8>, String>) -> String {
    match outcome {
        Ok(bytes) => format!("a {}-byte zTOC", bytes.len()),
        Err(kind) => format!("error {kind}"),
    }
}

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance")
}

#[test]
fn every_gzip_conformance_case_builds_the_same_in_parallel() {
    let dir = conformance_dir();
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).expect("cases.json"))
            .expect("cases.json parses");
    let mut gzip_cases = 0;
    for case in cases["cases"].as_array().expect("cases") {
        if case["compression"].as_str() != Some("gzip") {
            continue;
        }
        gzip_cases += 1;
        let name = case["name"].as_str().expect("name");
        let layer = std::fs::read(dir.join(case["file"].as_str().expect("file"))).expect("layer");
        for span_size in [case["span_size"].as_u64().expect("span_size"), 1 << 12] {
            let options = BuildOptions {
                span_size,
                build_tool: "parallel".into(),
                compression: Compression::Gzip,
                expected_digest: case["layer_digest"].as_str().map(str::to_string),
                budget: MemoryBudget::default(),
            };
            assert_same(name, &layer, &options);
        }
    }
    assert!(gzip_cases >= 40, "only {gzip_cases} gzip cases");
}

/// Deterministic content of `len` bytes: random, text-like, runs, or a mix.
fn content(kind: u8, len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    match kind % 4 {
        0 => (0..len).map(|_| next() as u8).collect(),
        1 => (0..len)
            .map(|_| b"the quick brown fox jumps \n{}"[(next() % 29) as usize])
            .collect(),
        2 => {
            let mut out = Vec::with_capacity(len);
            while out.len() < len {
                let run = (next() % 3000) as usize + 1;
                let byte = next() as u8;
                out.extend(std::iter::repeat_n(byte, run.min(len - out.len())));
            }
            out
        }
        _ => {
            let mut out = Vec::with_capacity(len);
            while out.len() < len {
                let piece = (next() % 40_000) as usize + 1;
                let kind = (next() % 3) as u8;
                out.extend(content(kind, piece.min(len - out.len()), next()));
            }
            out
        }
    }
}

/// A tar of `files` (name, content) in gzip members cut at `cuts` (fractions), with `levels`.
fn layer(files: &[(String, Vec<u8>)], cuts: &[f64], levels: &[u32]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, data.as_slice())
            .expect("tar entry");
    }
    let tar = builder.into_inner().expect("tar");
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| (c * tar.len() as f64) as usize)
        .collect();
    points.push(tar.len());
    points.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for (i, to) in points.into_iter().enumerate() {
        let level = levels[i % levels.len()];
        let mut encoder =
            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        encoder.write_all(&tar[from..to.max(from)]).expect("gzip");
        out.extend(encoder.finish().expect("gzip"));
        from = to.max(from);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn generated_layers_build_the_same_in_parallel(
        files in prop::collection::vec((0u8..4, 1usize..1_500_000, any::<u64>()), 1..6),
        cuts in prop::collection::vec(0.0f64..1.0, 0..3),
        levels in prop::collection::vec(0u32..10, 1..4),
        span in prop::sample::select(vec![1u64 << 12, 1 << 16, 1 << 20, 4 << 20, 1 << 40]),
    ) {
        let files: Vec<(String, Vec<u8>)> = files
            .into_iter()
            .enumerate()
            .map(|(i, (kind, len, seed))| (format!("file{i}"), content(kind, len, seed)))
            .collect();
        let layer = layer(&files, &cuts, &levels);
        let options = BuildOptions {
            span_size: span,
            build_tool: "parallel".into(),
            compression: Compression::Gzip,
            expected_digest: None,
            budget: MemoryBudget::default(),
        };
        assert_same("generated", &layer, &options);
    }
}

#[test]
fn a_large_layer_is_mostly_spliced_and_identical() {
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("f{i}"), content(3, 6 << 20, 1000 + i)))
        .collect();
    let layer = layer(&files, &[0.7], &[6, 1]);
    let options = BuildOptions {
        span_size: 1 << 20,
        build_tool: "parallel".into(),
        compression: Compression::Gzip,
        expected_digest: None,
        budget: MemoryBudget::default(),
    };
    let before = spliced_bytes();
    assert_same("large", &layer, &options);
    let spliced = spliced_bytes() - before;
    assert!(spliced > 10 << 20, "only {spliced} bytes were spliced");
}
