//! Configuration from the environment (the variable names and meanings of the AWS solution
//! this replaces).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `soci_index_version` | `V2` | `V2` (convert + tag `<tag><suffix>`) or `V1` (index with `subject`, untagged) |
//! | `ECR_ENDPOINT` | SDK default | ECR API endpoint override (the old solution's name) |
//! | `AWS_ENDPOINT_URL` | SDK default | standard SDK endpoint override (moto, LocalStack) |
//! | `SOCI_REGISTRY_URL` | ECR host of the event's account/region | registry base URL, e.g. `http://127.0.0.1:5000`: any OCI registry, no ECR credentials |
//! | `SOCI_REGISTRY_USERNAME` / `SOCI_REGISTRY_PASSWORD` | anonymous | basic credentials for `SOCI_REGISTRY_URL` (also used to obtain bearer tokens) |
//! | `span_size` | 4194304 | zTOC span size in bytes |
//! | `min_layer_size` | 10485760 | layers strictly smaller are left out |
//! | `platforms` | all | comma-separated `os/arch[/variant]` to index |
//! | `index_tag_suffix` | `-soci` | V2 tag suffix; tags already ending in it are skipped |
//! | `build_tool_identifier` | `soci-lambda v<version>` | written into every zTOC and index |
//! | `memory_budget_mib` | `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, else 2048 | memory the zTOC budget is derived from |
//! | `parallel_fetch_min_size` | 33554432 | layers this large or larger are fetched as concurrent `Range` requests ([`ParallelFetch`]) |
//! | `parallel_fetch_chunk_size` | 4194304 | bytes per `Range` request |
//! | `parallel_fetch_concurrency` | memory / 32 MiB - 2, 1 to 12 | `Range` requests in flight (or buffered) per layer; 1: one stream |
//! | `disable_xattrs` | `false` | `true`: soci's xattr optimisation, `com.amazon.soci.disable-xattrs: "true"` on the zTOC descriptor of every layer without `SCHILY.xattr.*` records and opaque whiteouts |
//! | `emit_metrics` | `true` | `false`: no CloudWatch EMF metric records on stdout ([`crate::metrics`]) |
//! | `metrics_namespace` | `SOCI/IndexGenerator` | CloudWatch namespace of those metrics |
//! | `index_in_place` | `false` | `true` (V2): after indexing, move `<tag>` itself to the SOCI-enabled index and keep the original as `<tag>-original` (`pipeline::in_place`) |
//! | `ztoc_cache_repository` | (none) | a repository of the same registry where zTOCs are cached by layer digest, span size, compression and build tool, and found again (`pipeline::cache`) |
//! | `index_tag_cleanup` | `false` | `true`: on the delete of `<tag>`, delete `<tag><suffix>` when it still points at a conversion of the deleted image (`pipeline::cleanup`) |

use std::fmt;

use soci_core::DEFAULT_SPAN_SIZE;
pub use soci_lambda_contract::IndexVersion;
use soci_lambda_contract::indexing::{
    DEFAULT_INDEX_TAG_SUFFIX, ENV_INDEX_TAG_SUFFIX, ENV_INDEX_VERSION, TagSkip, tag_skip,
};

/// `os/arch[/variant]`, as in `--platform`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformFilter {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl PlatformFilter {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let bad = || ConfigError::Invalid {
            name: "platforms".into(),
            value: s.into(),
            expected: "os/arch[/variant], e.g. linux/arm64/v8".into(),
        };
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: (*os).into(),
                architecture: (*arch).into(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Self {
                    os: (*os).into(),
                    architecture: (*arch).into(),
                    variant: Some((*variant).into()),
                })
            }
            _ => Err(bad()),
        }
    }

    /// True when a platform (`os`, `architecture`, `variant`) is selected by this filter (a
    /// filter without variant matches every variant).
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && (self.variant.is_none() || self.variant.as_deref() == variant)
    }
}

impl fmt::Display for PlatformFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Where the images live.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryTarget {
    /// ECR of the event's account and region, with `GetAuthorizationToken` credentials.
    Ecr,
    /// Any OCI distribution registry at this base URL (`http://127.0.0.1:5000`).
    Url {
        url: String,
        username: Option<String>,
        password: Option<String>,
    },
}

