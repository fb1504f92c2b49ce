//! The Go-exact JSON decoder (OCI manifests and indexes): no panic, and what it decodes
//! re-encodes to bytes that decode and re-encode to the same bytes (as with Go, a decode/encode
//! round trip may normalise, e.g. drop an empty `annotations`, but only once).
#![no_main]

use libfuzzer_sys::fuzz_target;
use soci_core::oci::{Index, Manifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::from_json(data) {
        let json = manifest.to_go_json();
        let again = Manifest::from_json(&json).expect("our encoding decodes");
        assert_eq!(again.to_go_json(), json);
    }
    if let Ok(index) = Index::from_json(data) {
        let json = index.to_go_json();
        let again = Index::from_json(&json).expect("our encoding decodes");
        assert_eq!(again.to_go_json(), json);
    }
});
