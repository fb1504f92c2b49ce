//! # soci-index-generator
//!
//! Makes container images lazy-loadable: for an image pushed to ECR (or any OCI registry) it
//! builds a SOCI index (one zTOC per eligible layer, with soci-core) and, in V2, converts the
//! image (annotated manifests + an OCI index tagged `<tag>-soci`), the way `soci convert` does.
//!
//! - [`handler`]: the Lambda handler over the EventBridge "ECR Image Action" event (the shared
//!   contract, [`soci_lambda_contract`]). Thin: it turns the event into an
//!   [`pipeline::ImageRef`] and calls the pipeline.
//! - [`pipeline`]: the work in stages, callable directly (tests, `cargo xtask index`).
//! - [`registry`]: the OCI distribution client (requests, auth, retries).
//! - [`config`]: settings from the environment; soci-core: Go-exact JSON of the artifacts and the v2 conversion.
//!
//! ## Registry client: `reqwest` by hand, not `oci-client`
//!
//! The pipeline needs six endpoints (manifest GET/HEAD/PUT, blob HEAD/GET/monolithic upload).
//! `oci-client` 0.18 would cover them, but its errors do not keep the HTTP status and body that
//! our failure messages and retry decisions need (5xx/429 retried, 4xx not), its
//! `platform_resolver` defaults to the host platform (we index every platform), and its 4 MiB
//! chunked upload is below ECR's 5 MB part minimum. A direct `reqwest` client is ~400 lines,
//! gives exact control of `Accept` headers, retries, bearer-token scopes, ECR token refresh
//! and streaming, and is the same HTTP stack the benchmark's plain download uses.
//!
//! ## Streaming
//!
//! Each layer is read from the registry ONCE: the HTTP body is pumped into a small bounded
//! channel that `soci_core::build_ztoc` reads on a blocking thread (`spawn_blocking`), and the
//! digest is checked on the fly (`BuildOptions::expected_digest` for sha256, the download task
//! for sha512), as is the descriptor's size. A body that breaks off is continued with `Range`;
//! the download task is aborted when the layer's deadline passes or another layer fails, which
//! ends the blocking builder at its next read. Nothing is written to disk;
//! memory is bounded by the zTOCs and a few MiB of in-flight body per layer. Layers are indexed
//! concurrently, at most `std::thread::available_parallelism()` at a time.

pub mod config;
pub mod handler;
pub mod media;
pub mod metrics;
pub mod pipeline;
pub mod registry;

pub use config::{Config, IndexVersion};
pub use pipeline::{ImageRef, Indexer, IndexingOutcome, PipelineError};
pub use registry::{Credentials, RegistryClient, RetryPolicy};
pub use soci_lambda_contract::event::{EcrImageAction, EcrImageActionEvent};

/// The error and its sources in one line, each message once (our errors include their
/// source's text in their own, as the Lambda reports them).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}
