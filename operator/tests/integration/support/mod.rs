//! Test harness: the fake API server (a TEST STAND-IN, see tests/fake-kube), the real
//! operator, and a "kubelet" played by the test that moves pods between healthy and broken.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fake_kube::FakeKube;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Config, CustomResourceExt, ResourceExt};
use operator::config::RunArgs;
use operator::crd::{Incident, Remediation};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub mod alarm_queue;
pub mod bedrock_stand_in;
pub mod moto;

pub const NS: &str = "shop";
pub const APP: &str = "oms";
pub const CM: &str = "oms-config";

pub struct Env {
    pub fake: FakeKube,
    /// The test's own client (user `test-admin`): plays users, kubelet and controllers. The
    /// operator authenticates as `salve-operator`, so its requests can be told apart.
    pub client: Client,
}

async fn client_as(fake: &FakeKube, user: &str) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(&fake.kubeconfig_yaml_as(NS, user)).expect("kubeconfig");
    let cfg = Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
    Client::try_from(cfg).expect("client")
}

pub async fn env() -> Env {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = FakeKube::start().await.expect("fake api server");
    let client = client_as(&fake, "test-admin").await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [Incident::crd(), Remediation::crd()] {
        crds.create(&PostParams::default(), &crd).await.expect("install crd");
    }
    Env { fake, client }
}

/// Settings for fast tests: short verification window and lease. Outcomes are asserted, never
/// timings; the window only bounds how long a failing fix is given.
pub fn args(identity: &str) -> RunArgs {
    let mut a = RunArgs::defaults();
    a.identity = identity.into();
    a.lease_namespace = NS.into();
    a.lease_seconds = 3;
    a.verify_window_seconds = 3;
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(format!("operator-{}", args.identity))
        .enable_all()
        .build()
        .expect("operator runtime");
    let kc = kube::config::Kubeconfig::from_yaml(&env.fake.kubeconfig_yaml_as(NS, "salve-operator")).expect("kubeconfig");
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

pub async fn create_deployment(env: &Env, replicas: i32, memory: &str) {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": APP, "labels": {"app": APP}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": APP}},
            "template": {"metadata": {"labels": {"app": APP}}, "spec": {"containers": [{
                "name": APP, "image": "oms:1.0",
                "envFrom": [{"configMapRef": {"name": CM}}],
                "resources": {"limits": {"memory": memory}}}]}}}
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &d).await.expect("create deployment");
}

pub async fn deployment(env: &Env) -> Deployment {
    Api::<Deployment>::namespaced(env.client.clone(), NS).get(APP).await.expect("get deployment")
}

#[derive(Clone, Copy)]
pub enum PodState {
    Healthy,
    CrashLoop,
    OomKilled,
}

/// The test's kubelet + Deployment controller: replaces all pods with `n` pods in `state` and
/// updates the Deployment's status to match.
pub async fn kubelet(env: &Env, n: i32, state: PodState) {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), NS);
    for p in pods.list(&ListParams::default().labels(&format!("app={APP}"))).await.expect("list pods").items {
        let _ = pods.delete(&p.name_any(), &DeleteParams::default()).await;
    }
    for i in 0..n {
        let name = format!("{APP}-{}-{i}", rand_suffix());
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": APP}},
            "spec": {"containers": [{"name": APP, "image": "oms:1.0"}]}}))
        .expect("pod");
        pods.create(&PostParams::default(), &p).await.expect("create pod");
        let cs = match state {
            PodState::Healthy => {
                json!({"name": APP, "ready": true, "restartCount": 0, "image": "oms:1.0", "imageID": "", "state": {"running": {}}})
            }
            PodState::CrashLoop => json!({"name": APP, "ready": false, "restartCount": 5, "image": "oms:1.0", "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}),
            PodState::OomKilled => json!({"name": APP, "ready": false, "restartCount": 3, "image": "oms:1.0", "imageID": "",
                "state": {"running": {}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}),
        };
        let phase = "Running";
        let st = json!({"status": {"phase": phase, "containerStatuses": [cs]}});
        pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&st)).await.expect("pod status");
        if matches!(state, PodState::CrashLoop) {
            env.fake.set_pod_log(NS, &name, "starting oms\nerror: POOL_SIZE must be > 0\npanic: invalid configuration");
        }
    }
    let ready = if matches!(state, PodState::Healthy) { n } else { 0 };
    let st = json!({"status": {"replicas": n, "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": n - ready}});
    Api::<Deployment>::namespaced(env.client.clone(), NS)
        .patch_status(APP, &PatchParams::default(), &Patch::Merge(&st))
        .await
        .expect("deployment status");
}

