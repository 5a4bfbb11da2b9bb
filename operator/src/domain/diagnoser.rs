//! The `Diagnoser` port and the offline rule-based adapter. The Bedrock adapter (next issue)
//! implements the same trait. A diagnosis proposes an action as data; the policy decides.

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::action::{ActionKind, ProposedAction};
use super::evidence::Evidence;
use super::quantity::{format_bytes, parse_bytes};
use super::signature::content_hash;

#[allow(non_camel_case_types)]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RootCause {
    Code_Bug,
    Config_Error,
    Permission_Issue,
    Resource_Limit,
    External_Dependency,
}

impl RootCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code_Bug => "Code_Bug",
            Self::Config_Error => "Config_Error",
            Self::Permission_Issue => "Permission_Issue",
            Self::Resource_Limit => "Resource_Limit",
            Self::External_Dependency => "External_Dependency",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    /// `None` when the evidence fits no known pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause_category: Option<RootCause>,
    pub summary: String,
    /// 0.0 – 1.0.
    pub confidence: f64,
    /// `rules/v1` for the offline diagnoser, the model id for Bedrock.
    pub model: String,
    pub prompt_hash: String,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_action: Option<ProposedAction>,
    /// Evidence the model cited (pod names, event reasons, log lines), for the reviewer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cited_evidence: Vec<String>,
    /// Estimated model cost in USD from the token use and the configured prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<f64>,
    /// Set when the configured model failed and the offline diagnoser answered instead: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

/// Everything a diagnoser may look at.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiagnosisInput {
    pub evidence: Evidence,
    /// Feedback from people who rejected earlier proposals, oldest first.
    pub feedback: Vec<String>,
    /// Actions already rejected or failed for this incident; not proposed again.
    pub excluded: Vec<ActionKind>,
    pub limits: ActionLimits,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionLimits {
    pub max_memory: String,
    pub max_replicas: i32,
}

