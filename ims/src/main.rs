//! `ims` binary: parses the command line and runs the service (see `process`).

use clap::Parser;
use ims::config::Config;
use salve_common::telemetry;

/// mimalloc, also for SQLite: see oms/src/main.rs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::install_crypto_provider();
    let config = Config::parse();
    telemetry::init_logging(config.log_format == "json");
    ims::process::run(config).await
}
