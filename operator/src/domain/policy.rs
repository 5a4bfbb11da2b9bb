//! The policy: what Salve may do, whatever the evidence or a model says. Evaluated before a
//! Remediation is created and again by the Remediation controller before anything is applied.

use std::collections::{BTreeMap, BTreeSet};

use super::action::{ActionKind, ProposedAction, Risk};
use super::quantity::parse_bytes;

#[derive(Clone, Debug)]
pub struct Policy {
    pub allowed_kinds: BTreeSet<ActionKind>,
    /// Namespaces where actions may run; `*` allows all.
    pub allowed_namespaces: BTreeSet<String>,
    /// A target carrying this label with value `true` is never changed.
    pub protected_label: String,
    /// Highest risk approved without a person; `None` means every action waits for approval.
    pub max_auto_approve_risk: Option<Risk>,
    /// Remediations started (approved) per rolling hour, across the operator.
    pub max_per_hour: u32,
    /// Record the server-side dry-run result instead of applying.
    pub dry_run: bool,
    /// Upper bound for memory limits the operator may set.
    pub max_memory: String,
    /// Upper bound for replicas the operator may set.
    pub max_replicas: i32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allowed_kinds: [
                ActionKind::SetConfigMapKey,
                ActionKind::SetDeploymentEnv,
                ActionKind::SetDeploymentResources,
                ActionKind::Scale,
                ActionKind::RolloutRestart,
                ActionKind::Rollback,
            ]
            .into_iter()
            .collect(),
            allowed_namespaces: ["*".to_string()].into_iter().collect(),
            protected_label: "salve.dev/protected".into(),
            max_auto_approve_risk: Some(Risk::Low),
            max_per_hour: 10,
            dry_run: false,
            max_memory: "2Gi".into(),
            max_replicas: 10,
        }
    }
}