/// Never prints the password (the configuration is logged and shows up in panics).
impl fmt::Debug for RegistryTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ecr => f.write_str("Ecr"),
            Self::Url {
                url,
                username,
                password,
            } => f
                .debug_struct("Url")
                .field("url", url)
                .field("username", username)
                .field("password", &password.as_ref().map(|_| "(redacted)"))
                .finish(),
        }
    }
}

/// Everything the pipeline needs to know besides the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub index_version: IndexVersion,
    pub ecr_endpoint: Option<String>,
    pub registry: RegistryTarget,
    pub span_size: u64,
    pub min_layer_size: u64,
    /// Empty: all platforms.
    pub platforms: Vec<PlatformFilter>,
    pub index_tag_suffix: String,
    pub build_tool: String,
    /// Layers indexed at the same time (defaults to the CPUs available).
    pub concurrency: usize,
    /// Attempts per registry request on transient failures (5xx, 429, resets, timeouts).
    pub retry_attempts: u32,
    /// First backoff delay; doubles on each attempt.
    pub retry_base_delay: std::time::Duration,
    /// Every layer gets this long, plus its size at [`Config::layer_min_bytes_per_second`],
    /// to be downloaded and indexed; past that the run fails naming the layer.
    pub layer_deadline_base: std::time::Duration,
    pub layer_min_bytes_per_second: u64,
    /// What one layer's zTOC may hold (TOC bytes, entries, checkpoint bytes): a layer over it
    /// is left out as unindexable instead of exhausting the function's memory. Derived from
    /// `memory_budget_mib`, else the Lambda's `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub memory_budget: soci_core::MemoryBudget,
    /// How large layers are fetched: several `Range` requests at once ([`ParallelFetch`]).
    pub parallel_fetch: ParallelFetch,
    /// soci's xattr optimisation (`soci create --optimizations xattr`): mark the zTOC descriptor
    /// of each layer that qualifies (`BuiltZtoc::xattrs_disableable`) so the snapshotter skips
    /// xattr lookups there. Off by default, as in the reference.
    pub disable_xattrs: bool,
    /// The CloudWatch namespace of the EMF metric records; `None`: no records.
    pub metrics_namespace: Option<String>,
    /// On the delete of `<tag>` (ECR's `DELETE` image action), delete the V2 index tag
    /// `<tag><suffix>` when it still points at a conversion of the deleted image. Off by default.
    pub index_tag_cleanup: bool,
    /// V2: after indexing, move `<tag>` itself to the SOCI-enabled index (deployments that keep
    /// referencing `<tag>` lazy-load), the original kept as `<tag>` + [`ORIGINAL_TAG_SUFFIX`].
    pub index_in_place: bool,
    /// The repository of this registry that caches zTOCs by (layer digest, span size,
    /// compression, build tool) (`pipeline::cache`); `None`: no cache.
    pub ztoc_cache_repository: Option<String>,
}

/// Turns on the cleanup of `<tag><suffix>` when `<tag>` is deleted (`true` / `false`).
pub const ENV_INDEX_TAG_CLEANUP: &str = "index_tag_cleanup";
/// Env var: the in-place mode (`true` / `false`).
pub const ENV_INDEX_IN_PLACE: &str = "index_in_place";
/// In the in-place mode, the tag that keeps the original image reachable is `<tag>` + this.
pub const ORIGINAL_TAG_SUFFIX: &str = "-original";
/// Env var: the zTOC cache repository (empty or unset: no cache).
pub use soci_lambda_contract::indexing::ENV_ZTOC_CACHE_REPOSITORY;

/// Turns on the xattr optimisation (`true` / `false`).
pub const ENV_DISABLE_XATTRS: &str = "disable_xattrs";
/// `false` turns the EMF metric records off.
pub const ENV_EMIT_METRICS: &str = "emit_metrics";
/// The CloudWatch namespace of the metrics.
pub const ENV_METRICS_NAMESPACE: &str = "metrics_namespace";

