//! Evidence collection against the fake API server: the whole workload (container spec and
//! per-container state, revisions with what they changed, events with counts, ConfigMap values
//! and missing references), other target kinds, and APIs the cluster does not serve becoming
//! notes instead of a failed investigation. Secrets are never read.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use operator::kube::config_history::ConfigHistory;
use operator::kube::evidence::{EvidenceError, collect};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_deployment_is_seen_whole() {
    let env = env().await;
    create_config_map(&env, CM, json!({"POOL_SIZE": "10", "DB_PASSWORD": "hunter2"}), json!({})).await;
    create_deployment(&env, 2, "256Mi").await;
    // A second container reads a key and a Secret by reference; the key does not exist.
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "worker", "image": "worker:1",
        "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": CM, "key": "MODE"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}],
        "resources": {"limits": {"cpu": "500m"}}}]}}}});
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(env.client.clone(), NS)
        .patch(APP, &PatchParams::default(), &Patch::Strategic(&p))
        .await
        .expect("add worker");
    roll_out_bad_image(&env).await;
    kubelet(&env, 2, PodState::CrashLoop).await;
    let pod = Api::<Pod>::namespaced(env.client.clone(), NS).list(&Default::default()).await.expect("pods").items.remove(0);
    let ev: Event = serde_json::from_value(json!({"metadata": {"name": "backoff-1"},
        "involvedObject": {"kind": "Pod", "name": pod.metadata.name, "namespace": NS},
        "reason": "BackOff", "message": "Back-off restarting failed container oms", "type": "Warning", "count": 17,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:10:00Z"}))
    .expect("event");
    Api::<Event>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &ev).await.expect("event");

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
    assert!(newest.changes.iter().any(|c| c.field == "image" && c.detail == "oms:1.0 -> oms:2.0"), "{:?}", newest.changes);
    let p = &ev.pods[0];
    let c = p.containers.iter().find(|c| c.name == APP).expect("container status");
    assert_eq!((c.state.as_str(), c.reason.as_deref()), ("waiting", Some("CrashLoopBackOff")));
    assert_eq!(c.last_termination.as_ref().map(|t| (t.reason.as_str(), t.exit_code)), Some(("Error", 1)));
    let backoff = ev.events.iter().find(|e| e.reason == "BackOff").expect("event");
    assert_eq!((backoff.count, backoff.last_seen.as_str()), (Some(17), "2026-01-01T00:10:00Z"));
    assert!(ev.logs.iter().any(|l| l.lines.iter().any(|x| x.contains("POOL_SIZE must be > 0"))));
    // APIs this cluster does not serve are notes, not errors.
    assert!(ev.notes.iter().any(|n| n.starts_with("HorizontalPodAutoscalers")), "{:?}", ev.notes);
    let secrets_read = env.fake.requests().iter().any(|r| r.resource == "secrets");
    assert!(!secrets_read, "Secrets are never read");
}

#[tokio::test]
async fn a_bare_pod_is_a_target_and_unknown_kinds_are_refused_by_name() {
    let env = env().await;
    create_config_map(&env, CM, json!({"POOL_SIZE": "10"}), json!({})).await;
    create_deployment(&env, 1, "256Mi").await;
    kubelet(&env, 1, PodState::OomKilled).await;
    let name = Api::<Pod>::namespaced(env.client.clone(), NS).list(&Default::default()).await.expect("pods").items[0]
        .metadata
        .name
        .clone()
        .expect("name");
    let ev = collect(&env.client, &ConfigHistory::default(), NS, "Pod", &name, "").await.expect("evidence");
    assert_eq!(ev.workload, format!("Pod/{name}"));
    assert_eq!(ev.pods.len(), 1);
    assert_eq!(ev.pods[0].last_termination_reason.as_deref(), Some("OOMKilled"));
    let e = collect(&env.client, &ConfigHistory::default(), NS, "ReplicationController", "x", "").await.expect_err("unsupported");
    assert!(matches!(&e, EvidenceError::Unsupported(m) if m.contains("StatefulSet")), "{e}");
    let e = collect(&env.client, &ConfigHistory::default(), NS, "Pod", "gone", "").await.expect_err("missing");
    assert!(matches!(e, EvidenceError::NotFound(_)));
}
