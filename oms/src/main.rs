//! `oms` binary: parses the command line and runs the service (see `process`).

use clap::Parser;
use oms::config::Config;
use salve_common::telemetry;

/// mimalloc, built to also replace malloc for the C code linked in: SQLite allocates and frees
/// on every statement, and glibc's malloc was a fifth of the shop's CPU under load
/// (`tests/bench.sh`, `perf`). Only the service binaries set it; the crates they are built from
/// do not, so whatever else links them keeps its own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::install_crypto_provider();
    let config = Config::parse();
    telemetry::init_logging(config.log_format == "json");
    oms::process::run(config).await
}
