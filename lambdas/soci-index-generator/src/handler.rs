//! The Lambda handler: event in, [`IndexingOutcome`] (JSON with a `status`) or an error out.

use std::collections::HashMap;
use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent};
use soci_lambda_contract::event::{
    EcrImageActionEvent, EventKind, InvalidEvent, valid_account, valid_region,
};
use tokio::sync::Mutex;
use tracing::Instrument as _;

use crate::config::{Config, RegistryTarget};
use crate::metrics::Metrics;
use crate::pipeline::{ImageRef, Indexer, IndexingOutcome, PipelineError, TagRemover};
use crate::registry::{Credentials, EcrCredentials, RegistryClient, RegistryError, RetryPolicy};

/// Why an invocation failed (Lambda's async retry applies).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error("registry client: {0}")]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// `<account>.dkr.ecr.<region>.amazonaws.com` (`.amazonaws.com.cn` in China regions).
pub fn ecr_registry_host(account: &str, region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{account}.dkr.ecr.{region}.{domain}")
}

/// The ECR registry host of the event's account and region, both checked first (they become
/// part of a URL); the error says which is invalid.
fn ecr_host_of(event: &EcrImageActionEvent) -> Result<String, String> {
    if !valid_account(&event.account) {
        return Err(InvalidEvent::Account(event.account.clone()).to_string());
    }
    if !valid_region(&event.region) {
        return Err(format!("region {:?} is not valid", event.region));
    }
    Ok(ecr_registry_host(&event.account, &event.region))
}

/// State kept across invocations: the configuration, the AWS config and one registry client
/// per registry (so ECR tokens and bearer tokens are reused until they expire).
pub struct Handler {
    config: Config,
    aws: Option<aws_config::SdkConfig>,
    clients: Mutex<HashMap<String, Arc<RegistryClient>>>,
    metrics: Metrics,
}

