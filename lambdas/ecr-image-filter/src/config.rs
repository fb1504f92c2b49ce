//! The filter's settings, read from the environment.

use soci_lambda_contract::IndexVersion;
pub use soci_lambda_contract::indexing::{
    DEFAULT_INDEX_TAG_SUFFIX, ENV_INDEX_TAG_SUFFIX, ENV_INDEX_VERSION, ENV_ZTOC_CACHE_REPOSITORY,
};

use crate::glob::{Glob, parse_filter_list};

/// Env var: comma-separated globs over `<repository>:<tag>`.
pub const ENV_FILTERS: &str = "soci_repository_image_tag_filters";
/// Env var: the generator Lambda's ARN (or name).
pub const ENV_GENERATOR_ARN: &str = "soci_index_generator_lambda_arn";

pub const DEFAULT_FILTERS: &str = "*:*";

/// Configuration problems (the Lambda fails at init, visibly, rather than silently filtering).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {ENV_GENERATOR_ARN} is not set")]
    MissingGeneratorArn,
    #[error("environment variable {ENV_FILTERS} is set but holds no pattern ({0:?})")]
    NoFilters(String),
    #[error("environment variable {ENV_INDEX_VERSION} is {0:?}, expected V1 or V2")]
    IndexVersion(String),
}

/// The filter's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub filters: Vec<Glob>,
    pub generator_arn: String,
    pub index_tag_suffix: String,
    pub index_version: IndexVersion,
    /// The generator's zTOC cache repository, whose pushes are never indexed.
    pub ztoc_cache_repository: Option<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (so tests need not touch the process environment).
    ///
    /// - filters: unset → `*:*`; entries trimmed, empty entries dropped; set but empty → error.
    /// - generator ARN: required, non-empty.
    /// - index tag suffix: unset or empty → `-soci` (an empty suffix would match every tag).
    /// - index version: unset or empty → V2; `V1`/`V2` in any case; anything else → error.
    /// - zTOC cache repository: unset or empty → none.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let raw_filters = lookup(ENV_FILTERS).unwrap_or_else(|| DEFAULT_FILTERS.to_owned());
        let filters = parse_filter_list(&raw_filters);
        if filters.is_empty() {
            return Err(ConfigError::NoFilters(raw_filters));
        }
        let generator_arn = lookup(ENV_GENERATOR_ARN)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or(ConfigError::MissingGeneratorArn)?;
        let index_tag_suffix = lookup(ENV_INDEX_TAG_SUFFIX)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_INDEX_TAG_SUFFIX.to_owned());
        let index_version = match lookup(ENV_INDEX_VERSION).as_deref().map(str::trim) {
            None | Some("") => IndexVersion::default(),
            Some(setting) => IndexVersion::parse(setting)
                .ok_or_else(|| ConfigError::IndexVersion(setting.to_owned()))?,
        };
        let ztoc_cache_repository = lookup(ENV_ZTOC_CACHE_REPOSITORY)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        Ok(Self {
            filters,
            generator_arn,
            index_tag_suffix,
            index_version,
            ztoc_cache_repository,
        })
    }
}
