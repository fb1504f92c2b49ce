//! Idempotent pushes to the image's repository, recorded in order.
//!
//! Every blob and manifest is checked with `HEAD` first and not sent again when the registry
//! already has it; in a dry run nothing is sent, but what would be is still recorded.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Mutex;

use super::outcome::Pushed;
use super::{Result, reg};
use crate::registry::RegistryClient;

/// Where an artifact is stored in the registry.
#[derive(Clone, Copy)]
pub(super) enum Store {
    Blobs,
    Manifests,
}

/// Pushes to one repository and the record of what was pushed.
pub(super) struct Pusher {
    registry: Arc<RegistryClient>,
    repo: String,
    dry_run: bool,
    pushed: Mutex<Vec<Pushed>>,
}

impl Pusher {
    pub(super) fn new(registry: Arc<RegistryClient>, repo: &str, dry_run: bool) -> Self {
        Self {
            registry,
            repo: repo.into(),
            dry_run,
            pushed: Mutex::default(),
        }
    }

    /// True when nothing is sent (side stores such as the zTOC cache are left alone too).
    pub(super) fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// What was pushed so far, in order.
    pub(super) async fn pushed(&self) -> Vec<Pushed> {
        self.pushed.lock().await.clone()
    }

    async fn record(&self, kind: &str, reference: &str, media_type: &str, size: usize) {
        self.pushed.lock().await.push(Pushed {
            kind: kind.into(),
            reference: reference.into(),
            media_type: media_type.into(),
            size: size as u64,
        });
    }

    /// Pushes a blob or a manifest by digest (`kind` names it in logs and errors), unless the
    /// registry already has it.
    pub(super) async fn push(
        &self,
        store: Store,
        kind: &str,
        digest: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<()> {
        let (registry, repo) = (&self.registry, self.repo.as_str());
        let step = format!("push {kind} {digest}");
        let present = match store {
            Store::Blobs => registry.blob_exists(repo, digest).await,
            Store::Manifests => registry
                .head_manifest(repo, digest)
                .await
                .map(|d| d.is_some()),
        }
        .map_err(reg(step.clone()))?;
        if present {
            tracing::debug!(kind, digest, "already in the registry");
            return Ok(());
        }
        if !self.dry_run {
            match store {
                Store::Blobs => registry.push_blob(repo, digest, body.clone()).await,
                Store::Manifests => {
                    registry
                        .put_manifest(repo, digest, media_type, body.clone())
                        .await
                }
            }
            .map_err(reg(step))?;
        }
        self.record(kind, digest, media_type, body.len()).await;
        Ok(())
    }

    /// Tags the manifest `body` (already pushed as `digest`) as `tag`, always: moving a tag is
    /// the one write that is not idempotent by content.
    pub(super) async fn tag(
        &self,
        tag: &str,
        digest: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<()> {
        if !self.dry_run {
            self.registry
                .put_manifest(&self.repo, tag, media_type, body.clone())
                .await
                .map_err(reg(format!("tag the OCI index {digest} as {tag}")))?;
        }
        self.record("tag", tag, media_type, body.len()).await;
        Ok(())
    }
}
