//! Executes a `ProposedAction`: snapshot first, then server-side apply with the one field
//! manager; undo from the snapshot. Every apply body is a pure function of the action (and,
//! for rollbacks, the stored ReplicaSet), so re-applying after a restart is a no-op.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use super::evidence::{REVISION_ANNOTATION, owned_replica_sets};
use crate::crd::{FIELD_MANAGER, Snapshot};
use crate::domain::action::{ActionKind, ProposedAction};
use crate::domain::applied_state::holds;
use crate::domain::undo::{Before, UndoError, container_name, resource_limits, undo_patch};

pub use crate::domain::undo::RESTART_ANNOTATION;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("target {0} not found")]
    TargetNotFound(String),
    #[error("revision {0} not found among the Deployment's ReplicaSets")]
    RevisionNotFound(i64),
    #[error("action is not executable in-cluster: {0}")]
    NotExecutable(String),
    #[error("invalid action: {0}")]
    Invalid(String),
    #[error(transparent)]
    Undo(#[from] UndoError),
    #[error("snapshot is corrupt: {0}")]
    BadSnapshot(String),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

async fn deployment(client: &Client, ns: &str, name: &str) -> Result<Deployment, ActionError> {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?
        .ok_or_else(|| ActionError::TargetNotFound(format!("Deployment/{name}")))
}

/// Reads the target and saves the patch that restores it (see `domain::undo`).
pub async fn snapshot(client: &Client, ns: &str, action: &ProposedAction, restarts: i32, now: &str) -> Result<Snapshot, ActionError> {
    let (rv, undo) = match action.kind {
        ActionKind::SetConfigMapKey => {
            let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
                .get_opt(&action.target_name)
                .await?
                .ok_or_else(|| ActionError::TargetNotFound(action.target()))?;
            (cm.resource_version(), undo_patch(action, Before::ConfigMap(&cm))?)
        }
        ActionKind::SetHpaMaxReplicas => {
            let h = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns)
                .get_opt(&action.target_name)
                .await?
                .ok_or_else(|| ActionError::TargetNotFound(action.target()))?;
            (h.resource_version(), undo_patch(action, Before::Hpa(&h))?)
        }
        ActionKind::PullRequest => return Err(ActionError::NotExecutable("pull requests are opened by the GitOps adapter".into())),
        _ => {
            let d = deployment(client, ns, &action.target_name).await?;
            (d.resource_version(), undo_patch(action, Before::Deployment(&d))?)
        }
    };
    Ok(Snapshot {
        target: action.target(),
        resource_version: rv.unwrap_or_default(),
        undo_patch: undo.to_string(),
        restarts,
        taken_at: now.to_string(),
        healthy_before: None,
        restart: None,
    })
}