impl Handler {
    /// Loads the AWS configuration when the target is ECR (`AWS_ENDPOINT_URL` and the usual
    /// variables apply).
    pub async fn new(config: Config) -> Self {
        let aws = match config.registry {
            RegistryTarget::Ecr => {
                Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
            }
            RegistryTarget::Url { .. } => None,
        };
        Self {
            metrics: Metrics::from_config(&config),
            config,
            aws,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Emits the EMF metric records through `metrics` (tests: into a buffer).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The registry client for `event` (created once per registry, then reused).
    async fn client(
        &self,
        event: &EcrImageActionEvent,
    ) -> Result<Arc<RegistryClient>, HandlerError> {
        let (key, url, credentials) = match &self.config.registry {
            RegistryTarget::Url {
                url,
                username,
                password,
            } => {
                let credentials =
                    Credentials::basic_or_anonymous(username.as_deref(), password.as_deref());
                (url.clone(), url.clone(), credentials)
            }
            RegistryTarget::Ecr => {
                let host = ecr_host_of(event).map_err(HandlerError::InvalidEvent)?;
                if let Some(client) = self.clients.lock().await.get(&host) {
                    return Ok(client.clone());
                }
                let credentials = Credentials::Ecr(self.ecr_credentials(&event.region).await);
                (host.clone(), format!("https://{host}"), credentials)
            }
        };
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let retry = RetryPolicy {
            attempts: self.config.retry_attempts,
            base_delay: self.config.retry_base_delay,
        };
        let client = Arc::new(RegistryClient::new(&url, credentials, retry)?);
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// `GetAuthorizationToken` credentials of ECR in `region`.
    async fn ecr_credentials(&self, region: &str) -> EcrCredentials {
        EcrCredentials::new(self.ecr_client(region).await)
    }

    /// How the cleanup removes an index tag: `BatchDeleteImage` in ECR, a delete by digest in
    /// any other registry.
    async fn tag_remover(&self, event: &EcrImageActionEvent) -> TagRemover {
        match self.config.registry {
            RegistryTarget::Ecr => TagRemover::Ecr {
                client: self.ecr_client(&event.region).await,
                registry_id: event.account.clone(),
            },
            RegistryTarget::Url { .. } => TagRemover::Registry,
        }
    }

    /// The ECR API client of `region` (`ECR_ENDPOINT` applies).
    async fn ecr_client(&self, region: &str) -> aws_sdk_ecr::Client {
        let sdk = match &self.aws {
            Some(sdk) => sdk.clone(),
            None => aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
        };
        let mut builder = aws_sdk_ecr::config::Builder::from(&sdk)
            .region(aws_sdk_ecr::config::Region::new(region.to_string()));
        if let Some(endpoint) = &self.config.ecr_endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        aws_sdk_ecr::Client::from_conf(builder.build())
    }

    /// The Lambda handler: [`Handler::handle`] with the invocation's request id, the outcome
    /// as JSON, errors as the runtime reports them.
    pub async fn handle_event(
        &self,
        event: LambdaEvent<EcrImageActionEvent>,
    ) -> Result<serde_json::Value, Diagnostic> {
        match self.handle(event.payload, &event.context.request_id).await {
            Ok(outcome) => serde_json::to_value(&outcome).map_err(|e| Diagnostic {
                error_type: "Serialization".into(),
                error_message: e.to_string(),
            }),
            Err(e) => Err(Diagnostic {
                error_type: "SociIndexGeneratorError".into(),
                error_message: crate::error_chain(&e),
            }),
        }
    }

    /// Handles one event: a push, pull through cache sync or replication is indexed (the same
    /// request whichever way the image came); the delete of a tag cleans up its index tag when
    /// `index_tag_cleanup` is on.
    pub async fn handle(
        &self,
        event: EcrImageActionEvent,
        request_id: &str,
    ) -> Result<IndexingOutcome, HandlerError> {
        let detail = &event.detail;
        let kind = event.kind().ok();
        let span = tracing::info_span!(
            "invocation",
            request_id,
            kind = kind.map(EventKind::as_str).unwrap_or_default(),
            repository = %detail.repository_name,
            digest = %detail.image_digest,
            tag = detail.tag().unwrap_or_default(),
        );
        async {
            if detail.repository_name.is_empty() {
                return Err(HandlerError::InvalidEvent(
                    "detail.repository-name is empty".into(),
                ));
            }
            let skipped = |reason: String| {
                tracing::info!(reason = %reason, "skipped");
                IndexingOutcome::Skipped {
                    repository: detail.repository_name.clone(),
                    image_digest: Some(detail.image_digest.clone()).filter(|d| !d.is_empty()),
                    reason,
                }
            };
            // A failed push, sync or replication, or an action that is neither an arrival nor a
            // delete: nothing to do, and retrying changes nothing.
            let request = match event.request() {
                Ok(request) => request,
                Err(nothing) => return Ok(skipped(format!("{nothing}; not retried"))),
            };
            if request.kind == EventKind::Delete && !self.config.index_tag_cleanup {
                return Ok(skipped(
                    "delete of a tag: index tag cleanup is off (index_tag_cleanup)".into(),
                ));
            }
            let client = self.client(&event).await?;
            let image = ImageRef {
                repository: request.repository,
                digest: Some(request.digest).filter(|d| !d.is_empty()),
                tag: request.tag,
            };
            let indexer = Indexer::new(client, self.config.clone());
            let outcome = if request.kind == EventKind::Delete {
                let remover = self.tag_remover(&event).await;
                indexer.clean_up(&image, &remover).await
            } else {
                let started = std::time::Instant::now();
                let outcome = Box::pin(indexer.run(&image)).await;
                self.metrics.record(&outcome, started.elapsed());
                outcome
            };
            match &outcome {
                Ok(o) => tracing::info!(status = o.status(), "done"),
                Err(e) => tracing::error!(error = %e, "failed"),
            }
            Ok(outcome?)
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts() {
        assert_eq!(
            ecr_registry_host("123456789012", "us-east-1"),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(
            ecr_registry_host("123456789012", "cn-north-1"),
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
        );
        let mut event = EcrImageActionEvent {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            ..Default::default()
        };
        assert!(ecr_host_of(&event).is_ok());
        event.account = "12345678901a".into();
        assert!(ecr_host_of(&event).is_err());
        event.account = "123456789012".into();
        event.region = "us-east-1.evil.com/".into();
        assert!(ecr_host_of(&event).is_err());
    }
}
