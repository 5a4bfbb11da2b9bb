use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ims::config::Config;
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
    let service = ims::app::build(&config.data_dir, keys, settings).context("opening the IMS database")?;
    runtime::run_until_signal("ims", config.listen, service.router, &service.runtime, &config.oms_url, background)
        .await
        .with_context(|| format!("serving on {}", config.listen))
}
