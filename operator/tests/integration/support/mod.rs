//! Test harness: the simulated cluster of `tests/sandbox` (a TEST STAND-IN: the API server of
//! `tests/fake-kube`, the Deployment and ReplicaSet controllers, and a kubelet running every
//! container as a real process that restarts in place with back-off) and the real operator.
//! Nothing here plays the kubelet: pods crash, OOM and recover only as the simulated kubelet
//! runs them (`workload.rs` has the stand-in `oms` and the faults people cause).
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fake_kube::FakeKube;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Config};
use operator::config::RunArgs;
use operator::crd::{Incident, Remediation};
use salve_sandbox::clock::TimeScale;
use salve_sandbox::cluster::{Cluster, ClusterOptions, client_as, ensure_namespace};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub mod alarm_queue;
pub mod bedrock_stand_in;
pub mod moto;
mod workload;

pub use workload::*;

pub const NS: &str = "shop";
pub const APP: &str = "oms";
pub const CM: &str = "oms-config";

pub struct Env {
    pub fake: Arc<FakeKube>,
    /// The test's own client (user `test-admin`): plays the people. The operator authenticates
    /// as `salve-operator`, so its requests can be told apart from the simulator's own.
    pub client: Client,
    cluster: Cluster,
    _workdir: tempfile::TempDir,
}

impl Env {
    /// Stops the simulated controllers, kubelet and every container process.
    pub async fn stop(self) {
        self.cluster.stop().await;
    }
}

/// A fresh simulated cluster with the Salve CRDs (from `crds/`) and the `shop` namespace. The
/// kubelet runs at the documented speed (back-off 10 s doubling to 5 min) and refreshes
/// mounted ConfigMaps every 2 s (60 s by default in a cluster; env is never refreshed).
pub async fn env() -> Env {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let workdir = tempfile::tempdir().expect("workdir");
    let exe = salve_sandbox::executable::sandbox_executable().expect("the salve-sandbox binary");
    // Open access (the token is the user name, only recorded): these tests check the
    // operator's requests against examples/rbac.yaml themselves (assert_rbac_covers_operator_requests).
    let cluster = Cluster::start_open(ClusterOptions {
        workdir: workdir.path().to_path_buf(),
        scale: TimeScale::default(),
        sync_frequency: Duration::from_secs(2),
        exe: Some(exe),
    })
    .await
    .expect("simulated cluster");
    ensure_namespace(&cluster.client, NS).await.expect("namespace");
    let client = client_as(&cluster.fake, NS, "test-admin").await.expect("client");
    Env { fake: cluster.fake.clone(), client, cluster, _workdir: workdir }
}

/// Settings for tests: a short lease and stability period. Outcomes are asserted, never timings;
/// the window only bounds how long a failing fix is given (a fix here waits for real pods).
pub fn args(identity: &str) -> RunArgs {
    let mut a = RunArgs::defaults();
    a.identity = identity.into();
    a.lease_namespace = NS.into();
    a.lease_seconds = 3;
    a.verify_window_seconds = 30;
    a.verify_poll_ms = 200;
    a.verify_stability_seconds = 1;
    a.log_format = "text".into();
    // The tests' namespace is named, and changes are applied (not dry-run) as in a cluster.
    a.allowed_namespaces = vec![NS.into()];
    a.dry_run = Some(false);
    a
}