/// The server-side apply body for the action (without apiVersion/kind/metadata).
pub async fn apply_fragment(client: &Client, ns: &str, action: &ProposedAction, remediation: &str) -> Result<Value, ActionError> {
    let fragment = match action.kind {
        ActionKind::SetConfigMapKey => {
            let (Some(k), Some(v)) = (&action.key, &action.value) else {
                return Err(ActionError::Invalid("key and value required".into()));
            };
            json!({"data": {k: v}})
        }
        ActionKind::SetDeploymentEnv => {
            let d = deployment(client, ns, &action.target_name).await?;
            let c = container_name(action, &d)?;
            let (Some(k), Some(v)) = (&action.key, &action.value) else {
                return Err(ActionError::Invalid("key and value required".into()));
            };
            json!({"spec": {"template": {"spec": {"containers": [{"name": c, "env": [{"name": k, "value": v}]}]}}}})
        }
        ActionKind::SetDeploymentResources => {
            let d = deployment(client, ns, &action.target_name).await?;
            let c = container_name(action, &d)?;
            let limits: serde_json::Map<String, Value> =
                resource_limits(action).into_iter().filter_map(|(r, v)| v.map(|v| (r.to_string(), Value::String(v.clone())))).collect();
            if limits.is_empty() {
                return Err(ActionError::Invalid("memoryLimit, cpuLimit or ephemeralStorageLimit required".into()));
            }
            json!({"spec": {"template": {"spec": {"containers": [{"name": c, "resources": {"limits": limits}}]}}}})
        }
        ActionKind::Scale => {
            let r = action.replicas.ok_or_else(|| ActionError::Invalid("replicas required".into()))?;
            json!({"spec": {"replicas": r}})
        }
        ActionKind::SetHpaMaxReplicas => {
            let r = action.replicas.ok_or_else(|| ActionError::Invalid("replicas required".into()))?;
            json!({"spec": {"maxReplicas": r}})
        }
        ActionKind::RolloutRestart => json!({"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: remediation}}}}}),
        ActionKind::Rollback => {
            let d = deployment(client, ns, &action.target_name).await?;
            let rev = action.revision.ok_or_else(|| ActionError::Invalid("revision required".into()))?;
            let rs = owned_replica_sets(client, ns, &d)
                .await?
                .into_iter()
                .find(|rs| rs.annotations().get(REVISION_ANNOTATION).and_then(|r| r.parse::<i64>().ok()) == Some(rev))
                .ok_or(ActionError::RevisionNotFound(rev))?;
            let mut template =
                serde_json::to_value(rs.spec.template.unwrap_or_default()).map_err(|e| ActionError::Invalid(e.to_string()))?;
            // The hash label belongs to the ReplicaSet, not the Deployment's template.
            if let Some(labels) = template.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
                labels.remove("pod-template-hash");
            }
            json!({"spec": {"template": template}})
        }
        ActionKind::PullRequest => return Err(ActionError::NotExecutable("pull requests are opened by the GitOps adapter".into())),
    };
    Ok(fragment)
}

fn full_body(action: &ProposedAction, fragment: &Value) -> Value {
    let (api_version, kind) = match action.kind {
        ActionKind::SetConfigMapKey => ("v1", "ConfigMap"),
        ActionKind::SetHpaMaxReplicas => ("autoscaling/v2", "HorizontalPodAutoscaler"),
        _ => ("apps/v1", "Deployment"),
    };
    let mut body = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": action.target_name}});
    if let (Some(b), Some(f)) = (body.as_object_mut(), fragment.as_object()) {
        for (k, v) in f {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

/// Server-side apply (or server-side dry run). Returns the applied body for the record.
pub async fn apply(
    client: &Client,
    ns: &str,
    action: &ProposedAction,
    remediation: &str,
    dry_run: bool,
) -> Result<(Value, Value), ActionError> {
    let fragment = apply_fragment(client, ns, action, remediation).await?;
    let body = full_body(action, &fragment);
    let mut pp = PatchParams::apply(FIELD_MANAGER).force();
    if dry_run {
        pp = pp.dry_run();
    }
    if action.kind == ActionKind::Rollback {
        let template = fragment.pointer("/spec/template").cloned().unwrap_or(Value::Null);
        let mut pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        if dry_run {
            pp = pp.dry_run();
        }
        let result = replace_template(client, ns, &action.target_name, template, &pp).await?;
        return Ok((body, serde_json::to_value(result).map_err(|e| ActionError::Invalid(e.to_string()))?));
    }
    let result = match action.kind {
        ActionKind::SetConfigMapKey => serde_json::to_value(
            Api::<ConfigMap>::namespaced(client.clone(), ns).patch(&action.target_name, &pp, &Patch::Apply(&body)).await?,
        ),
        ActionKind::SetHpaMaxReplicas => serde_json::to_value(
            Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns).patch(&action.target_name, &pp, &Patch::Apply(&body)).await?,
        ),
        _ => serde_json::to_value(
            Api::<Deployment>::namespaced(client.clone(), ns).patch(&action.target_name, &pp, &Patch::Apply(&body)).await?,
        ),
    }
    .map_err(|e| ActionError::Invalid(e.to_string()))?;
    Ok((body, result))
}

/// `{"spec": {"template": ...}}` and nothing else: the undo of a rollback.
fn is_whole_template(patch: &Value) -> bool {
    patch.as_object().is_some_and(|o| o.len() == 1)
        && patch.get("spec").and_then(Value::as_object).is_some_and(|s| s.len() == 1 && s.contains_key("template"))
}

/// Replaces a Deployment's pod template as a whole, as `kubectl rollout undo` does. A
/// server-side apply would not do: it never removes fields other managers own (an env var a
/// person added with `kubectl set env` stays), nor would a strategic merge (lists merge by
/// name), so the "rolled back" template would still carry what broke it.
async fn replace_template(client: &Client, ns: &str, name: &str, template: Value, pp: &PatchParams) -> Result<Deployment, ActionError> {
    let ops: json_patch::Patch =
        serde_json::from_value(serde_json::json!([{"op": "replace", "path": "/spec/template", "value": template}]))
            .map_err(|e| ActionError::Invalid(e.to_string()))?;
    Ok(Api::<Deployment>::namespaced(client.clone(), ns).patch(name, pp, &Patch::<()>::Json(ops)).await?)
}

/// Whether `target` (`Kind/name`) still holds `applied` (see `domain::applied_state`); a
/// target that is gone holds nothing.
pub async fn still_holds(client: &Client, ns: &str, target: &str, applied: &Value) -> Result<bool, ActionError> {
    let (kind, name) = target.split_once('/').ok_or_else(|| ActionError::BadSnapshot(target.to_string()))?;
    let live = match kind {
        "ConfigMap" => Api::<ConfigMap>::namespaced(client.clone(), ns).get_opt(name).await?.map(serde_json::to_value),
        "Deployment" => Api::<Deployment>::namespaced(client.clone(), ns).get_opt(name).await?.map(serde_json::to_value),
        "HorizontalPodAutoscaler" => {
            Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns).get_opt(name).await?.map(serde_json::to_value)
        }
        other => return Err(ActionError::BadSnapshot(format!("unknown kind {other}"))),
    };
    let live = live.transpose().map_err(|e| ActionError::Invalid(e.to_string()))?;
    Ok(live.is_some_and(|l| holds(&l, applied)))
}

/// Puts the snapshot back (merge patch for ConfigMaps, strategic merge for Deployments, so
/// that keys which did not exist before are removed again).
pub async fn undo(client: &Client, ns: &str, snapshot: &Snapshot) -> Result<(), ActionError> {
    let patch: Value = serde_json::from_str(&snapshot.undo_patch).map_err(|e| ActionError::BadSnapshot(e.to_string()))?;
    let (kind, name) = snapshot.target.split_once('/').ok_or_else(|| ActionError::BadSnapshot(snapshot.target.clone()))?;
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    match kind {
        "ConfigMap" => {
            Api::<ConfigMap>::namespaced(client.clone(), ns).patch(name, &pp, &Patch::Merge(&patch)).await?;
        }
        // A rollback's undo puts the whole previous template back (see `replace_template`).
        "Deployment" if is_whole_template(&patch) => {
            let template = patch.pointer("/spec/template").cloned().unwrap_or(Value::Null);
            replace_template(client, ns, name, template, &pp).await?;
        }
        "Deployment" => {
            Api::<Deployment>::namespaced(client.clone(), ns).patch(name, &pp, &Patch::Strategic(&patch)).await?;
        }
        "HorizontalPodAutoscaler" => {
            Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns).patch(name, &pp, &Patch::Merge(&patch)).await?;
        }
        other => return Err(ActionError::BadSnapshot(format!("unknown kind {other}"))),
    }
    Ok(())
}