fn rand_suffix() -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
    format!("{:05x}", n & 0xfffff)
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
    eventually(&format!("incident {name} in phase {phase}"), || async move {
        let i = incident(env, name).await;
        let p = i.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("Detected");
        (p == phase).then_some(i)
    })
    .await
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

pub async fn lease_holder(env: &Env) -> Option<String> {
    let l = Api::<Lease>::namespaced(env.client.clone(), NS).get_opt("salve-operator-leader").await.expect("lease")?;
    l.spec.and_then(|s| s.holder_identity)
}

/// PATCH/PUT requests the operator's field manager sent to one object path.
pub fn writes_by_operator(env: &Env, path_suffix: &str) -> usize {
    env.fake
        .requests()
        .iter()
        .filter(|r| {
            r.method != "GET" && r.path.ends_with(path_suffix) && r.field_manager.as_deref() == Some("salve-operator") && !r.dry_run
        })
        .count()
}

/// A broken config: the common set-up of scenarios 1, 3, 5, 6.
pub async fn broken_config_setup(env: &Env, cm_labels: Value) {
    create_config_map(env, CM, json!({"POOL_SIZE": "10", "TIMEOUT_MS": "500"}), cm_labels).await;
    create_deployment(env, 2, "256Mi").await;
    kubelet(env, 2, PodState::Healthy).await;
}

pub async fn break_config(env: &Env) {
    user_sets_config(env, "POOL_SIZE", "0").await;
    kubelet(env, 2, PodState::CrashLoop).await;
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

/// Two ReplicaSets owned by the Deployment: revision 1 (image `oms:1.0`) and revision 2
/// (`oms:2.0`, now in the Deployment's template), as a Deployment controller would leave them.
pub async fn roll_out_bad_image(env: &Env) {
    let d = deployment(env).await;
    let uid = d.uid().expect("uid");
    let rss: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(env.client.clone(), NS);
    for (rev, image, hash) in [(1, "oms:1.0", "aaa"), (2, "oms:2.0", "bbb")] {
        let rs: k8s_openapi::api::apps::v1::ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": format!("{APP}-{hash}"), "annotations": {"deployment.kubernetes.io/revision": rev.to_string()},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": APP, "uid": uid, "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": APP}}, "template": {
                "metadata": {"labels": {"app": APP, "pod-template-hash": hash}},
                "spec": {"containers": [{"name": APP, "image": image, "envFrom": [{"configMapRef": {"name": CM}}]}]}}}
        }))
        .expect("rs");
        rss.create(&PostParams::default(), &rs).await.expect("create rs");
    }
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": APP, "image": "oms:2.0"}]}}}});
    Api::<Deployment>::namespaced(env.client.clone(), NS)
        .patch(APP, &PatchParams::default(), &Patch::Strategic(&p))
        .await
        .expect("roll out");
}

pub async fn image(env: &Env) -> String {
    deployment(env).await.spec.template.spec.and_then(|s| s.containers[0].image.clone()).unwrap_or_default()
}

/// What Argo CD / Flux plus the Deployment controller and kubelet do after the merge.
pub async fn gitops_rolls_out(env: &Env) {
    let d = Api::<Deployment>::namespaced(env.client.clone(), NS);
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": APP, "resources": {"limits": {"memory": "512Mi"}}}]}}}});
    d.patch(APP, &PatchParams::default(), &Patch::Strategic(&p)).await.expect("gitops sync");
    kubelet(env, 2, PodState::Healthy).await;
    let generation = deployment(env).await.metadata.generation.expect("generation");
    let st = json!({"status": {"observedGeneration": generation, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}});
    d.patch_status(APP, &PatchParams::default(), &Patch::Merge(&st)).await.expect("rollout status");
}
