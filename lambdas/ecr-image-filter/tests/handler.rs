//! The handler's decisions over fixtures of real event shapes, with a recording fake invoker.

use std::sync::{Arc, Mutex};

use ecr_image_filter::{
    Config, IndexVersion, InvokeError, Invoker, Status, handle, json_subscriber,
};
use serde_json::Value;

const TAGGED: &[u8] = include_bytes!("fixtures/push_tagged.json");
const UNTAGGED: &[u8] = include_bytes!("fixtures/push_untagged.json");
const UNTAGGED_NO_FIELD: &[u8] = include_bytes!("fixtures/push_untagged_no_tag_field.json");
const IMAGE_INDEX: &[u8] = include_bytes!("fixtures/push_image_index.json");
const SOCI_TAG: &[u8] = include_bytes!("fixtures/push_soci_tag.json");
const SOCI_INDEX_V1: &[u8] = include_bytes!("fixtures/push_soci_index_v1.json");
const SOCI_INDEX_V2: &[u8] = include_bytes!("fixtures/push_soci_index_v2.json");

const INVALID: &[(&str, &[u8])] = &[
    (
        "missing field",
        include_bytes!("fixtures/malformed_missing_repository.json"),
    ),
    (
        "malformed event",
        include_bytes!("fixtures/malformed_not_json_object.json"),
    ),
    ("account", include_bytes!("fixtures/invalid_account.json")),
    (
        "action-type",
        include_bytes!("fixtures/invalid_delete_action.json"),
    ),
    (
        "result",
        include_bytes!("fixtures/invalid_failed_push.json"),
    ),
    ("source", include_bytes!("fixtures/invalid_source.json")),
    (
        "detail-type",
        include_bytes!("fixtures/invalid_detail_type.json"),
    ),
    (
        "repository name",
        include_bytes!("fixtures/invalid_repository.json"),
    ),
    ("digest", include_bytes!("fixtures/invalid_digest.json")),
    ("tag", include_bytes!("fixtures/invalid_tag.json")),
];

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:gen";

/// Records invocations and answers a fixed status (or an error).
#[derive(Default)]
struct FakeInvoker {
    calls: Mutex<Vec<(String, Vec<u8>)>>,
    status: Option<i32>,
}

impl FakeInvoker {
    fn answering(status: i32) -> Self {
        Self {
            calls: Mutex::default(),
            status: Some(status),
        }
    }
    fn calls(&self) -> Vec<(String, Vec<u8>)> {
        self.calls.lock().unwrap().clone()
    }
}

impl Invoker for FakeInvoker {
    async fn invoke_async(&self, function: &str, payload: Vec<u8>) -> Result<i32, InvokeError> {
        self.calls
            .lock()
            .unwrap()
            .push((function.to_owned(), payload));
        self.status.ok_or_else(|| InvokeError::Sdk {
            function: function.to_owned(),
            message: "connection refused".into(),
        })
    }
}

fn config(filters: Option<&str>, version: Option<&str>) -> Config {
    Config::from_lookup(|name| match name {
        "soci_repository_image_tag_filters" => filters.map(str::to_owned),
        "soci_index_generator_lambda_arn" => Some(ARN.to_owned()),
        "soci_index_version" => version.map(str::to_owned),
        _ => None,
    })
    .unwrap()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[tokio::test]
async fn tagged_push_invokes_with_the_whole_event() {
    let invoker = FakeInvoker::answering(202);
    let event = json(TAGGED);
    let outcome = handle(&config(None, None), &invoker, "req-1", &event)
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Invoked);
    assert_eq!(outcome.filter.as_deref(), Some("*:*"));
    let calls = invoker.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, ARN);
    let forwarded: Value = serde_json::from_slice(&calls[0].1).unwrap();
    assert_eq!(forwarded, event, "the original event is forwarded whole");
}

#[tokio::test]
async fn image_index_push_with_a_tag_invokes() {
    let invoker = FakeInvoker::answering(202);
    let outcome = handle(&config(None, None), &invoker, "r", &json(IMAGE_INDEX))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Invoked);
}

#[tokio::test]
async fn untagged_push_is_skipped_in_v2_and_invoked_in_v1() {
    for fixture in [UNTAGGED, UNTAGGED_NO_FIELD] {
        let invoker = FakeInvoker::answering(202);
        let v2 = handle(&config(None, None), &invoker, "r", &json(fixture))
            .await
            .unwrap();
        assert_eq!(v2.status, Status::Skipped);
        assert!(v2.reason.contains("untagged"), "{}", v2.reason);
        assert_eq!(v2.tag.as_deref(), Some(""));
        let explicit_v2 = handle(&config(None, Some("V2")), &invoker, "r", &json(fixture))
            .await
            .unwrap();
        assert_eq!(explicit_v2.status, Status::Skipped);
        assert!(invoker.calls().is_empty());

        let v1 = handle(&config(None, Some("V1")), &invoker, "r", &json(fixture))
            .await
            .unwrap();
        assert_eq!(
            v1.status,
            Status::Invoked,
            "V1 accepts untagged; `*:*` matches `team/app:`"
        );
        assert_eq!(invoker.calls().len(), 1);
        // `repo:latest` style filters do not match the untagged name `team/app:`.
        let no = handle(
            &config(Some("team/app:latest"), Some("v1")),
            &invoker,
            "r",
            &json(fixture),
        )
        .await
        .unwrap();
        assert_eq!(no.status, Status::Skipped);
    }
}

