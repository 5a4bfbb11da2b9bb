//! The two controllers the benchmark compares, each a binary of its own (`salve-bench-operator`
//! and `salve-bench-baseline`, in `src/bin`): the real operator, and a baseline — a bare kube-rs
//! controller watching the same CRDs with a reconcile that does nothing.
//!
//! Binaries of their own, so that each process's memory is its own: linked alone, each maps
//! only its own code. Run as a subcommand of `salve-sandbox`, a controller mapped that binary's
//! 42 MB of code, which the simulated cluster in the parent process keeps in the page cache, so
//! that the kernel's fault-around brought about 20 MiB of the cluster's code into the
//! controller's RSS.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;
use futures::StreamExt;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, Config};
use operator::crd::{Incident, Remediation};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug)]
pub struct ProcessArgs {
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// Namespace the operator may act in and keeps its Lease in.
    #[arg(long, env = "SANDBOX_NAMESPACE", default_value = "bench")]
    pub namespace: String,
    #[arg(long, env = "SANDBOX_HTTP_ADDR", default_value = "127.0.0.1:0")]
    pub http_addr: SocketAddr,
    /// SQS queue of CloudWatch alarm notifications the operator consumes (the baseline ignores it).
    #[arg(long, env = "SALVE_INTAKE_SQS_QUEUE")]
    pub intake_sqs_queue: Option<String>,
}

/// The client for the kubeconfig and the bound listener, whose address is printed first (the
/// benchmark reads it from stdout).
async fn setup(args: &ProcessArgs) -> Result<(Client, tokio::net::TcpListener), String> {
    let kc = kube::config::Kubeconfig::read_from(&args.kubeconfig).map_err(|e| e.to_string())?;
    let cfg = Config::from_custom_kubeconfig(kc, &Default::default()).await.map_err(|e| e.to_string())?;
    let client = Client::try_from(cfg).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.http_addr).await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening {addr}");
    Ok((client, listener))
}

/// A controller for `K` whose reconcile only counts.
async fn count_reconciles<K>(client: Client, count: Arc<AtomicU64>)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    Controller::new(Api::<DeserializeGuard<K>>::all(client), watcher::Config::default())
        .run(
            |_, c: Arc<AtomicU64>| async move {
                c.fetch_add(1, Ordering::Relaxed);
                Ok::<_, kube::Error>(Action::await_change())
            },
            |_, _, _| Action::await_change(),
            count,
        )
        .for_each(|_| async {})
        .await;
}

/// Which controller a benchmark process runs.
#[derive(Clone, Copy, Debug)]
pub enum Measured {
    Operator,
    Baseline,
}

impl Measured {
    /// Its binary's name (next to `salve-sandbox`).
    pub fn binary(self) -> &'static str {
        match self {
            Measured::Operator => "salve-bench-operator",
            Measured::Baseline => "salve-bench-baseline",
        }
    }
}

#[derive(clap::Parser, Debug)]
struct ProcessCli {
    #[command(flatten)]
    args: ProcessArgs,
}

/// The `main` of both binaries, running `controller` as the operator binary runs (see
/// `operator::runtime::start`), the baseline too, so that they differ only in code. Each binary
/// names its own controller, so it links only that one's code.
pub fn process_main<F: Future<Output = i32>>(controller: impl FnOnce(ProcessArgs) -> F) -> i32 {
    let args = <ProcessCli as clap::Parser>::parse().args;
    // SANDBOX_BENCH_LOG: the bench passes this process's stderr through; RUST_LOG filters it.
    if std::env::var_os("SANDBOX_BENCH_LOG").is_some() {
        let _ = operator::telemetry::init("text", None);
    }
    operator::runtime::start(controller(args))
}

/// The real operator (offline diagnosis) on a kubeconfig.
pub async fn operator_process(args: ProcessArgs) -> i32 {
    let (client, listener) = match setup(&args).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let mut run = operator::config::RunArgs::defaults();
    run.http_addr = args.http_addr;
    run.identity = "salve-operator-bench".into();
    run.lease_namespace = args.namespace.clone();
    run.allowed_namespaces = vec![args.namespace.clone()];
    run.dry_run = Some(false);
    run.intake.alertmanager_token = Some(operator::intake::config::SecretToken(crate::demo::operator::WEBHOOK_TOKEN.into()));
    run.intake.default_namespace = Some(args.namespace.clone());
    run.intake.sqs_queue = args.intake_sqs_queue.clone();
    run.intake.alarm_workloads = format!("{}*={}/web", super::sqs_alarms::ALARM_PREFIX, args.namespace);
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    // SIGTERM (what the benchmark sends, as Kubernetes does) stops it gracefully: the Lease is
    // released, so the next process leads at once.
    tokio::spawn(async move {
        salve_common::shutdown::signal().await;
        token.cancel();
    });
    match operator::runtime::run(client, run, Some(listener), shutdown).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// The baseline: the same two watches, reconciles counted and nothing else; `/metrics` serves
/// `baseline_reconciles_total`.
pub async fn baseline_process(args: ProcessArgs) -> i32 {
    let (client, listener) = match setup(&args).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let count = Arc::new(AtomicU64::new(0));
    let served = count.clone();
    let app = Router::new()
        .route("/metrics", get(move || async move { format!("baseline_reconciles_total {}\n", served.load(Ordering::Relaxed)) }));
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    tokio::join!(count_reconciles::<Incident>(client.clone(), count.clone()), count_reconciles::<Remediation>(client, count));
    0
}
