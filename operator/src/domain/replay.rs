//! Offline replay of a post-mortem's diagnosis: the rule-based diagnoser runs again on the
//! recorded simulation context, and the result is compared with what was recorded. Used by
//! `operator replay --file postmortem.json`.

use serde::Serialize;
use serde_json::Value;

use super::diagnoser::{Diagnosis, RULES_MODEL};
use super::diagnosis::diagnose_with_rules;
use super::investigation::answer;
use super::post_mortem::{PostMortem, SCHEMA_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the file is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("the JSON is not a Salve post-mortem: {0}")]
    NotAPostMortem(String),
    #[error("unsupported post-mortem schema {found:?} (this operator reads {SCHEMA_VERSION:?})")]
    Schema { found: String },
    #[error(
        "this post-mortem copy carries no evidence (trimmed: {0}); replay the full record from the ConfigMap `<incident>-postmortem` or S3"
    )]
    NoEvidence(String),
}

/// Reads a post-mortem from the forms a user gets it in: the JSON itself (ConfigMap data, S3
/// object, `kubectl get incident -o jsonpath='{.status.postMortem}'`), or the whole ConfigMap or
/// Incident as JSON (`kubectl get ... -o json`).
pub fn parse_post_mortem(text: &str) -> Result<PostMortem, ReplayError> {
    let v: Value = serde_json::from_str(text).map_err(ReplayError::Json)?;
    let v = if let Some(Value::String(inner)) = v.pointer("/data/postmortem.json") {
        serde_json::from_str(inner).map_err(ReplayError::Json)?
    } else if let Some(pm) = v.pointer("/status/postMortem") {
        pm.clone()
    } else {
        v
    };
    match v.get("schema_version") {
        Some(Value::String(s)) if s == SCHEMA_VERSION => {}
        Some(other) => return Err(ReplayError::Schema { found: other.as_str().unwrap_or_default().to_string() }),
        None => return Err(ReplayError::NotAPostMortem("no schema_version field".into())),
    }
    serde_json::from_value(v).map_err(|e| ReplayError::NotAPostMortem(e.to_string()))
}

#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    pub incident: String,
    pub recorded: Option<Diagnosis>,
    pub replayed: Diagnosis,
    pub category_matches: bool,
    pub action_matches: bool,
    /// Meaningful when the recorded diagnosis came from the same rules (a model's prompt hash
    /// covers its own prompt text).
    pub prompt_hash_matches: bool,
    /// True when both category and proposed action match.
    pub matches: bool,
    /// A model's recorded investigation: how many tool calls it made, and whether every
    /// answered call, re-run offline against the recorded evidence, gives the recorded answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub investigation: Option<InvestigationReplay>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct InvestigationReplay {
    pub calls: usize,
    pub refused: usize,
    pub answers_match: bool,
}

/// Re-runs each answered tool call of a recorded investigation on the evidence.
fn replay_investigation(d: &Diagnosis, evidence: &super::evidence::Evidence) -> Option<InvestigationReplay> {
    if d.investigation.is_empty() {
        return None;
    }
    let answered: Vec<_> = d.investigation.iter().filter(|x| !x.refused).collect();
    let answers_match = answered.iter().all(|x| answer(evidence, &x.tool, &x.input).unwrap_or_else(|why| why) == x.answer);
    Some(InvestigationReplay { calls: d.investigation.len(), refused: d.investigation.len() - answered.len(), answers_match })
}

