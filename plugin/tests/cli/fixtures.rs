//! Objects as the operator writes them, built from the operator's own types and its offline
//! rules: an OOM-killed `oms` diagnosed as `Resource_Limit`, a Remediation awaiting approval,
//! and the post-mortem of a resolved incident (ConfigMap + bounded status copy).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use operator::crd::incident::{
    Evidence, Incident, IncidentPhase, IncidentSource, IncidentSpec, IncidentStatus, LlmUsage, PostMortem, Severity, SourceKind,
    TimelineEntry, WorkloadRef,
};
use operator::crd::remediation::{
    Approval, ApprovalState, Remediation, RemediationPhase, RemediationSpec, RemediationStatus, Risk, Verification,
};
use operator::domain::diagnoser::Diagnosis;
use operator::domain::evidence::{ContainerEvidence, PodEvidence};
use operator::domain::post_mortem::{SCHEMA_VERSION, STATUS_COPY_LIMIT};
use operator::domain::replay::replay_offline;
use operator::domain::simulation::SimulationContext;
use serde_json::json;

pub fn oom_evidence() -> Evidence {
    Evidence {
        workload: "Deployment/oms".into(),
        desired_replicas: 2,
        ready_replicas: 1,
        unavailable_replicas: 1,
        containers: vec![ContainerEvidence { name: "oms".into(), memory_limit: Some("256Mi".into()), ..Default::default() }],
        pods: vec![PodEvidence {
            name: "oms-7d9f-abcde".into(),
            phase: "Running".into(),
            restarts: 4,
            last_termination_reason: Some("OOMKilled".into()),
            last_exit_code: Some(137),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// What the operator's offline rules diagnose from `oom_evidence()`, obtained through the same
/// replay the plugin runs (a post-mortem with the evidence and no recorded diagnosis yet).
pub fn diagnosis() -> Diagnosis {
    let pm = post_mortem("oms-oom", "shop", None);
    replay_offline(&pm).expect("replay of the OOM evidence").replayed
}

fn source() -> IncidentSource {
    serde_json::from_value(json!({
        "kind": "CloudWatchAlarm", "alarmName": "oms-5xx", "region": "eu-west-1",
        "stateChangeTime": "2025-11-29T10:00:00Z", "reason": "Threshold Crossed: 5 datapoints were greater than 10"
    }))
    .expect("source")
}

fn timeline(phases: &[(IncidentPhase, &str)]) -> Vec<TimelineEntry> {
    phases
        .iter()
        .enumerate()
        .map(|(i, (phase, message))| TimelineEntry { time: format!("2025-11-29T10:0{i}:00Z"), phase: *phase, message: message.to_string() })
        .collect()
}

/// An open incident in phase Remediating whose remediation `<name>-memory` awaits approval.
pub async fn awaiting_approval(client: &Client, ns: &str, name: &str) {
    let d = diagnosis();
    let rem = format!("{name}-memory");
    let status = IncidentStatus {
        phase: IncidentPhase::Remediating,
        evidence: Some(Box::new(oom_evidence())),
        diagnosis: Some(Box::new(d.clone())),
        remediations: vec![rem.clone()],
        attempts: 1,
        timeline: timeline(&[
            (IncidentPhase::Detected, "alarm oms-5xx went to ALARM"),
            (IncidentPhase::Investigating, "collecting evidence about Deployment/oms"),
            (IncidentPhase::Diagnosed, "Resource_Limit: OOMKilled"),
            (IncidentPhase::Remediating, "waiting for approval"),
        ]),
        llm_usage: Some(LlmUsage::default()),
        ..Default::default()
    };
    create_incident(client, ns, name, status).await;
    let action = d.proposed_action.clone().expect("the rules propose an action for an OOM");
    let spec = RemediationSpec {
        incident_ref: name.into(),
        risk: Risk::of(action.kind),
        action,
        rationale: d.summary.clone(),
        approval: Some(Approval { state: ApprovalState::Pending, feedback: None, by: None }),
        verification: Verification::default(),
    };
    create_remediation(client, ns, &rem, spec, RemediationStatus { phase: RemediationPhase::AwaitingApproval, ..Default::default() }).await;
}

/// A resolved incident with its post-mortem in `<name>-postmortem` and in status, and one
/// succeeded remediation `<name>-memory`.
pub async fn resolved(client: &Client, ns: &str, name: &str) -> PostMortem {
    let d = diagnosis();
    let action = d.proposed_action.clone().expect("action");
    let rem = format!("{name}-memory");
    let pm = post_mortem(name, ns, Some((d.clone(), rem.clone())));
    let cm_name = format!("{name}-postmortem");
    let status = IncidentStatus {
        phase: IncidentPhase::Resolved,
        evidence: Some(Box::new(oom_evidence())),
        diagnosis: Some(Box::new(d.clone())),
        remediations: vec![rem.clone()],
        attempts: 1,
        timeline: pm.timeline.clone(),
        post_mortem_ref: Some(cm_name.clone()),
        post_mortem: Some(Box::new(pm.bounded(STATUS_COPY_LIMIT))),
        ..Default::default()
    };
    create_incident(client, ns, name, status).await;
    let spec = RemediationSpec {
        incident_ref: name.into(),
        risk: Risk::of(action.kind),
        action,
        rationale: d.summary.clone(),
        approval: Some(Approval { state: ApprovalState::Approved, feedback: None, by: Some("alice".into()) }),
        verification: Verification::default(),
    };
    create_remediation(client, ns, &rem, spec, RemediationStatus { phase: RemediationPhase::Succeeded, ..Default::default() }).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = ConfigMap {
        metadata: ObjectMeta { name: Some(cm_name), ..Default::default() },
        data: Some(BTreeMap::from([("postmortem.json".to_string(), pm.to_json())])),
        ..Default::default()
    };
    cms.create(&PostParams::default(), &cm).await.expect("post-mortem ConfigMap");
    pm
}

/// An incident just detected: no status beyond the phase.
pub async fn detected(client: &Client, ns: &str, name: &str) {
    create_incident(client, ns, name, IncidentStatus::default()).await;
}

pub async fn create_incident(client: &Client, ns: &str, name: &str, status: IncidentStatus) {
    let api: Api<Incident> = Api::namespaced(client.clone(), ns);
    let spec = IncidentSpec {
        service: "oms".into(),
        severity: Severity::High,
        source: source(),
        target: WorkloadRef { kind: "Deployment".into(), name: "oms".into() },
        signal: None,
    };
    assert_eq!(spec.source.kind, SourceKind::CloudWatchAlarm);
    api.create(&PostParams::default(), &Incident::new(name, spec)).await.expect("create incident");
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await.expect("incident status");
}

pub async fn create_remediation(client: &Client, ns: &str, name: &str, spec: RemediationSpec, status: RemediationStatus) {
    let api: Api<Remediation> = Api::namespaced(client.clone(), ns);
    let mut r = Remediation::new(name, spec);
    r.meta_mut().namespace = Some(ns.into());
    api.create(&PostParams::default(), &r).await.expect("create remediation");
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await.expect("remediation status");
}

/// A resolved incident's post-mortem: the OOM evidence, and with `recorded` the diagnosis and
/// the succeeded remediation `(diagnosis, remediation name)`.
fn post_mortem(name: &str, ns: &str, recorded: Option<(Diagnosis, String)>) -> PostMortem {
    let remediations = match &recorded {
        Some((d, rem)) => {
            let action = d.proposed_action.clone().expect("action");
            json!([{
                "remediation": rem, "action": action, "description": action.describe(), "risk": Risk::of(action.kind),
                "approval": "Approved", "approved_by": "alice", "outcome": "Succeeded",
                "applied_patch": "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"oms\",\"resources\":{\"limits\":{\"memory\":\"512Mi\"}}}]}}}}",
                "applied_at": "2025-11-29T10:05:00Z", "undo_patch": "{}", "verification": "passed: every replica ready, no new restarts"
            }])
        }
        None => json!([]),
    };
    serde_json::from_value(json!({
        "schema_version": SCHEMA_VERSION, "incident_name": name, "incident_namespace": ns, "service": "oms",
        "severity": "High", "source": source(), "outcome": "Resolved",
        "created_at": "2025-11-29T10:00:00Z", "closed_at": "2025-11-29T10:09:00Z",
        "incident_signature": "sha256:0b5e", "root_cause_category": "Resource_Limit",
        "remediation_action": remediations,
        "human_feedback_score": null, "llm_usage": LlmUsage::default(),
        "timeline": timeline(&[(IncidentPhase::Detected, "alarm"), (IncidentPhase::Resolved, "the signal cleared")]),
        "truncated": [],
        "simulation_context": SimulationContext {
            evidence: Some(oom_evidence()), feedback: vec![], excluded_actions: vec![], action_limits: Default::default(),
            recorded_diagnosis: recorded.map(|(d, _)| d),
        },
    }))
    .expect("post-mortem")
}
