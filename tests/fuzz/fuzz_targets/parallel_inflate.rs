//! The parallel (speculative, two-core) inflate against the sequential one on arbitrary gzip
//! streams: the same zTOC bytes, or the same kind of error, and never a panic. The first byte
//! picks how the input becomes a layer: as is, as patches to the fixed gzip layer (so most
//! inputs are nearly valid deflate), or gzipped in members at input-chosen levels.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use soci_core::zran::{Inflation, ParallelTuning};
use soci_core::{BuildOptions, Compression, MemoryBudget, build_reference_ztoc_with};
use soci_fuzz::GZIP;

/// Speculation every few KiB from the start: the fixed layer is ~15 KB compressed.
const TUNINGS: [ParallelTuning; 2] = [
    ParallelTuning {
        start_after: 0,
        direct: 700,
        speculative: 1500,
    },
    ParallelTuning {
        start_after: 100,
        direct: 3000,
        speculative: 4000,
    },
];

fn layer(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else {
        return Vec::new();
    };
    match mode % 3 {
        0 => rest.to_vec(),
        1 => {
            let mut layer = GZIP.clone();
            for patch in rest.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([patch[0], patch[1]])) % layer.len();
                layer[at] ^= patch[2];
            }
            layer
        }
        _ => {
            let mut out = Vec::new();
            for (i, member) in rest.chunks(4096).enumerate() {
                let level = u32::from(member.first().copied().unwrap_or(6) % 10);
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
                let repeated: Vec<u8> = member.iter().cycle().take(member.len() * (i % 4 + 1)).copied().collect();
                gz.write_all(&repeated).expect("in memory");
                out.extend(gz.finish().expect("in memory"));
            }
            out
        }
    }
}

fn outcome(layer: &[u8], options: &BuildOptions, inflation: Inflation) -> Result<Vec<u8>, String> {
    build_reference_ztoc_with(layer, options, inflation)
        .map(|built| built.ztoc.ztoc)
        .map_err(|e| format!("{:?}", std::mem::discriminant(&e)))
}

fuzz_target!(|data: &[u8]| {
    let layer = layer(data);
    let options = BuildOptions {
        span_size: 2048,
        build_tool: "fuzz".into(),
        compression: Compression::Gzip,
        expected_digest: None,
        budget: MemoryBudget::for_memory_mib(64),
    };
    let sequential = outcome(&layer, &options, Inflation::Sequential);
    for tuning in TUNINGS {
        let parallel = outcome(&layer, &options, Inflation::Parallel(tuning));
        match (&sequential, &parallel) {
            (Ok(a), Ok(b)) => assert!(a == b, "zTOCs differ with {tuning:?}"),
            (Err(a), Err(b)) => assert_eq!(a, b, "errors differ with {tuning:?}"),
            (a, b) => panic!("{tuning:?}: sequential ok={} parallel ok={}", a.is_ok(), b.is_ok()),
        }
    }
});
