use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use oms::adapters::ims_catalog::ImsCatalog;
use oms::config::Config;
use salve_common::auth::ApiKeys;
use salve_common::{runtime, settings, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::install_crypto_provider();
    let config = Config::parse();
    telemetry::init_logging(config.log_format == "json");
    let keys = ApiKeys::from_config(&config.api_keys).map_err(anyhow::Error::msg)?;
    let background = CancellationToken::new();
    let settings = settings::watch_file(config.settings_file.clone(), Duration::from_secs(1), background.clone())?;
    let catalog = ImsCatalog::new(&config.ims_url, keys.outbound_key().map(str::to_string))?;
    let service = oms::app::build(&config.data_dir, keys, settings, Arc::new(catalog)).context("opening the OMS database")?;
    runtime::run_until_signal("oms", config.listen, service.router, &service.runtime, &config.ims_url, background)
        .await
        .with_context(|| format!("serving on {}", config.listen))
}
