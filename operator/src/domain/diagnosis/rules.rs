//! The rules. Each reads structured facts first (termination reasons, exit codes, waiting
//! reasons, scheduling and eviction messages from the scheduler and kubelet, template diffs,
//! events with counts and ages, quotas, node conditions, the HPA) and says how strongly they
//! support a root-cause category, what speaks against it, and which action they justify.
//! Free text (logs, event messages, the alarm) only adds support through `text_patterns`; a
//! rule that proposes an action always does so from a structured fact.

use super::actions::{self, Planned};
use super::facts::{ContainerFact, Facts, LineSource};
use super::signals::Signal;
use crate::domain::diagnoser::{ActionLimits, RootCause};
use crate::domain::evidence::Evidence;

/// One explanation of the evidence.
#[derive(Clone, Debug)]
pub struct Hypothesis {
    pub rule: &'static str,
    pub category: RootCause,
    /// 0..1: how strongly the evidence supports it.
    pub strength: f64,
    pub summary: String,
    pub supports: Vec<String>,
    pub contradicts: Vec<String>,
    /// Preferred first; each an action or the reason there is none.
    pub actions: Vec<Planned>,
}

impl Hypothesis {
    fn new(rule: &'static str, category: RootCause, strength: f64, summary: String) -> Self {
        Self { rule, category, strength, summary, supports: Vec::new(), contradicts: Vec::new(), actions: Vec::new() }
    }

    fn support(mut self, s: impl Into<String>) -> Self {
        self.supports.push(s.into());
        self
    }

    fn action(mut self, a: Planned) -> Self {
        self.actions.push(a);
        self
    }
}

/// Text quoted for a reviewer: marked as untrusted and bounded.
pub fn excerpt(text: &str) -> String {
    let mut end = text.len().min(160);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let more = if end < text.len() { "…" } else { "" };
    format!("untrusted excerpt «{}{more}»", &text[..end])
}

fn who(c: &ContainerFact) -> String {
    format!("{}/{}", c.pod, c.container)
}

fn names(cs: &[&ContainerFact]) -> String {
    let mut v: Vec<String> = cs.iter().map(|c| who(c)).collect();
    v.dedup();
    v.truncate(4);
    v.join(", ")
}

pub fn all(f: &Facts, ev: &Evidence, limits: &ActionLimits) -> Vec<Hypothesis> {
    let mut out = Vec::new();
    out.extend(oom_killed(f, ev, limits));
    out.extend(image_pull(f, ev));
    out.extend(config_refs(f, ev));
    out.extend(scheduling(f, ev));
    out.extend(quota(f, ev));
    out.extend(eviction(f, ev, limits));
    out.extend(crash_after_change(f, ev));
    out.extend(dependency_names_changed_value(f, ev));
    out.extend(probes(f, ev, limits));
    out.extend(errors_after_rollout(f, ev));
    out.extend(errors_after_config_change(f));
    out.extend(hpa_at_max(f, ev, limits));
    out.extend(oom_events(f));
    out.extend(egress_policy(f, ev));
    out.extend(text_patterns(f));
    out
}

/// OOMKilled: the kernel killed a container at its memory limit. Raise *that* container's limit.
fn oom_killed(f: &Facts, ev: &Evidence, limits: &ActionLimits) -> Vec<Hypothesis> {
    let oom: Vec<&ContainerFact> = f.terminated_with("OOMKilled").collect();
    if oom.is_empty() {
        return Vec::new();
    }
    let mut containers: Vec<&str> = oom.iter().map(|c| c.container.as_str()).collect();
    containers.sort();
    containers.dedup();
    let mut out = Vec::new();
    for name in containers {
        let pods: Vec<&ContainerFact> = oom.iter().copied().filter(|c| c.container == name).collect();
        let limit =
            ev.containers.iter().find(|c| c.name == name).and_then(|c| c.memory_limit.clone().or_else(|| c.limits.get("memory").cloned()));
        let mut h = Hypothesis::new(
            "oom-killed",
            RootCause::Resource_Limit,
            0.92,
            format!(
                "container {name} was OOMKilled (exit 137) in {} pod(s) ({}) at its memory limit {}",
                pods.len(),
                names(&pods),
                limit.as_deref().unwrap_or("(none: the node ran out)")
            ),
        )
        .support(format!("lastState.terminated.reason=OOMKilled for {}", names(&pods)));
        if let Some(c) = f
            .newest_changes
            .iter()
            .find(|c| c.field == "resources" && c.container.as_deref().is_none_or(|n| n == name) && c.detail.contains("memory"))
        {
            h = h.support(format!("the newest revision changed {}", c.detail));
        }
        h = h.action(actions::raise_memory(ev, limits, name));
        // Scaling out spreads load-driven memory use; offered only after a person turned the
        // raise down (the raise stays first), never as a substitute at the bound.
        if actions::raise_memory(ev, limits, name).is_ok() {
            h = h.action(actions::scale_out(ev, limits));
        }
        out.push(h);
    }
    out
}

