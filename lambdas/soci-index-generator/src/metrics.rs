//! CloudWatch metrics as Embedded Metric Format (EMF) records: one JSON object per line on
//! stdout, which the Lambda runtime sends to CloudWatch Logs and CloudWatch Logs turns into
//! metrics (no `PutMetricData` call, no extra permission, nothing lost when the function ends).
//!
//! A record is `{"_aws": {"Timestamp": <ms>, "CloudWatchMetrics": [{"Namespace", "Dimensions",
//! "Metrics": [{"Name", "Unit"}]}]}, <dimension members>, <metric members>, <context>}`; the
//! limits this module keeps by construction: at most 100 metrics per directive, 30 dimension
//! keys per set, 100 values per metric array, units from CloudWatch's list, finite numbers.
//!
//! Per image the generator answers for (one invocation):
//!
//! | metric | unit | dimensions | what |
//! |---|---|---|---|
//! | `ImagesIndexed` | Count | `FunctionName` | 1 per image indexed (a SOCI index pushed) |
//! | `ImagesFailed` | Count | `FunctionName` | 1 per image whose indexing failed (the invocation fails; Lambda retries it) |
//! | `ImageSeconds` | Seconds | `FunctionName` | the whole pipeline, for an indexed image |
//! | `LayersIndexed` | Count | `FunctionName` | layers that got a zTOC |
//! | `LayersLeftOut` | Count | `FunctionName`, `Reason` | layers without one, by [`LeftOut`] reason |
//! | `LayerBytes` | Bytes | `FunctionName` | compressed size of each indexed layer |
//! | `LayerSeconds` | Seconds | `FunctionName` | download + index of each indexed layer (one streamed pass) |
//! | `DownloadThroughput` | Bytes/Second | `FunctionName` | `LayerBytes / LayerSeconds`: the blob's rate into the builder |
//! | `IndexThroughput` | Bytes/Second | `FunctionName` | tar bytes indexed per second, per layer |
//! | `ZtocCacheHits` | Count | `FunctionName` | with a zTOC cache: indexed layers whose zTOC came from it (not downloaded) |
//! | `ZtocCacheMisses` | Count | `FunctionName` | with a zTOC cache: indexed layers built (and then cached) |
//!
//! The per-layer arrays cover the layers streamed through the builder; a cache hit has no
//! such pass and is only counted.
//!
//! Per-layer metrics are arrays (one value per layer, at most 100 per record; more layers give
//! more records). `FunctionName` keeps deployments apart; `Reason` has four values, so the
//! module's metrics stay a fixed, small set. The repository and digest ride along as plain
//! members (searchable in Logs Insights, not dimensions).
//!
//! Lines are written whole with one `write_all` on locked stdout, the same way the JSON logs
//! are (`soci_lambda_contract::logging`), so a record is never interleaved with a log line.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::pipeline::{CacheUse, IndexingOutcome, LayerReport, LeftOut};

/// The namespace when `metrics_namespace` is not set.
pub const DEFAULT_NAMESPACE: &str = "SOCI/IndexGenerator";
/// `FunctionName` outside Lambda (`AWS_LAMBDA_FUNCTION_NAME` unset).
pub const DEFAULT_FUNCTION_NAME: &str = "soci-index-generator";

/// Dimension: the function's name.
pub const DIMENSION_FUNCTION_NAME: &str = "FunctionName";
/// Dimension of [`LAYERS_LEFT_OUT`]: a [`LeftOut::as_str`].
pub const DIMENSION_REASON: &str = "Reason";

/// A CloudWatch unit this module uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Seconds,
    BytesPerSecond,
}

impl Unit {
    /// The name CloudWatch knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Seconds => "Seconds",
            Unit::BytesPerSecond => "Bytes/Second",
        }
    }
}

/// A metric name and its unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
}

