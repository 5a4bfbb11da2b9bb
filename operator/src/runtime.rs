//! Wires the process: health/metrics server, ConfigMap history, leader election, and the two
//! controllers (started when this replica leads, stopped when it stops leading).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::StreamExt;
use kube::runtime::events::Reporter;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, RunArgs};
use crate::controllers::cache;
use crate::controllers::context::Context;
use crate::controllers::{incident, remediation};
use crate::domain::cloud_evidence::CloudEvidenceSource;
use crate::domain::diagnoser::Diagnoser;
use crate::domain::diagnosis::RuleBasedDiagnoser;
use crate::domain::post_mortem_store::PostMortemStore;
use crate::kube::config_history::ConfigHistory;
use crate::kube::leader::{LeaderElector, LeaseTiming};
use crate::kube::recorder::Recorder;
use crate::kube::write_gate::WriteGate;
use crate::metrics::Metrics;

/// Changes of the shared Remediation watch each controller may hold unread before the watch waits.
const SHARED_BUFFER: usize = 1024;
/// How long the Incident controller waits for the Remediation cache's first list.
const CACHE_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("intake: {0}")]
    Intake(#[from] crate::intake::WorkloadMapError),
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    #[error("GitHub: {0}")]
    Github(#[from] crate::github::settings::GithubConfigError),
    #[error("notifications: {0}")]
    Notify(#[from] crate::notify::settings::NotifyConfigError),
    #[error("{0}")]
    NoCluster(String),
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// A client for the cluster kube-rs finds (in-cluster service account, else `KUBECONFIG`, else
/// `~/.kube/config`), with an error that says what was tried when there is none.
pub async fn connect() -> Result<Client, RunError> {
    match kube::Config::infer().await {
        Ok(config) => Ok(Client::try_from(config)?),
        Err(e) => {
            let kubeconfig = std::env::var("KUBECONFIG").map(|k| format!("KUBECONFIG={k}")).unwrap_or_else(|_| "KUBECONFIG unset".into());
            let home = std::env::var("HOME").map(|h| format!("{h}/.kube/config")).unwrap_or_else(|_| "~/.kube/config".into());
            Err(RunError::NoCluster(format!(
                "no Kubernetes cluster to talk to. Tried: in-cluster (KUBERNETES_SERVICE_HOST {}), {kubeconfig}, {home} ({}). \
                 Point KUBECONFIG at a cluster (kind, EKS, ...) or deploy the operator with the Helm chart. Details: {e}",
                if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() { "set" } else { "unset" },
                if std::path::Path::new(&home).exists() { "exists but could not be used" } else { "missing" },
            )))
        }
    }
}

#[derive(Clone)]
struct HttpState {
    metrics: Metrics,
    ready: Arc<AtomicBool>,
}

async fn render_metrics(State(s): State<HttpState>) -> String {
    s.metrics.render()
}

async fn readyz(State(s): State<HttpState>) -> StatusCode {
    if s.ready.load(Ordering::Relaxed) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

pub fn http_router(m: Metrics, ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(HttpState { metrics: m, ready })
}

/// Builds the shared context (one Recorder, one policy, one diagnoser).
pub fn context(client: Client, args: &RunArgs, metrics: Metrics) -> Result<Arc<Context>, RunError> {
    context_with(client, args, metrics, Arc::new(RuleBasedDiagnoser))
}

/// The diagnoser from configuration: Bedrock when a model id is set (credentials and region
/// from the default AWS chain), otherwise the offline rules.
pub async fn diagnoser(args: &RunArgs) -> Arc<dyn Diagnoser> {
    let Some(settings) = args.bedrock_settings() else {
        return Arc::new(RuleBasedDiagnoser);
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = crate::aws::bedrock::client(
        aws_sdk_bedrockruntime::config::Builder::from(&sdk),
        args.bedrock_max_attempts,
        Duration::from_millis(args.bedrock_initial_backoff_ms),
        args.bedrock_endpoint_url.as_deref(),
    );
    tracing::info!(model = %settings.model_id, "Bedrock diagnosis enabled");
    Arc::new(crate::aws::bedrock::BedrockDiagnoser::new(client, settings))
}

/// AWS evidence from configuration: on when enabled or a log group template is set; clients
/// from the default AWS chain (endpoint overrides via `AWS_ENDPOINT_URL*`).
pub async fn cloud_evidence(args: &RunArgs) -> Option<Arc<dyn CloudEvidenceSource>> {
    let settings = args.aws_evidence.clone();
    if !settings.is_enabled() {
        return None;
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    tracing::info!(log_group_template = settings.template().unwrap_or("-"), "AWS evidence enabled");
    Some(Arc::new(crate::aws::cloud_evidence::AwsCloudEvidence::from_sdk_config(&sdk, settings)))
}

/// Outside systems the operator can use, each optional and built from configuration.
#[derive(Default)]
pub struct Integrations {
    pub cloud_evidence: Option<Arc<dyn CloudEvidenceSource>>,
    pub post_mortem_store: Option<Arc<dyn PostMortemStore>>,
}

impl Integrations {
    pub async fn from_config(args: &RunArgs) -> Self {
        let post_mortem_store = args.post_mortem_archive.store().await.map(|s| Arc::new(s) as Arc<dyn PostMortemStore>);
        Self { cloud_evidence: cloud_evidence(args).await, post_mortem_store }
    }
}

pub fn context_with(client: Client, args: &RunArgs, metrics: Metrics, diagnoser: Arc<dyn Diagnoser>) -> Result<Arc<Context>, RunError> {
    context_with_integrations(client, args, metrics, diagnoser, Integrations::default())
}

pub fn context_with_integrations(
    client: Client,
    args: &RunArgs,
    metrics: Metrics,
    diagnoser: Arc<dyn Diagnoser>,
    integrations: Integrations,
) -> Result<Arc<Context>, RunError> {
    build_context(client, args, metrics, diagnoser, integrations).map(Arc::new)
}

/// The context with an open write gate: a reconcile run outside leader election writes freely.
fn build_context(
    client: Client,
    args: &RunArgs,
    metrics: Metrics,
    diagnoser: Arc<dyn Diagnoser>,
    integrations: Integrations,
) -> Result<Context, RunError> {
    let reporter = Reporter { controller: "salve-operator".into(), instance: Some(args.identity.clone()) };
    Ok(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        policy: args.policy()?,
        diagnoser,
        metrics,
        history: ConfigHistory::default(),
        settings: args.controller_settings(),
        post_mortem_store: integrations.post_mortem_store,
        cloud_evidence: integrations.cloud_evidence,
        github: args.github.client()?,
        unrecorded_diagnoses: Default::default(),
        remediation_cache: Default::default(),
        write_gate: WriteGate::open(),
        starts: Default::default(),
    })
}

/// Runs `main` the way every operator process starts: the tokio runtime, then the one TLS
/// provider, chosen before any client exists. Returns `main`'s exit code.
pub fn start(main: impl std::future::Future<Output = i32>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async move {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        main.await
    })
}

/// Runs until `shutdown` is cancelled. `listener` is optional so tests can skip the HTTP side.
pub async fn run(
    client: Client,
    args: RunArgs,
    listener: Option<tokio::net::TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    run_with_readiness(client, args, listener, shutdown, Arc::new(AtomicBool::new(false))).await
}

/// Like `run`; `ready` turns true once the ConfigMap history has its first full list (the
/// replica can then diagnose config changes), whether or not it leads.
pub async fn run_with_readiness(
    client: Client,
    args: RunArgs,
    listener: Option<tokio::net::TcpListener>,
    shutdown: CancellationToken,
    ready: Arc<AtomicBool>,
) -> Result<(), RunError> {
    let metrics = Metrics::new()?;
    let integrations = Integrations::from_config(&args).await;
    // The controllers run under leader election here: their writes follow the lease.
    let ctx = Context {
        write_gate: WriteGate::elected(),
        ..build_context(client.clone(), &args, metrics.clone(), diagnoser(&args).await, integrations)?
    };
    let ctx = Arc::new(ctx);
    // Intake runs on every replica (idempotent writes), not only on the leader.
    let intake_routes = crate::intake::start(client.clone(), &args.intake, metrics.clone(), shutdown.clone()).await?;
    if let Some(listener) = listener {
        let app = http_router(metrics, ready.clone()).merge(intake_routes);
        let token = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(async move { token.cancelled().await }).await {
                tracing::error!(error = %e, "http server stopped");
            }
        });
    }
    // Notifications: read from their Secret files once, at start (a bad file stops the start).
    let notifications = args.notify.channels()?.map(Arc::new);
    let (init_tx, mut init_rx) = tokio::sync::watch::channel(false);
    let history_task = tokio::spawn(ctx.history.clone().run(client.clone(), init_tx));
    let ready_flag = ready.clone();
    tokio::spawn(async move {
        if init_rx.wait_for(|i| *i).await.is_ok() {
            ready_flag.store(true, Ordering::Relaxed);
        }
    });
    let timing = LeaseTiming::for_lease(Duration::from_secs(args.lease_seconds));
    let elector =
        LeaderElector::new(client, &args.lease_namespace, &args.lease_name, &args.identity, timing).with_gate(ctx.write_gate.clone());
    let mut leading = elector.spawn(shutdown.clone());
    loop {
        // Standby: wait until we lead (or shut down).
        tokio::select! {
            r = leading.wait_for(|l| *l) => if r.is_err() { break },
            _ = shutdown.cancelled() => break,
        }
        tracing::info!(identity = %args.identity, "leading: starting controllers");
        let term = shutdown.child_token();
        // One watch of Remediations (stripped, paged) feeds both controllers and the policy.
        let (rem_store, rem_writer) = reflector::store_shared(SHARED_BUFFER);
        let (Some(for_incidents), Some(for_remediations)) = (rem_writer.subscribe(), rem_writer.subscribe()) else {
            unreachable!("a shared store has subscribers")
        };
        let rem_watch = {
            let api = Api::<cache::CachedRemediation>::all(ctx.client.clone());
            let stream = watcher(api, cache::watch_config()).default_backoff().reflect_shared(rem_writer);
            let term = term.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stream.for_each(|_| std::future::ready(())) => {}
                    _ = term.cancelled() => {}
                }
            })
        };
        // One task waits for the Remediation cache's first list and tells the rest. Two waiters
        // on a store lose a wakeup: `Store::wait_until_ready` polls a oneshot receiver, which
        // keeps only the last task's waker (kube-runtime 5.0.0, `src/utils/delayed_init.rs`), so
        // the Incident controller, waiting beside the Remediation controller's runner, slept
        // until its timeout (`CACHE_WAIT`) on every start.
        let (listed_tx, listed) = tokio::sync::watch::channel(false);
        let rem_listed = tokio::spawn({
            let (store, cache) = (rem_store.clone(), ctx.remediation_cache.clone());
            async move {
                if store.wait_until_ready().await.is_ok() {
                    cache.set(Some(store));
                    let _ = listed_tx.send(true);
                }
            }
        });
        let rem = tokio::spawn({
            let (ctx, term, store, mut listed) = (ctx.clone(), term.clone(), rem_store.clone(), listed.clone());
            async move {
                // Its runner waits for the store too: it starts once the store is known ready.
                if listed.wait_for(|l| *l).await.is_ok() {
                    remediation::run(ctx, term, store, for_remediations).await;
                }
            }
        });
        // The Incident controller's cache (stripped) also serves the metrics and the notifier.
        let (inc_store, inc_writer) = reflector::store::<cache::CachedIncident>();
        // Only the leader exports incident counts, read from its controller's cache.
        let phases = inc_store.clone();
        ctx.metrics.set_phase_source(Some(Box::new(move || {
            phases.state().iter().filter_map(|c| c.object().ok()).map(|i| i.status.map(|s| s.phase).unwrap_or_default()).collect()
        })));
        let notifier = notifications.clone().map(|channels| {
            let caches = (inc_store.clone(), rem_store.clone());
            tokio::spawn(crate::notify::run(ctx.client.clone(), channels, ctx.recorder.clone(), ctx.metrics.clone(), caches, term.clone()))
        });
        let inc = tokio::spawn({
            let (ctx, term, mut listed) = (ctx.clone(), term.clone(), listed);
            async move {
                // Terminal Incidents are judged against the Remediation cache: the Incident
                // controller starts once it holds the first list (or after a while without).
                if !matches!(tokio::time::timeout(CACHE_WAIT, listed.wait_for(|l| *l)).await, Ok(Ok(_))) {
                    tracing::warn!("remediation cache not ready; starting the incident controller without it");
                }
                incident::run(ctx, term, for_incidents, (inc_store, inc_writer)).await
            }
        });
        tokio::select! {
            _ = leading.wait_for(|l| !*l) => tracing::warn!("lost leadership: stopping controllers"),
            _ = shutdown.cancelled() => {}
        }
        term.cancel();
        let _ = inc.await;
        let _ = rem.await;
        let _ = rem_watch.await;
        rem_listed.abort();
        let _ = rem_listed.await;
        ctx.remediation_cache.set(None);
        if let Some(n) = notifier {
            let _ = n.await;
        }
        ctx.metrics.set_phase_source(None);
        if shutdown.is_cancelled() {
            break;
        }
    }
    // Give the elector a moment to release the lease so a standby takes over at once.
    let _ = tokio::time::timeout(Duration::from_secs(2), leading.wait_for(|l| !*l)).await;
    history_task.abort();
    Ok(())
}