/// Timeouts (not refusals: a NetworkPolicy drops packets) from pods that a NetworkPolicy
/// restricts in egress: the policy may be what blocks the dependency.
fn egress_policy(f: &Facts, ev: &Evidence) -> Vec<Hypothesis> {
    let Some(p) = ev.network_policies.iter().find(|p| p.policy_types.iter().any(|t| t == "Egress")) else { return Vec::new() };
    let timeout = f.lines.iter().find(|l| {
        matches!(l.source, LineSource::Log { .. } | LineSource::Cloud)
            && l.signals.iter().any(|s| matches!(s, Signal::Connection | Signal::Dns))
            && ["i/o timeout", "timed out", "ETIMEDOUT", "deadline exceeded", "Temporary failure in name resolution"]
                .iter()
                .any(|w| l.text.contains(w))
    });
    let Some(l) = timeout else { return Vec::new() };
    vec![
        Hypothesis::new(
            "egress-network-policy",
            RootCause::Config_Error,
            0.55,
            format!("connections time out from pods whose egress NetworkPolicy {} allows {} rule(s)", p.name, p.egress_rules),
        )
        .support(excerpt(&l.text))
        .action(Err("a NetworkPolicy is a security decision; a person must change it".into())),
    ]
}

/// OOM kills reported only as events (the kubelet's `OOMKilling`/`SystemOOM`, fresh ones).
fn oom_events(f: &Facts) -> Vec<Hypothesis> {
    if f.terminated_with("OOMKilled").next().is_some() {
        return Vec::new();
    }
    let fresh: Vec<&super::facts::EventFact> =
        f.events.iter().filter(|e| e.fresh() && matches!(e.reason.as_str(), "OOMKilling" | "SystemOOM" | "OOMKilled")).collect();
    let Some(first) = fresh.first() else { return Vec::new() };
    vec![
        Hypothesis::new("oom-events", RootCause::Resource_Limit, 0.6, format!("{} fresh OOM event(s)", fresh.len()))
            .support(format!("{} {}", first.reason, excerpt(&first.message)))
            .action(Err("the events do not say which container was killed at which limit".into())),
    ]
}

