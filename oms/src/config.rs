use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Order management service (OMS): orders and customers; reserves stock through IMS.
#[derive(Debug, Parser)]
#[command(name = "oms", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "OMS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the service's SQLite file (oms.db).
    #[arg(long, env = "OMS_DATA_DIR", default_value = "data/oms")]
    pub data_dir: PathBuf,
    /// Base URL of the inventory service: its products price orders, its inbox takes our messages.
    #[arg(long, env = "OMS_IMS_URL", default_value = "http://127.0.0.1:8081")]
    pub ims_url: String,
    /// Accepted API keys, comma-separated; the first is also presented to IMS.
    #[arg(long, env = "SALVE_API_KEYS", default_value = salve_common::auth::DEV_KEY, hide_env_values = true)]
    pub api_keys: String,
    /// Runtime settings file (TOML), reloaded when it changes.
    #[arg(long, env = "OMS_SETTINGS_FILE")]
    pub settings_file: Option<PathBuf>,
    /// Log format: json (production) or text.
    #[arg(long, env = "OMS_LOG_FORMAT", default_value = "text", value_parser = ["json", "text"])]
    pub log_format: String,
}