pub fn replay_offline(pm: &PostMortem) -> Result<ReplayReport, ReplayError> {
    let ctx = &pm.simulation_context;
    let input = ctx.diagnosis_input().ok_or_else(|| ReplayError::NoEvidence(pm.truncated.join(", ")))?;
    let replayed = diagnose_with_rules(&input);
    let recorded = ctx.recorded_diagnosis.clone();
    let investigation = recorded.as_ref().and_then(|d| replay_investigation(d, &input.evidence));
    let category_matches = recorded.as_ref().map(|d| d.root_cause_category) == Some(replayed.root_cause_category);
    let action_matches = recorded.as_ref().map(|d| &d.proposed_action) == Some(&replayed.proposed_action);
    let prompt_hash_matches = recorded.as_ref().is_some_and(|d| d.prompt_hash == replayed.prompt_hash);
    let note = match &recorded {
        None => Some("no diagnosis was recorded".to_string()),
        Some(d) if d.model != RULES_MODEL => {
            Some(format!("recorded by model {}; replayed with the offline rules ({RULES_MODEL})", d.model))
        }
        Some(_) if !pm.truncated.is_empty() => Some(format!("trimmed copy ({}); the evidence may be incomplete", pm.truncated.join(", "))),
        Some(_) => None,
    };
    Ok(ReplayReport {
        incident: format!("{}/{}", pm.incident_namespace, pm.incident_name),
        recorded,
        replayed,
        category_matches,
        action_matches,
        prompt_hash_matches,
        matches: category_matches && action_matches,
        investigation,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::diagnoser::DiagnosisInput;
    use crate::domain::evidence::{ContainerEvidence, Evidence, PodEvidence};
    use crate::domain::post_mortem::STATUS_COPY_LIMIT;
    use crate::domain::simulation::SimulationContext;

    fn oom_post_mortem() -> PostMortem {
        let evidence = Evidence {
            workload: "Deployment/oms".into(),
            desired_replicas: 2,
            containers: vec![ContainerEvidence { name: "oms".into(), memory_limit: Some("256Mi".into()), ..Default::default() }],
            pods: vec![PodEvidence {
                name: "oms-1".into(),
                phase: "Running".into(),
                restarts: 3,
                last_termination_reason: Some("OOMKilled".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let input = DiagnosisInput { evidence: evidence.clone(), feedback: vec!["too risky".into()], ..Default::default() };
        let recorded = diagnose_with_rules(&input);
        let json = serde_json::json!({
            "schema_version": SCHEMA_VERSION, "incident_name": "oms-oom", "incident_namespace": "shop", "service": "oms",
            "severity": "High", "source": {"kind": "Manual"}, "outcome": "Resolved", "created_at": null, "closed_at": null,
            "incident_signature": "sha256:x", "root_cause_category": "Resource_Limit", "remediation_action": [],
            "human_feedback_score": null, "llm_usage": {}, "timeline": [], "truncated": [],
            "simulation_context": SimulationContext {
                evidence: Some(evidence), feedback: input.feedback.clone(), excluded_actions: vec![], action_limits: input.limits.clone(),
                recorded_diagnosis: Some(recorded),
            },
        });
        serde_json::from_value(json).expect("post-mortem")
    }

    #[test]
    fn replay_of_a_rules_diagnosis_matches_exactly() {
        let r = replay_offline(&oom_post_mortem()).expect("replay");
        assert!(r.category_matches && r.action_matches && r.prompt_hash_matches && r.matches);
        assert_eq!(r.incident, "shop/oms-oom");
        assert!(r.note.is_none());
    }

    #[test]
    fn a_different_recorded_action_is_reported_as_a_mismatch() {
        let mut pm = oom_post_mortem();
        if let Some(d) = pm.simulation_context.recorded_diagnosis.as_mut() {
            d.model = "anthropic.claude-test".into();
            d.proposed_action = None;
        }
        let r = replay_offline(&pm).expect("replay");
        assert!(r.category_matches && !r.action_matches && !r.matches);
        assert!(r.note.is_some_and(|n| n.contains("anthropic.claude-test")));
    }

    #[test]
    fn a_recorded_investigation_is_re_run_offline() {
        use crate::domain::investigation::ToolExchange;
        let mut pm = oom_post_mortem();
        let evidence = pm.simulation_context.evidence.clone().expect("evidence");
        let describe = answer(&evidence, "describe_pod", &serde_json::json!({"pod": "oms-1"})).expect("answer");
        if let Some(d) = pm.simulation_context.recorded_diagnosis.as_mut() {
            d.model = "anthropic.claude-test".into();
            d.investigation = vec![
                ToolExchange { tool: "describe_pod".into(), input: serde_json::json!({"pod": "oms-1"}), answer: describe, refused: false },
                ToolExchange { tool: "kubectl_delete".into(), input: serde_json::json!({}), answer: "not available".into(), refused: true },
            ];
        }
        let r = replay_offline(&pm).expect("replay");
        assert_eq!(r.investigation, Some(InvestigationReplay { calls: 2, refused: 1, answers_match: true }));
        if let Some(d) = pm.simulation_context.recorded_diagnosis.as_mut() {
            d.investigation[0].answer = "something else".into();
        }
        assert_eq!(replay_offline(&pm).expect("replay").investigation.map(|i| i.answers_match), Some(false));
    }

    #[test]
    fn the_post_mortem_is_found_inside_a_config_map_or_an_incident() {
        let pm = oom_post_mortem();
        let cm = serde_json::json!({"kind": "ConfigMap", "data": {"postmortem.json": pm.to_json()}}).to_string();
        assert_eq!(parse_post_mortem(&cm).expect("from ConfigMap"), pm);
        let inc = serde_json::json!({"kind": "Incident", "status": {"postMortem": pm.bounded(STATUS_COPY_LIMIT)}}).to_string();
        assert_eq!(parse_post_mortem(&inc).expect("from Incident"), pm);
    }

    #[test]
    fn broken_or_foreign_files_are_clear_errors() {
        assert!(matches!(parse_post_mortem("{not json"), Err(ReplayError::Json(_))));
        assert!(matches!(parse_post_mortem(r#"{"kind": "Pod"}"#), Err(ReplayError::NotAPostMortem(_))));
        assert!(matches!(parse_post_mortem(r#"{"schema_version": "v0"}"#), Err(ReplayError::Schema { .. })));
        let bad = serde_json::json!({"schema_version": SCHEMA_VERSION, "incident_name": 7}).to_string();
        assert!(matches!(parse_post_mortem(&bad), Err(ReplayError::NotAPostMortem(_))));
        let mut trimmed = oom_post_mortem();
        trimmed.simulation_context.evidence = None;
        trimmed.truncated = vec!["simulation_context.evidence".into()];
        let e = replay_offline(&trimmed).expect_err("no evidence");
        assert!(e.to_string().contains("full record"), "{e}");
    }
}