/// Facts about the world the policy needs; gathered by the caller.
#[derive(Clone, Debug, Default)]
pub struct PolicyContext {
    pub namespace: String,
    /// Labels of the target object (empty when it does not exist yet).
    pub target_labels: BTreeMap<String, String>,
    pub target_exists: bool,
    /// Remediations started in the last hour (excluding this one).
    pub started_last_hour: u32,
    /// Another remediation for the same target is in flight.
    pub other_in_flight_for_target: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed { auto_approve: bool, dry_run: bool, risk: Risk },
    Refused { reason: &'static str, message: String },
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

fn refuse(reason: &'static str, message: String) -> Verdict {
    Verdict::Refused { reason, message }
}

impl Policy {
    pub fn evaluate(&self, action: &ProposedAction, ctx: &PolicyContext) -> Verdict {
        if let Err(e) = action.validate() {
            return refuse("InvalidAction", e);
        }
        if !self.allowed_kinds.contains(&action.kind) {
            return refuse("ActionKindNotAllowed", format!("action kind {} is not in the policy's allowed kinds", action.kind));
        }
        if !self.allowed_namespaces.contains("*") && !self.allowed_namespaces.contains(&ctx.namespace) {
            return refuse("NamespaceNotAllowed", format!("namespace {} is not in the policy's allowed namespaces", ctx.namespace));
        }
        if !ctx.target_exists {
            return refuse("TargetNotFound", format!("target {} does not exist", action.target()));
        }
        if ctx.target_labels.get(&self.protected_label).map(String::as_str) == Some("true") {
            return refuse("ProtectedResource", format!("{} carries label {}=true", action.target(), self.protected_label));
        }
        if let Some(r) = action.replicas
            && r > self.max_replicas
        {
            return refuse("OutOfBounds", format!("replicas {r} exceed the policy bound {}", self.max_replicas));
        }
        if let Some(m) = &action.memory_limit {
            match (parse_bytes(m), parse_bytes(&self.max_memory)) {
                (Some(v), Some(max)) if v <= max => {}
                (Some(_), _) => {
                    return refuse("OutOfBounds", format!("memory limit {m} exceeds the policy bound {}", self.max_memory));
                }
                (None, _) => return refuse("InvalidAction", format!("memory limit {m} is not a quantity")),
            }
        }
        if ctx.other_in_flight_for_target {
            return refuse("TargetBusy", format!("another remediation for {} is in flight", action.target()));
        }
        if ctx.started_last_hour >= self.max_per_hour {
            return refuse(
                "RateLimited",
                format!("{} remediations started in the last hour (limit {})", ctx.started_last_hour, self.max_per_hour),
            );
        }
        let risk = Risk::of(action.kind);
        Verdict::Allowed { auto_approve: self.max_auto_approve_risk.is_some_and(|max| risk <= max), dry_run: self.dry_run, risk }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PolicyContext {
        PolicyContext { namespace: "shop".into(), target_exists: true, ..Default::default() }
    }

    fn restore() -> ProposedAction {
        let mut a = ProposedAction::new(ActionKind::SetConfigMapKey, "cfg");
        a.key = Some("k".into());
        a.value = Some("v".into());
        a
    }

    fn reason(v: Verdict) -> &'static str {
        match v {
            Verdict::Refused { reason, .. } => reason,
            Verdict::Allowed { .. } => "Allowed",
        }
    }

    #[test]
    fn low_risk_is_auto_approved() {
        let v = Policy::default().evaluate(&restore(), &ctx());
        assert_eq!(v, Verdict::Allowed { auto_approve: true, dry_run: false, risk: Risk::Low });
    }

    #[test]
    fn higher_risk_waits_for_a_person() {
        let mut a = ProposedAction::new(ActionKind::Rollback, "d");
        a.revision = Some(1);
        let v = Policy::default().evaluate(&a, &ctx());
        assert_eq!(v, Verdict::Allowed { auto_approve: false, dry_run: false, risk: Risk::High });
        let p = Policy { max_auto_approve_risk: None, ..Default::default() };
        assert!(matches!(p.evaluate(&restore(), &ctx()), Verdict::Allowed { auto_approve: false, .. }));
    }

    #[test]
    fn kinds_and_namespaces_are_enforced() {
        let p = Policy { allowed_kinds: [ActionKind::Scale].into_iter().collect(), ..Default::default() };
        assert_eq!(reason(p.evaluate(&restore(), &ctx())), "ActionKindNotAllowed");
        let p = Policy { allowed_namespaces: ["prod".to_string()].into_iter().collect(), ..Default::default() };
        assert_eq!(reason(p.evaluate(&restore(), &ctx())), "NamespaceNotAllowed");
    }

    #[test]
    fn protected_label_opts_out() {
        let mut c = ctx();
        c.target_labels.insert("salve.dev/protected".into(), "true".into());
        assert_eq!(reason(Policy::default().evaluate(&restore(), &c)), "ProtectedResource");
    }

    #[test]
    fn rate_limit_and_in_flight() {
        let mut c = ctx();
        c.started_last_hour = 10;
        assert_eq!(reason(Policy::default().evaluate(&restore(), &c)), "RateLimited");
        let mut c = ctx();
        c.other_in_flight_for_target = true;
        assert_eq!(reason(Policy::default().evaluate(&restore(), &c)), "TargetBusy");
    }

    #[test]
    fn bounds_are_enforced() {
        let mut a = ProposedAction::new(ActionKind::Scale, "d");
        a.replicas = Some(50);
        assert_eq!(reason(Policy::default().evaluate(&a, &ctx())), "OutOfBounds");
        let mut a = ProposedAction::new(ActionKind::SetDeploymentResources, "d");
        a.memory_limit = Some("4Gi".into());
        assert_eq!(reason(Policy::default().evaluate(&a, &ctx())), "OutOfBounds");
        a.memory_limit = Some("lots".into());
        assert_eq!(reason(Policy::default().evaluate(&a, &ctx())), "InvalidAction");
    }

    #[test]
    fn dry_run_is_reported() {
        let p = Policy { dry_run: true, ..Default::default() };
        assert!(matches!(p.evaluate(&restore(), &ctx()), Verdict::Allowed { dry_run: true, .. }));
    }

    #[test]
    fn missing_target_and_invalid_action_are_refused() {
        let mut c = ctx();
        c.target_exists = false;
        assert_eq!(reason(Policy::default().evaluate(&restore(), &c)), "TargetNotFound");
        let a = ProposedAction::new(ActionKind::SetConfigMapKey, "cfg");
        assert_eq!(reason(Policy::default().evaluate(&a, &ctx())), "InvalidAction");
    }
}
