//! End-to-end scenarios: the real controllers against the fake API server (a TEST STAND-IN).
//! Each test asserts outcomes a user would check with kubectl, never timings.

use crate::support::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use operator::crd::ActionKind;
use operator::domain::diagnoser::RootCause;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_configmap_crashloop_is_restored_verified_and_resolved() {
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let op = start_operator(&env, args("replica-a")).await;

    // A malformed Incident must be reported and must not stall the controller. The API server
    // rejects it today, so it is stored as one written under an older, looser schema would be.
    let bad = json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": "garbled"}, "spec": {"service": 42, "severity": "Apocalyptic"}});
    env.fake.store_unvalidated("salve.dev", "v1alpha1", "incidents", NS, bad).expect("store bad");

    break_config(&env).await;
    create_incident(&env, "oms-5xx", "Threshold Crossed: 5xx > 5%").await;

    // The operator diagnoses, restores the previous value and waits for verification.
    eventually("previous value restored", || async { (config_value(&env, "POOL_SIZE").await.as_deref() == Some("10")).then_some(()) })
        .await;

    let inc = wait_incident_phase(&env, "oms-5xx", "Resolved").await;
    let st = inc.status.expect("status");
    let d = st.diagnosis.expect("diagnosis");
    assert_eq!(d.root_cause_category, Some(RootCause::Config_Error));
    assert!(d.summary.contains("POOL_SIZE"), "summary cites the evidence: {}", d.summary);
    assert!(st.signature.as_deref().is_some_and(|s| s.starts_with("sha256:")));
    let ev = st.evidence.expect("evidence");
    assert!(ev.config_changes.iter().any(|c| c.key == "POOL_SIZE" && c.previous.as_deref() == Some("10")));
    assert!(ev.logs.iter().any(|l| l.lines.iter().any(|x| x.contains("POOL_SIZE must be > 0"))));
    let phases: Vec<&str> = st.timeline.iter().map(|t| t.phase.as_str()).collect();
    assert_eq!(phases, ["Investigating", "Diagnosed", "Remediating", "Verifying", "Resolved"]);

    let rem = remediation(&env, "oms-5xx-r1").await.expect("remediation");
    assert_eq!(rem.spec.action.kind, ActionKind::SetConfigMapKey);
    assert_eq!(rem.owner_references()[0].name, "oms-5xx");
    let rs = rem.status.expect("status");
    assert_eq!(rs.phase.as_str(), "Succeeded");
    assert!(rs.snapshot.expect("snapshot").undo_patch.contains("\"0\""), "snapshot holds the pre-change value");
    assert_eq!(config_value(&env, "TIMEOUT_MS").await.as_deref(), Some("500"), "other keys untouched");

    // Post-mortem and Events for the user.
    let pm = Api::<ConfigMap>::namespaced(env.client.clone(), NS).get("oms-5xx-postmortem").await.expect("post-mortem");
    let body: serde_json::Value = serde_json::from_str(pm.data.expect("data").get("postmortem.json").expect("json")).expect("parse");
    assert_eq!(body["root_cause_category"], "Config_Error");
    assert!(body["simulation_context"]["evidence"].is_object());
    for reason in ["Investigating", "Diagnosed", "RemediationCreated", "Verifying", "Resolved", "AutoApproved", "Applied", "Verified"] {
        wait_event(&env, reason).await;
    }
    let evs = events(&env).await;
    assert!(
        evs.iter().any(
            |e| e.reason.as_deref() == Some("InvalidObject") && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("garbled")
        )
    );

    // Later, a person scores the outcome; the post-mortem follows.
    let p = json!({"metadata": {"annotations": {"salve.dev/feedback-score": "4"}}});
    Api::<operator::crd::Incident>::namespaced(env.client.clone(), NS)
        .patch("oms-5xx", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("score");
    eventually("score in post-mortem", || async {
        let pm = Api::<ConfigMap>::namespaced(env.client.clone(), NS).get("oms-5xx-postmortem").await.ok()?;
        let body: serde_json::Value = serde_json::from_str(pm.data?.get("postmortem.json")?).ok()?;
        (body["human_feedback_score"] == 4).then_some(())
    })
    .await;
    assert_rbac_covers_operator_requests(&env);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_high_risk_waits_is_rejected_rediagnosed_approved_and_applied() {
    let env = env().await;
    create_memory_hungry_deployment(&env, 2, "256Mi").await;
    wait_oom_killed(&env).await;
    let mut a = args("replica-a");
    a.max_auto_approve_risk = "None".into(); // every action needs a person
    let op = start_operator(&env, a).await;
    create_incident(&env, "oms-oom", "memory pressure").await;

    let r1 = wait_remediation_phase(&env, "oms-oom-r1", "AwaitingApproval").await;
    assert_eq!(r1.spec.action.kind, ActionKind::SetDeploymentResources);
    assert_eq!(r1.spec.action.memory_limit.as_deref(), Some("512Mi"));
    wait_event(&env, "AwaitingApproval").await;
    decide(&env, "oms-oom-r1", json!({"state": "Rejected", "feedback": "memory budget is fixed; scale out instead", "by": "alice"})).await;

    let r2 = wait_remediation_phase(&env, "oms-oom-r2", "AwaitingApproval").await;
    assert_eq!(r2.spec.action.kind, ActionKind::Scale);
    assert_eq!(r2.spec.action.replicas, Some(3));
    let inc = incident(&env, "oms-oom").await;
    let st = inc.status.expect("status");
    assert_eq!(st.feedback, ["memory budget is fixed; scale out instead"]);
    assert!(st.diagnosis.expect("diagnosis").summary.contains("memory budget is fixed"));
    assert_eq!(remediation(&env, "oms-oom-r1").await.and_then(|r| r.status).map(|s| s.phase.as_str()), Some("Rejected"));
    let d = deployment(&env).await;
    let limits =
        d.spec.template.spec.as_ref().and_then(|s| s.containers[0].resources.as_ref()).and_then(|r| r.limits.clone()).expect("limits");
    assert_eq!(limits.get("memory").map(|q| q.0.as_str()), Some("256Mi"), "nothing applied before approval");
    assert_eq!(d.spec.replicas, Some(2));

    decide(&env, "oms-oom-r2", json!({"state": "Approved", "by": "alice"})).await;
    eventually("scaled to 3", || async { (deployment(&env).await.spec.replicas == Some(3)).then_some(()) }).await;
    // The pods still need more than their limit; with the load spread over three, the 5xx rate
    // falls under the threshold and CloudWatch's OK is what verifies the scale-out.
    alarm_returns_to_ok(&env, "oms-oom").await;
    wait_incident_phase(&env, "oms-oom", "Resolved").await;
    assert_eq!(wait_remediation_phase(&env, "oms-oom-r2", "Succeeded").await.spec.action.kind, ActionKind::Scale);
    assert_rbac_covers_operator_requests(&env);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_fix_that_does_not_clear_is_undone_and_escalates() {
    let env = env().await;
    // oms reads `oms-config` and then the Secret `oms-secrets` through envFrom; for a key in
    // both, the later source wins. Someone also put POOL_SIZE=0 in the Secret, which the
    // operator never reads: restoring the ConfigMap cannot help (the real cause is elsewhere).
    create_config_map(&env, CM, json!({"POOL_SIZE": "10", "TIMEOUT_MS": "500"}), json!({})).await;
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(json!({"metadata": {"name": "oms-secrets"}, "stringData": {"DB_USER": "oms"}})).expect("secret");
    let secrets = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(env.client.clone(), NS);
    secrets.create(&PostParams::default(), &secret).await.expect("create secret");
    create_deployment(&env, 2, "256Mi").await;
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": APP,
        "envFrom": [{"configMapRef": {"name": CM}}, {"secretRef": {"name": "oms-secrets"}}]}]}}}});
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(env.client.clone(), NS)
        .patch(APP, &PatchParams::default(), &Patch::Strategic(&p))
        .await
        .expect("env from the secret");
    wait_ready(&env, 2).await;
    let mut a = args("replica-a");
    a.verify_window_seconds = 15;
    let op = start_operator(&env, a).await;
    let p = json!({"stringData": {"POOL_SIZE": "0"}});
    secrets.patch("oms-secrets", &PatchParams::default(), &Patch::Merge(&p)).await.expect("override in the secret");
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    let inc = wait_incident_phase(&env, "oms-5xx", "Escalated").await;
    let rem = wait_remediation_phase(&env, "oms-5xx-r1", "Failed").await;
    let rs = rem.status.expect("status");
    assert_eq!(rs.verification.as_ref().and_then(|v| v.passed), Some(false));
    assert!(rs.conditions.iter().any(|c| c.type_ == "RolledBack" && c.status == operator::crd::ConditionStatus::True));
    assert_eq!(config_value(&env, "POOL_SIZE").await.as_deref(), Some("0"), "undone to the pre-change value");
    let st = inc.status.expect("status");
    assert_eq!(st.remediations, ["oms-5xx-r1"], "the failed action is not retried");
    assert!(st.timeline.iter().any(|t| t.message.contains("failed and was undone")));
    wait_event(&env, "VerificationFailed").await;
    wait_event(&env, "RolledBack").await;
    assert_rbac_covers_operator_requests(&env);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_policy_forbids_nothing_changes_and_an_event_says_why() {
    let env = env().await;
    broken_config_setup(&env, json!({"salve.dev/protected": "true"})).await;
    let op = start_operator(&env, args("replica-a")).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    let inc = wait_incident_phase(&env, "oms-5xx", "Escalated").await;
    let st = inc.status.expect("status");
    let c = st.conditions.iter().find(|c| c.type_ == "PolicyAllowed").expect("condition");
    assert_eq!(c.reason, "ProtectedResource");
    assert!(st.remediations.is_empty(), "no Remediation exists for a refused proposal");
    let refusal = wait_event(&env, "PolicyRefused").await;
    assert!(refusal.note.as_deref().unwrap_or_default().contains("salve.dev/protected=true"));
    assert_eq!(config_value(&env, "POOL_SIZE").await.as_deref(), Some("0"), "nothing changed");
    assert_eq!(writes_by_operator(&env, &format!("/configmaps/{CM}")), 0);

    // A hand-written Remediation outside the policy is refused too.
    let rem: operator::crd::Remediation = serde_json::from_value(json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Remediation",
        "metadata": {"name": "manual"}, "spec": {"incidentRef": "oms-5xx", "risk": "High",
        "action": {"kind": "PullRequest", "targetName": "shop-gitops"}, "approval": {"state": "Approved", "by": "bob"}}}))
    .expect("rem");
    Api::<operator::crd::Remediation>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &rem).await.expect("create");
    let r = wait_remediation_phase(&env, "manual", "Refused").await;
    let c = r.status.expect("status").conditions.into_iter().find(|c| c.type_ == "PolicyAllowed").expect("condition");
    assert_eq!(c.reason, "ActionKindNotAllowed");
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5_operator_killed_mid_remediation_applies_nothing_twice() {
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let mut a = args("replica-a");
    a.verify_window_seconds = 120; // long enough that the kill lands inside verification
    let first = start_operator(&env, a.clone()).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    let before = wait_remediation_phase(&env, "oms-5xx-r1", "Verifying").await;
    first.kill(); // kill -9: no graceful release of the Lease

    // The replacement pod has a new name: it takes over once the dead leader's Lease expires.
    a.identity = "replica-b".into();
    let second = start_operator(&env, a).await;
    eventually("replacement leads", || async { (lease_holder(&env).await.as_deref() == Some("replica-b")).then_some(()) }).await;
    wait_incident_phase(&env, "oms-5xx", "Resolved").await;
    let after = wait_remediation_phase(&env, "oms-5xx-r1", "Succeeded").await;
    assert_eq!(before.status.and_then(|s| s.snapshot), after.status.and_then(|s| s.snapshot), "the snapshot is never retaken");
    assert_eq!(writes_by_operator(&env, &format!("/configmaps/{CM}")), 1, "the fix was applied exactly once");
    assert_eq!(remediations(&env).await.len(), 1);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5b_restart_between_snapshot_and_apply_resumes_without_a_new_snapshot() {
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    // State left by an operator that died right after saving the snapshot and applying the
    // change, before recording that it had applied it.
    let incidents: Api<operator::crd::Incident> = Api::namespaced(env.client.clone(), NS);
    let inc = incidents.get("oms-5xx").await.expect("incident");
    let st = json!({"status": {"phase": "Remediating", "attempts": 1, "remediations": ["oms-5xx-r1"], "conditions": [], "timeline": [], "feedback": []}});
    incidents.patch_status("oms-5xx", &PatchParams::default(), &Patch::Merge(&st)).await.expect("incident status");
    let rem: operator::crd::Remediation = serde_json::from_value(json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Remediation",
        "metadata": {"name": "oms-5xx-r1", "ownerReferences": [{"apiVersion": "salve.dev/v1alpha1", "kind": "Incident", "name": "oms-5xx", "uid": inc.uid(), "controller": true}]},
        "spec": {"incidentRef": "oms-5xx", "risk": "Low", "verification": {"windowSeconds": 60},
            "action": {"kind": "SetConfigMapKey", "targetName": CM, "key": "POOL_SIZE", "value": "10"},
            "approval": {"state": "Approved", "by": "salve-operator/policy"}}})).expect("rem");
    let rems: Api<operator::crd::Remediation> = Api::namespaced(env.client.clone(), NS);
    rems.create(&PostParams::default(), &rem).await.expect("create rem");
    // The snapshot as the operator takes it: the restored value reaches the containers only
    // through a restart (env), planned with the snapshot.
    let restart = json!({"target": format!("Deployment/{APP}"), "reason": format!("container {APP} reads ConfigMap {CM} through env"),
        "undoPatch": json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": null}}}}}).to_string()});
    let snapshot = json!({"target": format!("ConfigMap/{CM}"), "undoPatch": "{\"data\":{\"POOL_SIZE\":\"0\"}}", "restarts": 10,
        "takenAt": "2026-01-01T00:00:00Z", "healthyBefore": false, "restart": restart});
    let st = json!({"status": {"phase": "Applying", "snapshot": snapshot, "conditions": []}});
    rems.patch_status("oms-5xx-r1", &PatchParams::default(), &Patch::Merge(&st)).await.expect("rem status");
    let apply = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CM}, "data": {"POOL_SIZE": "10"}});
    let applied = Api::<ConfigMap>::namespaced(env.client.clone(), NS)
        .patch(CM, &PatchParams::apply("salve-operator").force(), &Patch::Apply(&apply))
        .await
        .expect("the dead operator's apply");
    let rv_after_first_apply = applied.resource_version();

    let op = start_operator(&env, args("replica-a")).await;
    let r = wait_remediation_phase(&env, "oms-5xx-r1", "Verifying").await;
    let snap = r.status.and_then(|s| s.snapshot).expect("snapshot");
    assert!(snap.undo_patch.contains("\"0\"") && snap.taken_at == "2026-01-01T00:00:00Z", "snapshot kept: {snap:?}");
    let cm = Api::<ConfigMap>::namespaced(env.client.clone(), NS).get(CM).await.expect("cm");
    assert_eq!(cm.resource_version(), rv_after_first_apply, "re-applying the same change is a no-op");
    wait_incident_phase(&env, "oms-5xx", "Resolved").await;
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_two_replicas_only_the_leader_acts() {
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let a = start_operator(&env, args("replica-a")).await;
    let b = start_operator(&env, args("replica-b")).await;
    let leader = eventually("a leader", || async { lease_holder(&env).await }).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    eventually("restored", || async { (config_value(&env, "POOL_SIZE").await.as_deref() == Some("10")).then_some(()) }).await;
    wait_incident_phase(&env, "oms-5xx", "Resolved").await;

    let evs = events(&env).await;
    assert!(!evs.is_empty());
    for e in &evs {
        assert_eq!(e.reporting_instance.as_deref(), Some(leader.as_str()), "only the leader acts: {:?}", e.reason);
    }
    assert_eq!(remediations(&env).await.len(), 1);
    assert_eq!(writes_by_operator(&env, &format!("/configmaps/{CM}")), 1);

    // The leader shuts down gracefully: the standby takes over.
    let (stop, keep, other) = if leader == "replica-a" { (a, b, "replica-b") } else { (b, a, "replica-a") };
    stop.stop().await;
    eventually("standby leads", || async { (lease_holder(&env).await.as_deref() == Some(other)).then_some(()) }).await;
    keep.stop().await;
    assert_rbac_covers_operator_requests(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s7_kubectl_get_prints_the_printer_columns() {
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let mut a = args("replica-a");
    a.max_auto_approve_risk = "None".into();
    let op = start_operator(&env, a).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    wait_remediation_phase(&env, "oms-5xx-r1", "AwaitingApproval").await;
    eventually("incident status written", || async {
        let i = incident(&env, "oms-5xx").await;
        (i.status.map(|s| s.phase.as_str()) == Some("Remediating")).then_some(())
    })
    .await;

    let dir = tempfile::tempdir().expect("tmp");
    let kc = dir.path().join("kubeconfig");
    env.fake.write_kubeconfig(&kc, NS).expect("kubeconfig");
    let kubectl = |args: Vec<&str>| {
        let kc = kc.clone();
        let home = dir.path().to_path_buf();
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        async move {
            let out = tokio::process::Command::new("kubectl")
                .env("HOME", &home)
                .env("KUBECACHEDIR", home.join("cache"))
                .arg("--kubeconfig")
                .arg(&kc)
                .args(&args)
                .output()
                .await
                .expect("kubectl");
            assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let out = kubectl(vec!["get", "incidents"]).await;
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SERVICE", "SEVERITY", "PHASE", "ROOT", "CAUSE", "AGE"], "{out}");
    let row: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(&row[..5], ["oms-5xx", "oms", "High", "Remediating", "Config_Error"], "{out}");

    let out = kubectl(vec!["get", "rem"]).await;
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "INCIDENT", "ACTION", "TARGET", "APPROVAL", "PHASE", "AGE"], "{out}");
    let row: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(&row[..6], ["oms-5xx-r1", "oms-5xx", "SetConfigMapKey", CM, "Pending", "AwaitingApproval"], "{out}");

    let out = kubectl(vec!["get", "salve"]).await;
    assert!(out.contains("incident.salve.dev/oms-5xx") && out.contains("remediation.salve.dev/oms-5xx-r1"), "category salve: {out}");

    // The documented approval command, as a user types it.
    kubectl(vec![
        "patch",
        "remediation",
        "oms-5xx-r1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"approval":{"state":"Approved","by":"alice"}}}"#,
    ])
    .await;
    eventually("restored after kubectl approval", || async {
        (config_value(&env, "POOL_SIZE").await.as_deref() == Some("10")).then_some(())
    })
    .await;
    let out = kubectl(vec!["get", "rem", "oms-5xx-r1", "--no-headers"]).await;
    assert!(out.contains("Approved"), "{out}");

    // The example Incident applies as shipped (the fake serves no OpenAPI document, so kubectl's
    // client-side schema validation is off; the CEL rules are still enforced by the fake).
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/incident.yaml");
    kubectl(vec!["delete", "incident", "oms-5xx"]).await;
    let out = kubectl(vec!["apply", "--validate=false", "-f", example]).await;
    assert!(out.contains("incident.salve.dev/oms-5xx created"), "{out}");
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_alarm_back_to_ok_verifies_the_fix() {
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let mut a = args("replica-a");
    a.verify_window_seconds = 120;
    a.verify_stability_seconds = 90; // the pods cannot prove it first: the alarm decides
    let op = start_operator(&env, a).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    wait_remediation_phase(&env, "oms-5xx-r1", "Verifying").await;
    alarm_returns_to_ok(&env, "oms-5xx").await;
    wait_incident_phase(&env, "oms-5xx", "Resolved").await;
    let r = wait_remediation_phase(&env, "oms-5xx-r1", "Succeeded").await;
    assert!(r.status.and_then(|s| s.verification).is_some_and(|v| v.message.contains("alarm returned to OK")));
    assert_eq!(config_value(&env, "POOL_SIZE").await.as_deref(), Some("10"));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_dry_run_records_the_server_result_and_changes_nothing() {
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let mut a = args("replica-a");
    a.dry_run = Some(true);
    let op = start_operator(&env, a).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    let inc = wait_incident_phase(&env, "oms-5xx", "Escalated").await;
    let r = wait_remediation_phase(&env, "oms-5xx-r1", "DryRun").await;
    assert!(r.status.and_then(|s| s.dry_run_result).is_some_and(|d| d.contains("server accepted") && d.contains("POOL_SIZE")));
    assert_eq!(config_value(&env, "POOL_SIZE").await.as_deref(), Some("0"), "dry run changes nothing");
    assert!(env.fake.requests().iter().any(|r| r.user == "salve-operator" && r.dry_run && r.path.ends_with(&format!("/configmaps/{CM}"))));
    assert!(inc.status.expect("status").timeline.iter().any(|t| t.message.contains("dry-run mode")));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s10_bad_rollout_is_rolled_back_after_approval() {
    let env = env().await;
    create_config_map(&env, CM, json!({"POOL_SIZE": "10"}), json!({})).await;
    create_deployment_with(&env, 2, "256Mi", panics_in_v2(), true).await;
    wait_ready(&env, 2).await;
    let op = start_operator(&env, args("replica-a")).await;
    // Version 2.0 panics at start; the rolling update stalls with the 1.0 pods still serving.
    roll_out(&env, IMAGE_V2).await;
    wait_crash_looping(&env).await;
    create_incident(&env, "oms-5xx", "5xx after deploy").await;
    let r = wait_remediation_phase(&env, "oms-5xx-r1", "AwaitingApproval").await;
    assert_eq!(r.spec.action.kind, ActionKind::Rollback);
    assert_eq!(r.spec.action.revision, Some(1));
    assert_eq!(image(&env).await, IMAGE_V2, "a High-risk action waits for a person");
    decide(&env, "oms-5xx-r1", json!({"state": "Approved", "by": "alice"})).await;
    eventually("rolled back", || async { (image(&env).await == IMAGE).then_some(()) }).await;
    let labels = deployment(&env).await.spec.template.metadata.and_then(|m| m.labels).unwrap_or_default();
    assert!(!labels.contains_key("pod-template-hash"), "the ReplicaSet's hash label is not copied");
    let inc = wait_incident_phase(&env, "oms-5xx", "Resolved").await;
    assert_eq!(inc.status.and_then(|s| s.diagnosis).and_then(|d| d.root_cause_category), Some(RootCause::Code_Bug));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s11_health_readiness_and_metrics_endpoints() {
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let op = start_operator_with(&env, args("replica-a"), Some(listener)).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    eventually("restored", || async { (config_value(&env, "POOL_SIZE").await.as_deref() == Some("10")).then_some(()) }).await;
    wait_incident_phase(&env, "oms-5xx", "Resolved").await;
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    assert_eq!(http_get(addr, "/readyz").await.0, 200);
    let (code, body) = eventually("resolved incident in metrics", || async {
        let (code, body) = http_get(addr, "/metrics").await;
        body.contains("salve_incidents{phase=\"Resolved\"} 1").then_some((code, body))
    })
    .await;
    assert_eq!(code, 200);
    for needle in [
        "salve_reconciles_total{controller=\"incident\"}",
        "salve_reconciles_total{controller=\"remediation\"}",
        "salve_incident_stage_seconds_count{stage=\"diagnose\"} 1",
        "salve_incident_stage_seconds_count{stage=\"remediate\"} 1",
        "salve_incident_stage_seconds_count{stage=\"resolve\"} 1",
        "salve_diagnoses_total{model=\"rules/v1\"} 1",
    ] {
        assert!(body.contains(needle), "missing {needle} in:\n{body}");
    }
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s11b_a_restarted_operator_finds_finished_work_settled_and_writes_nothing() {
    // After a restart (or a failover) every object arrives at once; the finished ones are
    // answered from the cache, before any controller queue, and nothing is written again.
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let op = start_operator(&env, args("replica-a")).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    wait_incident_phase(&env, "oms-5xx", "Resolved").await;
    eventually("post-mortem recorded", || async { incident(&env, "oms-5xx").await.status?.post_mortem_ref }).await;
    op.stop().await;
    let before = env.fake.requests().len();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let op = start_operator_with(&env, args("replica-b"), Some(listener)).await;
    let body = eventually("the Incident and its Remediation found settled", || async {
        let (_, body) = http_get(addr, "/metrics").await;
        let settled = |c: &str| body.lines().any(|l| l.starts_with(&format!("salve_settled_total{{controller=\"{c}\"}}")));
        (settled("incident") && settled("remediation")).then_some(body)
    })
    .await;
    assert!(!body.lines().any(|l| l.starts_with("salve_reconciles_total")), "nothing was reconciled:\n{body}");
    let writes: Vec<String> = env.fake.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET" && !r.path.contains("/leases/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "a finished Incident is not written again after a restart: {writes:?}");
    assert_eq!(incident(&env, "oms-5xx").await.status.map(|s| s.phase.as_str()), Some("Resolved"));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s12_cel_rules_protect_users() {
    // The fake enforces the CRDs' CEL rules with kube-cel, like the real server would.
    let env = env().await;
    create_incident(&env, "oms-5xx", "5xx").await;
    let incidents: Api<operator::crd::Incident> = Api::namespaced(env.client.clone(), NS);
    let p = json!({"spec": {"source": {"kind": "Manual"}}});
    let err = incidents.patch("oms-5xx", &PatchParams::default(), &Patch::Merge(&p)).await.expect_err("source is immutable");
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 422), "{err}");
    let p = json!({"spec": {"signal": "OK"}});
    incidents.patch("oms-5xx", &PatchParams::default(), &Patch::Merge(&p)).await.expect("signal may change");

    let rem: operator::crd::Remediation = serde_json::from_value(json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Remediation",
        "metadata": {"name": "r"}, "spec": {"incidentRef": "oms-5xx", "risk": "Low",
        "action": {"kind": "RolloutRestart", "targetName": APP}, "approval": {"state": "Pending"}}}))
    .expect("rem");
    let rems: Api<operator::crd::Remediation> = Api::namespaced(env.client.clone(), NS);
    rems.create(&PostParams::default(), &rem).await.expect("create");
    let p = json!({"spec": {"approval": {"state": "Rejected"}}});
    let err = rems.patch("r", &PatchParams::default(), &Patch::Merge(&p)).await.expect_err("feedback required");
    assert!(err.to_string().contains("a rejection needs feedback"), "{err}");
    let p = json!({"spec": {"action": {"kind": "Scale", "targetName": APP, "replicas": 9}}});
    assert!(rems.patch("r", &PatchParams::default(), &Patch::Merge(&p)).await.is_err(), "action is immutable");
    let p = json!({"spec": {"approval": {"state": "Rejected", "feedback": "not now"}}});
    rems.patch("r", &PatchParams::default(), &Patch::Merge(&p)).await.expect("rejection with feedback");
}
