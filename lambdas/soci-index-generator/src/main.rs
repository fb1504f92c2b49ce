//! The Lambda binary (`bootstrap`): JSON logs, configuration from the environment, the handler.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use soci_index_generator::config::Config;
use soci_index_generator::event::EcrImageActionEvent;
use soci_index_generator::handler::Handler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .init();
    // A bad setting fails the init with a message naming it (every invocation then reports it).
    let config = Config::from_env().map_err(|e| {
        tracing::error!(error = %e, "invalid configuration");
        e
    })?;
    tracing::info!(
        index_version = %config.index_version,
        min_layer_size = config.min_layer_size,
        span_size = config.span_size,
        build_tool = %config.build_tool,
        "soci-index-generator starting"
    );
    let handler = Arc::new(Handler::new(config).await);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EcrImageActionEvent>| {
            let handler = handler.clone();
            async move {
                let request_id = event.context.request_id.clone();
                match handler.handle(event.payload, &request_id).await {
                    Ok(outcome) => serde_json::to_value(&outcome).map_err(|e| Diagnostic {
                        error_type: "Serialization".into(),
                        error_message: e.to_string(),
                    }),
                    Err(e) => Err(Diagnostic {
                        error_type: "SociIndexGeneratorError".into(),
                        error_message: soci_index_generator::error_chain(&e),
                    }),
                }
            }
        },
    ))
    .await
}
