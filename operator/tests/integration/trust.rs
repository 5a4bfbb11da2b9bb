//! What keeps Salve's writes inside what an incident is about, and never leaves a change behind
//! unrecorded: the blast radius, the replica floor, a person's hotfix during the verification
//! window, deletion before verification, and abandoning a change. Each Remediation here is one
//! a person wrote and approved (`kubectl apply`), so the policy, not the approval, is the gate.

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use operator::crd::{ConditionStatus, Incident, Remediation};
use serde_json::{Value, json};

use crate::support::*;

const INCIDENT: &str = "oms-latency";

/// An Incident about `oms` that a person already took over (Escalated): the operator's own
/// diagnosis stays out of the way of the Remediations these tests write.
async fn escalated_incident(env: &Env) -> Incident {
    create_incident(env, INCIDENT, "p99 latency > 2s").await;
    let api = Api::<Incident>::namespaced(env.client.clone(), NS);
    let status = json!({"status": {"phase": "Escalated", "evidence": {"workload": "Deployment/oms", "desiredReplicas": 2}}});
    api.patch_status(INCIDENT, &PatchParams::default(), &Patch::Merge(&status)).await.expect("escalate");
    incident(env, INCIDENT).await
}

/// A healthy `oms` reading `oms-config`, its escalated Incident, and the operator running.
async fn healthy_oms_taken_over() -> (Env, Incident, Running) {
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let inc = escalated_incident(&env).await;
    let op = start_operator(&env, args("replica-a")).await;
    (env, inc, op)
}

/// A Remediation as a person writes it, approved by them, owned by the Incident.
async fn person_writes(env: &Env, inc: &Incident, name: &str, action: Value, window_seconds: u32) {
    let rem: Remediation = serde_json::from_value(json!({
        "apiVersion": "salve.dev/v1alpha1", "kind": "Remediation",
        "metadata": {"name": name, "ownerReferences": [{"apiVersion": "salve.dev/v1alpha1", "kind": "Incident",
            "name": INCIDENT, "uid": inc.uid().expect("uid"), "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"incidentRef": INCIDENT, "action": action, "rationale": "a person's fix", "risk": "Low",
            "approval": {"state": "Approved", "by": "alice"}, "verification": {"windowSeconds": window_seconds}}
    }))
    .expect("remediation");
    Api::<Remediation>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &rem).await.expect("create remediation");
}

fn condition(rem: &Remediation, type_: &str) -> Option<operator::crd::Condition> {
    rem.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_).cloned()
}

fn timeout_ms(value: &str) -> Value {
    json!({"kind": "SetConfigMapKey", "targetName": CM, "key": "TIMEOUT_MS", "value": value})
}

/// A Remediation of the oms incident that reaches past it — another service's ConfigMap, or
/// oms scaled to nothing — is refused with a reason a person can act on, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_outside_the_incidents_blast_radius_are_refused_and_nothing_is_written() {
    let (env, inc, op) = healthy_oms_taken_over().await;
    create_config_map(&env, "payments-config", json!({"PSP_URL": "https://psp.example"}), json!({})).await;

    let other = json!({"kind": "SetConfigMapKey", "targetName": "payments-config", "key": "PSP_URL", "value": "https://evil.example"});
    person_writes(&env, &inc, "elsewhere", other, 30).await;
    person_writes(&env, &inc, "to-zero", json!({"kind": "Scale", "targetName": APP, "replicas": 0}), 30).await;

    let rem = wait_remediation_phase(&env, "elsewhere", "Refused").await;
    let c = condition(&rem, "PolicyAllowed").expect("condition");
    assert_eq!((c.status, c.reason.as_str()), (ConditionStatus::False, "OutsideBlastRadius"), "{}", c.message);
    assert!(c.message.contains("payments-config") && c.message.contains("Deployment/oms"), "{}", c.message);
    let rem = wait_remediation_phase(&env, "to-zero", "Refused").await;
    assert_eq!(condition(&rem, "PolicyAllowed").map(|c| c.reason), Some("OutOfBounds".into()));
    wait_event(&env, "PolicyRefused").await;

    let cm = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(env.client.clone(), NS).get("payments-config").await.expect("cm");
    assert_eq!(cm.data.and_then(|d| d.get("PSP_URL").cloned()).as_deref(), Some("https://psp.example"));
    assert_eq!(deployment(&env).await.spec.replicas, Some(2));
    op.stop().await;
    env.stop().await;
}

/// During the verification window a person hot-fixes the same key. The window ends without the
/// alarm clearing: the undo finds the target changed since and leaves the hotfix in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hotfix_made_during_the_window_is_never_overwritten_by_the_undo() {
    let (env, inc, op) = healthy_oms_taken_over().await;

    person_writes(&env, &inc, "timeout", timeout_ms("900"), 3).await;
    wait_remediation_phase(&env, "timeout", "Verifying").await;
    assert_eq!(config_value(&env, "TIMEOUT_MS").await.as_deref(), Some("900"));
    user_sets_config(&env, "TIMEOUT_MS", "1200").await;

    let rem = wait_remediation_phase(&env, "timeout", "Failed").await;
    let c = condition(&rem, "RolledBack").expect("condition");
    assert_eq!((c.status, c.reason.as_str()), (ConditionStatus::False, "ChangedSinceApplied"), "{}", c.message);
    assert_eq!(config_value(&env, "TIMEOUT_MS").await.as_deref(), Some("1200"), "the hotfix stays");
    op.stop().await;
    env.stop().await;
}