impl Default for ActionLimits {
    fn default() -> Self {
        Self { max_memory: "2Gi".into(), max_replicas: 10 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error("diagnoser unavailable: {0}")]
    Unavailable(String),
    #[error("diagnoser answer invalid: {0}")]
    InvalidAnswer(String),
}

/// One diagnosis with the input it was given: what an investigation produces and the status
/// records.
#[derive(Clone, Debug)]
pub struct Investigation {
    pub input: DiagnosisInput,
    pub diagnosis: Diagnosis,
}

pub trait Diagnoser: Send + Sync {
    fn diagnose<'a>(&'a self, input: &'a DiagnosisInput) -> BoxFuture<'a, Result<Diagnosis, DiagnoseError>>;
}

/// Offline, deterministic diagnoser: an ordered list of rules over the evidence.
#[derive(Clone, Debug, Default)]
pub struct RuleBasedDiagnoser;

pub const RULES_MODEL: &str = "rules/v1";

impl Diagnoser for RuleBasedDiagnoser {
    fn diagnose<'a>(&'a self, input: &'a DiagnosisInput) -> BoxFuture<'a, Result<Diagnosis, DiagnoseError>> {
        Box::pin(async move { Ok(diagnose_with_rules(input)) })
    }
}

struct Candidate {
    category: RootCause,
    confidence: f64,
    summary: String,
    action: Option<ProposedAction>,
}

fn workload_name(ev: &Evidence) -> &str {
    ev.workload.split_once('/').map_or(ev.workload.as_str(), |(_, n)| n)
}

const LOAD_WORDS: [&str; 6] = ["latency", "load", "throughput", "cpu", "saturat", "p99"];

/// All rules that match, best first. Several may match one bundle (OOM under load, say), so
/// a rejected or failed first choice falls through to the next.
fn candidates(input: &DiagnosisInput) -> Vec<Candidate> {
    let ev = &input.evidence;
    let name = workload_name(ev);
    let crashing: Vec<&str> = ev.crash_looping_pods().map(|p| p.name.as_str()).collect();
    let oom: Vec<&str> = ev.oom_killed_pods().map(|p| p.name.as_str()).collect();
    let mut out = Vec::new();

    // 1. A ConfigMap change followed by crash loops: restore the value seen before the change.
    if !crashing.is_empty() {
        for c in ev.config_changes.iter().filter(|c| !c.redacted) {
            if let Some(prev) = &c.previous {
                let mut a = ProposedAction::new(ActionKind::SetConfigMapKey, &c.config_map);
                a.key = Some(c.key.clone());
                a.value = Some(prev.clone());
                out.push(Candidate {
                    category: RootCause::Config_Error,
                    confidence: 0.8,
                    summary: format!(
                        "ConfigMap {} key {} changed from {:?} to {:?} at {}, then {} pod(s) crash-looped ({}); restore the previous value.",
                        c.config_map,
                        c.key,
                        prev,
                        c.current.as_deref().unwrap_or(""),
                        c.observed_at,
                        crashing.len(),
                        crashing.join(", ")
                    ),
                    action: Some(a),
                });
                break;
            }
        }
    }

    // 2. OOMKilled: raise the memory limit (doubling, capped by the bound), then scale out.
    if !oom.is_empty() {
        let max = parse_bytes(&input.limits.max_memory);
        if let Some(c) = ev.containers.first()
            && let (Some(cur), Some(max)) = (c.memory_limit.as_deref().and_then(parse_bytes), max)
            && cur < max
        {
            let mut a = ProposedAction::new(ActionKind::SetDeploymentResources, name);
            a.container = Some(c.name.clone());
            a.memory_limit = Some(format_bytes(cur.saturating_mul(2).min(max)));
            out.push(Candidate {
                category: RootCause::Resource_Limit,
                confidence: 0.85,
                summary: format!(
                    "{} pod(s) were OOMKilled ({}) with memory limit {}; raise it to {} (bound {}).",
                    oom.len(),
                    oom.join(", "),
                    c.memory_limit.as_deref().unwrap_or("?"),
                    a.memory_limit.as_deref().unwrap_or("?"),
                    input.limits.max_memory
                ),
                action: Some(a),
            });
        }
        if ev.desired_replicas < input.limits.max_replicas {
            let mut a = ProposedAction::new(ActionKind::Scale, name);
            a.replicas = Some((ev.desired_replicas + 1).max(ev.desired_replicas * 3 / 2).min(input.limits.max_replicas));
            out.push(Candidate {
                category: RootCause::Resource_Limit,
                confidence: 0.6,
                summary: format!(
                    "{} pod(s) were OOMKilled ({}); spread the load by scaling from {} to {} replicas.",
                    oom.len(),
                    oom.join(", "),
                    ev.desired_replicas,
                    a.replicas.unwrap_or_default()
                ),
                action: Some(a),
            });
        }
    }

    // 3. A bad rollout: the newest revision crash-loops while an older one exists.
    if !crashing.is_empty() && oom.is_empty() && ev.rollouts.len() >= 2 {
        let mut revs: Vec<_> = ev.rollouts.iter().collect();
        revs.sort_by_key(|r| r.revision);
        if let [.., prev, newest] = revs.as_slice() {
            let on_newest =
                ev.pods.iter().filter(|p| crashing.contains(&p.name.as_str())).all(|p| p.revision.is_none_or(|r| r == newest.revision));
            if on_newest {
                let mut a = ProposedAction::new(ActionKind::Rollback, name);
                a.revision = Some(prev.revision);
                out.push(Candidate {
                    category: RootCause::Code_Bug,
                    confidence: 0.75,
                    summary: format!(
                        "Revision {} ({}) crash-loops ({}); revision {} ({}) ran before; roll back.",
                        newest.revision,
                        newest.images.join(","),
                        crashing.join(", "),
                        prev.revision,
                        prev.images.join(",")
                    ),
                    action: Some(a),
                });
            }
        }
    }

    // 4. Unavailable replicas under load, without crashes: scale out within the bound.
    let unavailable = ev.unavailable_replicas > 0 || ev.ready_replicas < ev.desired_replicas;
    let signal = ev.signal.to_ascii_lowercase();
    let under_load =
        LOAD_WORDS.iter().any(|w| signal.contains(w)) || ev.events.iter().any(|e| e.message.contains("Readiness probe failed"));
    if unavailable && under_load && crashing.is_empty() && oom.is_empty() && ev.desired_replicas < input.limits.max_replicas {
        let mut a = ProposedAction::new(ActionKind::Scale, name);
        let target = (ev.desired_replicas * 2).max(ev.desired_replicas + 1).min(input.limits.max_replicas);
        a.replicas = Some(target);
        out.push(Candidate {
            category: RootCause::Resource_Limit,
            confidence: 0.65,
            summary: format!(
                "{} of {} replicas ready under load (signal: {:?}); scale to {} (bound {}).",
                ev.ready_replicas, ev.desired_replicas, ev.signal, target, input.limits.max_replicas
            ),
            action: Some(a),
        });
    }

    // 5. Categories without a safe in-cluster action: escalate with a cited summary.
    let lines = || ev.logs.iter().flat_map(|l| l.lines.iter()).chain(ev.events.iter().map(|e| &e.message));
    if let Some(l) = lines().find(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("forbidden") || l.contains("accessdenied") || l.contains("permission denied")
    }) {
        out.push(Candidate {
            category: RootCause::Permission_Issue,
            confidence: 0.6,
            summary: format!("Permission error in logs/events: {l:?}. No safe automatic action; escalate."),
            action: None,
        });
    }
    if let Some(l) = lines().find(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("connection refused") || l.contains("timed out") || l.contains("unreachable") || l.contains(" 503")
    }) {
        out.push(Candidate {
            category: RootCause::External_Dependency,
            confidence: 0.5,
            summary: format!("A dependency is failing: {l:?}. No safe automatic action; escalate."),
            action: None,
        });
    }
    out
}

