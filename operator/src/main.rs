//! `operator` binary: `operator run` runs the operator (also the default without a
//! subcommand), `operator crdgen` writes the CRDs, `operator replay --file postmortem.json`
//! replays a post-mortem's diagnosis offline.

use clap::Parser;
use operator::config::{Cli, Command};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: operator::memory::Allocator = operator::memory::Allocator;

fn main() {
    std::process::exit(operator::runtime::start(async_main()));
}

async fn async_main() -> i32 {
    match Cli::parse().into_command() {
        Command::Crdgen(args) => crdgen(&args),
        Command::Replay(replay) => operator::replay_command::run(&replay),
        Command::Eval(eval) => operator::eval_command::run(&eval),
        Command::Run(args) => run(*args).await,
    }
}

fn crdgen(args: &operator::config::CrdgenArgs) -> i32 {
    let written = operator::crd::write_crds(&args.out);
    match written {
        Ok(paths) => {
            for p in paths {
                println!("wrote {}", p.display());
            }
            0
        }
        Err(e) => {
            eprintln!("operator crdgen: {e}");
            1
        }
    }
}

async fn run(args: operator::config::RunArgs) -> i32 {
    let telemetry = match operator::telemetry::init(&args.log_format, args.otlp_endpoint.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("operator: telemetry: {e}");
            return 2;
        }
    };
    let result = async {
        let client = operator::runtime::connect().await?;
        let listener = tokio::net::TcpListener::bind(args.http_addr).await?;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            token.cancel();
        });
        operator::runtime::run(client, args, Some(listener), shutdown).await
    }
    .await;
    telemetry.shutdown();
    match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "operator stopped");
            eprintln!("operator: {e}");
            1
        }
    }
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
