//! The blast radius: what an Incident is about, and so the only objects a remediation of it may
//! change. Whoever proposes the action (the rules, the model, or a person writing a
//! Remediation) and whatever the evidence's text says, a target must be one of:
//!
//! - the Incident's workload itself (Salve changes Deployments only);
//! - a ConfigMap the workload's pod template reads (env, envFrom or a volume);
//! - the HorizontalPodAutoscaler that scales the workload;
//!
//! all in the Incident's namespace (the Remediation lives there and names targets by name only).
//! A pull request changes a repository, not a cluster object: the policy bounds it by
//! repository and path instead.

use std::collections::{BTreeMap, BTreeSet};

use super::action::{ActionKind, ProposedAction};

/// What the Incident's workload reaches, gathered when a decision is made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlastRadius {
    pub workload_kind: String,
    pub workload_name: String,
    /// The workload's own labels (the protected label is checked on it as well as on the target:
    /// every change in the radius ends up in the workload's pods, a follow-up restart included).
    pub workload_labels: BTreeMap<String, String>,
    /// ConfigMaps the pod template reads.
    pub config_maps: BTreeSet<String>,
    /// HorizontalPodAutoscalers whose `scaleTargetRef` is the workload.
    pub autoscalers: BTreeSet<String>,
    /// Replicas the workload was asked for when the incident was investigated, before any
    /// remediation (the evidence records it); `None` when no evidence was recorded.
    pub replicas_before: Option<i32>,
    /// Replicas it is asked for now.
    pub replicas_now: i32,
}

impl BlastRadius {
    fn workload(&self) -> String {
        format!("{}/{}", self.workload_kind, self.workload_name)
    }

    /// Why `action` reaches outside the radius, or `None` when it stays inside.
    pub fn refusal(&self, action: &ProposedAction) -> Option<String> {
        let name = &action.target_name;
        match action.kind {
            ActionKind::PullRequest => None,
            ActionKind::SetConfigMapKey => (!self.config_maps.contains(name))
                .then(|| format!("ConfigMap {name} is not read by the pod template of {}, the incident's workload", self.workload())),
            ActionKind::SetHpaMaxReplicas => (!self.autoscalers.contains(name))
                .then(|| format!("HorizontalPodAutoscaler {name} does not scale {}, the incident's workload", self.workload())),
            _ => {
                let same = self.workload_kind == "Deployment" && &self.workload_name == name;
                (!same).then(|| format!("Deployment {name} is not {}, the incident's workload", self.workload()))
            }
        }
    }

    /// The fewest replicas a Scale may ask for: never 0, and never fewer than the workload had
    /// before the incident (scaling in is not a remediation of a failure).
    pub fn replica_floor(&self) -> i32 {
        self.replicas_before.unwrap_or(self.replicas_now).max(1)
    }
}

/// Whether `proposed` is `full` or the form bounded evidence shows of it: cut with a trailing
/// `…`, or with `[REDACTED…]` markers where redaction took something out. A restore proposed from
/// evidence names the value this way; what is written is always the full value.
pub fn is_shown_form_of(proposed: &str, full: &str) -> bool {
    if proposed == full {
        return true;
    }
    let (body, cut) = match proposed.strip_suffix('…') {
        Some(head) => (head, true),
        None => (proposed, false),
    };
    // The literal pieces between markers must appear in `full`, in order; the first at its
    // start, and the last at its end unless the value was cut.
    let pieces = literal_pieces(body);
    if pieces.len() == 1 && !cut {
        return false;
    }
    let mut at = 0;
    for (i, piece) in pieces.iter().enumerate() {
        let found = if i == 0 { full.starts_with(piece).then_some(0) } else { full[at..].find(piece).map(|p| at + p) };
        let Some(p) = found else { return false };
        at = p + piece.len();
    }
    cut || pieces.last().is_none_or(|last| last.is_empty() || full.ends_with(last))
}

/// `s` split at every `[REDACTED…]` marker.
fn literal_pieces(s: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("[REDACTED") {
        pieces.push(&rest[..start]);
        match rest[start..].find(']') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = "";
                break;
            }
        }
    }
    pieces.push(rest);
    pieces
}

/// Whether `value` can only be a shown form: cut, or with a redaction marker in it.
pub fn looks_bounded(value: &str) -> bool {
    value.ends_with('…') || value.contains("[REDACTED")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn radius() -> BlastRadius {
        BlastRadius {
            workload_kind: "Deployment".into(),
            workload_name: "oms".into(),
            config_maps: ["oms-settings".to_string()].into_iter().collect(),
            autoscalers: ["oms".to_string()].into_iter().collect(),
            replicas_before: Some(3),
            replicas_now: 3,
            ..Default::default()
        }
    }

    fn action(kind: ActionKind, target: &str) -> ProposedAction {
        ProposedAction::new(kind, target)
    }

    #[test]
    fn only_the_workload_what_it_reads_and_its_autoscaler_are_inside() {
        let r = radius();
        assert_eq!(r.refusal(&action(ActionKind::Scale, "oms")), None);
        assert_eq!(r.refusal(&action(ActionKind::SetConfigMapKey, "oms-settings")), None);
        assert_eq!(r.refusal(&action(ActionKind::SetHpaMaxReplicas, "oms")), None);
        for (kind, target) in [
            (ActionKind::Scale, "ims"),
            (ActionKind::Rollback, "payments"),
            (ActionKind::SetDeploymentEnv, "ims"),
            (ActionKind::SetConfigMapKey, "ims-settings"),
            (ActionKind::SetConfigMapKey, "inc-1-postmortem"),
            (ActionKind::SetHpaMaxReplicas, "ims"),
        ] {
            assert!(r.refusal(&action(kind, target)).is_some(), "{kind} {target} allowed");
        }
    }

    #[test]
    fn a_workload_that_is_not_a_deployment_is_never_changed_as_one() {
        let r = BlastRadius { workload_kind: "StatefulSet".into(), ..radius() };
        assert!(r.refusal(&action(ActionKind::Scale, "oms")).is_some());
        assert_eq!(r.refusal(&action(ActionKind::SetConfigMapKey, "oms-settings")), None);
    }

    #[test]
    fn replicas_never_go_below_what_ran_before_nor_to_zero() {
        assert_eq!(radius().replica_floor(), 3);
        let r = BlastRadius { replicas_before: None, replicas_now: 0, ..radius() };
        assert_eq!(r.replica_floor(), 1);
    }

    #[test]
    fn shown_forms_are_recognised_and_nothing_else() {
        let full = format!("{}tail", "a".repeat(2000));
        assert!(is_shown_form_of(&format!("{}…", "a".repeat(1024)), &full));
        assert!(is_shown_form_of(&full, &full));
        assert!(!is_shown_form_of(&format!("{}…", "b".repeat(10)), &full));
        let props = "url=postgres://app:hunter2@db:5432/shop\ntimeout=30";
        assert!(is_shown_form_of("url=postgres://app:[REDACTED]@db:5432/shop\ntimeout=30", props));
        assert!(is_shown_form_of("url=postgres://app:[REDACTED:url-password]@db:5432/shop\ntimeout=30", props));
        assert!(!is_shown_form_of("url=postgres://app:[REDACTED]@evil:5432/shop\ntimeout=30", props));
        assert!(!is_shown_form_of("timeout=30", props), "a different plain value is not a shown form");
        assert!(looks_bounded("x…") && looks_bounded("a=[REDACTED]") && !looks_bounded("plain"));
    }
}