#[tokio::test]
async fn generator_output_is_skipped() {
    for (fixture, why) in [
        (SOCI_TAG, "index tag suffix"),
        (SOCI_INDEX_V1, "SOCI index"),
        (SOCI_INDEX_V2, "SOCI index"),
    ] {
        for version in ["V1", "V2"] {
            let invoker = FakeInvoker::answering(202);
            let outcome = handle(&config(None, Some(version)), &invoker, "r", &json(fixture))
                .await
                .unwrap();
            assert_eq!(outcome.status, Status::Skipped);
            assert!(
                outcome.reason.contains(why),
                "{} lacks {why}",
                outcome.reason
            );
            assert!(invoker.calls().is_empty());
        }
    }
}

#[tokio::test]
async fn custom_suffix() {
    let cfg = Config::from_lookup(|name| match name {
        "soci_index_generator_lambda_arn" => Some(ARN.into()),
        "index_tag_suffix" => Some("-idx".into()),
        _ => None,
    })
    .unwrap();
    let invoker = FakeInvoker::answering(202);
    // `v1-soci` is an ordinary tag under another suffix.
    let outcome = handle(&cfg, &invoker, "r", &json(SOCI_TAG)).await.unwrap();
    assert_eq!(outcome.status, Status::Invoked);
    let mut event = json(TAGGED);
    event["detail"]["image-tag"] = "v1-idx".into();
    let outcome = handle(&cfg, &invoker, "r", &event).await.unwrap();
    assert_eq!(outcome.status, Status::Skipped);
}

#[tokio::test]
async fn filters_first_match_wins_and_no_match_skips() {
    let invoker = FakeInvoker::answering(202);
    let cfg = config(Some(" other/*:* , team/*:v? ,team/app:*"), None);
    let outcome = handle(&cfg, &invoker, "r", &json(TAGGED)).await.unwrap();
    assert_eq!(outcome.status, Status::Invoked);
    assert_eq!(outcome.filter.as_deref(), Some("team/*:v?"));

    let cfg = config(Some("team/app:prod,Team/App:*,team/ap:*"), None);
    let outcome = handle(&cfg, &invoker, "r", &json(TAGGED)).await.unwrap();
    assert_eq!(outcome.status, Status::Skipped);
    assert!(outcome.reason.contains("team/app:v1"), "{}", outcome.reason);
    assert_eq!(invoker.calls().len(), 1);
}

#[tokio::test]
async fn invalid_events_are_answered_not_retried() {
    for (what, fixture) in INVALID {
        let invoker = FakeInvoker::answering(202);
        let outcome = handle(&config(None, None), &invoker, "r", &json(fixture))
            .await
            .unwrap_or_else(|e| panic!("{what}: invalid events must not be errors: {e}"));
        assert_eq!(outcome.status, Status::Invalid, "{what}");
        assert!(
            outcome.reason.contains(what),
            "{what}: reason {}",
            outcome.reason
        );
        assert!(invoker.calls().is_empty(), "{what}");
    }
}

#[tokio::test]
async fn failed_invokes_are_errors() {
    let not_accepted = FakeInvoker::answering(200);
    let err = handle(&config(None, None), &not_accepted, "r", &json(TAGGED))
        .await
        .unwrap_err();
    assert!(
        matches!(err, InvokeError::UnexpectedStatus { status: 200, .. }),
        "{err}"
    );
    let failing = FakeInvoker::default();
    let err = handle(&config(None, None), &failing, "r", &json(TAGGED))
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::Sdk { .. }), "{err}");
}

#[test]
fn config_defaults_and_errors() {
    let cfg = Config::from_lookup(|n| (n == "soci_index_generator_lambda_arn").then(|| ARN.into()))
        .unwrap();
    assert_eq!(cfg.filters.len(), 1);
    assert_eq!(cfg.filters[0].as_str(), "*:*");
    assert_eq!(cfg.index_tag_suffix, "-soci");
    assert_eq!(cfg.index_version, IndexVersion::V2);
    assert!(
        Config::from_lookup(|_| None).is_err(),
        "generator ARN is required"
    );
    let bad_version = Config::from_lookup(|n| match n {
        "soci_index_generator_lambda_arn" => Some(ARN.into()),
        "soci_index_version" => Some("V3".into()),
        _ => None,
    });
    assert!(bad_version.is_err());
    let no_filters = Config::from_lookup(|n| match n {
        "soci_index_generator_lambda_arn" => Some(ARN.into()),
        "soci_repository_image_tag_filters" => Some(" , ".into()),
        _ => None,
    });
    assert!(no_filters.is_err());
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn each_decision_logs_one_json_line_with_context() {
    let buffer = Buffer::default();
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
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
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
