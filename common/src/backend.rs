//! How a service stores and exchanges data, chosen by configuration.

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// A SQLite file in the data directory (nothing to install).
    Embedded,
    /// DynamoDB tables (created by `init-aws`).
    Dynamodb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BusKind {
    /// HTTP push to the other service's inbox (or in-process).
    Embedded,
    /// SQS queues with DLQs (created by `init-aws`).
    Sqs,
}

/// The combinations that work. DynamoDB has no dead-letter table of its own, so it needs
/// the SQS bus, whose DLQs keep rejected messages.
pub fn check(store: StoreKind, bus: BusKind) -> Result<(), String> {
    if store == StoreKind::Dynamodb && bus == BusKind::Embedded {
        return Err("--store dynamodb needs --bus sqs".into());
    }
    Ok(())
}

/// This service's side of the SQS bus.
pub struct QueueConfig<'a> {
    pub own: &'a str,
    pub peer: &'a str,
    pub wait_seconds: i32,
    pub visibility_seconds: i32,
    /// Receive loops on our queue.
    pub pollers: usize,
}

/// The AWS SDK configuration, when the store or the bus needs AWS.
pub async fn aws_config(store: StoreKind, bus: BusKind) -> Option<aws_config::SdkConfig> {
    match (store, bus) {
        (StoreKind::Embedded, BusKind::Embedded) => None,
        _ => Some(crate::aws::sdk_config().await),
    }
}

/// Where the relay delivers: HTTP to the peer's inbox, or (with the SQS bus) the peer's queue,
/// in which case our own queue is consumed into `inbox` until `stop`.
pub async fn message_sink(
    bus: BusKind,
    sdk: Option<&aws_config::SdkConfig>,
    peer_url: &str,
    keys: &crate::auth::ApiKeys,
    queues: QueueConfig<'_>,
    inbox: std::sync::Arc<crate::messaging::inbox::Inbox>,
    stop: tokio_util::sync::CancellationToken,
) -> Result<std::sync::Arc<dyn crate::messaging::sink::MessageSink>, String> {
    match (bus, sdk) {
        (BusKind::Sqs, Some(sdk)) => {
            let client = aws_sdk_sqs::Client::new(sdk);
            let consumer = crate::aws::sqs::ConsumerSettings {
                wait_seconds: queues.wait_seconds,
                visibility_seconds: queues.visibility_seconds,
                pollers: queues.pollers,
            };
            crate::aws::sqs::start_bus(client, queues.own, queues.peer, inbox, consumer, stop).await
        }
        (BusKind::Sqs, None) => Err("the SQS bus needs an AWS configuration".into()),
        (BusKind::Embedded, _) => {
            Ok(std::sync::Arc::new(crate::messaging::sink::HttpSink::new(peer_url, keys.outbound_key().map(str::to_string))))
        }
    }
}