/// How a large layer is downloaded: as `concurrency` `Range` requests of `chunk_size` bytes at
/// a time, bytes handed to the builder in order (`pipeline::fetch`), when the layer has at
/// least `min_size` bytes; smaller layers, and stores that do not honour `Range`, get one
/// stream. Memory per layer is at most `(concurrency + 2) x chunk_size` (the window, and the
/// chunks whose last slices wait in the builder's channel).
///
/// Why these defaults: S3 (behind ECR's presigned redirects) serves one connection at roughly
/// 50-90 MiB/s, while one core inflates about 400 MiB/s of gzip, so 12 connections keep one
/// core's inflater fed. The chunks are 4 MiB rather than the 8-16 MiB of S3's guidance: bytes
/// reach the builder in order, so the last window of a layer is inflated after the download
/// ends, and a smaller window shortens that tail (`bench index --capped 50/1024`, 2 cores:
/// 4 MiB x 12 indexed in 0.94 s where 8 MiB x 8 took 1.25 s and 8 MiB x 12 1.09 s, the plain
/// download 1.05 s). Lambda gives a function one vCPU's worth of time per 1769 MB (up to 6 at
/// 10 GB), and the generator indexes as many layers at once as it sees CPUs (2 on most
/// functions): 2 layers x (12 + 2) x 4 MiB = 112 MiB of buffers, within a quarter of a 512 MB
/// function. Smaller functions get fewer connections (memory / 32 MiB - 2), so the buffers stay
/// within a quarter of their memory. Layers under 32 MiB (8 chunks) gain little and keep one
/// stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParallelFetch {
    pub min_size: u64,
    pub chunk_size: u64,
    /// Chunks in flight or buffered per layer; 1 turns the parallel fetch off.
    pub concurrency: usize,
}

impl Default for ParallelFetch {
    fn default() -> Self {
        Self {
            min_size: 32 << 20,
            chunk_size: 4 << 20,
            concurrency: MAX_DEFAULT_FETCH_CONCURRENCY,
        }
    }
}

impl ParallelFetch {
    /// One stream for every layer.
    pub fn off() -> Self {
        Self {
            concurrency: 1,
            ..Self::default()
        }
    }

    /// True when a layer of `size` bytes is fetched in parallel.
    pub fn applies_to(&self, size: u64) -> bool {
        self.concurrency > 1 && size >= self.min_size && size > self.chunk_size
    }

    /// The default concurrency for a function of `memory_mib`: memory / 32 MiB - 2, from 1 (one
    /// stream) to 12, so that two layers' buffers, 2 x (concurrency + 2) x 4 MiB, stay within a
    /// quarter of the memory.
    pub fn concurrency_for_memory_mib(memory_mib: u64) -> usize {
        usize::try_from((memory_mib / 32).saturating_sub(2))
            .unwrap_or(usize::MAX)
            .clamp(1, MAX_DEFAULT_FETCH_CONCURRENCY)
    }
}

/// Layers at least this large are fetched in parallel (bytes).
pub const ENV_PARALLEL_FETCH_MIN_SIZE: &str = "parallel_fetch_min_size";
/// Bytes per `Range` request.
pub const ENV_PARALLEL_FETCH_CHUNK_SIZE: &str = "parallel_fetch_chunk_size";
/// `Range` requests in flight per layer (1: one stream).
pub const ENV_PARALLEL_FETCH_CONCURRENCY: &str = "parallel_fetch_concurrency";
const MIN_FETCH_CHUNK_SIZE: u64 = 64 << 10;
/// Bounds a chunk's buffer: the setting sizes memory, so it is refused above this.
const MAX_FETCH_CHUNK_SIZE: u64 = 256 << 20;
const MAX_FETCH_CONCURRENCY: usize = 64;
const MAX_DEFAULT_FETCH_CONCURRENCY: usize = 12;

/// Overrides the memory (MiB) the zTOC budget is derived from.
pub const ENV_MEMORY_BUDGET_MIB: &str = "memory_budget_mib";
/// The function's memory size in MiB, which Lambda sets.
pub const ENV_LAMBDA_MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";

/// The identifier written by default: our name and version (the CLI's `ztoc build` uses it too).
pub const DEFAULT_BUILD_TOOL: &str = concat!("soci-lambda v", env!("CARGO_PKG_VERSION"));

/// [`DEFAULT_BUILD_TOOL`] as an owned value, for the configuration.
pub fn default_build_tool() -> String {
    DEFAULT_BUILD_TOOL.to_string()
}

/// The slowest download a layer's deadline allows for (2 MiB/s: a 1 GiB layer gets 60 + 512 s).
pub const DEFAULT_LAYER_MIN_BYTES_PER_SECOND: u64 = 2 << 20;