/// One operator "process": its own Tokio runtime, so that `kill` ends every task it spawned
/// (controllers, leader elector, watches) at once, like `kill -9` ends a process.
pub struct Running {
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Running {
    /// Graceful shutdown (SIGTERM): controllers stop, the Lease is released.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// `kill -9`: every task of this operator stops mid-flight; nothing is released.
    pub fn kill(mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

pub async fn start_operator(env: &Env, args: RunArgs) -> Running {
    start_operator_with(env, args, None).await
}

/// Starts the operator; with `listener`, it also serves /healthz, /readyz and /metrics there.
pub async fn start_operator_with(env: &Env, args: RunArgs, listener: Option<tokio::net::TcpListener>) -> Running {
    start_operator_as(env, args, listener, "salve-operator").await
}

/// A simulated cluster that enforces authentication, RBAC and admission as a real one does,
/// with the operator's ServiceAccount bound to exactly `operator/examples/rbac.yaml` (its Role
/// in `shop`) and the approval policy. The test acts as the sandbox's administrator. Returns
/// the operator's token.
pub async fn enforcing_env() -> (Env, String) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let workdir = tempfile::tempdir().expect("workdir");
    let exe = salve_sandbox::executable::sandbox_executable().expect("the salve-sandbox binary");
    let opts = ClusterOptions {
        workdir: workdir.path().to_path_buf(),
        scale: TimeScale::default(),
        sync_frequency: Duration::from_secs(2),
        exe: Some(exe),
    };
    let cluster = Cluster::start(opts).await.expect("simulated cluster");
    ensure_namespace(&cluster.client, NS).await.expect("namespace");
    let admin = salve_sandbox::access::ADMIN;
    let client = client_as(&cluster.fake, NS, admin).await.expect("client");
    let token = salve_sandbox::access::install_operator(&cluster.fake, &client, NS).await.expect("operator RBAC");
    (Env { fake: cluster.fake.clone(), client, cluster, _workdir: workdir }, token)
}

/// Starts the operator authenticating with `token`.
pub async fn start_operator_as(env: &Env, args: RunArgs, listener: Option<tokio::net::TcpListener>, token: &str) -> Running {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(format!("operator-{}", args.identity))
        .enable_all()
        .build()
        .expect("operator runtime");
    let kc = kube::config::Kubeconfig::from_yaml(&env.fake.kubeconfig_yaml_as(NS, token)).expect("kubeconfig");
    let cfg = Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
    let std_listener = listener.map(|l| l.into_std().expect("std listener"));
    let shutdown = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let (token, flag) = (shutdown.clone(), ready.clone());
    let task = rt.spawn(async move {
        // Created inside the operator's runtime so its connections die with it.
        let client = Client::try_from(cfg).expect("client");
        let listener = std_listener.map(|l| tokio::net::TcpListener::from_std(l).expect("listener"));
        if let Err(e) = operator::runtime::run_with_readiness(client, args, listener, token, flag).await {
            panic!("operator failed: {e}");
        }
    });
    eventually("operator ready", || {
        let r = ready.clone();
        async move { r.load(Ordering::Relaxed).then_some(()) }
    })
    .await;
    Running { shutdown, task: Some(task), rt: Some(rt) }
}

/// Polls until `f` yields a value. The generous limit is a safety net, not an assertion.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn create_config_map(env: &Env, name: &str, data: Value, labels: Value) {
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": data})).expect("cm");
    Api::<ConfigMap>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &cm).await.expect("create cm");
}

/// What a user does with `kubectl edit configmap`.
pub async fn user_sets_config(env: &Env, key: &str, value: &str) {
    let p = json!({"data": {key: value}});
    Api::<ConfigMap>::namespaced(env.client.clone(), NS).patch(CM, &PatchParams::default(), &Patch::Merge(&p)).await.expect("patch cm");
}

pub async fn config_value(env: &Env, key: &str) -> Option<String> {
    let cm = Api::<ConfigMap>::namespaced(env.client.clone(), NS).get(CM).await.expect("get cm");
    cm.data.and_then(|d| d.get(key).cloned())
}

pub async fn create_incident(env: &Env, name: &str, reason: &str) {
    let inc: Incident = serde_json::from_value(json!({
        "apiVersion": "salve.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": name},
        "spec": {"service": APP, "severity": "High",
            "source": {"kind": "CloudWatchAlarm", "alarmName": "oms-5xx", "region": "eu-west-1", "reason": reason},
            "target": {"kind": "Deployment", "name": APP}}
    }))
    .expect("incident");
    Api::<Incident>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &inc).await.expect("create incident");
}

pub async fn incident(env: &Env, name: &str) -> Incident {
    Api::<Incident>::namespaced(env.client.clone(), NS).get(name).await.expect("get incident")
}

pub async fn remediation(env: &Env, name: &str) -> Option<Remediation> {
    Api::<Remediation>::namespaced(env.client.clone(), NS).get_opt(name).await.expect("get remediation")
}

