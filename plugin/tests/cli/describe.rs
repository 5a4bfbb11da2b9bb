//! `describe`: the incident's story, from source to post-mortem.

use kube::api::{Patch, PatchParams};
use operator::crd::incident::Incident;
use operator::crd::{Condition, ConditionStatus, condition_type, reason};
use serde_json::json;

use crate::fixtures;
use crate::support::{self, NS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_incident_tells_source_timeline_evidence_diagnosis_and_what_waits_for_approval() {
    let env = support::start().await;
    fixtures::awaiting_approval(&env.client, NS, "oms-oom").await;
    let out = env.salve(&["describe", "oms-oom"]).await.ok().stdout;
    let d = fixtures::diagnosis();
    for want in [
        "Name:             oms-oom",
        "Service:          oms (Deployment/oms)",
        "CloudWatch alarm oms-5xx (eu-west-1) at 2025-11-29T10:00:00Z",
        "Threshold Crossed",
        "collecting evidence about Deployment/oms",
        "1/2 ready, 1 unavailable",
        "oms-7d9f-abcde Running restarts=4 last-terminated=OOMKilled (exit 137)",
        "Root cause:     Resource_Limit",
        &format!("(confidence {:.0}%)", d.confidence * 100.0),
        &d.summary,
        "Model:          rules/v1 (0 input / 0 output tokens)",
        "oms-oom-memory:",
        "Phase:        AwaitingApproval",
        "kubectl salve approve oms-oom-memory -n shop",
        "<written when the incident is Resolved or Escalated>",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    for cited in &d.cited_evidence {
        assert!(out.contains(&format!("- {cited}")), "cited evidence {cited:?} missing in\n{out}");
    }
    assert!(d.proposed_action.is_some_and(|a| out.contains(&a.describe())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_incident_says_who_approved_how_it_ended_and_where_the_post_mortem_is() {
    let env = support::start().await;
    fixtures::resolved(&env.client, NS, "oms-oom").await;
    let out = env.salve(&["describe", "oms-oom"]).await.ok().stdout;
    for want in [
        "Phase:            Resolved",
        "Approval:     Approved by alice",
        "Phase:        Succeeded",
        "Post-mortem:      ConfigMap shop/oms-oom-postmortem (key postmortem.json): kubectl salve postmortem oms-oom -n shop",
        "kubectl salve score oms-oom 1..5 -n shop",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains("kubectl salve approve"), "nothing waits for approval any more:\n{out}");

    let json: serde_json::Value = serde_json::from_str(&env.salve(&["describe", "oms-oom", "-o", "json"]).await.ok().stdout).expect("json");
    let kinds: Vec<&str> = json["items"].as_array().expect("items").iter().filter_map(|i| i["kind"].as_str()).collect();
    assert_eq!(kinds, ["Incident", "Remediation"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_that_does_not_get_through_is_told_and_listed_with_the_conditions() {
    let env = support::start().await;
    fixtures::awaiting_approval(&env.client, NS, "oms-oom").await;
    let api: kube::Api<Incident> = kube::Api::namespaced(env.client.clone(), NS);
    let mut st = api.get_status("oms-oom").await.expect("incident").status.expect("status");
    let message = "approval_needed notification not delivered: webhook failed after 5 attempt(s): HTTP 503";
    st.conditions.push(Condition::new(
        condition_type::NOTIFICATION_DELIVERED,
        ConditionStatus::False,
        reason::DELIVERY_FAILED,
        message,
        "2025-11-29T10:04:00Z",
    ));
    api.patch_status("oms-oom", &PatchParams::default(), &Patch::Merge(json!({"status": st}))).await.expect("status");
    let out = env.salve(&["describe", "oms-oom"]).await.ok().stdout;
    let want = format!("Notifications:    NOT delivered (DeliveryFailed since 2025-11-29T10:04:00Z): {message}");
    assert!(out.contains(&want), "missing {want:?} in\n{out}");
    assert!(out.lines().any(|l| l.contains("NotificationDelivered") && l.contains("False") && l.contains("DeliveryFailed")), "{out}");

    st.conditions.retain(|c| c.type_ != condition_type::NOTIFICATION_DELIVERED);
    st.conditions.push(Condition::new(
        condition_type::NOTIFICATION_DELIVERED,
        ConditionStatus::True,
        reason::DELIVERED,
        "delivered: approval:oms-oom-memory",
        "2025-11-29T10:05:00Z",
    ));
    api.patch_status("oms-oom", &PatchParams::default(), &Patch::Merge(json!({"status": st}))).await.expect("status");
    let out = env.salve(&["describe", "oms-oom"]).await.ok().stdout;
    assert!(out.contains("Notifications:    delivered: approval:oms-oom-memory"), "{out}");
}
