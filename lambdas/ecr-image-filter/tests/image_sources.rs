//! Every way an image lands in ECR (push, pull through cache, replication) and the delete of a
//! tag: the same guards and repository:tag globs for each, the event forwarded whole.

mod common;

use common::*;
use ecr_image_filter::{Status, handle};
use serde_json::Value;
use soci_lambda_contract::EventKind;

#[tokio::test]
async fn cached_and_replicated_images_invoke_with_the_whole_event() {
    for (fixture, kind) in [
        (PULL_THROUGH_CACHE, EventKind::PullThroughCache),
        (REPLICATION, EventKind::Replication),
        (DELETE_TAGGED, EventKind::Delete),
    ] {
        let invoker = FakeInvoker::answering(202);
        let event = json(fixture);
        let outcome = handle(&config(None, None), &invoker, "r", &event)
            .await
            .unwrap();
        assert_eq!(
            outcome.status,
            Status::Invoked,
            "{kind}: {}",
            outcome.reason
        );
        assert_eq!(outcome.kind, Some(kind));
        assert_eq!(
            outcome.tag.as_deref(),
            event["detail"]["image-tag"].as_str()
        );
        let calls = invoker.calls();
        assert_eq!(calls.len(), 1, "{kind}");
        let forwarded: Value = serde_json::from_slice(&calls[0].1).unwrap();
        assert_eq!(
            forwarded, event,
            "{kind}: the original event is forwarded whole"
        );
    }
}

#[tokio::test]
async fn the_same_globs_apply_to_every_shape() {
    for fixture in [PULL_THROUGH_CACHE, REPLICATION] {
        let invoker = FakeInvoker::answering(202);
        let event = json(fixture);
        let hit = handle(
            &config(Some("team/*:*,docker-hub/*:3.*"), None),
            &invoker,
            "r",
            &event,
        )
        .await
        .unwrap();
        assert_eq!(hit.status, Status::Invoked, "{}", hit.reason);
        assert_eq!(hit.filter.as_deref(), Some("docker-hub/*:3.*"));
        let miss = handle(
            &config(Some("docker-hub/*:latest"), None),
            &invoker,
            "r",
            &event,
        )
        .await
        .unwrap();
        assert_eq!(miss.status, Status::Skipped);
        assert!(
            miss.reason.contains("docker-hub/alpine:3.17.2"),
            "{}",
            miss.reason
        );
        assert_eq!(invoker.calls().len(), 1);
    }
}

#[tokio::test]
async fn the_generators_own_tags_are_skipped_whatever_the_shape() {
    for fixture in [PULL_THROUGH_CACHE, REPLICATION, DELETE_TAGGED] {
        let mut event = json(fixture);
        event["detail"]["image-tag"] = "3.17.2-soci".into();
        let invoker = FakeInvoker::answering(202);
        let outcome = handle(&config(None, None), &invoker, "r", &event)
            .await
            .unwrap();
        assert_eq!(outcome.status, Status::Skipped);
        assert!(outcome.reason.contains("suffix"), "{}", outcome.reason);
        event["detail"].as_object_mut().unwrap().remove("image-tag");
        let untagged = handle(&config(None, None), &invoker, "r", &event)
            .await
            .unwrap();
        assert_eq!(untagged.status, Status::Skipped);
        assert!(untagged.reason.contains("untagged"), "{}", untagged.reason);
        assert!(invoker.calls().is_empty());
    }
}

#[tokio::test]
async fn failed_syncs_and_replications_are_refused_with_the_reason() {
    for (fixture, why) in [
        (PULL_THROUGH_CACHE_FAILED, "sync-status is \"FAILED\""),
        (REPLICATION_FAILED, "result is \"FAILED\""),
    ] {
        let invoker = FakeInvoker::answering(202);
        let outcome = handle(&config(None, None), &invoker, "r", &json(fixture))
            .await
            .unwrap();
        assert_eq!(outcome.status, Status::Invalid);
        assert!(outcome.reason.contains(why), "{}", outcome.reason);
        assert!(invoker.calls().is_empty());
    }
}

#[tokio::test]
async fn deletes_are_left_alone_in_v1() {
    let invoker = FakeInvoker::answering(202);
    let outcome = handle(
        &config(None, Some("V1")),
        &invoker,
        "r",
        &json(DELETE_TAGGED),
    )
    .await
    .unwrap();
    assert_eq!(outcome.status, Status::Skipped);
    assert!(outcome.reason.contains("V1"), "{}", outcome.reason);
    assert!(invoker.calls().is_empty());
}