pub async fn remediations(env: &Env) -> Vec<Remediation> {
    Api::<Remediation>::namespaced(env.client.clone(), NS).list(&ListParams::default()).await.expect("list").items
}

pub async fn wait_incident_phase(env: &Env, name: &str, phase: &str) -> Incident {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let i = incident(env, name).await;
        let p = i.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("Detected");
        if p == phase {
            return i;
        }
        if tokio::time::Instant::now() > deadline {
            let timeline: Vec<String> =
                i.status.iter().flat_map(|s| s.timeline.iter()).map(|t| format!("{}: {}", t.phase.as_str(), t.message)).collect();
            panic!("incident {name} never reached {phase}; it is {p}:\n{}", timeline.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn wait_remediation_phase(env: &Env, name: &str, phase: &str) -> Remediation {
    eventually(&format!("remediation {name} in phase {phase}"), || async move {
        let r = remediation(env, name).await?;
        (r.status.as_ref().map(|s| s.phase.as_str()) == Some(phase)).then_some(r)
    })
    .await
}

/// A person running `kubectl patch remediation ... --type merge`.
pub async fn decide(env: &Env, name: &str, approval: Value) {
    let p = json!({"spec": {"approval": approval}});
    Api::<Remediation>::namespaced(env.client.clone(), NS)
        .patch(name, &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("approve/reject");
}

pub async fn events(env: &Env) -> Vec<Event> {
    Api::<Event>::namespaced(env.client.clone(), NS).list(&ListParams::default()).await.expect("events").items
}

/// The first Event with `reason`, once published. The operator writes status before any Event,
/// so a status a test has just seen may still be ahead of its Event: a test waits for Events as
/// it waits for any other write.
pub async fn wait_event(env: &Env, reason: &str) -> Event {
    eventually(&format!("event {reason}"), || async { events(env).await.into_iter().find(|e| e.reason.as_deref() == Some(reason)) }).await
}

pub async fn lease_holder(env: &Env) -> Option<String> {
    let l = Api::<Lease>::namespaced(env.client.clone(), NS).get_opt("salve-operator-leader").await.expect("lease")?;
    l.spec.and_then(|s| s.holder_identity)
}

/// PATCH/PUT requests the operator's field manager sent to one object path that change more
/// than its metadata (the claim annotation and finalizers are metadata only).
pub fn writes_by_operator(env: &Env, path_suffix: &str) -> usize {
    let metadata_only = |body: &Value| body.as_object().is_some_and(|o| o.keys().all(|k| k == "metadata"));
    env.fake
        .requests()
        .iter()
        .filter(|r| {
            r.method != "GET"
                && r.path.ends_with(path_suffix)
                && r.field_manager.as_deref() == Some("salve-operator")
                && !r.dry_run
                && !metadata_only(&r.body)
        })
        .count()
}

/// Every request the operator made is allowed by `operator/examples/rbac.yaml`.
pub fn assert_rbac_covers_operator_requests(env: &Env) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rbac.yaml")).expect("rbac.yaml");
    let mut rules: Vec<(Vec<String>, Vec<String>, Vec<String>)> = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc).expect("yaml");
        if !matches!(v["kind"].as_str(), Some("ClusterRole" | "Role")) {
            continue;
        }
        for r in v["rules"].as_array().cloned().unwrap_or_default() {
            let list =
                |k: &str| r[k].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default();
            rules.push((list("apiGroups"), list("resources"), list("verbs")));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in env.fake.requests().into_iter().filter(|r| r.user == "salve-operator") {
        seen.insert((r.group, r.resource, r.verb));
    }
    assert!(!seen.is_empty(), "the operator made requests");
    for (group, resource, verb) in &seen {
        let allowed = rules.iter().any(|(g, res, v)| g.contains(group) && res.contains(resource) && v.contains(verb));
        assert!(allowed, "RBAC does not allow {verb} {resource} in group {group:?}");
        assert_ne!(resource, "secrets", "the operator never reads Secrets");
    }
}

/// Minimal HTTP/1.0 GET (no client library needed): returns (status code, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.expect("read");
    let code = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}
