use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Inventory management service (IMS): products and stock; reserves stock for OMS orders.
#[derive(Debug, Parser)]
#[command(name = "ims", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "IMS_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Directory of the service's SQLite file (ims.db).
    #[arg(long, env = "IMS_DATA_DIR", default_value = "data/ims")]
    pub data_dir: PathBuf,
    /// Base URL of the order service, whose inbox takes our messages.
    #[arg(long, env = "IMS_OMS_URL", default_value = "http://127.0.0.1:8080")]
    pub oms_url: String,
    /// Accepted API keys, comma-separated; the first is also presented to OMS.
    #[arg(long, env = "SALVE_API_KEYS", default_value = salve_common::auth::DEV_KEY, hide_env_values = true)]
    pub api_keys: String,
    /// Runtime settings file (TOML), reloaded when it changes.
    #[arg(long, env = "IMS_SETTINGS_FILE")]
    pub settings_file: Option<PathBuf>,
    /// Log format: json (production) or text.
    #[arg(long, env = "IMS_LOG_FORMAT", default_value = "text", value_parser = ["json", "text"])]
    pub log_format: String,
}
