//! The workload the operator guards in these tests: a Deployment `oms` run by the simulated
//! kubelet from the simulator's scripted image (`tests/sandbox/src/images.rs`), whose behaviour
//! is what OMS does on a bad setting, an OOM or a bad release — and the faults people cause.
//! Recovery happens only as the kubelet really runs it: a ConfigMap read through env reaches a
//! container only when it starts again, and a crash-looping container restarts in place.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::{APP, CM, Env, NS, eventually, user_sets_config};

/// Version 1.0 of the stand-in `oms` (the simulator's scripted image, behaviour spec v1).
pub const IMAGE: &str = "sandbox.salve.dev/scripted:v1-1.0";
/// Version 2.0: a release that panics at start when its script says so (`panics_in_v2`).
pub const IMAGE_V2: &str = "sandbox.salve.dev/scripted:v1-2.0";

/// Refuses to start when `POOL_SIZE` is 0, with the lines OMS prints for an invalid setting.
pub fn refuses_pool_size_zero() -> Value {
    json!({"port": 8080, "start_log": ["oms listening on :8080"],
        "crash": {"env": "POOL_SIZE", "equals": "0", "log": ["error: POOL_SIZE must be > 0", "panic: invalid configuration"], "exit_code": 1}})
}

/// Needs 320 MiB once warm (a cache filled at start): OOM-killed under a 256Mi limit.
pub fn needs_320_mib() -> Value {
    json!({"port": 8080, "start_log": ["oms listening on :8080", "warming the catalogue cache"],
        "grow_memory_mib_per_s": 200, "grow_memory_to_mib": 320})
}

/// Version 2.0 panics at start; 1.0 is fine.
pub fn panics_in_v2() -> Value {
    json!({"port": 8080, "start_log": ["oms listening on :8080"],
        "crash": {"image_tag": "v1-2.0", "log": ["thread 'main' panicked at src/orders.rs:88:14:", "index out of bounds: the len is 0 but the index is 0"], "exit_code": 101}})
}

/// `oms` with `replicas`, a memory limit, the given behaviour and (when `reads_config`) the
/// `oms-config` ConfigMap as its environment.
pub async fn create_deployment_with(env: &Env, replicas: i32, memory: &str, script: Value, reads_config: bool) {
    let mut container = json!({"name": APP, "image": IMAGE,
        "env": [{"name": "SANDBOX_SCRIPT", "value": script.to_string()}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": memory}}});
    if reads_config {
        container["envFrom"] = json!([{"configMapRef": {"name": CM}}]);
    }
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": APP, "labels": {"app": APP}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": APP}},
            "template": {"metadata": {"labels": {"app": APP}}, "spec": {"containers": [container]}}}
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &d).await.expect("create deployment");
}

/// `oms` reading its settings from `oms-config`, refusing to start when `POOL_SIZE` is 0.
pub async fn create_deployment(env: &Env, replicas: i32, memory: &str) {
    create_deployment_with(env, replicas, memory, refuses_pool_size_zero(), true).await;
}

/// `oms` needing 320 MiB: OOM-killed, in place and again, under a 256Mi limit.
pub async fn create_memory_hungry_deployment(env: &Env, replicas: i32, memory: &str) {
    create_deployment_with(env, replicas, memory, needs_320_mib(), false).await;
}

pub async fn deployment(env: &Env) -> Deployment {
    Api::<Deployment>::namespaced(env.client.clone(), NS).get(APP).await.expect("get deployment")
}

pub async fn image(env: &Env) -> String {
    deployment(env).await.spec.template.spec.and_then(|s| s.containers[0].image.clone()).unwrap_or_default()
}

pub async fn pods(env: &Env) -> Vec<Pod> {
    Api::<Pod>::namespaced(env.client.clone(), NS).list(&ListParams::default().labels(&format!("app={APP}"))).await.expect("pods").items
}

