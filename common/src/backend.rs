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
