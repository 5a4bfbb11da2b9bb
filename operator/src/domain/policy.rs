//! The policy: what Salve may do, whatever the evidence or a model says. Evaluated before a
//! Remediation is created and again by the Remediation controller before anything is applied.

use std::collections::{BTreeMap, BTreeSet};

use super::action::{ActionKind, ProposedAction, Risk};
use super::blast_radius::{BlastRadius, looks_bounded};
use super::quantity::{parse_bytes, parse_millicores};

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
    /// Upper bound for CPU limits the operator may set.
    pub max_cpu: String,
    /// Upper bound for ephemeral-storage limits the operator may set.
    pub max_ephemeral_storage: String,
    /// Where pull requests may go and how big they may be.
    pub pull_requests: PullRequestPolicy,
}

/// Bounds for PullRequest actions. Empty lists allow nothing: a repository must be named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequestPolicy {
    /// Repositories (`owner/name`, compared case-insensitively as GitHub does).
    pub repositories: BTreeSet<String>,
    /// Path prefixes inside those repositories, e.g. `apps/`.
    pub path_prefixes: Vec<String>,
    pub max_files: usize,
    /// Upper bound for the text of all changes together (search + replace), bytes.
    pub max_bytes: usize,
}

impl Default for PullRequestPolicy {
    fn default() -> Self {
        Self { repositories: BTreeSet::new(), path_prefixes: Vec::new(), max_files: 5, max_bytes: 64 * 1024 }
    }
}

impl PullRequestPolicy {
    /// Why the action is outside these bounds, or `None` when it is inside.
    fn refusal(&self, action: &ProposedAction) -> Option<(&'static str, String)> {
        let repo = action.repository.as_deref().unwrap_or_default();
        if !self.repositories.iter().any(|r| r.eq_ignore_ascii_case(repo)) {
            return Some(("RepositoryNotAllowed", format!("repository {repo} is not in the policy's allowed repositories")));
        }
        if action.files.len() > self.max_files {
            return Some(("OutOfBounds", format!("{} files exceed the policy bound {}", action.files.len(), self.max_files)));
        }
        let bytes: usize = action.files.iter().map(|f| f.replace.len() + f.search.as_deref().map_or(0, str::len)).sum();
        if bytes > self.max_bytes {
            return Some(("OutOfBounds", format!("{bytes} bytes of changes exceed the policy bound {}", self.max_bytes)));
        }
        for f in &action.files {
            // Paths are compared as written: no normalisation, so `apps/../secrets` cannot pass.
            let escapes =
                f.path.starts_with('/') || f.path.contains('\\') || f.path.split('/').any(|c| c == ".." || c == "." || c.is_empty());
            if escapes {
                return Some(("PathNotAllowed", format!("path {:?} is not a plain relative path", f.path)));
            }
            if !self.path_prefixes.iter().any(|p| !p.is_empty() && f.path.starts_with(p.as_str())) {
                return Some(("PathNotAllowed", format!("path {} is outside the policy's allowed paths", f.path)));
            }
        }
        None
    }
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
            max_cpu: "4".into(),
            max_ephemeral_storage: "10Gi".into(),
            pull_requests: PullRequestPolicy::default(),
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
    /// What the Incident is about; `None` when its Incident cannot be found.
    pub radius: Option<BlastRadius>,
    /// SetConfigMapKey: the value is one the key held before, known in full from the recorded
    /// history (a restore). Any other value is a new setting, which a person must approve.
    pub value_recorded: bool,
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

/// The reason of a refusal for a target the Incident is not about.
pub const OUTSIDE_BLAST_RADIUS: &str = "OutsideBlastRadius";

fn refuse(reason: &'static str, message: String) -> Verdict {
    Verdict::Refused { reason, message }
}

impl Policy {
    /// Whether actions may run in `namespace` (listed, or `*`).
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.allowed_namespaces.contains("*") || self.allowed_namespaces.contains(namespace)
    }

