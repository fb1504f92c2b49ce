//! The EMF metric records of an image indexed through the Lambda handler against a real
//! `docker-registry`: every line is checked against the rules of CloudWatch's Embedded Metric
//! Format specification (a validator written here from the specification, not from the
//! emitter), then against what happened to the image's layers.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::{Map, Value, json};
use soci_index_generator::EcrImageActionEvent;
use soci_index_generator::handler::Handler;
use soci_index_generator::metrics::{self, Metrics};
use soci_lambda_contract::logging::LogCapture;

/// Units CloudWatch accepts (`MetricDatum.Unit`).
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// One metric as a record defines it.
#[derive(Debug)]
struct Extracted {
    namespace: String,
    name: String,
    unit: Option<String>,
    dimensions: BTreeMap<String, String>,
    values: Vec<f64>,
}

fn only_keys(object: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{what} has the member {k:?}, which the format does not define"
        )),
        None => Ok(()),
    }
}

/// Checks one log event against the EMF specification; returns the metrics CloudWatch would
/// extract from it.
fn validate(line: &str, now_ms: u64) -> Result<Vec<Extracted>, String> {
    // The log event limit (1 MB; 256 KB in older documentation: keep under the smaller one).
    if line.len() > 256 * 1024 {
        return Err(format!("{} bytes is over the log event limit", line.len()));
    }
    // The whole event must be one JSON object, with nothing before or after it.
    let root: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let root = root.as_object().ok_or("the root is not an object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws metadata object")?;
    let timestamp = aws
        .get("Timestamp")
        .and_then(Value::as_u64)
        .ok_or("_aws.Timestamp is not a non-negative integer")?;
    // Milliseconds since the epoch, so within a day of now (seconds would be 1000x smaller).
    if timestamp.abs_diff(now_ms) > 86_400_000 {
        return Err(format!(
            "_aws.Timestamp {timestamp} is not now in milliseconds ({now_ms})"
        ));
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("_aws.CloudWatchMetrics is not an array")?;
    if directives.is_empty() {
        return Err("_aws.CloudWatchMetrics is empty".into());
    }
    let mut extracted = Vec::new();
    for directive in directives {
        let directive = directive
            .as_object()
            .ok_or("a directive is not an object")?;
        only_keys(
            directive,
            &["Namespace", "Dimensions", "Metrics"],
            "a directive",
        )?;
        let namespace = directive
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("Namespace is not a string")?;
        if namespace.is_empty() || namespace.len() > 255 || namespace.starts_with("AWS/") {
            return Err(format!("Namespace {namespace:?} is not allowed"));
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("Dimensions is not an array")?;
        let mut dimension_sets = Vec::new();
        for set in sets {
            let set = set.as_array().ok_or("a DimensionSet is not an array")?;
            if set.len() > 30 {
                return Err(format!(
                    "a DimensionSet has {} keys (30 at most)",
                    set.len()
                ));
            }
            let mut dims = BTreeMap::new();
            for key in set {
                let key = key.as_str().ok_or("a dimension key is not a string")?;
                let value = root
                    .get(key)
                    .ok_or(format!("dimension {key:?} is not a member of the root"))?
                    .as_str()
                    .ok_or(format!("dimension {key:?} is not a string member"))?;
                if value.is_empty() || value.len() > 1024 {
                    return Err(format!(
                        "dimension {key:?} has a value of {} bytes",
                        value.len()
                    ));
                }
                dims.insert(key.to_string(), value.to_string());
            }
            dimension_sets.push(dims);
        }
        let definitions = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("Metrics is not an array")?;
        if definitions.is_empty() || definitions.len() > 100 {
            return Err(format!(
                "{} metric definitions (1 to 100)",
                definitions.len()
            ));
        }
        let mut names = BTreeSet::new();
        for definition in definitions {
            let definition = definition
                .as_object()
                .ok_or("a MetricDefinition is not an object")?;
            only_keys(
                definition,
                &["Name", "Unit", "StorageResolution"],
                "a MetricDefinition",
            )?;
            let name = definition
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a MetricDefinition has no Name string")?;
            if name.is_empty() || name.len() > 255 || !names.insert(name) {
                return Err(format!(
                    "metric name {name:?} is empty, too long or repeated"
                ));
            }
            let unit = match definition.get("Unit") {
                None => None,
                Some(u) => {
                    let u = u.as_str().ok_or("Unit is not a string")?;
                    if !UNITS.contains(&u) {
                        return Err(format!("{name}: unit {u:?} is not a CloudWatch unit"));
                    }
                    Some(u.to_string())
                }
            };
            if let Some(r) = definition.get("StorageResolution")
                && r != 1
                && r != 60
            {
                return Err(format!("{name}: StorageResolution {r} is not 1 or 60"));
            }
            let values = match root.get(name) {
                Some(Value::Number(n)) => vec![n.as_f64().ok_or("not a finite number")?],
                Some(Value::Array(a)) => {
                    if a.is_empty() || a.len() > 100 {
                        return Err(format!("{name}: {} values (1 to 100)", a.len()));
                    }
                    a.iter()
                        .map(|v| v.as_f64().ok_or(format!("{name}: {v} is not a number")))
                        .collect::<Result<Vec<_>, _>>()?
                }
                Some(other) => return Err(format!("{name} is {other}, not a number or array")),
                None => return Err(format!("metric {name:?} is not a member of the root")),
            };
            for dims in &dimension_sets {
                extracted.push(Extracted {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    unit: unit.clone(),
                    dimensions: dims.clone(),
                    values: values.clone(),
                });
            }
        }
    }
    Ok(extracted)
}

#[test]
fn the_validator_refuses_what_the_format_forbids() {
    let now = 1_700_000_000_000;
    let good = json!({
        "_aws": {"Timestamp": now, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["F"]],
            "Metrics": [{"Name": "M", "Unit": "Count"}]}]},
        "F": "fn", "M": [1, 2]
    });
    assert_eq!(validate(&good.to_string(), now).expect("valid").len(), 1);
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        validate(&v.to_string(), now)
    };
    assert!(broken(&|v| v["_aws"]["Timestamp"] = json!(now / 1000)).is_err());
    assert!(broken(&|v| v["_aws"]["Timestamp"] = json!("now")).is_err());
    assert!(
        broken(&|v| v["F"] = json!(3)).is_err(),
        "dimension not a string"
    );
    assert!(
        broken(&|v| {
            v.as_object_mut().unwrap().remove("F");
        })
        .is_err()
    );
    assert!(
        broken(&|v| {
            v.as_object_mut().unwrap().remove("M");
        })
        .is_err()
    );
    assert!(
        broken(&|v| v["M"] = json!("1")).is_err(),
        "value not a number"
    );
    assert!(
        broken(&|v| v["M"] = json!(vec![1; 101])).is_err(),
        "101 values"
    );
    assert!(
        broken(&|v| v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Bytes/Sec"))
            .is_err()
    );
    assert!(
        broken(&|v| v["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
            json!([(0..31).map(|i| format!("d{i}")).collect::<Vec<_>>()]))
        .is_err()
    );
    let many: Vec<Value> = (0..101).map(|i| json!({"Name": format!("m{i}")})).collect();
    assert!(broken(&|v| v["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(many)).is_err());
    assert!(validate(&format!("{good} trailing"), now).is_err());
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn push_event(repo: &str, digest: &str, tag: &str) -> EcrImageActionEvent {
    serde_json::from_value(json!({
        "version": "0",
        "id": "4f8e0a39-0000-0000-0000-000000000000",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": repo,
            "image-digest": digest,
            "action-type": "PUSH",
            "image-tag": tag,
        }
    }))
    .expect("an ECR push event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_of_an_indexed_image_follow_the_format_and_the_facts() {
    let env = Env::start().await;
    let repo = "metrics/app";
    let big1 = LayerBlob::gzip(41, 900 * 1024);
    let big2 = LayerBlob::tar(42, 300 * 1024);
    let small = LayerBlob::gzip(43, 10 * 1024);
    let zstd = LayerBlob::zstd(44, 300 * 1024);
    let unindexable = LayerBlob::unindexable(45);
    let layers = [
        big1.clone(),
        small.clone(),
        zstd.clone(),
        big2.clone(),
        unindexable.clone(),
    ];
    assert!((small.blob.len() as u64) < MIN_LAYER);
    let pushed = push_image(&env, repo, Some("v1"), &layers, "amd64", false).await;

    let capture = LogCapture::default();
    let metrics = Metrics::new("Test/SOCI", "test-generator").with_writer(capture.clone());
    let handler = Handler::new(env.config()).await.with_metrics(metrics);
    let outcome = handler
        .handle(push_event(repo, &pushed.digest, "v1"), "req-1")
        .await
        .expect("indexed");
    assert_eq!(outcome.status(), "indexed", "{outcome:?}");
    check_v2(&env, repo, "v1", &pushed.digest).await;

    let text = capture.text();
    eprintln!("EMF records of {repo}@{}:\n{text}", pushed.digest);
    assert!(text.ends_with('\n'), "whole lines: {text:?}");
    let now = now_ms();
    let mut extracted = Vec::new();
    for line in text.lines() {
        match validate(line, now) {
            Ok(mut e) => extracted.append(&mut e),
            Err(why) => panic!("{why}: {line}"),
        }
    }

    // Only the names and units the module's dashboard knows, in the configured namespace.
    let known: BTreeMap<&str, &str> = metrics::METRICS
        .iter()
        .map(|m| (m.name, m.unit.as_str()))
        .collect();
    for e in &extracted {
        assert_eq!(e.namespace, "Test/SOCI");
        assert_eq!(e.dimensions["FunctionName"], "test-generator");
        assert_eq!(
            known.get(e.name.as_str()).copied(),
            e.unit.as_deref(),
            "{e:?}"
        );
    }
    let values = |name: &str, reason: Option<&str>| -> Vec<f64> {
        extracted
            .iter()
            .filter(|e| e.name == name)
            .filter(|e| e.dimensions.get("Reason").map(String::as_str) == reason)
            .flat_map(|e| e.values.clone())
            .collect()
    };
    assert_eq!(values("ImagesIndexed", None), vec![1.0]);
    assert!(values("ImagesFailed", None).is_empty());
    assert_eq!(values("LayersIndexed", None), vec![2.0]);
    for reason in ["too_small", "unsupported_media_type", "unindexable"] {
        assert_eq!(values("LayersLeftOut", Some(reason)), vec![1.0], "{reason}");
    }
    assert!(values("LayersLeftOut", Some("rejected")).is_empty());
    assert!(values("LayersLeftOut", None).is_empty(), "always by reason");

    // Per layer: the two indexed layers' sizes, their seconds and the rates derived from them.
    let mut sizes = values("LayerBytes", None);
    sizes.sort_by(f64::total_cmp);
    let mut expected = vec![big1.blob.len() as f64, big2.blob.len() as f64];
    expected.sort_by(f64::total_cmp);
    assert_eq!(sizes, expected);
    let bytes = values("LayerBytes", None);
    let seconds = values("LayerSeconds", None);
    let download = values("DownloadThroughput", None);
    let index = values("IndexThroughput", None);
    assert_eq!(seconds.len(), 2);
    for i in 0..2 {
        assert!(seconds[i] > 0.0);
        let rate = bytes[i] / seconds[i];
        assert!(
            (download[i] - rate).abs() <= rate * 1e-9,
            "{download:?} {rate}"
        );
        // The tar is larger than its gzip; about as large as the uncompressed layer's blob
        // (which may carry record padding after the end of the archive).
        assert!(index[i] >= download[i] * 0.9, "{index:?} {download:?}");
    }
    let image_seconds = values("ImageSeconds", None);
    assert_eq!(image_seconds.len(), 1);
    assert!(image_seconds[0] >= seconds.iter().cloned().fold(0.0, f64::max));

    // The image is named in every record (a member, not a dimension).
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(v["repository"], repo);
        assert_eq!(v["image_digest"], pushed.digest.as_str());
        assert_eq!(v["status"], "indexed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_invocation_is_counted_and_emit_metrics_false_is_silent() {
    let env = Env::start().await;
    // A registry that refuses connections: the invocation fails (and Lambda would retry it).
    let mut config = env.config();
    config.registry = soci_index_generator::config::RegistryTarget::Url {
        url: "http://127.0.0.1:9".into(),
        username: None,
        password: None,
    };
    config.retry_attempts = 1;
    let capture = LogCapture::default();
    let metrics = Metrics::new("Test/SOCI", "test-generator").with_writer(capture.clone());
    let handler = Handler::new(config.clone()).await.with_metrics(metrics);
    let digest = format!("sha256:{}", "0".repeat(64));
    let result = handler
        .handle(push_event("app", &digest, "v1"), "req-3")
        .await;
    assert!(result.is_err(), "{result:?}");
    let text = capture.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let extracted = validate(lines[0], now_ms()).unwrap_or_else(|why| panic!("{why}: {text}"));
    assert_eq!(extracted.len(), 1);
    assert_eq!(extracted[0].name, "ImagesFailed");
    assert_eq!(extracted[0].values, vec![1.0]);

    // `emit_metrics=false` (namespace None): the handler's emitter is off.
    config.metrics_namespace = None;
    assert!(!Metrics::from_config(&config).enabled());
    assert!(Metrics::from_config(&env.config()).enabled());
}
