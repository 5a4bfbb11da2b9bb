use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use salve_common::backend::{BusKind, StoreKind};

/// Order management service (OMS): orders and customers; reserves stock through IMS.
#[derive(Debug, Parser)]
#[command(name = "oms", version)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Address to listen on.
    #[arg(long, env = "OMS_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: SocketAddr,
    /// Directory of the service's SQLite file (oms.db), with `--store embedded`.
    #[arg(long, env = "OMS_DATA_DIR", default_value = "data/oms", global = true)]
    pub data_dir: PathBuf,
    /// Base URL of the inventory service: its products price orders; with `--bus embedded`
    /// its inbox also takes our messages.
    #[arg(long, env = "OMS_IMS_URL", default_value = "http://127.0.0.1:8081", global = true)]
    pub ims_url: String,
    /// Accepted API keys, comma-separated; the first is also presented to IMS.
    #[arg(long, env = "SALVE_API_KEYS", default_value = salve_common::auth::DEV_KEY, hide_env_values = true, global = true)]
    pub api_keys: String,
    /// Runtime settings file (TOML), reloaded when it changes.
    #[arg(long, env = "OMS_SETTINGS_FILE", global = true)]
    pub settings_file: Option<PathBuf>,
    /// Log format: json (production) or text.
    #[arg(long, env = "OMS_LOG_FORMAT", default_value = "text", value_parser = ["json", "text"], global = true)]
    pub log_format: String,
    /// Where data lives: embedded (SQLite) or dynamodb.
    #[arg(long, env = "OMS_STORE", value_enum, default_value = "embedded", global = true)]
    pub store: StoreKind,
    /// How messages travel: embedded (HTTP) or sqs.
    #[arg(long, env = "OMS_BUS", value_enum, default_value = "embedded", global = true)]
    pub bus: BusKind,
    /// Prefix of the DynamoDB table names (tables: <prefix>oms-orders, ...).
    #[arg(long, env = "OMS_TABLE_PREFIX", default_value = "", global = true)]
    pub table_prefix: String,
    /// Our SQS queue (its DLQ is <name>-dlq).
    #[arg(long, env = "OMS_QUEUE_NAME", default_value = "oms-inbox", global = true)]
    pub queue_name: String,
    /// The inventory service's SQS queue.
    #[arg(long, env = "OMS_IMS_QUEUE_NAME", default_value = "ims-inbox", global = true)]
    pub ims_queue_name: String,
    /// Receives before SQS moves a message to the DLQ (set by init-aws).
    #[arg(long, env = "OMS_QUEUE_MAX_RECEIVES", default_value_t = 5, global = true)]
    pub max_receives: u32,
    /// Long-poll wait of the SQS consumer, in seconds (0-20).
    #[arg(long, env = "OMS_QUEUE_WAIT_SECONDS", default_value_t = 20, value_parser = clap::value_parser!(i32).range(0..=20), global = true)]
    pub queue_wait_seconds: i32,
    /// How long a received SQS message stays invisible to other consumers; extended while a
    /// slow handler runs, so a crashed consumer's messages come back after about this long.
    #[arg(long, env = "OMS_QUEUE_VISIBILITY_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(i32).range(1..=43200), global = true)]
    pub queue_visibility_seconds: i32,
    /// Receive loops on our SQS queue. Each takes at most 10 messages per ReceiveMessage and
    /// handles them before its next one, so one loop's throughput is 10 per round of calls.
    #[arg(long, env = "OMS_QUEUE_POLLERS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64), global = true)]
    pub queue_pollers: u16,
    /// Environment tag for the resources init-aws creates.
    #[arg(long, env = "SALVE_ENVIRONMENT", default_value = "dev", global = true)]
    pub environment: String,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Create the DynamoDB tables (with GSIs and TTL) and the SQS queue and DLQ; idempotent.
    InitAws,
    /// Move every message in our DLQ back to our queue.
    Redrive,
}
