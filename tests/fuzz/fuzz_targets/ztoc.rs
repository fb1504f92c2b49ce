//! Arbitrary zTOC bytes against fixed layers: the reader, `verify` and `extract_file` answer
//! with problems or errors, never a panic or an allocation sized from the input. The first byte
//! picks the layer (gzip or uncompressed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use soci_core::zran::CheckpointBlob;
use soci_core::ztoc::{TarZinfo, Ztoc};
use soci_core::{extract_file, verify};
use soci_fuzz::{GZIP, TAR};

fuzz_target!(|data: &[u8]| {
    let Some((&which, ztoc)) = data.split_first() else {
        return;
    };
    let layer: &[u8] = if which & 1 == 0 { &GZIP } else { &TAR };
    if let Ok(decoded) = Ztoc::from_bytes(ztoc) {
        let _ = CheckpointBlob::parse(&decoded.checkpoints);
        let _ = TarZinfo::from_bytes(&decoded.checkpoints);
        // What the reader decodes, the writer writes back (if it fits).
        if let Ok(bytes) = decoded.to_bytes() {
            assert_eq!(
                Ztoc::from_bytes(&bytes).expect("our own bytes decode"),
                decoded
            );
        }
    }
    let _ = verify(ztoc, layer).expect("an in-memory layer reads");
    for path in ["file0", "file1", "file2"] {
        let _ = extract_file(ztoc, layer, path);
    }
});
