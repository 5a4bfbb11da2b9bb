//! Evidence collection in the simulated cluster: the whole workload (container spec and
//! per-container state, revisions with what they changed, events with counts, ConfigMap values
//! and missing references), other target kinds, and APIs the cluster does not serve becoming
//! notes instead of a failed investigation. Secrets are never read.

use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use operator::kube::config_history::ConfigHistory;
use operator::kube::evidence::{EvidenceError, collect};
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_is_seen_whole() {
    let env = env().await;
    create_config_map(&env, CM, json!({"POOL_SIZE": "10", "DB_PASSWORD": "hunter2"}), json!({})).await;
    create_deployment_with(&env, 2, "256Mi", panics_in_v2(), true).await;
    wait_ready(&env, 2).await;
    // One release: oms 2.0 (which panics at start) and a second container reading a key and a
    // Secret by reference; neither the key nor the Secret exists.
    let worker = json!({"name": "worker", "image": IMAGE, "env": [
        {"name": "SANDBOX_SCRIPT", "value": json!({"port": 9090}).to_string()},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": CM, "key": "MODE"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}],
        "resources": {"limits": {"cpu": "500m"}}});
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": APP, "image": IMAGE_V2}, worker]}}}});
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(env.client.clone(), NS)
        .patch(APP, &PatchParams::default(), &Patch::Strategic(&p))
        .await
        .expect("release 2.0");
    wait_crash_looping(&env).await;
    // An old Event the API server still keeps, aggregated by the kubelet's recorder.
    let pod = pods(&env).await.into_iter().next().expect("a pod");
    let ev: Event = serde_json::from_value(json!({"metadata": {"name": "backoff-1"},
        "involvedObject": {"kind": "Pod", "name": pod.metadata.name, "namespace": NS},
        "reason": "BackOff", "message": "Back-off restarting failed container oms", "type": "Warning", "count": 17,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:10:00Z"}))
    .expect("event");
    Api::<Event>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &ev).await.expect("event");
    // A busy namespace: more Events about other objects than one page holds, listed (in key
    // order, as the API server does) before the related one.
    for i in 0..600 {
        let noise: Event = serde_json::from_value(json!({"metadata": {"name": format!("a-noise-{i:03}")},
            "involvedObject": {"kind": "Pod", "name": format!("batch-{i}"), "namespace": NS},
            "reason": "Completed", "message": "Job completed", "type": "Normal"}))
        .expect("event");
        Api::<Event>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &noise).await.expect("event");
    }

    let ev = collect(&env.client, &ConfigHistory::default(), NS, "Deployment", APP, "5xx").await.expect("evidence");
    assert_eq!(ev.workload, "Deployment/oms");
    assert!(!ev.collected_at.is_empty());
    let worker = ev.containers.iter().find(|c| c.name == "worker").expect("worker container");
    assert_eq!(worker.limits.get("cpu").map(String::as_str), Some("500m"));
    assert!(worker.env.iter().any(|e| e.name == "TOKEN" && e.source == "Secret/api:token"), "a Secret by name only: {:?}", worker.env);
    assert!(ev.missing_refs.iter().any(|m| m.kind == "ConfigMap" && m.key.as_deref() == Some("MODE")), "{:?}", ev.missing_refs);
    let cm = ev.config_maps.iter().find(|c| c.name == CM).expect("config map values");
    assert_eq!(cm.data.get("POOL_SIZE").map(String::as_str), Some("10"));
    assert!(cm.used_as.contains(&"env".to_string()));
    let newest = ev.rollouts.last().expect("revisions");
    assert!(newest.changes.iter().any(|c| c.field == "image" && c.detail == format!("{IMAGE} -> {IMAGE_V2}")), "{:?}", newest.changes);
    let crashing = ev
        .pods
        .iter()
        .flat_map(|p| p.containers.iter())
        .find(|c| c.name == APP && c.reason.as_deref() == Some("CrashLoopBackOff"))
        .expect("a crash-looping oms container");
    assert_eq!(crashing.state.as_str(), "waiting");
    assert_eq!(crashing.last_termination.as_ref().map(|t| (t.reason.as_str(), t.exit_code)), Some(("Error", 101)));
    let old = ev.events.iter().find(|e| e.reason == "BackOff" && e.count == Some(17)).expect("the aggregated event");
    assert_eq!(old.last_seen.as_str(), "2026-01-01T00:10:00Z");
    assert!(ev.events.iter().all(|e| !e.object.starts_with("Pod/batch-")), "only Events about the workload");
    let event_lists: Vec<String> =
        env.fake.requests().into_iter().filter(|r| r.resource == "events" && r.method == "GET").map(|r| r.query).collect();
    assert!(event_lists.iter().all(|q| q.contains("limit=500")) && event_lists.iter().any(|q| q.contains("continue=")), "{event_lists:?}");
    assert!(ev.logs.iter().any(|l| l.lines.iter().any(|x| x.contains("panicked at src/orders.rs"))), "{:?}", ev.logs);
    // APIs this cluster does not serve are notes, not errors.
    assert!(ev.notes.iter().any(|n| n.starts_with("ResourceQuotas")), "{:?}", ev.notes);
    let secrets_read = env.fake.requests().iter().any(|r| r.resource == "secrets");
    assert!(!secrets_read, "Secrets are never read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_pod_is_a_target_and_unknown_kinds_are_refused_by_name() {
    let env = env().await;
    create_memory_hungry_deployment(&env, 1, "256Mi").await;
    wait_oom_killed(&env).await;
    let name = pods(&env).await[0].metadata.name.clone().expect("name");
    let ev = collect(&env.client, &ConfigHistory::default(), NS, "Pod", &name, "").await.expect("evidence");
    assert_eq!(ev.workload, format!("Pod/{name}"));
    assert_eq!(ev.pods.len(), 1);
    assert_eq!(ev.pods[0].last_termination_reason.as_deref(), Some("OOMKilled"));
    let e = collect(&env.client, &ConfigHistory::default(), NS, "ReplicationController", "x", "").await.expect_err("unsupported");
    assert!(matches!(&e, EvidenceError::Unsupported(m) if m.contains("StatefulSet")), "{e}");
    let e = collect(&env.client, &ConfigHistory::default(), NS, "Pod", "gone", "").await.expect_err("missing");
    assert!(matches!(e, EvidenceError::NotFound(_)));
}
