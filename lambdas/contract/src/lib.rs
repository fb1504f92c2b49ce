//! # soci-lambda-contract
//!
//! What the two Lambdas agree on, written once:
//!
//! - [`event`]: the EventBridge "ECR Image Action" envelope the filter receives and forwards whole
//!   to the generator, and its validation.
//! - [`indexing`]: which SOCI index version the generator builds, and the rules both functions use
//!   to leave a push alone (the generator's own `<tag><suffix>` output, untagged pushes in V2).
//! - [`logging`]: the one JSON log line format both functions write to CloudWatch.

pub mod event;
pub mod indexing;
pub mod logging;

pub use event::{
    EcrImageAction, EcrImageActionEvent, EventKind, ImageRequest, InvalidEvent, parse_and_validate,
};
pub use indexing::{DEFAULT_INDEX_TAG_SUFFIX, IndexVersion, TagSkip, tag_skip};
