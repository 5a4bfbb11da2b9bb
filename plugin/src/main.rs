//! `kubectl-salve`: the kubectl plugin for Salve (`kubectl salve ...`). See plugin/README.md.

mod cli;
mod cluster;
mod commands;
mod der;
mod error;
mod identity;
mod output;
mod resources;

use clap::Parser;

#[tokio::main]
async fn main() {
    // One TLS provider for kube's rustls, chosen before anything opens a connection.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = cli::Cli::parse();
    let code = match commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    std::process::exit(code);
}
