//! `operator` binary: `operator [run]` runs the operator, `operator crdgen` writes the CRDs,
//! `operator replay --file postmortem.json` replays a post-mortem's diagnosis offline.

use clap::Parser;
use operator::config::{Cli, Command};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One TLS provider for the whole process, chosen before any client exists.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    if let Some(Command::Crdgen { out }) = &cli.command {
        std::fs::create_dir_all(out)?;
        for (file, yaml) in operator::crd::generated_crds()? {
            std::fs::write(out.join(file), yaml)?;
        }
        return Ok(());
    }
    if let Some(Command::Replay(replay)) = &cli.command {
        std::process::exit(operator::replay_command::run(replay));
    }
    let args = cli.run;
    let telemetry = operator::telemetry::init(&args.log_format, args.otlp_endpoint.as_deref())?;
    let client = kube::Client::try_default().await?;
    let listener = tokio::net::TcpListener::bind(args.http_addr).await?;
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    let result = operator::runtime::run(client, args, Some(listener), shutdown).await;
    telemetry.shutdown();
    result?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
