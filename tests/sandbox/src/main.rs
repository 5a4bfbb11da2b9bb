//! `salve-sandbox`: a simulated Kubernetes cluster in one process (see the crate docs).
//!
//! - `demo` — the whole loop on the shop: fault, alert, Incident, diagnosis, fix, verified,
//!   post-mortem, with its MTTR
//! - `run PATH...` — scenario files, end to end, with a scorecard
//! - `serve` — just the cluster, for exploring with kubectl
//! - `container IMAGE ...` — (internal) the process of one simulated container

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "salve-sandbox", version, about = "A simulated Kubernetes cluster (not a cluster) to watch Salve work without Docker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario end to end and narrate it (default scenario: config-typo).
    Demo(salve_sandbox::demo::DemoArgs),
    /// Run scenario files (YAML) one after another and print a scorecard.
    Run(salve_sandbox::scenario::RunArgs),
    /// Measure the operator against a bare kube-rs controller (build with --release).
    Bench(salve_sandbox::bench::BenchArgs),
    /// Start the cluster only and print the KUBECONFIG line; Ctrl-C to stop.
    Serve {
        /// Where the kubeconfig, pod directories and logs go.
        #[arg(long, env = "SANDBOX_WORKDIR")]
        workdir: Option<PathBuf>,
    },
    /// (internal) Run one container's process: what the kubelet starts.
    #[command(hide = true)]
    Container {
        image: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let code = match Cli::parse().command {
        Command::Container { image, args } => match salve_sandbox::container::run(&image, args).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("{e}");
                1
            }
        },
        Command::Demo(args) => salve_sandbox::demo::main(args).await,
        Command::Run(args) => salve_sandbox::scenario::main(args).await,
        Command::Serve { workdir } => salve_sandbox::demo::serve(workdir).await,
        Command::Bench(args) => salve_sandbox::bench::main(args).await,
    };
    std::process::exit(code);
}
