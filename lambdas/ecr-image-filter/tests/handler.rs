//! The handler's decisions over fixtures of real event shapes, with a recording fake invoker.

mod common;

use common::*;
use ecr_image_filter::{Config, IndexVersion, InvokeError, Status, handle};
use serde_json::Value;

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
async fn pushes_to_the_ztoc_cache_repository_are_skipped() {
    let cache = "soci-ztoc-cache";
    let cfg = Config::from_lookup(|name| match name {
        "soci_index_generator_lambda_arn" => Some(ARN.into()),
        "ztoc_cache_repository" => Some(cache.into()),
        _ => None,
    })
    .unwrap();
    let invoker = FakeInvoker::answering(202);
    let mut event = json(TAGGED);
    event["detail"]["repository-name"] = cache.into();
    let outcome = handle(&cfg, &invoker, "r", &event).await.unwrap();
    assert_eq!(outcome.status, Status::Skipped, "{outcome:?}");
    assert!(outcome.reason.contains("zTOC cache"), "{}", outcome.reason);
    assert!(invoker.calls().is_empty());
    // Other repositories, and any repository without the setting, are indexed as before.
    let outcome = handle(&cfg, &invoker, "r", &json(TAGGED)).await.unwrap();
    assert_eq!(outcome.status, Status::Invoked);
    let outcome = handle(&config(None, None), &invoker, "r", &event)
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Invoked);
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
