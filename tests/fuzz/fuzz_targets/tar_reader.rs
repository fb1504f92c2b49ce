//! The tar reader on arbitrary bytes, then the whole uncompressed build on them: whatever the
//! input, no panic, and a layer `build_ztoc` accepts passes the consumer's checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soci_core::tar::TarReader;
use soci_core::{BuildOptions, Compression, MemoryBudget, build_ztoc, verify};

fuzz_target!(|data: &[u8]| {
    let mut tar = TarReader::new(data);
    while let Ok(Some(_)) = tar.next_entry() {}

    let options = BuildOptions {
        span_size: 1024,
        build_tool: "fuzz".into(),
        compression: Compression::Uncompressed,
        expected_digest: None,
        // A small budget: the budget paths are fuzzed too, and no input may use more.
        budget: MemoryBudget::for_memory_mib(64),
    };
    if let Ok(built) = build_ztoc(data, &options) {
        let report = verify(&built.ztoc, data).expect("an in-memory layer reads");
        assert!(report.is_ok(), "{:?}", report.problems);
    }
});