/// Deleting the Incident while its change is applied and unverified garbage-collects the
/// Remediation only after the change is undone: nothing is left behind unrecorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_incident_before_verification_undoes_its_change_first() {
    let (env, inc, op) = healthy_oms_taken_over().await;

    person_writes(&env, &inc, "timeout", timeout_ms("900"), 600).await;
    let rem = wait_remediation_phase(&env, "timeout", "Verifying").await;
    assert!(rem.finalizers().iter().any(|f| f == "salve.dev/undo-before-delete"), "{:?}", rem.finalizers());
    assert_eq!(config_value(&env, "TIMEOUT_MS").await.as_deref(), Some("900"));

    Api::<Incident>::namespaced(env.client.clone(), NS).delete(INCIDENT, &DeleteParams::default()).await.expect("delete incident");
    eventually("the Remediation gone", || async { remediation(&env, "timeout").await.is_none().then_some(()) }).await;
    assert_eq!(config_value(&env, "TIMEOUT_MS").await.as_deref(), Some("500"), "undone before it went");
    op.stop().await;
    env.stop().await;
}

/// A person takes the change over with `kubectl salve abandon`: it stays in place, the record
/// says who, and deleting the Remediation then waits for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_change_stays_in_place_and_names_who_abandoned_it() {
    let (env, inc, op) = healthy_oms_taken_over().await;

    person_writes(&env, &inc, "timeout", timeout_ms("900"), 600).await;
    wait_remediation_phase(&env, "timeout", "Verifying").await;
    let abandon = json!({"metadata": {"annotations": {"salve.dev/abandoned-by": "alice"}}});
    Api::<Remediation>::namespaced(env.client.clone(), NS)
        .patch("timeout", &PatchParams::default(), &Patch::Merge(&abandon))
        .await
        .expect("abandon");

    let rem = wait_remediation_phase(&env, "timeout", "Failed").await;
    let c = condition(&rem, "Ready").expect("ready");
    assert_eq!(c.reason, "Abandoned");
    assert!(c.message.contains("alice"), "{}", c.message);
    eventually("finalizer released", || async {
        remediation(&env, "timeout").await.is_some_and(|r| r.finalizers().is_empty()).then_some(())
    })
    .await;
    assert_eq!(config_value(&env, "TIMEOUT_MS").await.as_deref(), Some("900"), "left in place");
    Api::<Remediation>::namespaced(env.client.clone(), NS).delete("timeout", &DeleteParams::default()).await.expect("delete");
    eventually("gone", || async { remediation(&env, "timeout").await.is_none().then_some(()) }).await;
    op.stop().await;
    env.stop().await;
}

/// In a cluster that enforces RBAC as a real one does, with exactly the chart's RBAC, an
/// Incident someone opens in a namespace the policy does not allow gets its answer in status
/// (`NamespaceNotAllowed`) and one Warning Event, and the operator is refused nothing: no 403
/// to retry forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_in_a_namespace_not_allowed_is_answered_without_a_403_loop() {
    let (env, token) = enforcing_env().await;
    salve_sandbox::cluster::ensure_namespace(&env.client, "payments").await.expect("namespace");
    let mut a = args("replica-a");
    a.lease_namespace = salve_sandbox::access::OPERATOR_NAMESPACE.into();
    let op = start_operator_as(&env, a, None, &token).await;
    let inc: Incident = serde_json::from_value(json!({
        "apiVersion": "salve.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": "psp-down", "namespace": "payments"},
        "spec": {"service": "psp", "severity": "High", "source": {"kind": "Manual"}, "target": {"kind": "Deployment", "name": "psp"}}
    }))
    .expect("incident");
    let api = Api::<Incident>::namespaced(env.client.clone(), "payments");
    api.create(&PostParams::default(), &inc).await.expect("create");
    let inc = eventually("answered", || async {
        let i = api.get("psp-down").await.ok()?;
        (i.status.as_ref().map(|s| s.phase.as_str()) == Some("Escalated")).then_some(i)
    })
    .await;
    let ready = inc.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready")).expect("ready");
    assert_eq!(ready.reason, "NamespaceNotAllowed", "{}", ready.message);
    eventually("the Warning Event", || async {
        let evs =
            Api::<k8s_openapi::api::events::v1::Event>::namespaced(env.client.clone(), "payments").list(&Default::default()).await.ok()?;
        evs.items.into_iter().find(|e| e.reason.as_deref() == Some("NamespaceNotAllowed"))
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let operator_user = format!("system:serviceaccount:{}:salve-operator", salve_sandbox::access::OPERATOR_NAMESPACE);
    let refused: Vec<String> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.status == 403 && (r.user == operator_user || r.user == token))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(refused.is_empty(), "the operator was refused: {refused:?}");
    op.stop().await;
    env.stop().await;
}

/// Two Remediations for the same ConfigMap, both approved by people: one claims the target and
/// applies, the other is refused as `TargetBusy` and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_remediations_for_one_target_never_both_apply() {
    let (env, inc, op) = healthy_oms_taken_over().await;
    person_writes(&env, &inc, "first", timeout_ms("900"), 600).await;
    wait_remediation_phase(&env, "first", "Verifying").await;
    person_writes(&env, &inc, "second", timeout_ms("1500"), 600).await;
    let second = wait_remediation_phase(&env, "second", "Refused").await;
    let c = condition(&second, "PolicyAllowed").expect("condition");
    assert_eq!(c.reason, "TargetBusy", "{}", c.message);
    assert_eq!(config_value(&env, "TIMEOUT_MS").await.as_deref(), Some("900"), "only the first change is there");
    op.stop().await;
    env.stop().await;
}