/// The Deployment controller reports `n` updated, ready replicas of the current template.
pub async fn wait_ready(env: &Env, n: i32) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let d = deployment(env).await;
        let current = d.status.as_ref().is_some_and(|st| st.observed_generation == d.metadata.generation);
        let st = d.status.clone().unwrap_or_default();
        if current && st.replicas == Some(n) && st.updated_replicas == Some(n) && st.ready_replicas == Some(n) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let api = Api::<Pod>::namespaced(env.client.clone(), NS);
            let mut pods_seen = Vec::new();
            for p in pods(env).await {
                let previous = kube::api::LogParams { previous: true, ..Default::default() };
                let log = api.logs(&p.name_any(), &previous).await.unwrap_or_default();
                pods_seen.push(format!("{}: {:?}\nprevious log: {log}", p.name_any(), p.status.as_ref().map(|s| &s.container_statuses)));
            }
            let pods = pods_seen;
            panic!("{APP} never had {n} ready replicas: {st:?}\n{}", pods.join("\n"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Some `oms` container has crashed, restarted in place and sits in `CrashLoopBackOff`.
pub async fn wait_crash_looping(env: &Env) {
    eventually("a crash-looping oms container", || async {
        pods(env)
            .await
            .iter()
            .flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()))
            .any(|c| {
                let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref());
                c.restart_count >= 1 && waiting == Some("CrashLoopBackOff")
            })
            .then_some(())
    })
    .await;
}

/// Some `oms` container was OOM-killed (exit 137) and restarted in place.
pub async fn wait_oom_killed(env: &Env) {
    eventually("an OOM-killed oms container", || async {
        pods(env)
            .await
            .iter()
            .flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()))
            .any(|c| {
                let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                last.is_some_and(|t| t.reason.as_deref() == Some("OOMKilled") && t.exit_code == 137)
            })
            .then_some(())
    })
    .await;
}

/// A healthy `oms` with two ready replicas reading `oms-config` (labelled `cm_labels`).
pub async fn broken_config_setup(env: &Env, cm_labels: Value) {
    super::create_config_map(env, CM, json!({"POOL_SIZE": "10", "TIMEOUT_MS": "500"}), cm_labels).await;
    create_deployment(env, 2, "256Mi").await;
    wait_ready(env, 2).await;
}

/// A person sets `POOL_SIZE=0` (`kubectl edit configmap`); running containers never see an env
/// change, so it bites when the pods are replaced (here: deleted, as a node drain does).
pub async fn break_config(env: &Env) {
    user_sets_config(env, "POOL_SIZE", "0").await;
    let api = Api::<Pod>::namespaced(env.client.clone(), NS);
    for p in pods(env).await {
        let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
    }
    wait_crash_looping(env).await;
}

/// `kubectl set image deployment/oms oms=IMAGE`.
pub async fn roll_out(env: &Env, image: &str) {
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": APP, "image": image}]}}}});
    Api::<Deployment>::namespaced(env.client.clone(), NS)
        .patch(APP, &PatchParams::default(), &Patch::Strategic(&p))
        .await
        .expect("roll out");
}

/// What Argo CD / Flux do after the pull request raising memory to 512Mi is merged: sync the
/// Deployment. The simulated Deployment controller and kubelet do the rest.
pub async fn gitops_rolls_out(env: &Env) {
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": APP, "resources": {"limits": {"memory": "512Mi"}}}]}}}});
    Api::<Deployment>::namespaced(env.client.clone(), NS)
        .patch(APP, &PatchParams::default(), &Patch::Strategic(&p))
        .await
        .expect("gitops sync");
}

/// The intake records CloudWatch's OK transition on the Incident (the alarm cleared).
pub async fn alarm_returns_to_ok(env: &Env, incident: &str) {
    let p = json!({"spec": {"signal": "OK"}});
    Api::<operator::crd::Incident>::namespaced(env.client.clone(), NS)
        .patch(incident, &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("signal ok");
}