/// Pure entry point, also used by post-mortem replay.
pub fn diagnose_with_rules(input: &DiagnosisInput) -> Diagnosis {
    let all = candidates(input);
    let chosen = all.into_iter().find(|c| c.action.as_ref().is_none_or(|a| !input.excluded.contains(&a.kind)));
    let feedback = if input.feedback.is_empty() { String::new() } else { format!(" Feedback considered: {}.", input.feedback.join(" | ")) };
    let excluded = if input.excluded.is_empty() {
        String::new()
    } else {
        let k: Vec<&str> = input.excluded.iter().map(|k| k.as_str()).collect();
        format!(" Not proposing again: {}.", k.join(", "))
    };
    let prompt_hash = content_hash(&serde_json::to_string(input).unwrap_or_default());
    match chosen {
        Some(c) => Diagnosis {
            root_cause_category: Some(c.category),
            summary: format!("{}{feedback}{excluded}", c.summary),
            confidence: c.confidence,
            model: RULES_MODEL.into(),
            prompt_hash,
            input_tokens: 0,
            output_tokens: 0,
            proposed_action: c.action,
            cited_evidence: Vec::new(),
            estimated_cost_usd: None,
            fallback_reason: None,
        },
        None => Diagnosis {
            root_cause_category: None,
            summary: format!(
                "No rule matches the evidence for {} ({} pod(s), {} ready of {} desired, {} event(s)); escalating to a person.{feedback}{excluded}",
                ev_name(input),
                input.evidence.pods.len(),
                input.evidence.ready_replicas,
                input.evidence.desired_replicas,
                input.evidence.events.len()
            ),
            confidence: 0.0,
            model: RULES_MODEL.into(),
            prompt_hash,
            input_tokens: 0,
            output_tokens: 0,
            proposed_action: None,
            cited_evidence: Vec::new(),
            estimated_cost_usd: None,
            fallback_reason: None,
        },
    }
}

