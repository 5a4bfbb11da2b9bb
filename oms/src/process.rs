//! The `oms` process: its subcommands (serve, init-aws, redrive) run from a parsed `Config`.
//! `main.rs` and the sandbox (which starts the service as a simulated container) both call `run`.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::dynamodb_store::Tables;
use crate::adapters::ims_catalog::ImsCatalog;
use crate::app::Storage;
use crate::config::{Command, Config};
use anyhow::Context;
use salve_common::auth::ApiKeys;
use salve_common::aws;
use salve_common::backend::{self, BusKind, QueueConfig, StoreKind};
use salve_common::{runtime, settings};
use tokio_util::sync::CancellationToken;

/// Runs the subcommand `config` names (serve when none).
pub async fn run(config: Config) -> anyhow::Result<()> {
    match config.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::InitAws => {
            let tables = Tables::with_prefix(&config.table_prefix).specs();
            aws::init_resources("oms", &config.environment, &tables, &config.queue_name, config.max_receives)
                .await
                .map_err(anyhow::Error::msg)
        }
        Command::Redrive => {
            let moved = aws::redrive_queue(&config.queue_name).await.map_err(anyhow::Error::msg)?;
            println!("moved {moved} message(s) from {0}-dlq back to {0}", config.queue_name);
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    backend::check(config.store, config.bus).map_err(anyhow::Error::msg)?;
    let keys = ApiKeys::from_config(&config.api_keys).map_err(anyhow::Error::msg)?;
    let background = CancellationToken::new();
    let settings = settings::watch_file(config.settings_file.clone(), Duration::from_secs(1), background.clone())?;
    let sdk = backend::aws_config(config.store, config.bus).await;
    let storage = match (&sdk, config.store) {
        (Some(sdk), StoreKind::Dynamodb) => {
            Storage::Dynamo { client: aws_sdk_dynamodb::Client::new(sdk), tables: Tables::with_prefix(&config.table_prefix) }
        }
        _ => Storage::Sqlite(config.data_dir.clone()),
    };
    let catalog = ImsCatalog::new(&config.ims_url, keys.outbound_key().map(str::to_string))?;
    let queue_fed = config.bus == BusKind::Sqs;
    let service = crate::app::build_with(storage, queue_fed, keys.clone(), settings, Arc::new(catalog)).context("opening the OMS store")?;
    let queues = QueueConfig {
        own: &config.queue_name,
        peer: &config.ims_queue_name,
        wait_seconds: config.queue_wait_seconds,
        visibility_seconds: config.queue_visibility_seconds,
        pollers: config.queue_pollers.into(),
    };
    let sink = backend::message_sink(config.bus, sdk.as_ref(), &config.ims_url, &keys, queues, service.inbox.clone(), background.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    runtime::run_until_signal("oms", config.listen, service.router, &service.runtime, sink, background)
        .await
        .with_context(|| format!("serving on {}", config.listen))
}
