//! The asynchronous invoke of the generator.

use std::future::Future;

/// Invocation failures: returned as errors so Lambda retries the async event.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("invoking {function} failed: {message}")]
    Sdk { function: String, message: String },
    #[error("invoking {function} answered HTTP {status}, expected 202 (InvocationType=Event)")]
    UnexpectedStatus { function: String, status: i32 },
    #[error("serializing the event payload failed: {0}")]
    Payload(#[from] serde_json::Error),
}

/// Invokes a Lambda function asynchronously; returns the HTTP status of the Invoke API answer.
pub trait Invoker {
    fn invoke_async(
        &self,
        function: &str,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<i32, InvokeError>> + Send;
}

/// The real [`Invoker`] over aws-sdk-lambda (`InvocationType=Event`).
#[derive(Debug, Clone)]
pub struct SdkInvoker {
    client: aws_sdk_lambda::Client,
}

impl SdkInvoker {
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Self { client }
    }

    /// A client from the standard AWS configuration chain (region, credentials, and endpoint,
    /// including `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_LAMBDA`).
    pub async fn from_env() -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(aws_sdk_lambda::Client::new(&config))
    }
}

impl Invoker for SdkInvoker {
    async fn invoke_async(&self, function: &str, payload: Vec<u8>) -> Result<i32, InvokeError> {
        let output = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map_err(|err| InvokeError::Sdk {
                function: function.to_owned(),
                message: aws_sdk_lambda::error::DisplayErrorContext(&err).to_string(),
            })?;
        Ok(output.status_code())
    }
}

/// Invokes `function` with `payload` and accepts only the 202 of an asynchronous invoke.
pub async fn invoke_accepted<I: Invoker>(
    invoker: &I,
    function: &str,
    payload: Vec<u8>,
) -> Result<(), InvokeError> {
    match invoker.invoke_async(function, payload).await? {
        202 => Ok(()),
        status => Err(InvokeError::UnexpectedStatus {
            function: function.to_owned(),
            status,
        }),
    }
}