/// Default minimum layer size (10 MiB), as the reference.
pub const DEFAULT_MIN_LAYER_SIZE: u64 = 10 * 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Self {
            index_version: IndexVersion::V2,
            ecr_endpoint: None,
            registry: RegistryTarget::Ecr,
            span_size: DEFAULT_SPAN_SIZE,
            min_layer_size: DEFAULT_MIN_LAYER_SIZE,
            platforms: Vec::new(),
            index_tag_suffix: DEFAULT_INDEX_TAG_SUFFIX.into(),
            build_tool: default_build_tool(),
            concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            retry_attempts: 4,
            retry_base_delay: std::time::Duration::from_millis(200),
            layer_deadline_base: std::time::Duration::from_secs(60),
            layer_min_bytes_per_second: DEFAULT_LAYER_MIN_BYTES_PER_SECOND,
            memory_budget: soci_core::MemoryBudget::default(),
            parallel_fetch: ParallelFetch::default(),
            disable_xattrs: false,
            metrics_namespace: Some(crate::metrics::DEFAULT_NAMESPACE.into()),
            index_tag_cleanup: false,
            index_in_place: false,
            ztoc_cache_repository: None,
        }
    }
}

/// A setting that cannot be used; the message names the variable and what it accepts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid {name}={value:?}: expected {expected}")]
    Invalid {
        name: String,
        value: String,
        expected: String,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests). Empty values count as
    /// unset, as in the solution this replaces (where Terraform may pass `""`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Lookup(get);
        let mut config = Config::default();
        if let Some(v) = env.get(ENV_INDEX_VERSION) {
            config.index_version = IndexVersion::parse(&v).ok_or_else(|| ConfigError::Invalid {
                name: ENV_INDEX_VERSION.into(),
                value: v,
                expected: "V1 or V2".into(),
            })?;
        }
        config.ecr_endpoint = env.get("ECR_ENDPOINT");
        if let Some(registry) = registry_url(&env)? {
            config.registry = registry;
        }
        if let Some(n) = env.number("span_size", 1)? {
            config.span_size = n;
        }
        if let Some(n) = env.number("min_layer_size", 0)? {
            config.min_layer_size = n;
        }
        if let Some(list) = env.get("platforms") {
            config.platforms = list
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(PlatformFilter::parse)
                .collect::<Result<_, _>>()?;
        }
        if let Some(suffix) = env.get(ENV_INDEX_TAG_SUFFIX) {
            config.index_tag_suffix = suffix;
        }
        if let Some(tool) = env.get("build_tool_identifier") {
            config.build_tool = tool;
        }
        config.read_memory(&env)?;
        config.read_switches(&env)?;
        Ok(config)
    }

    /// The memory budget and the parallel fetch, which the memory size also sizes.
    fn read_memory<F: Fn(&str) -> Option<String>>(
        &mut self,
        env: &Lookup<F>,
    ) -> Result<(), ConfigError> {
        // An explicit budget wins; else the memory Lambda gives the function.
        let memory_mib = match env.number(ENV_MEMORY_BUDGET_MIB, 64)? {
            Some(mib) => Some(mib),
            None => env.number(ENV_LAMBDA_MEMORY_SIZE, 1)?,
        };
        if let Some(mib) = memory_mib {
            self.memory_budget = soci_core::MemoryBudget::for_memory_mib(mib);
            self.parallel_fetch.concurrency = ParallelFetch::concurrency_for_memory_mib(mib);
        }
        if let Some(n) = env.number(ENV_PARALLEL_FETCH_MIN_SIZE, 0)? {
            self.parallel_fetch.min_size = n;
        }
        if let Some(n) = env.number(ENV_PARALLEL_FETCH_CHUNK_SIZE, MIN_FETCH_CHUNK_SIZE)? {
            if n > MAX_FETCH_CHUNK_SIZE {
                return Err(ConfigError::Invalid {
                    name: ENV_PARALLEL_FETCH_CHUNK_SIZE.into(),
                    value: n.to_string(),
                    expected: format!("{MIN_FETCH_CHUNK_SIZE} to {MAX_FETCH_CHUNK_SIZE} (bytes)"),
                });
            }
            self.parallel_fetch.chunk_size = n;
        }
        if let Some(v) = env.get(ENV_PARALLEL_FETCH_CONCURRENCY) {
            self.parallel_fetch.concurrency = match v.parse::<usize>() {
                Ok(n) if (1..=MAX_FETCH_CONCURRENCY).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: ENV_PARALLEL_FETCH_CONCURRENCY.into(),
                        value: v,
                        expected: format!("1 to {MAX_FETCH_CONCURRENCY} (1: one stream per layer)"),
                    });
                }
            };
        }
        Ok(())
    }

    /// The optional behaviours: xattr optimisation, metrics, cleanup, in-place mode.
    fn read_switches<F: Fn(&str) -> Option<String>>(
        &mut self,
        env: &Lookup<F>,
    ) -> Result<(), ConfigError> {
        if let Some(on) = env.flag(ENV_DISABLE_XATTRS)? {
            self.disable_xattrs = on;
        }
        if let Some(namespace) = env.get(ENV_METRICS_NAMESPACE) {
            crate::metrics::check_namespace(&namespace).map_err(|why| ConfigError::Invalid {
                name: ENV_METRICS_NAMESPACE.into(),
                value: namespace.clone(),
                expected: format!("a CloudWatch namespace, this one has {why}"),
            })?;
            self.metrics_namespace = Some(namespace);
        }
        if env.flag(ENV_EMIT_METRICS)? == Some(false) {
            self.metrics_namespace = None;
        }
        if let Some(on) = env.flag(ENV_INDEX_TAG_CLEANUP)? {
            self.index_tag_cleanup = on;
        }
        if let Some(on) = env.flag(ENV_INDEX_IN_PLACE)? {
            self.index_in_place = on;
        }
        if let Some(repo) = env.get(ENV_ZTOC_CACHE_REPOSITORY) {
            if !valid_repository_name(&repo) {
                return Err(ConfigError::Invalid {
                    name: ENV_ZTOC_CACHE_REPOSITORY.into(),
                    value: repo,
                    expected: "a repository name (lowercase letters, digits, `._-/`)".into(),
                });
            }
            self.ztoc_cache_repository = Some(repo);
        }
        Ok(())
    }

    /// True when `tag` is one this pipeline produced (or would produce).
    pub fn is_index_tag(&self, tag: &str) -> bool {
        tag_skip(Some(tag), self.index_version, &self.index_tag_suffix) == Some(TagSkip::IndexTag)
    }
}