    pub fn evaluate(&self, action: &ProposedAction, ctx: &PolicyContext) -> Verdict {
        // The kind first: a kind the policy does not allow is refused as such, however it is filled in.
        if !self.allowed_kinds.contains(&action.kind) {
            return refuse("ActionKindNotAllowed", format!("action kind {} is not in the policy's allowed kinds", action.kind));
        }
        if let Err(e) = action.validate() {
            return refuse("InvalidAction", e);
        }
        if !self.allows_namespace(&ctx.namespace) {
            return refuse(
                "NamespaceNotAllowed",
                format!(
                    "namespace {} is not in the policy's allowed namespaces (--allowed-namespaces / SALVE_ALLOWED_NAMESPACES)",
                    ctx.namespace
                ),
            );
        }
        if !ctx.target_exists {
            return refuse("TargetNotFound", format!("target {} does not exist", action.target()));
        }
        if action.kind != ActionKind::PullRequest {
            let Some(radius) = &ctx.radius else {
                return refuse(OUTSIDE_BLAST_RADIUS, format!("{} has no Incident to tie it to", action.target()));
            };
            if let Some(why) = radius.refusal(action) {
                return refuse(OUTSIDE_BLAST_RADIUS, why);
            }
            if radius.workload_labels.get(&self.protected_label).map(String::as_str) == Some("true") {
                let workload = format!("{}/{}", radius.workload_kind, radius.workload_name);
                return refuse("ProtectedResource", format!("{workload} carries label {}=true", self.protected_label));
            }
            if let Some(r) = action.replicas.filter(|_| action.kind == ActionKind::Scale)
                && r < radius.replica_floor()
            {
                return refuse(
                    "OutOfBounds",
                    format!(
                        "replicas {r} are fewer than the {} the workload ran before the incident (Salve never scales in, nor to 0)",
                        radius.replica_floor()
                    ),
                );
            }
        }
        if ctx.target_labels.get(&self.protected_label).map(String::as_str) == Some("true") {
            return refuse("ProtectedResource", format!("{} carries label {}=true", action.target(), self.protected_label));
        }
        if action.kind == ActionKind::SetConfigMapKey && !ctx.value_recorded && action.value.as_deref().is_some_and(looks_bounded) {
            return refuse(
                "ValueNotKnownInFull",
                format!(
                    "the value for {} key {} is cut or redacted evidence, not a value known in full",
                    action.target(),
                    action.key.as_deref().unwrap_or("?")
                ),
            );
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
        if let Some(c) = &action.cpu_limit {
            match (parse_millicores(c), parse_millicores(&self.max_cpu)) {
                (Some(v), Some(max)) if v <= max => {}
                (Some(_), _) => return refuse("OutOfBounds", format!("CPU limit {c} exceeds the policy bound {}", self.max_cpu)),
                (None, _) => return refuse("InvalidAction", format!("CPU limit {c} is not a quantity")),
            }
        }
        if let Some(e) = &action.ephemeral_storage_limit {
            match (parse_bytes(e), parse_bytes(&self.max_ephemeral_storage)) {
                (Some(v), Some(max)) if v <= max => {}
                (Some(_), _) => {
                    return refuse(
                        "OutOfBounds",
                        format!("ephemeral-storage limit {e} exceeds the policy bound {}", self.max_ephemeral_storage),
                    );
                }
                (None, _) => return refuse("InvalidAction", format!("ephemeral-storage limit {e} is not a quantity")),
            }
        }
        if action.kind == ActionKind::PullRequest
            && let Some((reason, message)) = self.pull_requests.refusal(action)
        {
            return refuse(reason, message);
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
        // Low risk only as what the rules mean by it: restoring a value the key held, and
        // adding replicas. A new value or fewer replicas than now is a person's call.
        let person_needed = match action.kind {
            ActionKind::SetConfigMapKey => !ctx.value_recorded,
            ActionKind::Scale => ctx.radius.as_ref().is_some_and(|r| action.replicas.is_some_and(|n| n < r.replicas_now)),
            _ => false,
        };
        let auto_approve = !person_needed && self.max_auto_approve_risk.is_some_and(|max| risk <= max);
        Verdict::Allowed { auto_approve, dry_run: self.dry_run, risk }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PolicyContext {
        let radius = BlastRadius {
            workload_kind: "Deployment".into(),
            workload_name: "d".into(),
            config_maps: ["cfg".to_string()].into_iter().collect(),
            replicas_before: Some(2),
            replicas_now: 2,
            ..Default::default()
        };
        PolicyContext { namespace: "shop".into(), target_exists: true, radius: Some(radius), value_recorded: true, ..Default::default() }
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
        let mut a = ProposedAction::new(ActionKind::SetDeploymentResources, "d");
        a.cpu_limit = Some("8".into());
        assert_eq!(reason(Policy::default().evaluate(&a, &ctx())), "OutOfBounds");
        a.cpu_limit = Some("1500m".into());
        assert!(Policy::default().evaluate(&a, &ctx()).is_allowed());
        a.ephemeral_storage_limit = Some("50Gi".into());
        assert_eq!(reason(Policy::default().evaluate(&a, &ctx())), "OutOfBounds");
    }

    fn pull_request(path: &str) -> ProposedAction {
        let mut a = ProposedAction::new(ActionKind::PullRequest, "oms");
        a.repository = Some("acme/gitops".into());
        a.files = vec![crate::domain::action::FileChange {
            path: path.into(),
            search: Some("memory: 256Mi".into()),
            replace: "memory: 512Mi".into(),
        }];
        a
    }

    fn pr_policy() -> Policy {
        let mut p = Policy::default();
        p.allowed_kinds.insert(ActionKind::PullRequest);
        p.pull_requests.repositories.insert("acme/gitops".into());
        p.pull_requests.path_prefixes = vec!["apps/".into(), "charts/".into()];
        p
    }

    #[test]
    fn pull_request_inside_the_bounds_is_auto_approved_because_the_merge_is_the_gate() {
        let v = pr_policy().evaluate(&pull_request("apps/oms/values.yaml"), &ctx());
        assert_eq!(v, Verdict::Allowed { auto_approve: true, dry_run: false, risk: Risk::Low });
        assert_eq!(reason(Policy::default().evaluate(&pull_request("apps/oms/values.yaml"), &ctx())), "ActionKindNotAllowed");
    }

    #[test]
    fn pull_request_repositories_and_paths_are_enforced() {
        let p = pr_policy();
        let mut a = pull_request("apps/oms/values.yaml");
        a.repository = Some("acme/payments".into());
        assert_eq!(reason(p.evaluate(&a, &ctx())), "RepositoryNotAllowed");
        for bad in ["infra/iam.tf", "apps/../infra/iam.tf", "/apps/oms.yaml", "apps//oms.yaml", "apps/./x", "apps\\..\\x", "applications/x"]
        {
            assert_eq!(reason(p.evaluate(&pull_request(bad), &ctx())), "PathNotAllowed", "{bad}");
        }
        let none = Policy { pull_requests: PullRequestPolicy::default(), ..pr_policy() };
        assert_eq!(reason(none.evaluate(&pull_request("apps/oms/values.yaml"), &ctx())), "RepositoryNotAllowed");
    }

    #[test]
    fn pull_request_size_file_count_and_shape_are_bounded() {
        let p = pr_policy();
        let mut a = pull_request("apps/a.yaml");
        a.files = (0..6).map(|i| pull_request(&format!("apps/{i}.yaml")).files.remove(0)).collect();
        assert_eq!(reason(p.evaluate(&a, &ctx())), "OutOfBounds");
        let mut a = pull_request("apps/a.yaml");
        a.files[0].replace = "x".repeat(70 * 1024);
        assert_eq!(reason(p.evaluate(&a, &ctx())), "OutOfBounds");
        let mut a = pull_request("apps/a.yaml");
        a.files.clear();
        assert_eq!(reason(p.evaluate(&a, &ctx())), "InvalidAction");
        let mut a = pull_request("apps/a.yaml");
        a.repository = Some("not-a-repo".into());
        assert_eq!(reason(p.evaluate(&a, &ctx())), "InvalidAction");
    }

    #[test]
    fn pull_request_keeps_the_usual_rules() {
        let p = pr_policy();
        let mut c = ctx();
        c.other_in_flight_for_target = true;
        assert_eq!(reason(p.evaluate(&pull_request("apps/a.yaml"), &c)), "TargetBusy");
        let mut c = ctx();
        c.started_last_hour = 10;
        assert_eq!(reason(p.evaluate(&pull_request("apps/a.yaml"), &c)), "RateLimited");
    }

    /// A model steered by a log line, or a person's Remediation, cannot reach past the Incident:
    /// another Deployment, another ConfigMap (another incident's post-mortem), or a Remediation
    /// whose Incident is gone.
    #[test]
    fn targets_outside_the_blast_radius_are_refused() {
        let mut other = ProposedAction::new(ActionKind::Scale, "payments");
        other.replicas = Some(3);
        assert_eq!(reason(Policy::default().evaluate(&other, &ctx())), OUTSIDE_BLAST_RADIUS);
        let mut pm = restore();
        pm.target_name = "inc-7-postmortem".into();
        assert_eq!(reason(Policy::default().evaluate(&pm, &ctx())), OUTSIDE_BLAST_RADIUS);
        let orphan = PolicyContext { radius: None, ..ctx() };
        assert_eq!(reason(Policy::default().evaluate(&restore(), &orphan)), OUTSIDE_BLAST_RADIUS);
    }

    #[test]
    fn scale_never_goes_below_the_replicas_before_the_incident_and_scaling_in_waits_for_a_person() {
        let mut a = ProposedAction::new(ActionKind::Scale, "d");
        a.replicas = Some(0);
        assert_eq!(reason(Policy::default().evaluate(&a, &ctx())), "OutOfBounds");
        a.replicas = Some(1);
        assert_eq!(reason(Policy::default().evaluate(&a, &ctx())), "OutOfBounds", "2 ran before the incident");
        a.replicas = Some(3);
        assert!(matches!(Policy::default().evaluate(&a, &ctx()), Verdict::Allowed { auto_approve: true, .. }));
        // Scaled out by hand during the incident: back to what ran before is allowed, not automatic.
        let mut c = ctx();
        c.radius.as_mut().expect("radius").replicas_now = 5;
        assert!(matches!(Policy::default().evaluate(&a, &c), Verdict::Allowed { auto_approve: false, .. }));
    }

    #[test]
    fn a_config_value_that_is_not_a_recorded_one_waits_for_a_person_and_a_cut_one_is_never_written() {
        let new_value = PolicyContext { value_recorded: false, ..ctx() };
        assert!(matches!(Policy::default().evaluate(&restore(), &new_value), Verdict::Allowed { auto_approve: false, .. }));
        let mut cut = restore();
        cut.value = Some(format!("{}…", "x".repeat(1024)));
        assert_eq!(reason(Policy::default().evaluate(&cut, &new_value)), "ValueNotKnownInFull");
        cut.value = Some("url=postgres://app:[REDACTED]@db/shop".into());
        assert_eq!(reason(Policy::default().evaluate(&cut, &new_value)), "ValueNotKnownInFull");
    }

    #[test]
    fn a_protected_workload_is_not_touched_through_what_it_reads() {
        let mut c = ctx();
        c.radius.as_mut().expect("radius").workload_labels.insert("salve.dev/protected".into(), "true".into());
        assert_eq!(reason(Policy::default().evaluate(&restore(), &c)), "ProtectedResource");
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