pub const IMAGES_INDEXED: Metric = Metric {
    name: "ImagesIndexed",
    unit: Unit::Count,
};
pub const IMAGES_FAILED: Metric = Metric {
    name: "ImagesFailed",
    unit: Unit::Count,
};
pub const IMAGE_SECONDS: Metric = Metric {
    name: "ImageSeconds",
    unit: Unit::Seconds,
};
pub const LAYERS_INDEXED: Metric = Metric {
    name: "LayersIndexed",
    unit: Unit::Count,
};
pub const LAYERS_LEFT_OUT: Metric = Metric {
    name: "LayersLeftOut",
    unit: Unit::Count,
};
pub const LAYER_BYTES: Metric = Metric {
    name: "LayerBytes",
    unit: Unit::Bytes,
};
pub const LAYER_SECONDS: Metric = Metric {
    name: "LayerSeconds",
    unit: Unit::Seconds,
};
pub const DOWNLOAD_THROUGHPUT: Metric = Metric {
    name: "DownloadThroughput",
    unit: Unit::BytesPerSecond,
};
pub const INDEX_THROUGHPUT: Metric = Metric {
    name: "IndexThroughput",
    unit: Unit::BytesPerSecond,
};

pub const ZTOC_CACHE_HITS: Metric = Metric {
    name: "ZtocCacheHits",
    unit: Unit::Count,
};
pub const ZTOC_CACHE_MISSES: Metric = Metric {
    name: "ZtocCacheMisses",
    unit: Unit::Count,
};

/// Every metric the generator emits (the dashboard of the Terraform module shows these; a test
/// keeps the two lists equal).
pub const METRICS: [Metric; 11] = [
    IMAGES_INDEXED,
    IMAGES_FAILED,
    IMAGE_SECONDS,
    LAYERS_INDEXED,
    LAYERS_LEFT_OUT,
    LAYER_BYTES,
    LAYER_SECONDS,
    DOWNLOAD_THROUGHPUT,
    INDEX_THROUGHPUT,
    ZTOC_CACHE_HITS,
    ZTOC_CACHE_MISSES,
];

/// EMF's limit on the values of one metric array.
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// Where records go: stdout, or a writer (tests).
#[derive(Clone)]
enum Sink {
    Stdout,
    Writer(Arc<Mutex<dyn Write + Send>>),
}

/// The generator's EMF emitter; [`Metrics::off`] emits nothing.
#[derive(Clone)]
pub struct Metrics {
    namespace: Option<String>,
    function_name: String,
    sink: Sink,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .field("function_name", &self.function_name)
            .finish()
    }
}

impl Metrics {
    /// Records in `namespace` with `FunctionName` = `function_name`, on stdout.
    pub fn new(namespace: impl Into<String>, function_name: impl Into<String>) -> Self {
        Self {
            namespace: Some(namespace.into()),
            function_name: function_name.into(),
            sink: Sink::Stdout,
        }
    }

    /// No records.
    pub fn off() -> Self {
        Self {
            namespace: None,
            function_name: DEFAULT_FUNCTION_NAME.into(),
            sink: Sink::Stdout,
        }
    }

    /// As configured (`metrics_namespace`, `emit_metrics`), named after the Lambda function
    /// (`AWS_LAMBDA_FUNCTION_NAME`, which Lambda sets).
    pub fn from_config(config: &crate::config::Config) -> Self {
        match &config.metrics_namespace {
            None => Self::off(),
            Some(namespace) => {
                let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                    .ok()
                    .filter(|f| !f.trim().is_empty())
                    .unwrap_or_else(|| DEFAULT_FUNCTION_NAME.into());
                Self::new(namespace.clone(), function)
            }
        }
    }

    /// Writes records to `writer` instead of stdout (one `write_all` per line).
    pub fn with_writer(mut self, writer: impl Write + Send + 'static) -> Self {
        self.sink = Sink::Writer(Arc::new(Mutex::new(writer)));
        self
    }

    pub fn enabled(&self) -> bool {
        self.namespace.is_some()
    }

