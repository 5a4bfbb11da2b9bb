//! The quick start: OMS and IMS in one process on the embedded default (SQLite files, no
//! broker), seeded with sample products and customers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use salve_common::auth::{ApiKeys, DEV_KEY};
use salve_common::settings;
use salve_common::telemetry;
use shop_tests::client::ShopClient;
use shop_tests::in_process::{Shop, ShopOptions};
use tokio_util::sync::CancellationToken;

/// mimalloc, also for SQLite: see oms/src/main.rs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the order and inventory services together, with sample data.
#[derive(Parser)]
struct Args {
    #[arg(long, env = "OMS_LISTEN", default_value = "127.0.0.1:8080")]
    oms_listen: SocketAddr,
    #[arg(long, env = "IMS_LISTEN", default_value = "127.0.0.1:8081")]
    ims_listen: SocketAddr,
    /// Holds oms/oms.db and ims/ims.db.
    #[arg(long, env = "SHOP_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    #[arg(long, env = "SALVE_API_KEYS", default_value = DEV_KEY, hide_env_values = true)]
    api_keys: String,
    /// OMS runtime settings file (TOML: timeouts, fault switches), reloaded when it changes.
    #[arg(long, env = "OMS_SETTINGS_FILE")]
    oms_settings_file: Option<PathBuf>,
    /// IMS runtime settings file (TOML), reloaded when it changes.
    #[arg(long, env = "IMS_SETTINGS_FILE")]
    ims_settings_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::install_crypto_provider();
    telemetry::init_logging(false);
    let args = Args::parse();
    let keys = ApiKeys::from_config(&args.api_keys).map_err(anyhow::Error::msg)?;
    let key = keys.outbound_key().unwrap_or(DEV_KEY).to_string();
    let reloaders = CancellationToken::new();
    // Re-read every second, as the services themselves do.
    let every = Duration::from_secs(1);
    let options = ShopOptions {
        oms_listen: args.oms_listen,
        ims_listen: args.ims_listen,
        keys,
        oms_settings: settings::watch_file(args.oms_settings_file.clone(), every, reloaders.clone()).context("OMS settings")?,
        ims_settings: settings::watch_file(args.ims_settings_file.clone(), every, reloaders.clone()).context("IMS settings")?,
    };
    let shop = Shop::start(&args.data_dir, options).await?;
    let client = ShopClient::new(&shop.oms_url(), &shop.ims_url(), &key);
    let customers = shop_tests::seed::seed(&shop, &client).await?;
    let customer = customers.first().cloned().unwrap_or_default();
    println!("OMS on {}  IMS on {}  (data in {})", shop.oms_url(), shop.ims_url(), args.data_dir.display());
    println!("Sample customers: {}", customers.join(", "));
    println!("Sample products: TEA-GREEN, COFFEE-BEANS, MUG-BLUE, KETTLE (only 2 kettles at first). Place an order:");
    println!(
        "  curl -s -X POST {}/orders -H 'x-api-key: {key}' -H 'content-type: application/json' -d '{{\"customer_id\":\"{customer}\",\"items\":[{{\"sku\":\"TEA-GREEN\",\"quantity\":2}}]}}'",
        shop.oms_url()
    );
    println!("  curl -s {}/orders?customer_id={customer} -H 'x-api-key: {key}'", shop.oms_url());
    println!("Ctrl-C stops both.");
    salve_common::shutdown::signal().await;
    reloaders.cancel();
    shop.stop().await;
    Ok(())
}
