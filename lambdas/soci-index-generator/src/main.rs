//! The Lambda binary (`bootstrap`): JSON logs, configuration from the environment, the handler.

use lambda_runtime::service_fn;
use soci_index_generator::config::Config;
use soci_index_generator::handler::Handler;
use soci_lambda_contract::logging::init_json_logs;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_json_logs();
    // A bad setting fails the init with a message naming it (every invocation then reports it).
    let config = Config::from_env().inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration");
    })?;
    tracing::info!(
        index_version = %config.index_version,
        min_layer_size = config.min_layer_size,
        span_size = config.span_size,
        build_tool = %config.build_tool,
        "soci-index-generator starting"
    );
    let handler = Handler::new(config).await;
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event| handler.handle_event(event))).await
}