    /// Emits the records of one invocation: `result` of the pipeline, which took `elapsed`.
    pub fn record<E>(&self, result: &Result<IndexingOutcome, E>, elapsed: Duration) {
        let Some(namespace) = &self.namespace else {
            return;
        };
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let timestamp = u64::try_from(timestamp).unwrap_or(u64::MAX);
        let records = match result {
            Ok(outcome) => outcome_records(namespace, &self.function_name, outcome, elapsed),
            Err(_) => vec![failure_record(namespace, &self.function_name)],
        };
        for mut record in records {
            if let Some(aws) = record.get_mut("_aws").and_then(Value::as_object_mut) {
                aws.insert("Timestamp".into(), Value::from(timestamp));
            }
            self.write_line(&record);
        }
    }

    fn write_line(&self, record: &Value) {
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(error = %e, "metrics record not serialized");
                return;
            }
        };
        line.push(b'\n');
        let written = match &self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&line).and_then(|()| out.flush())
            }
            Sink::Writer(w) => w
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write_all(&line),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "metrics record not written");
        }
    }
}

/// A record (without its `Timestamp`, set when written): `members` at the top level, one
/// directive over `metrics` with the dimension set `dimensions` (each a member of `members`).
fn record(
    namespace: &str,
    dimensions: &[&str],
    metrics: &[(Metric, Value)],
    mut members: Map<String, Value>,
) -> Value {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(m, _)| json!({"Name": m.name, "Unit": m.unit.as_str()}))
        .collect();
    for (m, value) in metrics {
        members.insert(m.name.into(), value.clone());
    }
    members.insert(
        "_aws".into(),
        json!({
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions],
                "Metrics": definitions,
            }]
        }),
    );
    Value::Object(members)
}

/// What identifies the image and function in every record of an outcome.
fn context(
    function_name: &str,
    status: &str,
    repository: &str,
    digest: &str,
) -> Map<String, Value> {
    let mut members = Map::new();
    members.insert(DIMENSION_FUNCTION_NAME.into(), function_name.into());
    members.insert("status".into(), status.into());
    members.insert("repository".into(), repository.into());
    members.insert("image_digest".into(), digest.into());
    members
}

/// A finite number (EMF values must be numbers; JSON has no NaN or infinity).
fn number(x: f64) -> Value {
    if x.is_finite() {
        Value::from(x)
    } else {
        Value::from(0)
    }
}

/// The records of an outcome: the image's metrics with its first 100 layers' values, further
/// records for the values of layers beyond, then one per reason layers were left out.
fn outcome_records(
    namespace: &str,
    function_name: &str,
    outcome: &IndexingOutcome,
    elapsed: Duration,
) -> Vec<Value> {
    let (indexed, repository, digest, layers) = match outcome {
        IndexingOutcome::Indexed {
            repository,
            image_digest,
            layers,
            ..
        } => (true, repository, image_digest, layers),
        IndexingOutcome::NoEligibleLayers {
            repository,
            image_digest,
            layers,
            ..
        } => (false, repository, image_digest, layers),
        // Nothing was built: the logs say why.
        _ => return Vec::new(),
    };
    let members = context(function_name, outcome.status(), repository, digest);
    let built: Vec<&LayerReport> = layers
        .iter()
        .filter(|l| l.left_out.is_none() && l.seconds.is_some())
        .collect();
    let cached = |u: CacheUse| built.iter().filter(|l| l.ztoc_cache == Some(u)).count();
    let (hits, misses) = (cached(CacheUse::Hit), cached(CacheUse::Miss));
    let streamed: Vec<&LayerReport> = built
        .iter()
        .copied()
        .filter(|l| l.ztoc_cache != Some(CacheUse::Hit))
        .collect();
    let mut records = Vec::new();
    let mut chunks = streamed.chunks(MAX_VALUES_PER_METRIC);
    let first = chunks.next().unwrap_or_default();
    let mut image = vec![(LAYERS_INDEXED, Value::from(built.len()))];
    if indexed {
        image.push((IMAGES_INDEXED, Value::from(1)));
        image.push((IMAGE_SECONDS, number(elapsed.as_secs_f64())));
    }
    if hits + misses > 0 {
        image.push((ZTOC_CACHE_HITS, Value::from(hits)));
        image.push((ZTOC_CACHE_MISSES, Value::from(misses)));
    }
    image.extend(layer_values(first));
    records.push(record(
        namespace,
        &[DIMENSION_FUNCTION_NAME],
        &image,
        members.clone(),
    ));
    for chunk in chunks {
        records.push(record(
            namespace,
            &[DIMENSION_FUNCTION_NAME],
            &layer_values(chunk),
            members.clone(),
        ));
    }
    for why in LeftOut::ALL {
        let count = layers.iter().filter(|l| l.left_out == Some(why)).count();
        if count == 0 {
            continue;
        }
        let mut members = members.clone();
        members.insert(DIMENSION_REASON.into(), why.as_str().into());
        records.push(record(
            namespace,
            &[DIMENSION_FUNCTION_NAME, DIMENSION_REASON],
            &[(LAYERS_LEFT_OUT, Value::from(count))],
            members,
        ));
    }
    records
}

