//! The filter's strict decoder of the EventBridge ECR event: no panic on any JSON, and an event
//! it accepts re-validates after a round trip through its own serialization.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soci_lambda_contract::parse_and_validate;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(event) = parse_and_validate(&value) {
        event.validate().expect("an accepted event stays valid");
        let _ = event.detail.tag();
    }
});
