//! The actions the rules may propose, each with its bound: raise one container's memory,
//! CPU or ephemeral-storage limit (doubling, capped by the policy's bound; at the bound there
//! is nothing left to raise), restore a ConfigMap value, roll back to the previous revision,
//! scale out. Risk is fixed per kind (`action::Risk::of`) and the undo is built from the
//! snapshot (`undo`). Salve changes Deployments only: for any other kind a workload action is
//! refused here with the reason, and the diagnosis escalates saying it.

use crate::domain::action::{ActionKind, ProposedAction};
use crate::domain::diagnoser::ActionLimits;
use crate::domain::evidence::{ConfigChange, Evidence, HpaEvidence};
use crate::domain::quantity::{format_bytes, format_millicores, parse_bytes, parse_millicores};

/// An action, or why none can be proposed.
pub type Planned = Result<ProposedAction, String>;

fn deployment_only(ev: &Evidence, what: &str) -> Result<(), String> {
    match ev.kind() {
        "Deployment" => Ok(()),
        kind => Err(format!("{what} would change {kind}/{}; Salve changes only Deployments in-cluster, so a person must", ev.name())),
    }
}

fn limit_of(ev: &Evidence, container: &str, resource: &str) -> Option<String> {
    let c = ev.containers.iter().find(|c| c.name == container)?;
    c.limits.get(resource).cloned().or_else(|| if resource == "memory" { c.memory_limit.clone() } else { None })
}

/// Doubles the memory limit of `container` (the one that was OOMKilled), capped by the bound.
pub fn raise_memory(ev: &Evidence, limits: &ActionLimits, container: &str) -> Planned {
    let what = format!("raising the memory limit of container {container}");
    deployment_only(ev, &what)?;
    let cur = limit_of(ev, container, "memory").ok_or_else(|| format!("container {container} has no memory limit to raise"))?;
    let (Some(cur_b), Some(max)) = (parse_bytes(&cur), parse_bytes(&limits.max_memory)) else {
        return Err(format!("memory limit {cur} or bound {} is not a quantity Salve reads", limits.max_memory));
    };
    if cur_b >= max {
        return Err(format!("container {container} is already at the memory bound {} (limit {cur})", limits.max_memory));
    }
    let mut a = ProposedAction::new(ActionKind::SetDeploymentResources, ev.name());
    a.container = Some(container.to_string());
    a.memory_limit = Some(format_bytes(cur_b.saturating_mul(2).min(max)));
    Ok(a)
}

/// Doubles the CPU limit of `container` (CFS throttling at the limit), capped by the bound.
pub fn raise_cpu(ev: &Evidence, limits: &ActionLimits, container: &str) -> Planned {
    deployment_only(ev, &format!("raising the CPU limit of container {container}"))?;
    let cur =
        limit_of(ev, container, "cpu").ok_or_else(|| format!("container {container} has no CPU limit, so it is not throttled by one"))?;
    let (Some(cur_m), Some(max)) = (parse_millicores(&cur), parse_millicores(&limits.max_cpu)) else {
        return Err(format!("CPU limit {cur} or bound {} is not a quantity Salve reads", limits.max_cpu));
    };
    if cur_m >= max {
        return Err(format!("container {container} is already at the CPU bound {} (limit {cur})", limits.max_cpu));
    }
    let mut a = ProposedAction::new(ActionKind::SetDeploymentResources, ev.name());
    a.container = Some(container.to_string());
    a.cpu_limit = Some(format_millicores(cur_m.saturating_mul(2).min(max)));
    Ok(a)
}

/// Doubles the ephemeral-storage limit of `container`, capped by the bound.
pub fn raise_ephemeral_storage(ev: &Evidence, limits: &ActionLimits, container: &str) -> Planned {
    deployment_only(ev, &format!("raising the ephemeral-storage limit of container {container}"))?;
    let cur = limit_of(ev, container, "ephemeral-storage")
        .ok_or_else(|| format!("container {container} has no ephemeral-storage limit to raise"))?;
    let (Some(cur_b), Some(max)) = (parse_bytes(&cur), parse_bytes(&limits.max_ephemeral_storage)) else {
        return Err(format!("ephemeral-storage limit {cur} is not a quantity Salve reads"));
    };
    if cur_b >= max {
        return Err(format!("container {container} is already at the ephemeral-storage bound {}", limits.max_ephemeral_storage));
    }
    let mut a = ProposedAction::new(ActionKind::SetDeploymentResources, ev.name());
    a.container = Some(container.to_string());
    a.ephemeral_storage_limit = Some(format_bytes(cur_b.saturating_mul(2).min(max)));
    Ok(a)
}

/// Puts back the value a ConfigMap key had before the observed change. A value the evidence
/// shows masked (secret-looking) is not proposed: the answer must stand on the evidence alone
/// (replay and eval have no history). A value shown cut is proposed as shown, and the
/// controller writes the full recorded value or nothing (`ConfigHistory::recorded_previous`).
pub fn restore_config(change: &ConfigChange) -> Planned {
    if change.redacted {
        return Err(format!("ConfigMap {} key {} looks secret; its previous value was not recorded", change.config_map, change.key));
    }
    let prev = change.previous.clone().ok_or_else(|| format!("ConfigMap {} key {} did not exist before", change.config_map, change.key))?;
    let mut a = ProposedAction::new(ActionKind::SetConfigMapKey, &change.config_map);
    a.key = Some(change.key.clone());
    a.value = Some(prev);
    Ok(a)
}

/// Back to the revision before the newest.
pub fn rollback(ev: &Evidence, previous: Option<i64>) -> Planned {
    deployment_only(ev, "rolling back")?;
    let rev = previous.ok_or_else(|| "there is no earlier revision to roll back to".to_string())?;
    let mut a = ProposedAction::new(ActionKind::Rollback, ev.name());
    a.revision = Some(rev);
    Ok(a)
}

/// One and a half times the replicas (at least one more), within the bound.
pub fn scale_out(ev: &Evidence, limits: &ActionLimits) -> Planned {
    deployment_only(ev, "scaling out")?;
    if ev.desired_replicas >= limits.max_replicas {
        return Err(format!("{} already runs {} replicas, the bound", ev.workload, ev.desired_replicas));
    }
    let mut a = ProposedAction::new(ActionKind::Scale, ev.name());
    a.replicas = Some((ev.desired_replicas + 1).max(ev.desired_replicas * 3 / 2).min(limits.max_replicas));
    Ok(a)
}

/// Half as many again allowed replicas (at least one more), within the replica bound.
pub fn raise_hpa_max(hpa: &HpaEvidence, limits: &ActionLimits) -> Planned {
    if hpa.max_replicas >= limits.max_replicas {
        return Err(format!("HPA {} already allows {} replicas, the bound", hpa.name, hpa.max_replicas));
    }
    let mut a = ProposedAction::new(ActionKind::SetHpaMaxReplicas, &hpa.name);
    a.replicas = Some((hpa.max_replicas + 1).max(hpa.max_replicas * 3 / 2).min(limits.max_replicas));
    Ok(a)
}