/// The per-layer arrays of `layers` (at most [`MAX_VALUES_PER_METRIC`]); none when empty.
fn layer_values(layers: &[&LayerReport]) -> Vec<(Metric, Value)> {
    if layers.is_empty() {
        return Vec::new();
    }
    let (mut bytes, mut seconds, mut download, mut index) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for l in layers {
        // `seconds` is at least a nanosecond (build.rs), so the rates are finite.
        let secs = l.seconds.unwrap_or_default().max(1e-9);
        bytes.push(Value::from(l.size));
        seconds.push(number(secs));
        download.push(number(l.size as f64 / secs));
        index.push(number(
            l.uncompressed_size.unwrap_or_default() as f64 / secs,
        ));
    }
    vec![
        (LAYER_BYTES, Value::Array(bytes)),
        (LAYER_SECONDS, Value::Array(seconds)),
        (DOWNLOAD_THROUGHPUT, Value::Array(download)),
        (INDEX_THROUGHPUT, Value::Array(index)),
    ]
}

/// The record of a failed invocation.
fn failure_record(namespace: &str, function_name: &str) -> Value {
    let mut members = Map::new();
    members.insert(DIMENSION_FUNCTION_NAME.into(), function_name.into());
    members.insert("status".into(), "failed".into());
    record(
        namespace,
        &[DIMENSION_FUNCTION_NAME],
        &[(IMAGES_FAILED, Value::from(1))],
        members,
    )
}

