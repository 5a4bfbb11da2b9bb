//! The simulator checked against documented Kubernetes behaviour: rolling updates keep the
//! promised availability, crash loops restart in place with the kubelet's back-off and keep the
//! previous log, memory limits OOM-kill with exit 137, mounted ConfigMaps update late and
//! subPath copies never, missing images and keys fail as the kubelet reports them, and pods
//! that fit nowhere stay Pending with the scheduler's words. The StatefulSet, DaemonSet and Job
//! controllers, node-pressure eviction and `kubectl rollout` are checked in `simulator/workloads.rs`;
//! a small run of `salve-sandbox bench` in `simulator/bench.rs`.

#[path = "simulator/bench.rs"]
mod bench;
#[path = "simulator/workloads.rs"]
mod workloads;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use salve_sandbox::clock::TimeScale;
use salve_sandbox::cluster::{Cluster, ClusterOptions, ensure_namespace};
use salve_sandbox::demo::apply;
use serde_json::{Value, json};

const NS: &str = "sim";

async fn cluster(scale: f64, sync: Duration) -> (Cluster, tempfile::TempDir) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tmp");
    let c = Cluster::start(ClusterOptions {
        workdir: dir.path().to_path_buf(),
        scale: TimeScale(scale),
        sync_frequency: sync,
        exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_salve-sandbox"))),
    })
    .await
    .expect("cluster");
    ensure_namespace(&c.client, NS).await.expect("namespace");
    (c, dir)
}

async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, secs: u64, mut f: impl FnMut() -> F) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn app(name: &str, replicas: i32, container: Value, extra_spec: Value) -> Value {
    let mut spec = json!({"containers": [container]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(e.clone());
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}})
}

fn scripted(script: Value) -> Value {
    json!({"name": "app", "image": "sandbox.salve.dev/scripted:v1", "env": [{"name": "SANDBOX_SCRIPT", "value": script.to_string()}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1}})
}

async fn pods(c: &Cluster, app: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(c.client.clone(), NS).list(&ListParams::default().labels(&format!("app={app}"))).await.expect("pods").items
}

fn waiting_reason(p: &Pod) -> Option<String> {
    p.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()?.waiting.as_ref()?.reason.clone()
}

