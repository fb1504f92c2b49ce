//! Fixtures and fakes shared by the handler test binaries.
// Each test binary uses a different subset of these.
#![allow(dead_code)]

use std::sync::Mutex;

use ecr_image_filter::{Config, InvokeError, Invoker};
use serde_json::Value;

pub const TAGGED: &[u8] = include_bytes!("../fixtures/push_tagged.json");
pub const UNTAGGED: &[u8] = include_bytes!("../fixtures/push_untagged.json");
pub const UNTAGGED_NO_FIELD: &[u8] = include_bytes!("../fixtures/push_untagged_no_tag_field.json");
pub const IMAGE_INDEX: &[u8] = include_bytes!("../fixtures/push_image_index.json");
pub const SOCI_TAG: &[u8] = include_bytes!("../fixtures/push_soci_tag.json");
pub const SOCI_INDEX_V1: &[u8] = include_bytes!("../fixtures/push_soci_index_v1.json");
pub const SOCI_INDEX_V2: &[u8] = include_bytes!("../fixtures/push_soci_index_v2.json");

pub const INVALID: &[(&str, &[u8])] = &[
    (
        "missing field",
        include_bytes!("../fixtures/malformed_missing_repository.json"),
    ),
    (
        "malformed event",
        include_bytes!("../fixtures/malformed_not_json_object.json"),
    ),
    (
        "account",
        include_bytes!("../fixtures/invalid_account.json"),
    ),
    (
        "action-type",
        include_bytes!("../fixtures/invalid_action_type.json"),
    ),
    (
        "result",
        include_bytes!("../fixtures/invalid_failed_push.json"),
    ),
    ("source", include_bytes!("../fixtures/invalid_source.json")),
    (
        "detail-type",
        include_bytes!("../fixtures/invalid_detail_type.json"),
    ),
    (
        "repository name",
        include_bytes!("../fixtures/invalid_repository.json"),
    ),
    ("digest", include_bytes!("../fixtures/invalid_digest.json")),
    ("tag", include_bytes!("../fixtures/invalid_tag.json")),
];

pub const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:gen";

/// Records invocations and answers a fixed status (or an error).
#[derive(Default)]
pub struct FakeInvoker {
    calls: Mutex<Vec<(String, Vec<u8>)>>,
    status: Option<i32>,
}

impl FakeInvoker {
    pub fn answering(status: i32) -> Self {
        Self {
            calls: Mutex::default(),
            status: Some(status),
        }
    }
    pub fn calls(&self) -> Vec<(String, Vec<u8>)> {
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

pub fn config(filters: Option<&str>, version: Option<&str>) -> Config {
    Config::from_lookup(|name| match name {
        "soci_repository_image_tag_filters" => filters.map(str::to_owned),
        "soci_index_generator_lambda_arn" => Some(ARN.to_owned()),
        "soci_index_version" => version.map(str::to_owned),
        _ => None,
    })
    .unwrap()
}

pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

// The shapes of the ECR user guide's "Amazon ECR events and EventBridge" page; fixtures/README.md
// says what was changed from the guide's samples and why.
pub const PULL_THROUGH_CACHE: &[u8] = include_bytes!("../fixtures/pull_through_cache.json");
pub const PULL_THROUGH_CACHE_FAILED: &[u8] =
    include_bytes!("../fixtures/pull_through_cache_failed.json");
pub const REPLICATION: &[u8] = include_bytes!("../fixtures/replication.json");
pub const REPLICATION_FAILED: &[u8] = include_bytes!("../fixtures/replication_failed.json");
pub const DELETE_TAGGED: &[u8] = include_bytes!("../fixtures/delete_tagged.json");