/// The settings as [`Config::from_lookup`] reads them: trimmed, empty counts as unset.
struct Lookup<F>(F);

impl<F: Fn(&str) -> Option<String>> Lookup<F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// An integer of at least `min` (a size in bytes or MiB).
    fn number(&self, name: &str, min: u64) -> Result<Option<u64>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n >= min => Ok(Some(n)),
                _ => Err(ConfigError::Invalid {
                    name: name.into(),
                    value: v,
                    expected: format!("an integer >= {min} (bytes)"),
                }),
            },
        }
    }

    fn flag(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        self.get(name).map(|v| parse_bool(name, &v)).transpose()
    }
}

/// `SOCI_REGISTRY_URL` (+ credentials): any OCI registry instead of ECR.
fn registry_url<F: Fn(&str) -> Option<String>>(
    env: &Lookup<F>,
) -> Result<Option<RegistryTarget>, ConfigError> {
    let Some(url) = env.get("SOCI_REGISTRY_URL") else {
        return Ok(None);
    };
    let parsed = url::Url::parse(&url).map_err(|e| ConfigError::Invalid {
        name: "SOCI_REGISTRY_URL".into(),
        value: url.clone(),
        expected: format!("an http(s) URL such as http://127.0.0.1:5000 ({e})"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::Invalid {
            name: "SOCI_REGISTRY_URL".into(),
            value: url,
            expected: "an http(s) URL such as http://127.0.0.1:5000".into(),
        });
    }
    Ok(Some(RegistryTarget::Url {
        url,
        username: env.get("SOCI_REGISTRY_USERNAME"),
        password: env.get("SOCI_REGISTRY_PASSWORD"),
    }))
}

/// An OCI repository name: `/`-separated components of lowercase letters and digits, joined
/// by `.`, `_`, `__` or dashes, at most 256 characters (ECR's limit).
fn valid_repository_name(name: &str) -> bool {
    let component = |c: &str| {
        let b = c.as_bytes();
        let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        !b.is_empty()
            && b.first().is_some_and(alnum)
            && b.last().is_some_and(alnum)
            && b.iter().all(|x| alnum(x) || b"._-".contains(x))
            && !c.contains("..")
            && !c.contains("._")
            && !c.contains("_.")
            && !c.contains("___")
    };
    name.len() <= 256 && name.split('/').all(component)
}

/// `true` or `false` (any case: Terraform's `tostring(true)` gives `true`); anything else is
/// refused rather than read as off.
fn parse_bool(name: &str, value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ConfigError::Invalid {
            name: name.into(),
            value: value.into(),
            expected: "true or false".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = from(&[]).unwrap();
        assert_eq!(c.index_version, IndexVersion::V2);
        assert_eq!(c.min_layer_size, 10_485_760);
        assert_eq!(c.span_size, 4_194_304);
        assert_eq!(c.index_tag_suffix, "-soci");
        assert_eq!(c.registry, RegistryTarget::Ecr);
        assert!(c.platforms.is_empty());
        assert_eq!(
            c.build_tool,
            format!("soci-lambda v{}", env!("CARGO_PKG_VERSION"))
        );
        // Unset-by-empty, as Terraform may pass it.
        assert_eq!(
            from(&[("soci_index_version", "")]).unwrap().index_version,
            IndexVersion::V2
        );
    }

    #[test]
    fn version_is_validated() {
        assert_eq!(
            from(&[("soci_index_version", "V1")]).unwrap().index_version,
            IndexVersion::V1
        );
        let err = from(&[("soci_index_version", "V3")]).unwrap_err();
        assert!(err.to_string().contains("soci_index_version"), "{err}");
        assert!(err.to_string().contains("V1 or V2"), "{err}");
    }

    #[test]
    fn overrides() {
        let c = from(&[
            ("SOCI_REGISTRY_URL", "http://127.0.0.1:5000"),
            ("span_size", "1048576"),
            ("min_layer_size", "0"),
            ("platforms", "linux/amd64, linux/arm64/v8"),
            ("index_tag_suffix", "-lazy"),
            ("build_tool_identifier", "me v1"),
            ("ECR_ENDPOINT", "http://localhost:1"),
        ])
        .unwrap();
        assert_eq!(c.span_size, 1 << 20);
        assert_eq!(c.min_layer_size, 0);
        assert_eq!(c.platforms.len(), 2);
        assert!(c.platforms[1].matches("linux", "arm64", Some("v8")));
        assert!(c.platforms[0].matches("linux", "amd64", None));
        assert!(!c.platforms[0].matches("linux", "arm64", None));
        assert_eq!(c.index_tag_suffix, "-lazy");
        assert!(c.is_index_tag("v1-lazy"));
        assert_eq!(c.build_tool, "me v1");
        assert_eq!(c.ecr_endpoint.as_deref(), Some("http://localhost:1"));
        assert!(matches!(c.registry, RegistryTarget::Url { .. }));
        assert!(from(&[("span_size", "0")]).is_err());
        assert!(from(&[("min_layer_size", "ten")]).is_err());
        assert!(from(&[("platforms", "linux")]).is_err());
        assert!(from(&[("SOCI_REGISTRY_URL", "ftp://x")]).is_err());
    }

    #[test]
    fn the_ztoc_budget_follows_the_function_memory() {
        use soci_core::MemoryBudget;
        assert_eq!(from(&[]).unwrap().memory_budget, MemoryBudget::default());
        let lambda = from(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")]).unwrap();
        assert_eq!(lambda.memory_budget, MemoryBudget::for_memory_mib(512));
        assert!(lambda.memory_budget.max_toc_bytes < MemoryBudget::default().max_toc_bytes);
        let explicit = from(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
            ("memory_budget_mib", "4096"),
        ])
        .unwrap();
        assert_eq!(explicit.memory_budget, MemoryBudget::for_memory_mib(4096));
        let err = from(&[("memory_budget_mib", "lots")]).unwrap_err();
        assert!(err.to_string().contains("memory_budget_mib"), "{err}");
    }

    #[test]
    fn the_xattr_optimisation_is_off_unless_asked_for() {
        assert!(!from(&[]).unwrap().disable_xattrs);
        assert!(!from(&[("disable_xattrs", "")]).unwrap().disable_xattrs);
        assert!(!from(&[("disable_xattrs", "false")]).unwrap().disable_xattrs);
        assert!(from(&[("disable_xattrs", "true")]).unwrap().disable_xattrs);
        assert!(
            from(&[("disable_xattrs", " TRUE ")])
                .unwrap()
                .disable_xattrs
        );
        let err = from(&[("disable_xattrs", "yes")]).unwrap_err();
        assert!(err.to_string().contains("disable_xattrs"), "{err}");
        assert!(err.to_string().contains("true or false"), "{err}");
    }

    #[test]
    fn parallel_fetch_settings() {
        let d = from(&[]).unwrap().parallel_fetch;
        assert_eq!(d, ParallelFetch::default());
        assert!(d.applies_to(32 << 20) && !d.applies_to((32 << 20) - 1));
        assert!(!ParallelFetch::off().applies_to(1 << 40));
        let tiny = from(&[("memory_budget_mib", "64")]).unwrap();
        assert_eq!(tiny.parallel_fetch.concurrency, 1);
        assert!(!tiny.parallel_fetch.applies_to(1 << 30));
        let small = from(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]).unwrap();
        assert_eq!(small.parallel_fetch.concurrency, 2);
        let mid = from(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")]).unwrap();
        assert_eq!(mid.parallel_fetch.concurrency, 6);
        let big = from(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "10240")]).unwrap();
        assert_eq!(big.parallel_fetch.concurrency, 12);
        let set = from(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("parallel_fetch_min_size", "0"),
            ("parallel_fetch_chunk_size", "1048576"),
            ("parallel_fetch_concurrency", "16"),
        ])
        .unwrap()
        .parallel_fetch;
        assert_eq!(
            (set.min_size, set.chunk_size, set.concurrency),
            (0, 1 << 20, 16)
        );
        for (name, value) in [
            ("parallel_fetch_chunk_size", "1024"),
            ("parallel_fetch_chunk_size", "1073741824"),
            ("parallel_fetch_concurrency", "0"),
            ("parallel_fetch_concurrency", "65"),
            ("parallel_fetch_min_size", "big"),
        ] {
            let err = from(&[(name, value)]).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn metrics_are_on_in_their_namespace_unless_turned_off() {
        let default = from(&[]).unwrap();
        assert_eq!(
            default.metrics_namespace.as_deref(),
            Some("SOCI/IndexGenerator")
        );
        let named = from(&[("metrics_namespace", "Acme/Soci")]).unwrap();
        assert_eq!(named.metrics_namespace.as_deref(), Some("Acme/Soci"));
        let off = from(&[
            ("metrics_namespace", "Acme/Soci"),
            ("emit_metrics", "false"),
        ]);
        assert_eq!(off.unwrap().metrics_namespace, None);
        assert!(
            from(&[("emit_metrics", "true")])
                .unwrap()
                .metrics_namespace
                .is_some()
        );
        let err = from(&[("metrics_namespace", "AWS/Lambda")]).unwrap_err();
        assert!(err.to_string().contains("metrics_namespace"), "{err}");
        assert!(err.to_string().contains("reserved"), "{err}");
        assert!(from(&[("emit_metrics", "no")]).is_err());
    }

    #[test]
    fn the_ztoc_cache_is_off_unless_a_repository_is_named() {
        assert_eq!(from(&[]).unwrap().ztoc_cache_repository, None);
        assert_eq!(
            from(&[("ztoc_cache_repository", " ")])
                .unwrap()
                .ztoc_cache_repository,
            None
        );
        for ok in ["soci-ztoc-cache", "team/ztoc_cache.v1", "a__b", "a--b"] {
            let c = from(&[("ztoc_cache_repository", ok)]).unwrap();
            assert_eq!(c.ztoc_cache_repository.as_deref(), Some(ok));
        }
        for bad in [
            "Cache",
            "-cache",
            "cache/",
            "a//b",
            "a:b",
            "a___b",
            &"a".repeat(257),
        ] {
            let err = from(&[("ztoc_cache_repository", bad)]).unwrap_err();
            assert!(err.to_string().contains("ztoc_cache_repository"), "{err}");
        }
    }

    #[test]
    fn debug_never_prints_the_registry_password() {
        let c = from(&[
            ("SOCI_REGISTRY_URL", "http://127.0.0.1:5000"),
            ("SOCI_REGISTRY_USERNAME", "robot"),
            ("SOCI_REGISTRY_PASSWORD", "hunter2-secret"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(
            shown.contains("robot") && shown.contains("(redacted)"),
            "{shown}"
        );
    }
}
