//! Which SOCI index the generator builds, and which pushes both functions leave alone.
//!
//! In V2 the generator tags its output `<tag><suffix>` in the same repository, so that push comes
//! back as an ECR event: skipping tags that end with the suffix is what stops the loop. V2
//! output is found through a tag, so an untagged push cannot be indexed in V2.

use std::fmt;

use serde::Serialize;

/// Environment variable: `V1` or `V2`, the index version the generator builds.
pub const ENV_INDEX_VERSION: &str = "soci_index_version";
/// Environment variable: the suffix of the tag the generator gives a V2 index.
pub const ENV_INDEX_TAG_SUFFIX: &str = "index_tag_suffix";
/// The tag suffix when [`ENV_INDEX_TAG_SUFFIX`] is unset or empty (an empty suffix would match
/// every tag).
pub const DEFAULT_INDEX_TAG_SUFFIX: &str = "-soci";
/// Environment variable: the repository where the generator caches zTOCs. Its pushes are the
/// generator's own output: the filter leaves them alone, as it does `<tag><suffix>`.
pub const ENV_ZTOC_CACHE_REPOSITORY: &str = "ztoc_cache_repository";

/// Which SOCI index manifest the generator produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub enum IndexVersion {
    /// One index manifest with a `subject`, pushed untagged.
    V1,
    /// The image converted: annotated manifests and an OCI index tagged `<tag><suffix>`.
    #[default]
    V2,
}

impl IndexVersion {
    /// `V1` or `V2` in either case; anything else is `None`. Callers treat an unset or empty
    /// setting as the default before calling this.
    pub fn parse(setting: &str) -> Option<Self> {
        if setting.eq_ignore_ascii_case("v2") {
            Some(Self::V2)
        } else if setting.eq_ignore_ascii_case("v1") {
            Some(Self::V1)
        } else {
            None
        }
    }
}

impl fmt::Display for IndexVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V1 => "V1",
            Self::V2 => "V2",
        })
    }
}

/// Why a push is not indexed, judged from its tag alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagSkip {
    /// The tag ends with the index tag suffix: it is (or looks like) the generator's output.
    IndexTag,
    /// Untagged push while the generator builds V2 indexes, which need a tag.
    UntaggedV2,
}

/// The tag rules: `tag` is `None` for an untagged push.
pub fn tag_skip(tag: Option<&str>, version: IndexVersion, suffix: &str) -> Option<TagSkip> {
    match tag {
        Some(tag) if tag.ends_with(suffix) => Some(TagSkip::IndexTag),
        None if version == IndexVersion::V2 => Some(TagSkip::UntaggedV2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for (setting, version) in [
            ("V1", Some(IndexVersion::V1)),
            ("v1", Some(IndexVersion::V1)),
            ("V2", Some(IndexVersion::V2)),
            ("v2", Some(IndexVersion::V2)),
            ("V3", None),
            ("V 2", None),
        ] {
            assert_eq!(IndexVersion::parse(setting), version, "{setting}");
        }
        assert_eq!(IndexVersion::default(), IndexVersion::V2);
        assert_eq!(IndexVersion::V1.to_string(), "V1");
    }

    #[test]
    fn tag_rules() {
        use IndexVersion::{V1, V2};
        assert_eq!(
            tag_skip(Some("v1-soci"), V2, "-soci"),
            Some(TagSkip::IndexTag)
        );
        assert_eq!(
            tag_skip(Some("v1-soci"), V1, "-soci"),
            Some(TagSkip::IndexTag)
        );
        assert_eq!(tag_skip(Some("v1-soci"), V2, "-idx"), None);
        assert_eq!(tag_skip(None, V2, "-soci"), Some(TagSkip::UntaggedV2));
        assert_eq!(tag_skip(None, V1, "-soci"), None);
        assert_eq!(tag_skip(Some("v1"), V2, "-soci"), None);
    }
}
