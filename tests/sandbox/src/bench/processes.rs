//! The two controllers the benchmark compares, each as its own process (so that its memory is
//! its own): the real operator, and a baseline — a bare kube-rs controller watching the same
//! CRDs with a reconcile that does nothing.

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

/// `salve-sandbox operator-process`: the real operator (offline diagnosis) on a kubeconfig.
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
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
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

/// `salve-sandbox baseline-controller`: the same two watches, reconciles counted and nothing
/// else; `/metrics` serves `baseline_reconciles_total`.
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
