//! The AWS side of the shared plumbing: SDK configuration, the SQS bus (sink, consumer, DLQ,
//! redrive, queue creation) and DynamoDB pieces both services use (outbox table, processed
//! markers, readiness, table creation, error mapping).
//!
//! Endpoints come from the standard variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SQS`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_REGION`), so the same code runs against a local emulator.

pub mod batch_delete;
pub mod dynamo;
pub mod errors;
pub mod sqs;
#[cfg(test)]
pub(crate) mod stand_in;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;

/// The default credential chain (IRSA on EKS) and region; throttling and transient errors are
/// retried by the SDK with exponential backoff, up to 5 attempts.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::standard().with_max_attempts(5)).load().await
}

/// Tags every resource `init-aws` creates carries.
pub fn resource_tags(service: &str, environment: &str) -> Vec<(String, String)> {
    vec![
        ("Service".to_string(), service.to_string()),
        ("Environment".to_string(), environment.to_string()),
        ("Version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ]
}

/// `init-aws`: the service's tables (GSIs, TTL) and its queue with DLQ, tagged; idempotent.
pub async fn init_resources(
    service: &str,
    environment: &str,
    tables: &[dynamo::TableSpec],
    queue: &str,
    max_receives: u32,
) -> Result<(), String> {
    let config = sdk_config().await;
    let tags = resource_tags(service, environment);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    for spec in tables {
        dynamo::ensure_table(&dynamodb, spec, &tags).await?;
        println!("table {} ready", spec.name);
    }
    let queues = sqs::ensure_queue(&aws_sdk_sqs::Client::new(&config), queue, max_receives, &tags).await?;
    println!("queue {} ready (DLQ {} after {max_receives} receives)", queues.queue_url, queues.dlq_url);
    Ok(())
}

/// `redrive`: moves the service's DLQ back into its queue.
pub async fn redrive_queue(queue: &str) -> Result<usize, String> {
    let client = aws_sdk_sqs::Client::new(&sdk_config().await);
    let queue_url = sqs::queue_url(&client, queue).await?;
    let dlq_url = sqs::queue_url(&client, &format!("{queue}-dlq")).await?;
    sqs::redrive(&client, &dlq_url, &queue_url).await
}
