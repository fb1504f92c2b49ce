//! Lambda entry point (packaged as `bootstrap`): configuration, JSON logs, the handler.

use ecr_image_filter::{Config, SdkInvoker, handle_event, log_started};
use lambda_runtime::service_fn;
use soci_lambda_contract::logging::init_json_logs;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_json_logs();
    // Logged so the reason shows in CloudWatch, then the init fails.
    let config = Config::from_env().inspect_err(|err| {
        tracing::error!(error = %err, "invalid configuration");
    })?;
    let invoker = SdkInvoker::from_env().await;
    log_started(&config);
    let (config, invoker) = (&config, &invoker);
    lambda_runtime::run(service_fn(move |event| {
        handle_event(config, invoker, event)
    }))
    .await
}