/// ErrImagePull / ImagePullBackOff / InvalidImageName: why the pull failed decides the category.
fn image_pull(f: &Facts, ev: &Evidence) -> Vec<Hypothesis> {
    let waiting: Vec<&ContainerFact> =
        f.waiting_with(&["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]).collect();
    let pull_events: Vec<&str> = f
        .events
        .iter()
        .filter(|e| e.fresh() && (e.reason == "Failed" || e.reason == "BackOff") && e.message.contains("image"))
        .map(|e| e.message.as_str())
        .collect();
    if waiting.is_empty() && pull_events.iter().all(|m| !m.contains("Failed to pull image")) {
        return Vec::new();
    }
    let text: String = waiting.iter().map(|c| c.waiting_message.as_str()).chain(pull_events.iter().copied()).collect::<Vec<_>>().join("\n");
    let lower = text.to_ascii_lowercase();
    let (category, why) =
        if ["unauthorized", "pull access denied", "403 forbidden", "no basic auth credentials", "authentication required", "denied: "]
            .iter()
            .any(|w| lower.contains(w))
        {
            (RootCause::Permission_Issue, "the registry refused the credentials")
        } else if [
            "toomanyrequests",
            "i/o timeout",
            "tls handshake timeout",
            "connection refused",
            "503 service unavailable",
            "no such host",
            "context deadline exceeded",
        ]
        .iter()
        .any(|w| lower.contains(w))
        {
            (RootCause::External_Dependency, "the registry could not be reached or rate-limited the pull")
        } else {
            (RootCause::Config_Error, "the image reference does not resolve (wrong repository or tag)")
        };
    let mut h = Hypothesis::new(
        "image-pull",
        category,
        if waiting.is_empty() { 0.7 } else { 0.9 },
        format!("image pull failing for {}: {why}", if waiting.is_empty() { ev.workload.clone() } else { names(&waiting) }),
    );
    for c in &waiting {
        h = h.support(format!("{} waiting: {}", who(c), c.waiting_reason.as_deref().unwrap_or_default()));
    }
    if let Some(m) = pull_events.first() {
        h = h.support(excerpt(m));
    }
    let image_change = f.newest_changed("image").cloned();
    match image_change {
        Some(c) if category != RootCause::External_Dependency && f.failures_on_newest(&waiting) => {
            h = h.support(format!("the newest revision changed the image ({})", c.detail));
            h = h.action(actions::rollback(ev, f.previous.as_ref().map(|p| p.revision)));
        }
        _ => h = h.action(Err("no earlier revision with a working image is known; fix the image reference or registry access".into())),
    }
    vec![h]
}

/// CreateContainerConfigError, FailedMount, missing ConfigMaps/Secrets/keys.
fn config_refs(f: &Facts, ev: &Evidence) -> Vec<Hypothesis> {
    let waiting: Vec<&ContainerFact> = f.waiting_with(&["CreateContainerConfigError", "CreateContainerError"]).collect();
    let missing: Vec<_> = ev.missing_refs.iter().filter(|m| !m.optional).collect();
    let mount_failures: Vec<&str> =
        f.fresh_events("FailedMount").filter(|e| e.message.contains("not found")).map(|e| e.message.as_str()).collect();
    let config_waiting: Vec<&ContainerFact> = waiting
        .iter()
        .copied()
        .filter(|c| {
            c.waiting_reason.as_deref() == Some("CreateContainerConfigError")
                || c.waiting_message.contains("not found")
                || c.waiting_message.contains("couldn't find key")
        })
        .collect();
    if config_waiting.is_empty() && missing.is_empty() && mount_failures.is_empty() {
        return Vec::new();
    }
    let strength = if !config_waiting.is_empty() || !mount_failures.is_empty() { 0.92 } else { 0.6 };
    let what: Vec<String> = missing
        .iter()
        .map(|m| match &m.key {
            Some(k) => format!("key {k} of {} {}", m.kind, m.name),
            None => format!("{} {}", m.kind, m.name),
        })
        .collect();
    let mut h = Hypothesis::new(
        "missing-config-reference",
        RootCause::Config_Error,
        strength,
        format!(
            "containers cannot start because referenced configuration is missing{}",
            if what.is_empty() { String::new() } else { format!(": {}", what.join(", ")) }
        ),
    );
    for c in &config_waiting {
        h = h.support(format!("{} waiting: CreateContainerConfigError {}", who(c), excerpt(&c.waiting_message)));
    }
    if let Some(m) = mount_failures.first() {
        h = h.support(format!("FailedMount {}", excerpt(m)));
    }
    // A key that was deleted (or a value that was emptied) is put back; a reference the newest
    // revision added is rolled back; otherwise a person must create the object.
    let removed = ev
        .config_changes
        .iter()
        .find(|c| c.current.is_none() && missing.iter().any(|m| m.name == c.config_map && m.key.as_deref().is_none_or(|k| k == c.key)));
    if let Some(c) = removed {
        h = h.support(format!("ConfigMap {} key {} was removed at {}", c.config_map, c.key, c.observed_at));
        h = h.action(actions::restore_config(c));
    } else if f.newest_is_recent() && (f.newest_changed("env").is_some() || f.newest_changed("volumes").is_some()) && f.previous.is_some() {
        h = h.support("the newest revision changed env or volumes");
        h = h.action(actions::rollback(ev, f.previous.as_ref().map(|p| p.revision)));
    } else {
        h = h.action(Err("the missing ConfigMap/Secret or key has to be created by a person (Salve never writes Secrets)".into()));
    }
    vec![h]
}

/// FailedScheduling: the scheduler's message names the reason ("0/3 nodes are available: 3
/// Insufficient memory.").
fn scheduling(f: &Facts, ev: &Evidence) -> Vec<Hypothesis> {
    if f.unschedulable.is_empty() {
        return Vec::new();
    }
    let all: String = f.unschedulable.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("\n");
    let insufficient: Vec<&str> = ["cpu", "memory", "ephemeral-storage", "pods", "nvidia.com/gpu", "amd.com/gpu", "aws.amazon.com/neuron"]
        .into_iter()
        .filter(|r| all.contains(&format!("Insufficient {r}")))
        .collect();
    let first = f.unschedulable.first().map(|(_, m)| m.as_str()).unwrap_or_default();
    let mut h = if !insufficient.is_empty() {
        Hypothesis::new(
            "failed-scheduling-capacity",
            RootCause::Resource_Limit,
            0.88,
            format!("{} pod(s) cannot be scheduled: no node has enough {}", f.unschedulable.len(), insufficient.join(", ")),
        )
    } else if [
        "didn't match Pod's node affinity",
        "node affinity/selector",
        "untolerated taint",
        "didn't match pod anti-affinity",
        "didn't match pod affinity",
        "didn't have free ports",
        "unbound immediate PersistentVolumeClaims",
        "persistentvolumeclaim",
        "volume node affinity conflict",
        "didn't find available persistent volumes",
    ]
    .iter()
    .any(|w| all.contains(w))
    {
        Hypothesis::new(
            "failed-scheduling-constraints",
            RootCause::Config_Error,
            0.82,
            format!(
                "{} pod(s) cannot be scheduled: no node satisfies the pod's selectors, tolerations, affinity or volumes",
                f.unschedulable.len()
            ),
        )
    } else {
        Hypothesis::new(
            "failed-scheduling",
            RootCause::Resource_Limit,
            0.5,
            format!("{} pod(s) cannot be scheduled", f.unschedulable.len()),
        )
    };
    h = h.support(format!("FailedScheduling {}", excerpt(first)));
    for p in ev.pvcs.iter().filter(|p| p.phase == "Pending") {
        h = h.support(format!("PVC {} is Pending", p.name));
    }
    let blamed = if h.category == RootCause::Resource_Limit { "resources" } else { "other" };
    let changed =
        f.newest_changes.iter().find(|c| c.field == blamed || (blamed == "other" && matches!(c.field.as_str(), "volumes" | "other")));
    match changed {
        Some(c) if f.newest_is_recent() && f.previous.is_some() => {
            h = h.support(format!("the newest revision changed {}", c.detail));
            h = h.action(actions::rollback(ev, f.previous.as_ref().map(|p| p.revision)));
        }
        _ => h = h.action(Err("the cluster has no room for the pods as specified: add capacity or change the requests/constraints".into())),
    }
    vec![h]
}

/// ResourceQuota: the ReplicaSet/Job controller cannot create pods ("exceeded quota").
fn quota(f: &Facts, ev: &Evidence) -> Vec<Hypothesis> {
    let failed: Vec<&str> =
        f.events.iter().filter(|e| e.fresh() && e.message.contains("exceeded quota")).map(|e| e.message.as_str()).collect();
    let limit_range: Vec<&str> = f
        .events
        .iter()
        .filter(|e| {
            e.fresh()
                && e.reason == "FailedCreate"
                && (e.message.contains("maximum") || e.message.contains("minimum"))
                && e.message.contains("per Container")
        })
        .map(|e| e.message.as_str())
        .collect();
    let mut out = Vec::new();
    if !failed.is_empty()
        || (!f.quota_full.is_empty() && ev.ready_replicas < ev.desired_replicas && ev.pods.len() < ev.desired_replicas as usize)
    {
        let mut h = Hypothesis::new(
            "quota-exceeded",
            RootCause::Resource_Limit,
            if failed.is_empty() { 0.6 } else { 0.9 },
            "pods cannot be created: the namespace's ResourceQuota is exhausted".to_string(),
        );
        if let Some(m) = failed.first() {
            h = h.support(format!("FailedCreate {}", excerpt(m)));
        }
        for q in &f.quota_full {
            h = h.support(q.clone());
        }
        match f.newest_changed("resources") {
            Some(c) if f.newest_is_recent() && f.previous.is_some() => {
                h = h.support(format!("the newest revision raised {}", c.detail));
                h = h.action(actions::rollback(ev, f.previous.as_ref().map(|p| p.revision)));
            }
            _ => h = h.action(Err("a quota is a namespace owner's decision; raising it or freeing room needs a person".into())),
        }
        out.push(h);
    }
    // Other admission refusals of the pods (a missing ServiceAccount, PodSecurity, a webhook):
    // the pod template does not fit the namespace's rules.
    let refused: Vec<&str> = f
        .events
        .iter()
        .filter(|e| {
            e.fresh() && e.reason == "FailedCreate" && !e.message.contains("exceeded quota") && !limit_range.contains(&e.message.as_str())
        })
        .map(|e| e.message.as_str())
        .collect();
    if let Some(m) = refused.first() {
        out.push(
            Hypothesis::new(
                "pods-refused-at-admission",
                RootCause::Config_Error,
                0.75,
                "the controller cannot create pods: the API server refuses them".into(),
            )
            .support(format!("FailedCreate {}", excerpt(m)))
            .action(Err("what the admission refuses (ServiceAccount, PodSecurity, a webhook) needs a person".into())),
        );
    }
    if let Some(m) = limit_range.first() {
        out.push(
            Hypothesis::new("limit-range", RootCause::Config_Error, 0.8, "the pod's resources violate the namespace's LimitRange".into())
                .support(format!("FailedCreate {}", excerpt(m)))
                .action(Err("the pod template's resources must be brought within the LimitRange".into())),
        );
    }
    out
}

/// Evictions: ephemeral storage over the container's limit, or node pressure.
fn eviction(f: &Facts, ev: &Evidence, limits: &ActionLimits) -> Vec<Hypothesis> {
    if f.evicted.is_empty() {
        return Vec::new();
    }
    let all: String = f.evicted.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("\n");
    let first = f.evicted.first().map(|(_, m)| m.as_str()).unwrap_or_default();
    let mut h;
    if all.contains("ephemeral") {
        h = Hypothesis::new(
            "evicted-ephemeral-storage",
            RootCause::Resource_Limit,
            0.88,
            format!("{} pod(s) evicted for ephemeral-storage use", f.evicted.len()),
        );
        // "Container app exceeded its local ephemeral storage limit "1Gi"." names the container.
        let named = ev
            .containers
            .iter()
            .filter(|c| !c.init)
            .find(|c| all.contains(&format!("Container {} ", c.name)) || all.contains(&format!("container {} ", c.name)));
        let target = named.or_else(|| ev.containers.iter().find(|c| !c.init && c.limits.contains_key("ephemeral-storage")));
        h = match target {
            Some(c) => h.action(actions::raise_ephemeral_storage(ev, limits, &c.name)),
            None => h.action(Err("no container has an ephemeral-storage limit to raise; the node's disk is under pressure".into())),
        };
    } else {
        let resource = ["memory", "nodefs", "imagefs", "pid", "disk"].into_iter().find(|r| all.contains(r)).unwrap_or("a resource");
        h = Hypothesis::new(
            "evicted-node-pressure",
            RootCause::Resource_Limit,
            0.78,
            format!("{} pod(s) evicted because their node ran low on {resource}", f.evicted.len()),
        )
        .action(Err("node pressure is a capacity problem of the node, not of this workload's settings".into()));
    }
    h = h.support(format!("Evicted {}", excerpt(first)));
    for n in &f.node_trouble {
        h = h.support(format!("node {n}"));
    }
    vec![h]
}

fn crash_rollback_category(field: &str) -> RootCause {
    match field {
        "image" => RootCause::Code_Bug,
        "serviceAccount" => RootCause::Permission_Issue,
        _ => RootCause::Config_Error,
    }
}

/// A crash loop after a change: a ConfigMap value the operator saw change, or a new revision
/// that changed the template (image -> code, env/command/volumes -> configuration). With an
/// unchanged template the cause is in the text (see `text_patterns`).
fn crash_after_change(f: &Facts, ev: &Evidence) -> Vec<Hypothesis> {
    let crashing: Vec<&ContainerFact> = f.crashing().into_iter().filter(|c| c.term_reason.as_deref() != Some("OOMKilled")).collect();
    if crashing.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let codes: Vec<String> = crashing
        .iter()
        .filter_map(|c| c.exit_code.map(|e| format!("{} exit {e} ({})", who(c), c.term_reason.as_deref().unwrap_or("?"))))
        .take(3)
        .collect();
    // The newest observed change is the likeliest culprit; one whose value is known first.
    let candidates = || f.config_changes.iter().rev().filter(|c| c.previous.is_some() || c.current.is_none());
    if let Some(c) = candidates().find(|c| !c.redacted).or_else(|| candidates().next()) {
        let mut h = Hypothesis::new(
            "crash-after-config-change",
            RootCause::Config_Error,
            if c.redacted { 0.7 } else { 0.86 },
            format!(
                "ConfigMap {} key {} changed{} at {}, then {} container(s) crash-looped ({})",
                c.config_map,
                c.key,
                if c.redacted {
                    String::new()
                } else {
                    format!(" from {:?} to {:?}", c.previous.as_deref().unwrap_or(""), c.current.as_deref().unwrap_or("(removed)"))
                },
                c.observed_at,
                crashing.len(),
                names(&crashing)
            ),
        )
        .support(format!("observed change of {}/{}", c.config_map, c.key))
        .action(actions::restore_config(c));
        for code in &codes {
            h = h.support(code.clone());
        }
        out.push(h);
    }
    if f.previous.is_some() && f.newest_changed_template() && f.failures_on_newest(&crashing) {
        // Prefer the change most likely to break start-up: image, then env/command, then others.
        let order = ["image", "command", "env", "serviceAccount", "volumes", "probes", "resources", "containers", "other"];
        if let Some(c) = order.iter().find_map(|o| f.newest_changed(o)) {
            let category = crash_rollback_category(&c.field);
            let recent = f.newest_is_recent();
            let mut h = Hypothesis::new(
                "crash-after-rollout",
                category,
                if recent { 0.8 } else { 0.45 },
                format!(
                    "revision {} changed {} ({}); its containers crash-loop ({}); revision {} ran before",
                    f.newest.as_ref().map_or(0, |n| n.revision),
                    c.field,
                    c.detail,
                    names(&crashing),
                    f.previous.as_ref().map_or(0, |p| p.revision)
                ),
            )
            .support(format!("template change: {} {}", c.field, c.detail));
            for code in &codes {
                h = h.support(code.clone());
            }
            if !recent {
                h.contradicts.push("the newest revision is older than six hours: it ran before this incident".into());
            }
            if crashing.iter().any(|c| c.exit_code == Some(127) || c.exit_code == Some(126)) && c.field == "command" {
                h.strength = (h.strength + 0.1).min(0.95);
            }
            h = h.action(if recent {
                actions::rollback(ev, f.previous.as_ref().map(|p| p.revision))
            } else {
                Err("the newest revision ran for hours before this incident, so rolling it back is not justified by the evidence".into())
            });
            out.push(h);
        }
    } else if f.newest.is_some() && !f.newest_changed_template() && !f.newest_changes.is_empty() {
        // Only annotations changed: the rollout is not to blame; say so for the reviewer.
        let mut h =
            Hypothesis::new("crash-unchanged-template", RootCause::Code_Bug, 0.2, "the newest revision changed only annotations".into());
        h.contradicts.push("the newest revision changed only pod annotations: a rollback would not change what runs".into());
        out.push(h);
    }
    // Exit codes the shell and runtime define: 126/127 a command that cannot run; 139 SIGSEGV.
    if crashing.iter().any(|c| matches!(c.exit_code, Some(126 | 127)))
        || f.waiting_with(&["RunContainerError", "StartError", "ContainerCannotRun"]).next().is_some()
        || crashing.iter().any(|c| matches!(c.term_reason.as_deref(), Some("StartError" | "ContainerCannotRun")))
    {
        out.push(
            Hypothesis::new(
                "command-cannot-run",
                RootCause::Config_Error,
                0.7,
                "the container's command cannot be executed (exit 126/127 or a start error)".into(),
            )
            .support(codes.join("; ")),
        );
    }
    if crashing.iter().any(|c| c.exit_code == Some(139)) {
        out.push(
            Hypothesis::new("segfault", RootCause::Code_Bug, 0.6, "the program crashed with SIGSEGV (exit 139)".into())
                .support(codes.join("; ")),
        );
    }
    out
}

/// A dependency error that names a value a person just changed (a host, URL or port in a
/// ConfigMap, or in the newest revision's env): the change, not the dependency, is the cause.
fn dependency_names_changed_value(f: &Facts, ev: &Evidence) -> Vec<Hypothesis> {
    let dep = |l: &&super::facts::Line| l.signals.iter().any(|s| matches!(s, Signal::Dns | Signal::Connection | Signal::Tls));
    // Any failure line counts when it names the new value itself (a bucket, queue or host).
    let failing = |l: &&super::facts::Line| {
        !l.signals.is_empty()
            || ["error", "exception", "fail", "not found", "does not exist", "invalid"]
                .iter()
                .any(|w| l.text.to_ascii_lowercase().contains(w))
    };
    let mut out = Vec::new();
    for c in f.config_changes.iter().filter(|c| !c.redacted) {
        let Some(cur) = c.current.as_deref().filter(|v| v.len() >= 4) else { continue };
        let host = cur.trim_start_matches("https://").trim_start_matches("http://").split(['/', ':']).next().unwrap_or(cur);
        // Short or plain words ("true", "info") appear in unrelated lines; names do not.
        let distinctive = |v: &str| v.len() >= 6 && v.chars().any(|ch| !ch.is_ascii_alphabetic());
        let hit = if host.len() >= 4 { f.lines.iter().filter(dep).find(|l| l.text.contains(host)) } else { None }
            .or_else(|| if distinctive(cur) { f.lines.iter().filter(failing).find(|l| l.text.contains(cur)) } else { None })
            .or_else(|| if distinctive(host) { f.lines.iter().filter(failing).find(|l| l.text.contains(host)) } else { None });
        if let Some(l) = hit {
            out.push(
                Hypothesis::new(
                    "dependency-error-names-changed-config",
                    RootCause::Config_Error,
                    0.88,
                    format!("ConfigMap {} key {} changed to {:?} and the errors name that value", c.config_map, c.key, cur),
                )
                .support(excerpt(&l.text))
                .action(actions::restore_config(c)),
            );
            break;
        }
    }
    if f.previous.is_some() && f.newest_is_recent() {
        for ch in f.newest_changes.iter().filter(|c| c.field == "env") {
            let Some((_, after)) = ch.detail.split_once(" -> ") else { continue };
            let host = after.trim_start_matches("https://").trim_start_matches("http://").split(['/', ':']).next().unwrap_or(after);
            if host.len() < 4 || host.contains("REDACTED") || host == "(unset)" {
                continue;
            }
            if let Some(l) = f.lines.iter().filter(dep).find(|l| l.text.contains(host)) {
                out.push(
                    Hypothesis::new(
                        "dependency-error-names-changed-env",
                        RootCause::Config_Error,
                        0.85,
                        format!("the newest revision changed env {} and the errors name the new value", ch.detail),
                    )
                    .support(excerpt(&l.text))
                    .action(actions::rollback(ev, f.previous.as_ref().map(|p| p.revision))),
                );
                break;
            }
        }
    }
    out
}

/// Probe failures: misconfigured after a change, or timing out because the container is
/// throttled at its CPU limit.
fn probes(f: &Facts, ev: &Evidence, limits: &ActionLimits) -> Vec<Hypothesis> {
    let unhealthy: Vec<&super::facts::EventFact> = f.fresh_events("Unhealthy").filter(|e| e.message.contains("probe failed")).collect();
    if unhealthy.is_empty() {
        return Vec::new();
    }
    let count: i32 = unhealthy.iter().map(|e| e.count).sum();
    let first = unhealthy[0].message.as_str();
    let mut out = Vec::new();
    if let Some(c) = f.newest_changed("probes").filter(|_| f.newest_is_recent() && f.previous.is_some()) {
        out.push(
            Hypothesis::new(
                "probe-changed",
                RootCause::Config_Error,
                0.82,
                format!("probes fail ({count} time(s)) right after the newest revision changed them"),
            )
            .support(format!("template change: probes {}", c.detail))
            .support(format!("Unhealthy {}", excerpt(first)))
            .action(actions::rollback(ev, f.previous.as_ref().map(|p| p.revision))),
        );
    }
    // A probe path the server does not serve: the probe, not the app, is misconfigured.
    if let Some(e) = unhealthy.iter().find(|e| e.message.contains("statuscode: 404")) {
        out.push(
            Hypothesis::new(
                "probe-path-not-found",
                RootCause::Config_Error,
                0.7,
                format!("probes get 404 ({count} time(s)): they ask for a path the server does not serve"),
            )
            .support(format!("Unhealthy {}", excerpt(&e.message))),
        );
    }
    let timeouts: Vec<&&super::facts::EventFact> = unhealthy
        .iter()
        .filter(|e| {
            e.message.contains("context deadline exceeded")
                || e.message.contains("Client.Timeout")
                || e.message.contains("timeout")
                || e.message.contains("timed out")
        })
        .collect();
    if !timeouts.is_empty() {
        // A timing-out probe on a container with a CPU limit: the CFS quota throttles it under load.
        let throttled = ev
            .containers
            .iter()
            .filter(|c| !c.init)
            .find(|c| c.limits.contains_key("cpu") && c.probes.iter().any(|p| p.timeout_seconds <= 5));
        let load = f.hpa_at_max || ev.signal.to_ascii_lowercase().contains("throttl") || ev.signal.to_ascii_lowercase().contains("latency");
        if let Some(c) = throttled {
            let mut h = Hypothesis::new(
                "probe-timeout-cpu-limit",
                RootCause::Resource_Limit,
                if load { 0.75 } else { 0.6 },
                format!(
                    "probes time out ({count} time(s)) on container {} which runs under a CPU limit of {}",
                    c.name,
                    c.limits.get("cpu").map(String::as_str).unwrap_or("?")
                ),
            )
            .support(format!("Unhealthy {}", excerpt(&timeouts[0].message)));
            if load {
                h = h.support("the workload is under load (alarm or HPA at its maximum)");
            }
            h = h.action(actions::raise_cpu(ev, limits, &c.name));
            out.push(h);
        } else {
            out.push(
                Hypothesis::new("probe-timeout", RootCause::Resource_Limit, 0.35, format!("probes time out ({count} time(s))"))
                    .support(format!("Unhealthy {}", excerpt(&timeouts[0].message))),
            );
        }
    }
    out
}

/// Errors in ready pods right after a rollout that changed the image: the new code.
fn errors_after_rollout(f: &Facts, ev: &Evidence) -> Vec<Hypothesis> {
    let Some(change) = f.newest_changed("image") else { return Vec::new() };
    if f.previous.is_none() || !f.newest_is_recent() || !f.crashing().is_empty() {
        return Vec::new();
    }
    let errors: Vec<&super::facts::Line> = f
        .lines
        .iter()
        .filter(|l| matches!(l.source, LineSource::Log { pod_ready: Some(true), .. } | LineSource::Cloud))
        .filter(|l| {
            l.signals.contains(&Signal::CodeCrash)
                || (l.signals.is_empty() && (l.text.contains(" 500 ") || l.text.contains("ERROR") || l.text.contains("Exception")))
        })
        .collect();
    if errors.len() < 2 {
        return Vec::new();
    }
    let dependency = dependency_errors(f);
    let mut h = Hypothesis::new(
        "errors-after-rollout",
        RootCause::Code_Bug,
        if dependency { 0.4 } else { 0.65 },
        format!("healthy pods log errors right after the newest revision changed the image ({})", change.detail),
    )
    .support(excerpt(&errors[0].text))
    .action(actions::rollback(ev, f.previous.as_ref().map(|p| p.revision)));
    if dependency {
        h.contradicts.push("dependency errors are logged too".into());
    }
    vec![h]
}

/// Healthy pods, errors reported (by the alarm or in their logs), and a ConfigMap they read
/// changed: the change is the first suspect ("what changed?"), and putting the previous value
/// back is small, reversible and verified by the alarm. The structured fact (the recorded
/// change) chooses the action; the alarm's and the logs' text only supports it, and dependency
/// errors in the logs speak against it.
fn errors_after_config_change(f: &Facts) -> Vec<Hypothesis> {
    if !f.crashing().is_empty() {
        return Vec::new();
    }
    let Some(change) = f.config_changes.iter().rev().find(|c| !c.redacted && c.current.is_some() && c.previous.is_some()) else {
        return Vec::new();
    };
    let error_words = ["error", "5xx", "fail", "timeout", "timed out", "latency", "unavailable", " 50", "exception"];
    let reports_errors = |text: &str| {
        let t = text.to_ascii_lowercase();
        error_words.iter().any(|w| t.contains(w))
    };
    let alarm = f.lines.iter().find(|l| l.source == LineSource::Alarm && reports_errors(&l.text));
    let logged: Vec<&super::facts::Line> = f
        .lines
        .iter()
        .filter(|l| matches!(l.source, LineSource::Log { pod_ready: Some(true), .. } | LineSource::Cloud) && reports_errors(&l.text))
        .collect();
    if alarm.is_none() && logged.len() < 2 {
        return Vec::new();
    }
    let dependency = dependency_errors(f);
    let mut h = Hypothesis::new(
        "errors-after-config-change",
        RootCause::Config_Error,
        if dependency { 0.4 } else { 0.6 },
        format!("the workload's pods are healthy but report errors since ConfigMap {} key {} changed", change.config_map, change.key),
    )
    .support(format!("ConfigMap {} key {} changed at {}", change.config_map, change.key, change.observed_at));
    // Log lines are text anyone who can reach the service can make it print: they may support
    // the hypothesis, never choose a change on their own. Only with the alarm (what opened the
    // incident) reporting errors is the restore proposed.
    h = match alarm {
        Some(a) => h.action(actions::restore_config(change)).support(format!("alarm: {}", excerpt(&a.text))),
        None => h.action(Err("only log lines report errors; they do not choose a change on their own".into())),
    };
    if let Some(l) = logged.first() {
        h = h.support(excerpt(&l.text));
    }
    if dependency {
        h.contradicts.push("dependency errors are logged too".into());
    }
    vec![h]
}

/// The HPA at its maximum: more load than it may scale for.
fn hpa_at_max(f: &Facts, ev: &Evidence, limits: &ActionLimits) -> Vec<Hypothesis> {
    if !f.hpa_at_max {
        return Vec::new();
    }
    // Latency from a slow or throttling dependency also drives an HPA to its maximum; then the
    // dependency, not the replica count, is the limit.
    let throttled = f.lines.iter().any(|l| {
        l.source != LineSource::Alarm
            && !is_probe_event(l)
            && l.signals.iter().any(|s| {
                matches!(s, Signal::Throttling | Signal::Connection | Signal::Dns | Signal::Tls | Signal::Permission | Signal::Upstream5xx)
            })
    });
    let mut h = Hypothesis::new(
        "hpa-at-maximum",
        RootCause::Resource_Limit,
        if throttled { 0.3 } else { 0.6 },
        "the HorizontalPodAutoscaler is at its maxReplicas and wants more".into(),
    )
    .support("HPA current and desired replicas at maxReplicas (ScalingLimited)");
    // More replicas help only when the pods themselves are the bottleneck: not while they
    // crash, and never against a throttling dependency.
    let crashing = !f.crashing().is_empty();
    h = match &ev.hpa {
        Some(hpa) if !throttled && !crashing => h.action(actions::raise_hpa_max(hpa, limits)),
        _ => h.action(Err("the pods crash or a dependency throttles: a higher maxReplicas would not help".into())),
    };
    if throttled {
        h.contradicts.push("a dependency is failing or throttling: more replicas would add load to it".into());
    }
    vec![h]
}

fn category_of(s: Signal) -> (RootCause, f64) {
    match s {
        Signal::Permission => (RootCause::Permission_Issue, 0.5),
        Signal::Throttling => (RootCause::External_Dependency, 0.55),
        Signal::Dns | Signal::Tls => (RootCause::External_Dependency, 0.5),
        Signal::Connection => (RootCause::External_Dependency, 0.42),
        Signal::Upstream5xx => (RootCause::External_Dependency, 0.38),
        Signal::CodeCrash => (RootCause::Code_Bug, 0.4),
        Signal::BadConfig => (RootCause::Config_Error, 0.4),
        Signal::OutOfMemory => (RootCause::Resource_Limit, 0.5),
        Signal::DiskFull => (RootCause::Resource_Limit, 0.45),
        Signal::CpuThrottling => (RootCause::Resource_Limit, 0.55),
        Signal::MissingResource => (RootCause::Config_Error, 0.35),
        Signal::FilePermission => (RootCause::Config_Error, 0.12),
    }
}

/// Whether a dependency is failing: DNS, refused or reset connections, throttling, denied
/// calls or TLS errors in the logs, events or alarm. A kubelet probe's message ("Readiness probe
/// failed: ... connection refused") is about the pod itself — a container that is not listening
/// yet while it starts — not about anything downstream, so it is not one.
fn dependency_errors(f: &Facts) -> bool {
    f.lines.iter().filter(|l| !is_probe_event(l)).any(|l| {
        l.signals.iter().any(|s| matches!(s, Signal::Dns | Signal::Connection | Signal::Throttling | Signal::Permission | Signal::Tls))
    })
}

fn is_probe_event(l: &super::facts::Line) -> bool {
    matches!(&l.source, LineSource::Event { reason, .. } if reason == "Unhealthy")
}

/// Text support: every recognised pattern, stronger with more distinct lines and when it comes
/// from a crashing container. Never an action.
fn text_patterns(f: &Facts) -> Vec<Hypothesis> {
    let crashing: Vec<(String, String)> = f.crashing().iter().map(|c| (c.pod.clone(), c.container.clone())).collect();
    let counts = f.signal_counts();
    // A stack trace is how a failure surfaces; the exception's message (a refused connection,
    // a denied call, a missing setting) says what failed, so a specific pattern outweighs it.
    let specific = counts.keys().any(|s| !matches!(s, Signal::CodeCrash | Signal::FilePermission | Signal::Upstream5xx));
    let mut out = Vec::new();
    for (signal, _) in counts {
        let (category, base) = category_of(signal);
        let lines: Vec<&super::facts::Line> = f
            .lines_with(signal)
            // A kubelet probe message describes the pod itself, not a downstream.
            .filter(|l| !(is_probe_event(l) && matches!(signal, Signal::Connection | Signal::Upstream5xx)))
            .collect();
        let weight: f64 = lines.iter().map(|l| if l.source == LineSource::Alarm { 0.5 } else { 1.0 }).sum();
        if weight == 0.0 {
            continue;
        }
        let from_crash = lines.iter().any(|l| match &l.source {
            LineSource::Log { pod, container, .. } => crashing.iter().any(|(p, c)| p == pod && c == container),
            LineSource::Status => !crashing.is_empty(),
            _ => false,
        });
        let demoted = if signal == Signal::CodeCrash && specific { 0.15 } else { 0.0 };
        let strength = (base + 0.05 * (weight - 1.0).min(3.0) + if from_crash { 0.15 } else { 0.0 } - demoted).min(0.72);
        let mut h = Hypothesis::new("text-pattern", category, strength, format!("{} line(s) read as {signal:?}", lines.len()));
        h = h.support(excerpt(&lines[0].text));
        out.push(h);
    }
    out
}
