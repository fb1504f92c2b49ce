//! The JSON log line of each decision.
//!
//! This test has a binary of its own on purpose: `tracing` caches each callsite's interest
//! process-wide, computed on whichever thread reaches the callsite first. A sibling test running
//! the same handler on a thread with no subscriber would cache `never` and blind the scoped
//! subscriber this test installs (it did, in CI). Alone in its process, nothing can race it.

mod common;

use common::*;
use ecr_image_filter::handle;
use serde_json::Value;
use soci_lambda_contract::logging::{LogCapture, json_subscriber};

#[tokio::test]
async fn each_decision_logs_one_json_line_with_context() {
    let buffer = LogCapture::default();
    let _guard = tracing::subscriber::set_default(json_subscriber(buffer.clone()));
    let invoker = FakeInvoker::answering(202);
    let cfg = config(None, None);
    let cases: [(&[u8], &str); 4] = [
        (TAGGED, "invoke"),
        (UNTAGGED, "skip"),
        (SOCI_TAG, "skip"),
        (INVALID[2].1, "invalid"),
    ];
    for (i, (fixture, _)) in cases.iter().enumerate() {
        handle(&cfg, &invoker, &format!("req-{i}"), &json(fixture))
            .await
            .unwrap();
    }
    let text = buffer.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), cases.len(), "one line per decision:\n{text}");
    for (i, (line, (fixture, decision))) in lines.iter().zip(cases).enumerate() {
        let log: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let event = json(fixture);
        assert_eq!(log["request_id"], format!("req-{i}"), "{line}");
        assert_eq!(log["decision"], decision, "{line}");
        assert_eq!(
            log["repository"], event["detail"]["repository-name"],
            "{line}"
        );
        assert_eq!(log["digest"], event["detail"]["image-digest"], "{line}");
        assert_eq!(log["tag"], event["detail"]["image-tag"], "{line}");
        assert!(
            log["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{line}"
        );
        assert!(log["message"].is_string(), "{line}");
    }
}
