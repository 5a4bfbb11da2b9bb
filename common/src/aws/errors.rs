//! AWS errors as one clear line: which operation, on what, and the service's own error code
//! (e.g. ResourceNotFoundException for a missing table, AccessDeniedException, throttling that
//! outlasted the SDK's retries). The same `SdkError` type serves DynamoDB and SQS.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// `"<operation> on <target>: <code>: <message>"`, logged once here.
pub fn describe<E>(operation: &str, target: &str, error: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let line = match error.code() {
        Some(code) => format!("{operation} on {target}: {code}: {}", error.message().unwrap_or("no message")),
        None => format!("{operation} on {target}: {}", DisplayErrorContext(error)),
    };
    tracing::error!(error = %line, "AWS call failed");
    line
}

/// The error code, when AWS answered at all.
pub fn code<E: ProvideErrorMetadata>(error: &SdkError<E>) -> Option<&str> {
    error.code()
}
