//! The post-mortem: what happened, what was changed (the exact patch and how to undo it), how a
//! person scored the outcome, and everything needed to replay the diagnosis offline. Assembled
//! from an Incident and its Remediations by `controllers::post_mortem`; stored in full in a ConfigMap (and S3 when configured) and
//! as a size-bounded copy in the Incident's status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::action::{ProposedAction, Risk};
use super::approval::ApprovalState;
use super::diagnoser::RootCause;
use super::llm_usage::LlmUsage;
use super::phase::{IncidentPhase, RemediationPhase};
use super::simulation::SimulationContext;
use super::source::{IncidentSource, Severity};
use super::timeline::TimelineEntry;

/// Label of post-mortem ConfigMaps: records, not configuration (the ConfigMap history skips them).
pub const POST_MORTEM_LABEL: &str = "salve.dev/post-mortem";

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
    /// Boxed: most copies in memory (the controller's cache) have it emptied.
    pub simulation_context: Box<SimulationContext>,
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

impl PostMortem {
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
