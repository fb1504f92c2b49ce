//! The generator's lenient decoder of the same event (hand-written events may omit envelope
//! fields): no panic, and validation of whatever decodes never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soci_lambda_contract::EcrImageActionEvent;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<EcrImageActionEvent>(data) {
        let _ = event.validate();
        let _ = event.detail.tag();
        let json = serde_json::to_vec(&event).expect("serializes");
        let again: EcrImageActionEvent = serde_json::from_slice(&json).expect("round trips");
        assert_eq!(again, event);
    }
});