fn ev_name(input: &DiagnosisInput) -> &str {
    &input.evidence.workload
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::evidence::*;

    fn pod(name: &str, f: impl FnOnce(&mut PodEvidence)) -> PodEvidence {
        let mut p = PodEvidence { name: name.into(), phase: "Running".into(), ready: true, ..Default::default() };
        f(&mut p);
        p
    }

    fn base() -> Evidence {
        Evidence {
            workload: "Deployment/oms".into(),
            desired_replicas: 2,
            ready_replicas: 0,
            containers: vec![ContainerEvidence { name: "oms".into(), memory_limit: Some("256Mi".into()), image: None }],
            ..Default::default()
        }
    }

    fn crashloop(p: &mut PodEvidence) {
        p.ready = false;
        p.restarts = 5;
        p.waiting_reason = Some("CrashLoopBackOff".into());
        p.last_termination_reason = Some("Error".into());
    }

    fn run(ev: Evidence) -> Diagnosis {
        diagnose_with_rules(&DiagnosisInput { evidence: ev, ..Default::default() })
    }

    #[test]
    fn config_change_then_crashloop_restores_previous_value() {
        let mut ev = base();
        ev.pods = vec![pod("oms-1", crashloop)];
        ev.config_changes = vec![ConfigChange {
            config_map: "oms-config".into(),
            key: "DB_POOL_SIZE".into(),
            previous: Some("10".into()),
            current: Some("0".into()),
            observed_at: "2026-01-01T00:00:00Z".into(),
            redacted: false,
        }];
        let d = run(ev);
        assert_eq!(d.root_cause_category, Some(RootCause::Config_Error));
        let a = d.proposed_action.expect("action");
        assert_eq!(a.kind, ActionKind::SetConfigMapKey);
        assert_eq!(a.target_name, "oms-config");
        assert_eq!(a.key.as_deref(), Some("DB_POOL_SIZE"));
        assert_eq!(a.value.as_deref(), Some("10"));
        assert!(d.summary.contains("DB_POOL_SIZE") && d.summary.contains("oms-1"), "summary cites evidence");
    }

    #[test]
    fn redacted_config_change_is_not_restored() {
        let mut ev = base();
        ev.pods = vec![pod("oms-1", crashloop)];
        ev.config_changes = vec![ConfigChange {
            config_map: "c".into(),
            key: "API_TOKEN".into(),
            previous: Some("[REDACTED]".into()),
            redacted: true,
            ..Default::default()
        }];
        assert_ne!(run(ev).proposed_action.map(|a| a.kind), Some(ActionKind::SetConfigMapKey));
    }

    #[test]
    fn oom_raises_memory_within_bound() {
        let mut ev = base();
        ev.pods = vec![pod("oms-1", |p| p.last_termination_reason = Some("OOMKilled".into()))];
        let d = run(ev.clone());
        assert_eq!(d.root_cause_category, Some(RootCause::Resource_Limit));
        let a = d.proposed_action.expect("action");
        assert_eq!(a.kind, ActionKind::SetDeploymentResources);
        assert_eq!(a.memory_limit.as_deref(), Some("512Mi"));

        ev.containers[0].memory_limit = Some("1536Mi".into());
        let a = run(ev).proposed_action.expect("action");
        assert_eq!(a.memory_limit.as_deref(), Some("2Gi"), "capped at the bound");
    }

    #[test]
    fn rejected_memory_raise_falls_back_to_scaling_with_feedback() {
        let mut ev = base();
        ev.pods = vec![pod("oms-1", |p| p.last_termination_reason = Some("OOMKilled".into()))];
        let d = diagnose_with_rules(&DiagnosisInput {
            evidence: ev,
            feedback: vec!["memory budget is fixed, scale out instead".into()],
            excluded: vec![ActionKind::SetDeploymentResources],
            ..Default::default()
        });
        let a = d.proposed_action.expect("action");
        assert_eq!(a.kind, ActionKind::Scale);
        assert_eq!(a.replicas, Some(3));
        assert!(d.summary.contains("memory budget is fixed"));
    }

    #[test]
    fn bad_rollout_rolls_back() {
        let mut ev = base();
        ev.rollouts = vec![
            RolloutEvidence { revision: 1, replica_set: "oms-a".into(), images: vec!["oms:1".into()], created: String::new() },
            RolloutEvidence { revision: 2, replica_set: "oms-b".into(), images: vec!["oms:2".into()], created: String::new() },
        ];
        ev.pods = vec![pod("oms-b-1", |p| {
            crashloop(p);
            p.revision = Some(2);
        })];
        let d = run(ev);
        assert_eq!(d.root_cause_category, Some(RootCause::Code_Bug));
        let a = d.proposed_action.expect("action");
        assert_eq!(a.kind, ActionKind::Rollback);
        assert_eq!(a.revision, Some(1));
    }

    #[test]
    fn unavailable_under_load_scales_within_bound() {
        let mut ev = base();
        ev.desired_replicas = 6;
        ev.ready_replicas = 3;
        ev.signal = "p99 latency above 2s".into();
        let d = diagnose_with_rules(&DiagnosisInput {
            evidence: ev,
            limits: ActionLimits { max_memory: "2Gi".into(), max_replicas: 8 },
            ..Default::default()
        });
        let a = d.proposed_action.expect("action");
        assert_eq!(a.kind, ActionKind::Scale);
        assert_eq!(a.replicas, Some(8));
    }

    #[test]
    fn nothing_fits_escalates_with_summary() {
        let mut ev = base();
        ev.ready_replicas = 2;
        let d = run(ev);
        assert_eq!(d.root_cause_category, None);
        assert!(d.proposed_action.is_none());
        assert!(d.summary.contains("No rule matches"));
    }

    #[test]
    fn dependency_errors_escalate_without_action() {
        let mut ev = base();
        ev.logs = vec![LogTail { pod: "p".into(), container: "c".into(), lines: vec!["dial tcp: connection refused".into()] }];
        let d = run(ev);
        assert_eq!(d.root_cause_category, Some(RootCause::External_Dependency));
        assert!(d.proposed_action.is_none());
    }

    #[test]
    fn failed_action_is_not_proposed_again() {
        let mut ev = base();
        ev.pods = vec![pod("oms-1", crashloop)];
        ev.config_changes =
            vec![ConfigChange { config_map: "c".into(), key: "k".into(), previous: Some("1".into()), ..Default::default() }];
        let d = diagnose_with_rules(&DiagnosisInput { evidence: ev, excluded: vec![ActionKind::SetConfigMapKey], ..Default::default() });
        assert!(d.proposed_action.is_none());
    }
}