async fn events(c: &Cluster) -> Vec<Event> {
    Api::<Event>::namespaced(c.client.clone(), NS).list(&ListParams::default()).await.expect("events").items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_never_drops_below_the_desired_replicas_and_keeps_the_old_revision() {
    let (c, _dir) = cluster(1.0, Duration::from_secs(10)).await;
    apply::create_all(&c.client, NS, &[app("web", 3, scripted(json!({})), json!({}))]).await.expect("create");
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), NS);
    let available = |want: i32| {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get("web").await.ok()?;
            let s = d.status?;
            (s.available_replicas == Some(want) && s.updated_replicas == Some(want) && s.replicas == Some(want)).then_some(())
        }
    };
    eventually("3 available", 60, || available(3)).await;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "VERSION", "value": "2"}]}]}}}});
    deployments.patch("web", &PatchParams::default(), &Patch::Strategic(patch)).await.expect("update");
    // maxUnavailable 0, maxSurge 1: never fewer than 3 ready pods, never more than 4 pods.
    let mut max_pods = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let ps = pods(&c, "web").await;
        let ready = ps.iter().filter(|p| salve_sandbox::controllers::replica_set::pod_ready(p)).count();
        max_pods = max_pods.max(ps.len());
        assert!(ready >= 3 || ps.len() < 3, "availability dropped to {ready} ready");
        let d = deployments.get("web").await.expect("deployment");
        let s = d.status.clone().unwrap_or_default();
        if d.metadata.annotations.as_ref().and_then(|a| a.get("deployment.kubernetes.io/revision")).map(String::as_str) == Some("2")
            && s.updated_replicas == Some(3)
            && s.available_replicas == Some(3)
            && s.replicas == Some(3)
            // The controller reports the finished rollout in a later sync than the counts.
            && s.conditions.iter().flatten().any(|c| c.type_.as_deref() == Some("Progressing") && c.reason.as_deref() == Some("NewReplicaSetAvailable"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "rollout did not finish: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(max_pods <= 4, "surge exceeded: {max_pods} pods");
    let sets = Api::<k8s_openapi::api::apps::v1::ReplicaSet>::namespaced(c.client.clone(), NS)
        .list(&ListParams::default())
        .await
        .expect("rs")
        .items;
    assert_eq!(sets.len(), 2, "the old ReplicaSet is kept (revisionHistoryLimit) for a rollback");
    let progressing = deployments.get("web").await.expect("d").status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(progressing.iter().any(|c| c.type_.as_deref() == Some("Progressing") && c.reason.as_deref() == Some("NewReplicaSetAvailable")));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_restarts_in_place_with_back_off_and_keeps_the_previous_log() {
    // Scale 10: the documented 10 s / 20 s back-off takes 1 s / 2 s of wall time here.
    let (c, _dir) = cluster(10.0, Duration::from_secs(10)).await;
    let crash = scripted(json!({"crash": {"env": "MODE", "equals": "bad", "log": ["FATAL: MODE=bad is not a mode"], "exit_code": 3}}));
    let mut container = crash.clone();
    container["env"].as_array_mut().expect("env").push(json!({"name": "MODE", "value": "bad"}));
    apply::create_all(&c.client, NS, &[app("crashy", 1, container, json!({}))]).await.expect("create");
    let first = eventually("a pod", 30, || async { pods(&c, "crashy").await.first().and_then(|p| p.metadata.name.clone()) }).await;
    let p = eventually("3 restarts in place", 60, || async {
        let p = pods(&c, "crashy").await.into_iter().next()?;
        let cs = p.status.as_ref()?.container_statuses.as_ref()?.first()?.clone();
        (cs.restart_count >= 3).then_some(p)
    })
    .await;
    assert_eq!(p.metadata.name.as_deref(), Some(first.as_str()), "the same pod: restarted in place, never replaced");
    let cs = p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).and_then(|c| c.first()).cloned().expect("status");
    let last = cs.last_state.and_then(|s| s.terminated).expect("last termination");
    assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
    let log = Api::<Pod>::namespaced(c.client.clone(), NS)
        .logs(&first, &LogParams { previous: true, ..Default::default() })
        .await
        .expect("previous log");
    assert!(log.contains("FATAL: MODE=bad is not a mode"), "{log}");
    let back_offs: Vec<String> =
        events(&c).await.into_iter().filter(|e| e.reason.as_deref() == Some("BackOff")).filter_map(|e| e.message).collect();
    assert!(back_offs.iter().any(|m| m.starts_with("Back-off restarting failed container app in pod crashy-")), "{back_offs:?}");
    let waiting = eventually("CrashLoopBackOff", 30, || async {
        let p = pods(&c, "crashy").await.into_iter().next()?;
        let w = p.status?.container_statuses?.first()?.state.clone()?.waiting?;
        (w.reason.as_deref() == Some("CrashLoopBackOff")).then_some(w.message.unwrap_or_default())
    })
    .await;
    assert!(waiting.starts_with("back-off ") && waiting.contains("restarting failed container=app"), "{waiting}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_over_its_memory_limit_is_oom_killed_with_exit_137() {
    let (c, _dir) = cluster(10.0, Duration::from_secs(10)).await;
    let mut container = scripted(json!({"grow_memory_mib_per_s": 200, "grow_memory_to_mib": 150}));
    container["resources"] = json!({"limits": {"memory": "64Mi"}});
    apply::create_all(&c.client, NS, &[app("hog", 1, container, json!({}))]).await.expect("create");
    let last = eventually("an OOM kill", 60, || async {
        let p = pods(&c, "hog").await.into_iter().next()?;
        p.status?.container_statuses?.first()?.last_state.clone()?.terminated
    })
    .await;
    assert_eq!((last.exit_code, last.reason.as_deref()), (137, Some("OOMKilled")));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounted_config_maps_update_late_and_sub_path_copies_never() {
    let sync = Duration::from_secs(2);
    let (c, dir) = cluster(1.0, sync).await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf"}, "data": {"mode": "one"}});
    let mut container = scripted(json!({}));
    container["volumeMounts"] =
        json!([{"name": "conf", "mountPath": "/etc/conf"}, {"name": "conf", "mountPath": "/etc/mode", "subPath": "mode"}]);
    let spec = json!({"volumes": [{"name": "conf", "configMap": {"name": "conf"}}]});
    apply::create_all(&c.client, NS, &[cm, app("reader", 1, container, spec)]).await.expect("create");
    let uid = eventually("a running pod", 30, || async {
        let p = pods(&c, "reader").await.into_iter().next()?;
        salve_sandbox::controllers::replica_set::pod_ready(&p).then(|| p.metadata.uid.clone()).flatten()
    })
    .await;
    let pod_dir = dir.path().join("pods").join(&uid);
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    assert_eq!(read(pod_dir.join("volumes/conf/mode")), "one");
    assert_eq!(read(pod_dir.join("subpath/app/etc/mode")), "one");
    Api::<ConfigMap>::namespaced(c.client.clone(), NS)
        .patch("conf", &PatchParams::default(), &Patch::Merge(json!({"data": {"mode": "two"}})))
        .await
        .expect("update");
    eventually("the mounted directory to follow", 30, || async { (read(pod_dir.join("volumes/conf/mode")) == "two").then_some(()) }).await;
    tokio::time::sleep(sync * 2).await;
    assert_eq!(read(pod_dir.join("subpath/app/etc/mode")), "one", "a subPath mount never receives updates");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_images_keys_and_room_fail_as_the_kubelet_and_scheduler_report_them() {
    let (c, _dir) = cluster(10.0, Duration::from_secs(10)).await;
    let mut missing_key = scripted(json!({}));
    missing_key["env"]
        .as_array_mut()
        .expect("env")
        .push(json!({"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "X"}}}));
    let mut huge = scripted(json!({}));
    huge["resources"] = json!({"requests": {"memory": "64Gi"}});
    let mut typo = scripted(json!({}));
    typo["image"] = json!("sandbox.salve.dev/scripted:v9");
    apply::create_all(
        &c.client,
        NS,
        &[app("nokey", 1, missing_key, json!({})), app("huge", 1, huge, json!({})), app("typo", 1, typo, json!({}))],
    )
    .await
    .expect("create");
    eventually("CreateContainerConfigError", 30, || async {
        pods(&c, "nokey").await.first().and_then(waiting_reason).filter(|r| r == "CreateContainerConfigError")
    })
    .await;
    eventually("ImagePullBackOff after ErrImagePull", 60, || async {
        pods(&c, "typo").await.first().and_then(waiting_reason).filter(|r| r == "ImagePullBackOff")
    })
    .await;
    let p = eventually("an unschedulable pod", 30, || async {
        let p = pods(&c, "huge").await.into_iter().next()?;
        let cond = p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "PodScheduled")?.clone();
        (cond.reason.as_deref() == Some("Unschedulable")).then_some(p)
    })
    .await;
    assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    let evs = events(&c).await;
    let failed: Vec<String> =
        evs.iter().filter(|e| e.reason.as_deref() == Some("FailedScheduling")).filter_map(|e| e.message.clone()).collect();
    assert!(failed.iter().any(|m| m.starts_with("0/1 nodes are available: 1 Insufficient memory.")), "{failed:?}");
    let config_errors: Vec<String> =
        evs.iter().filter(|e| e.reason.as_deref() == Some("Failed")).filter_map(|e| e.message.clone()).collect();
    assert!(config_errors.iter().any(|m| m == "Error: configmap \"nope\" not found"), "{config_errors:?}");
    assert!(config_errors.iter().any(|m| m.starts_with("Failed to pull image \"sandbox.salve.dev/scripted:v9\"")), "{config_errors:?}");
    c.stop().await;
}
