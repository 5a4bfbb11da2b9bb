//! The post-mortem: what happened, what was changed (the exact patch and how to undo it), how a
//! person scored the outcome, and everything needed to replay the diagnosis offline. Built from
//! an Incident and its Remediations; stored in full in a ConfigMap (and S3 when configured) and
//! as a size-bounded copy in the Incident's status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::action::{ProposedAction, Risk};
use super::diagnoser::{ActionLimits, RootCause};
use super::llm_usage::LlmUsage;
use super::phase::{IncidentPhase, RemediationPhase};
use super::simulation::SimulationContext;
use crate::crd::{ApprovalState, Incident, IncidentSource, IncidentStatus, Remediation, Severity, TimelineEntry};

/// Version of this JSON layout; bumped on incompatible changes.
pub const SCHEMA_VERSION: &str = "salve.dev/post-mortem/v1";

/// Bound of the copy kept in `status.postMortem` (the object lives in etcd and is read by
/// every `kubectl get`); the full record is in the ConfigMap and S3.
pub const STATUS_COPY_LIMIT: usize = 32 * 1024;

/// Trimmed strings (patches, summaries) keep this many characters.
const TRIMMED_TEXT: usize = 1024;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct PostMortem {
    pub schema_version: String,
    pub incident_name: String,
    pub incident_namespace: String,
    pub service: String,
    pub severity: Severity,
    pub source: IncidentSource,
    /// `Resolved` or `Escalated`.
    pub outcome: IncidentPhase,
    /// RFC 3339: when the Incident was created and when it reached its outcome.
    pub created_at: Option<String>,
    pub closed_at: Option<String>,
    pub incident_signature: Option<String>,
    pub root_cause_category: Option<RootCause>,
    /// Every remediation tried, oldest first: the exact patch applied, its outcome, its undo.
    pub remediation_action: Vec<AppliedRemediation>,
    /// 1-5, set later by a person (annotation `salve.dev/feedback-score`); `null` until then.
    pub human_feedback_score: Option<u8>,
    pub simulation_context: SimulationContext,
    /// Model calls, tokens and estimated cost across all diagnosis attempts.
    pub llm_usage: LlmUsage,
    pub timeline: Vec<TimelineEntry>,
    /// What was dropped or shortened to respect a size bound (empty in the full record).
    pub truncated: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct AppliedRemediation {
    pub remediation: String,
    pub action: ProposedAction,
    pub description: String,
    pub risk: Risk,
    pub approval: Option<ApprovalState>,
    pub approved_by: Option<String>,
    /// Final phase: `Succeeded`, `Failed` (undone), `Rejected`, `Refused`, `DryRun`, ...
    pub outcome: RemediationPhase,
    /// The exact patch applied (JSON), or `null` when nothing was applied.
    pub applied_patch: Option<String>,
    pub applied_at: Option<String>,
    /// The JSON merge patch that restores the pre-change state.
    pub undo_patch: Option<String>,
    pub verification: Option<String>,
    pub dry_run_result: Option<String>,
    pub pr_url: Option<String>,
}

impl AppliedRemediation {
    fn from_remediation(r: &Remediation) -> Self {
        let st = r.status.clone().unwrap_or_default();
        Self {
            remediation: r.metadata.name.clone().unwrap_or_default(),
            action: r.spec.action.clone(),
            description: r.spec.action.describe(),
            risk: r.spec.risk,
            approval: r.spec.approval.as_ref().map(|a| a.state),
            approved_by: r.spec.approval.as_ref().and_then(|a| a.by.clone()),
            outcome: st.phase,
            applied_patch: st.applied_patch,
            applied_at: st.applied_at,
            undo_patch: st.snapshot.map(|s| s.undo_patch),
            verification: st.verification.map(|v| v.message),
            dry_run_result: st.dry_run_result,
            pr_url: st.pr_url,
        }
    }
}

impl PostMortem {
    /// Builds the full record. `status` is the Incident's status as about to be written (the
    /// controller calls this while making the terminal transition); `remediations` are the
    /// Incident's own, in any order. Deterministic: the same inputs give the same JSON, so a
    /// content hash tells whether it must be written again.
    pub fn build(incident: &Incident, status: &IncidentStatus, remediations: &[Remediation], feedback_score: Option<u8>) -> Self {
        let ordered: Vec<AppliedRemediation> = status
            .remediations
            .iter()
            .filter_map(|name| remediations.iter().find(|r| r.metadata.name.as_deref() == Some(name.as_str())))
            .map(AppliedRemediation::from_remediation)
            .collect();
        let inputs = status.diagnosis_inputs.clone().unwrap_or_else(|| super::simulation::PromptInputs {
            // Recorded before `diagnosisInputs` existed: the best reconstruction we have.
            feedback: status.feedback.clone(),
            excluded_actions: Vec::new(),
            action_limits: ActionLimits::default(),
        });
        let closed_at = if status.phase.is_terminal() { status.timeline.last().map(|t| t.time.clone()) } else { None };
        Self {
            schema_version: SCHEMA_VERSION.into(),
            incident_name: incident.metadata.name.clone().unwrap_or_default(),
            incident_namespace: incident.metadata.namespace.clone().unwrap_or_default(),
            service: incident.spec.service.clone(),
            severity: incident.spec.severity,
            // The alarm reason is free text from outside (it may quote a key or a token); the
            // record leaves the cluster (S3), so it gets the same redaction as evidence.
            source: IncidentSource {
                reason: incident.spec.source.reason.as_deref().map(super::redact::redact_line),
                ..incident.spec.source.clone()
            },
            outcome: status.phase,
            created_at: incident.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()),
            closed_at,
            incident_signature: status.signature.clone(),
            root_cause_category: status.diagnosis.as_ref().and_then(|d| d.root_cause_category),
            remediation_action: ordered,
            human_feedback_score: feedback_score.filter(|s| (1..=5).contains(s)),
            simulation_context: SimulationContext {
                evidence: status.evidence.clone(),
                feedback: inputs.feedback,
                excluded_actions: inputs.excluded_actions,
                action_limits: inputs.action_limits,
                recorded_diagnosis: status.diagnosis.clone(),
            },
            llm_usage: status.llm_usage.clone().unwrap_or_default(),
            timeline: status.timeline.clone(),
            truncated: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn serialized_len(&self) -> usize {
        self.to_json().len()
    }

    /// A copy of at most `limit` bytes of JSON. The biggest and least essential parts go first
    /// (log tails, events, then the whole evidence bundle, ...); each cut is named in
    /// `truncated`, so a reader knows to fetch the full record for a replay.
    pub fn bounded(&self, limit: usize) -> PostMortem {
        let mut pm = self.clone();
        let cuts: [(&str, Cut); 8] = [
            ("simulation_context.evidence.logs", |p| {
                if let Some(e) = p.simulation_context.evidence.as_mut() {
                    e.logs.clear();
                    e.truncated = true;
                }
            }),
            ("simulation_context.evidence.events", |p| {
                if let Some(e) = p.simulation_context.evidence.as_mut() {
                    e.events.clear();
                    e.truncated = true;
                }
            }),
            ("simulation_context.evidence", |p| p.simulation_context.evidence = None),
            ("simulation_context.recorded_diagnosis.summary", |p| {
                if let Some(d) = p.simulation_context.recorded_diagnosis.as_mut() {
                    d.summary = trim(&d.summary);
                    d.cited_evidence.clear();
                    d.fallback_reason = d.fallback_reason.as_deref().map(trim);
                }
            }),
            ("timeline", |p| {
                let keep = 10.min(p.timeline.len());
                p.timeline.drain(..p.timeline.len() - keep);
                for t in &mut p.timeline {
                    t.message = trim(&t.message);
                }
            }),
            ("remediation_action.patches", |p| {
                for r in &mut p.remediation_action {
                    for s in [&mut r.applied_patch, &mut r.undo_patch, &mut r.dry_run_result, &mut r.verification] {
                        *s = s.as_deref().map(trim);
                    }
                }
            }),
            ("simulation_context.feedback", |p| {
                let f = &mut p.simulation_context.feedback;
                let keep = 5.min(f.len());
                f.drain(..f.len() - keep);
                for s in f.iter_mut() {
                    *s = trim(s);
                }
            }),
            // Last resort, so the bound always holds whatever the inputs.
            ("remediation_action", |p| p.remediation_action.clear()),
        ];
        for (what, cut) in cuts {
            if pm.serialized_len() <= limit {
                break;
            }
            cut(&mut pm);
            pm.truncated.push(what.to_string());
        }
        pm
    }
}

/// One way of making a copy smaller.
type Cut = fn(&mut PostMortem);

fn trim(s: &str) -> String {
    if s.chars().count() <= TRIMMED_TEXT {
        return s.to_string();
    }
    let mut t: String = s.chars().take(TRIMMED_TEXT).collect();
    t.push_str("…[truncated]");
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{
        ActionKind, Approval, Diagnosis, Evidence, IncidentSpec, RemediationSpec, RemediationStatus, Snapshot, SourceKind, Verification,
        VerificationResult, WorkloadRef,
    };
    use crate::domain::diagnoser::{DiagnosisInput, diagnose_with_rules};
    use crate::domain::evidence::{EventEvidence, LogTail};
    use crate::domain::simulation::PromptInputs;

    fn incident() -> Incident {
        let mut i = Incident::new(
            "oms-5xx",
            IncidentSpec {
                service: "oms".into(),
                severity: Severity::High,
                source: IncidentSource {
                    kind: SourceKind::CloudWatchAlarm,
                    alarm_name: Some("oms-5xx".into()),
                    alarm_arn: None,
                    region: Some("eu-west-1".into()),
                    state_change_time: None,
                    reason: Some("5xx > 5%".into()),
                    alert_name: None,
                    fingerprint: None,
                    metric: None,
                },
                target: WorkloadRef { kind: "Deployment".into(), name: "oms".into() },
                signal: None,
            },
        );
        i.metadata.namespace = Some("shop".into());
        i
    }

    fn remediation(name: &str, phase: RemediationPhase) -> Remediation {
        let mut a = ProposedAction::new(ActionKind::SetConfigMapKey, "oms-config");
        a.key = Some("POOL_SIZE".into());
        a.value = Some("10".into());
        let mut r = Remediation::new(
            name,
            RemediationSpec {
                incident_ref: "oms-5xx".into(),
                action: a,
                rationale: "restore".into(),
                risk: Risk::Low,
                approval: Some(Approval { state: ApprovalState::Approved, feedback: None, by: Some("salve-operator/policy".into()) }),
                verification: Verification::default(),
            },
        );
        r.status = Some(RemediationStatus {
            phase,
            applied_patch: Some(r#"{"data":{"POOL_SIZE":"10"}}"#.into()),
            snapshot: Some(Snapshot {
                target: "ConfigMap/oms-config".into(),
                resource_version: "7".into(),
                undo_patch: r#"{"data":{"POOL_SIZE":"0"}}"#.into(),
                restarts: 5,
                taken_at: "2026-01-01T00:01:00Z".into(),
            }),
            verification: Some(VerificationResult { deadline: "t".into(), passed: Some(true), message: "alarm OK".into() }),
            ..Default::default()
        });
        r
    }

    fn evidence(log_lines: usize) -> Evidence {
        Evidence {
            workload: "Deployment/oms".into(),
            desired_replicas: 2,
            logs: vec![LogTail { pod: "oms-1".into(), container: "oms".into(), lines: vec!["x".repeat(200); log_lines] }],
            events: vec![EventEvidence {
                reason: "BackOff".into(),
                object: "Pod/oms-1".into(),
                message: "y".repeat(100),
                type_: "Warning".into(),
            }],
            ..Default::default()
        }
    }

    fn resolved_status(ev: Evidence) -> IncidentStatus {
        let input = DiagnosisInput { evidence: ev.clone(), feedback: vec!["not a restart".into()], ..Default::default() };
        let diagnosis: Diagnosis = diagnose_with_rules(&input);
        IncidentStatus {
            phase: IncidentPhase::Resolved,
            signature: Some("sha256:abc".into()),
            evidence: Some(ev),
            diagnosis: Some(diagnosis),
            diagnosis_inputs: Some(PromptInputs::from(&input)),
            remediations: vec!["oms-5xx-r1".into(), "oms-5xx-r2".into()],
            timeline: vec![TimelineEntry { time: "2026-01-01T00:05:00Z".into(), phase: IncidentPhase::Resolved, message: "ok".into() }],
            ..Default::default()
        }
    }

    #[test]
    fn json_has_exactly_the_documented_top_level_keys() {
        let pm = PostMortem::build(&incident(), &resolved_status(evidence(3)), &[], None);
        let v: serde_json::Value = serde_json::from_str(&pm.to_json()).expect("json");
        let mut keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "closed_at",
                "created_at",
                "human_feedback_score",
                "incident_name",
                "incident_namespace",
                "incident_signature",
                "llm_usage",
                "outcome",
                "remediation_action",
                "root_cause_category",
                "schema_version",
                "service",
                "severity",
                "simulation_context",
                "source",
                "timeline",
                "truncated"
            ]
        );
        assert!(v["human_feedback_score"].is_null(), "no score yet is an explicit null");
        let mut ctx: Vec<&str> = v["simulation_context"].as_object().expect("object").keys().map(String::as_str).collect();
        ctx.sort_unstable();
        assert_eq!(ctx, ["action_limits", "evidence", "excluded_actions", "feedback", "recorded_diagnosis"]);
    }

    #[test]
    fn builder_records_remediations_in_order_with_patch_outcome_and_undo() {
        // Given out of order, with a stranger that is not this incident's.
        let rems = [remediation("oms-5xx-r2", RemediationPhase::Succeeded), remediation("other", RemediationPhase::Failed), {
            remediation("oms-5xx-r1", RemediationPhase::Failed)
        }];
        let pm = PostMortem::build(&incident(), &resolved_status(evidence(3)), &rems, Some(4));
        let names: Vec<&str> = pm.remediation_action.iter().map(|r| r.remediation.as_str()).collect();
        assert_eq!(names, ["oms-5xx-r1", "oms-5xx-r2"]);
        let last = &pm.remediation_action[1];
        assert_eq!(last.outcome, RemediationPhase::Succeeded);
        assert_eq!(last.applied_patch.as_deref(), Some(r#"{"data":{"POOL_SIZE":"10"}}"#));
        assert_eq!(last.undo_patch.as_deref(), Some(r#"{"data":{"POOL_SIZE":"0"}}"#));
        assert_eq!(last.description, "set ConfigMap oms-config key POOL_SIZE");
        assert_eq!(pm.human_feedback_score, Some(4));
        assert_eq!(pm.outcome, IncidentPhase::Resolved);
        assert_eq!(pm.closed_at.as_deref(), Some("2026-01-01T00:05:00Z"));
        assert_eq!(pm.simulation_context.feedback, ["not a restart"]);
        assert_eq!(pm.incident_namespace, "shop");
        assert!(pm.simulation_context.recorded_diagnosis.is_some());
    }

    #[test]
    fn scores_outside_one_to_five_are_not_recorded() {
        let st = resolved_status(evidence(1));
        assert_eq!(PostMortem::build(&incident(), &st, &[], Some(0)).human_feedback_score, None);
        assert_eq!(PostMortem::build(&incident(), &st, &[], Some(6)).human_feedback_score, None);
    }

    #[test]
    fn small_records_are_kept_whole() {
        let pm = PostMortem::build(&incident(), &resolved_status(evidence(3)), &[], None);
        assert_eq!(pm.bounded(STATUS_COPY_LIMIT), pm);
    }

    #[test]
    fn big_records_are_trimmed_under_the_bound_and_say_what_was_dropped() {
        let pm = PostMortem::build(
            &incident(),
            &resolved_status(evidence(400)),
            &[remediation("oms-5xx-r1", RemediationPhase::Succeeded)],
            None,
        );
        assert!(pm.serialized_len() > STATUS_COPY_LIMIT, "the fixture is over the bound");
        let b = pm.bounded(STATUS_COPY_LIMIT);
        assert!(b.serialized_len() <= STATUS_COPY_LIMIT);
        assert_eq!(b.truncated, ["simulation_context.evidence.logs"], "only the log tails had to go");
        let ev = b.simulation_context.evidence.as_ref().expect("the rest of the evidence stays");
        assert!(ev.truncated && ev.logs.is_empty() && !ev.events.is_empty());
        assert_eq!(b.remediation_action, pm.remediation_action, "the applied patch is kept");
        assert_eq!(b.incident_signature, pm.incident_signature);
    }

    #[test]
    fn the_bound_holds_whatever_the_inputs() {
        let mut st = resolved_status(evidence(10));
        st.feedback = vec!["f".repeat(50_000)];
        st.diagnosis_inputs = None;
        let mut r = remediation("oms-5xx-r1", RemediationPhase::Succeeded);
        if let Some(s) = r.status.as_mut() {
            s.applied_patch = Some("p".repeat(100_000));
        }
        let pm = PostMortem::build(&incident(), &st, &[r], None);
        let b = pm.bounded(4096);
        assert!(b.serialized_len() <= 4096, "{} bytes", b.serialized_len());
        assert!(b.truncated.contains(&"simulation_context.evidence".to_string()));
    }
}
