//! Lambda entry point (packaged as `bootstrap`): a thin handler over [`ecr_image_filter::handle`].

use ecr_image_filter::{Config, SdkInvoker, handle, init_tracing};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            // Logged (one JSON line) so the reason shows in CloudWatch, then fail the init.
            tracing::error!(error = %err, "invalid configuration");
            return Err(err.into());
        }
    };
    let invoker = SdkInvoker::from_env().await;
    tracing::info!(
        filters = ?config.filters.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        generator = %config.generator_arn,
        index_version = ?config.index_version,
        index_tag_suffix = %config.index_tag_suffix,
        "ecr-image-filter started"
    );
    let (config, invoker) = (&config, &invoker);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let outcome =
                handle(config, invoker, &event.context.request_id, &event.payload).await?;
            Ok::<_, lambda_runtime::Error>(outcome)
        },
    ))
    .await
}