/// Why a namespace cannot be used, or `Ok`: CloudWatch's rules (1 to 255 ASCII characters
/// from letters, digits, `.` `-` `_` `/` `#` `:` and space, at least one not a space, not
/// starting with `:` or the reserved `AWS/`).
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    if namespace.is_empty() || namespace.len() > 255 {
        return Err(format!("{} characters (1 to 255)", namespace.len()));
    }
    if let Some(c) = namespace
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_/#: ".contains(*c)))
    {
        return Err(format!("the character {c:?}"));
    }
    if namespace.trim().is_empty() {
        return Err("only spaces".into());
    }
    if namespace.starts_with(':') {
        return Err("a leading ':'".into());
    }
    if namespace.starts_with("AWS/") {
        return Err("the prefix AWS/, which is reserved for AWS services".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(i: u64) -> LayerReport {
        LayerReport {
            digest: format!("sha256:{i:064x}"),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: 1000 + i,
            result: "indexed".into(),
            ztoc_digest: None,
            ztoc_size: None,
            seconds: Some(0.5),
            uncompressed_size: Some(4000),
            left_out: None,
            ztoc_cache: None,
        }
    }

    fn indexed(layers: Vec<LayerReport>) -> IndexingOutcome {
        IndexingOutcome::Indexed {
            repository: "app".into(),
            image_digest: "sha256:00".into(),
            tag: Some("v1".into()),
            index_tag: Some("v1-soci".into()),
            index_digest: "sha256:11".into(),
            soci_indexes: Vec::new(),
            layers,
            pushed: Vec::new(),
            dry_run: false,
            in_place: None,
        }
    }

    fn lines(metrics: Metrics, result: &Result<IndexingOutcome, ()>) -> Vec<Value> {
        let capture = soci_lambda_contract::logging::LogCapture::default();
        metrics
            .with_writer(capture.clone())
            .record(result, Duration::from_secs(2));
        capture
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    }

    #[test]
    fn more_than_100_layers_are_split_over_records() {
        let mut layers: Vec<LayerReport> = (0..250).map(layer).collect();
        layers.push(LayerReport::left_out(
            "sha256:aa",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            5,
            LeftOut::UnsupportedMediaType,
            "left out".into(),
        ));
        let records = lines(Metrics::new("NS", "fn"), &Ok(indexed(layers)));
        assert_eq!(records.len(), 4, "{records:?}");
        let sizes: Vec<usize> = records[..3]
            .iter()
            .map(|r| r[LAYER_BYTES.name].as_array().expect("array").len())
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        assert_eq!(records[0][LAYERS_INDEXED.name], 250);
        assert_eq!(records[0][IMAGES_INDEXED.name], 1);
        assert!(
            records[1].get(IMAGES_INDEXED.name).is_none(),
            "counted once"
        );
        assert_eq!(records[3][LAYERS_LEFT_OUT.name], 1);
        assert_eq!(records[3][DIMENSION_REASON], "unsupported_media_type");
        assert!(records[0]["_aws"]["Timestamp"].is_u64());
    }

    #[test]
    fn cache_hits_are_counted_but_not_timed_as_downloads() {
        let mut layers: Vec<LayerReport> = (0..3).map(layer).collect();
        layers[0].ztoc_cache = Some(CacheUse::Hit);
        layers[1].ztoc_cache = Some(CacheUse::Hit);
        layers[2].ztoc_cache = Some(CacheUse::Miss);
        let records = lines(Metrics::new("NS", "fn"), &Ok(indexed(layers)));
        assert_eq!(records.len(), 1, "{records:?}");
        let r = &records[0];
        assert_eq!(r[LAYERS_INDEXED.name], 3);
        assert_eq!(r[ZTOC_CACHE_HITS.name], 2);
        assert_eq!(r[ZTOC_CACHE_MISSES.name], 1);
        assert_eq!(r[LAYER_BYTES.name], serde_json::json!([1002]));
        let names: Vec<&str> = r["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        assert!(names.contains(&ZTOC_CACHE_HITS.name), "{names:?}");
        // No cache configured: no cache metrics.
        let records = lines(Metrics::new("NS", "fn"), &Ok(indexed(vec![layer(1)])));
        assert!(records[0].get(ZTOC_CACHE_HITS.name).is_none());
    }

    #[test]
    fn failures_are_counted_and_off_means_silent() {
        let records = lines(Metrics::new("NS", "fn"), &Err(()));
        assert_eq!(records.len(), 1);
        assert_eq!(records[0][IMAGES_FAILED.name], 1);
        assert!(lines(Metrics::off(), &Err(())).is_empty());
        assert!(lines(Metrics::off(), &Ok(indexed(vec![layer(1)]))).is_empty());
    }

    #[test]
    fn namespaces_follow_cloudwatch_rules() {
        for ok in [DEFAULT_NAMESPACE, "Acme/SOCI Builder", "a.b-c_d#e:f"] {
            assert_eq!(check_namespace(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            " ",
            "AWS/Lambda",
            ":x",
            "a\u{e9}",
            "a,b",
            &"x".repeat(256),
        ] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
    }
}
