//! The undo of an action, as data: from the target as it was before the change, the patch that
//! restores it. Taken (and saved in the Remediation's status) before anything is applied.
//! ConfigMaps are restored with a JSON merge patch, Deployments with a strategic merge patch,
//! so a key or env var that did not exist before is removed again (`null` / `$patch: delete`).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Container};
use serde_json::{Value, json};

use super::action::{ActionKind, ProposedAction};

/// Pod-template annotation used for restarts; its value is the Remediation name, so the same
/// remediation never restarts twice.
pub const RESTART_ANNOTATION: &str = "salve.dev/restartedBy";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UndoError {
    #[error("{0} has no containers")]
    NoContainers(String),
    #[error("container {0:?} not found")]
    NoSuchContainer(String),
    #[error("{0} missing from the action")]
    Missing(&'static str),
    #[error("{0:?} is not applied in-cluster")]
    NotInCluster(ActionKind),
    #[error("the action targets a {expected}, not this object")]
    WrongTarget { expected: &'static str },
}

/// The target as read before the change.
pub enum Before<'a> {
    ConfigMap(&'a ConfigMap),
    Deployment(&'a Deployment),
    Hpa(&'a HorizontalPodAutoscaler),
}

/// The container an action is about: the one it names, else the Deployment's first.
pub fn container_name(action: &ProposedAction, d: &Deployment) -> Result<String, UndoError> {
    if let Some(c) = &action.container {
        return Ok(c.clone());
    }
    let name = d.metadata.name.clone().unwrap_or_default();
    d.spec.template.spec.as_ref().and_then(|s| s.containers.first()).map(|c| c.name.clone()).ok_or(UndoError::NoContainers(name))
}

fn container<'a>(d: &'a Deployment, name: &str) -> Option<&'a Container> {
    d.spec.template.spec.as_ref().and_then(|s| s.containers.iter().find(|c| c.name == name))
}

fn containers_patch(container: &str, fields: Value) -> Value {
    let mut entry = json!({"name": container});
    if let (Some(e), Some(f)) = (entry.as_object_mut(), fields.as_object()) {
        e.extend(f.clone());
    }
    json!({"spec": {"template": {"spec": {"containers": [entry]}}}})
}

fn deployment<'a>(before: Before<'a>) -> Result<&'a Deployment, UndoError> {
    match before {
        Before::Deployment(d) => Ok(d),
        Before::ConfigMap(_) | Before::Hpa(_) => Err(UndoError::WrongTarget { expected: "Deployment" }),
    }
}

/// The limits a SetDeploymentResources action sets, by resource name.
pub fn resource_limits(action: &ProposedAction) -> [(&'static str, Option<&String>); 3] {
    [
        ("memory", action.memory_limit.as_ref()),
        ("cpu", action.cpu_limit.as_ref()),
        ("ephemeral-storage", action.ephemeral_storage_limit.as_ref()),
    ]
}

/// The patch that puts `before` back as far as `action` changes it.
pub fn undo_patch(action: &ProposedAction, before: Before<'_>) -> Result<Value, UndoError> {
    Ok(match action.kind {
        ActionKind::SetConfigMapKey => {
            let Before::ConfigMap(cm) = before else {
                return Err(UndoError::WrongTarget { expected: "ConfigMap" });
            };
            let key = action.key.clone().ok_or(UndoError::Missing("key"))?;
            let prev = cm.data.as_ref().and_then(|d| d.get(&key)).cloned();
            json!({"data": {key: prev}})
        }
        ActionKind::SetDeploymentEnv => {
            let d = deployment(before)?;
            let c = container_name(action, d)?;
            let key = action.key.clone().ok_or(UndoError::Missing("key"))?;
            let prev = container(d, &c)
                .and_then(|x| x.env.as_ref())
                .and_then(|env| env.iter().find(|e| e.name == key))
                .and_then(|e| serde_json::to_value(e).ok());
            let entry = prev.unwrap_or_else(|| json!({"name": key, "$patch": "delete"}));
            containers_patch(&c, json!({"env": [entry]}))
        }
        ActionKind::SetDeploymentResources => {
            let d = deployment(before)?;
            let c = container_name(action, d)?;
            let limits =
                container(d, &c).ok_or_else(|| UndoError::NoSuchContainer(c.clone()))?.resources.as_ref().and_then(|r| r.limits.as_ref());
            // Only the limits the action sets; a limit that did not exist before is removed again.
            let mut restore = serde_json::Map::new();
            // An action from before CPU and ephemeral storage meant the memory limit.
            let none_set = resource_limits(action).iter().all(|(_, v)| v.is_none());
            for (resource, set) in resource_limits(action) {
                if set.is_some() || (none_set && resource == "memory") {
                    restore.insert(
                        resource.into(),
                        limits.and_then(|l| l.get(resource)).map(|q| Value::String(q.0.clone())).unwrap_or(Value::Null),
                    );
                }
            }
            containers_patch(&c, json!({"resources": {"limits": restore}}))
        }
        ActionKind::Scale => json!({"spec": {"replicas": deployment(before)?.spec.replicas.unwrap_or(1)}}),
        ActionKind::RolloutRestart => {
            let d = deployment(before)?;
            let prev =
                d.spec.template.metadata.as_ref().and_then(|m| m.annotations.as_ref()).and_then(|a| a.get(RESTART_ANNOTATION)).cloned();
            json!({"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: prev}}}}})
        }
        ActionKind::Rollback => {
            let template = serde_json::to_value(&deployment(before)?.spec.template).unwrap_or(Value::Null);
            json!({"spec": {"template": template}})
        }
        ActionKind::SetHpaMaxReplicas => {
            let Before::Hpa(h) = before else {
                return Err(UndoError::WrongTarget { expected: "HorizontalPodAutoscaler" });
            };
            json!({"spec": {"maxReplicas": h.spec.max_replicas}})
        }
        ActionKind::PullRequest => return Err(UndoError::NotInCluster(action.kind)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "oms"},
            "spec": {"replicas": 2, "selector": {}, "template": {"spec": {"containers": [
                {"name": "istio-proxy", "resources": {"limits": {"memory": "128Mi"}}},
                {"name": "oms", "env": [{"name": "POOL_SIZE", "value": "10"}], "resources": {"limits": {"memory": "256Mi"}}}
            ]}}}
        }))
        .expect("deployment")
    }

    #[test]
    fn a_config_map_key_that_did_not_exist_is_removed_again() {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "oms-config"}, "data": {"A": "1"}})).expect("cm");
        let mut a = ProposedAction::new(ActionKind::SetConfigMapKey, "oms-config");
        a.key = Some("B".into());
        assert_eq!(undo_patch(&a, Before::ConfigMap(&cm)), Ok(json!({"data": {"B": null}})));
        a.key = Some("A".into());
        assert_eq!(undo_patch(&a, Before::ConfigMap(&cm)), Ok(json!({"data": {"A": "1"}})));
    }

    #[test]
    fn env_and_memory_are_restored_on_the_named_container() {
        let d = deployment();
        let mut a = ProposedAction::new(ActionKind::SetDeploymentEnv, "oms");
        a.container = Some("oms".into());
        a.key = Some("NEW".into());
        let p = undo_patch(&a, Before::Deployment(&d)).expect("patch");
        assert_eq!(p.pointer("/spec/template/spec/containers/0/env/0"), Some(&json!({"name": "NEW", "$patch": "delete"})));
        let mut a = ProposedAction::new(ActionKind::SetDeploymentResources, "oms");
        a.container = Some("oms".into());
        let p = undo_patch(&a, Before::Deployment(&d)).expect("patch");
        assert_eq!(p.pointer("/spec/template/spec/containers/0/resources/limits/memory"), Some(&json!("256Mi")));
        a.memory_limit = Some("512Mi".into());
        a.cpu_limit = Some("1".into());
        let p = undo_patch(&a, Before::Deployment(&d)).expect("patch");
        assert_eq!(p.pointer("/spec/template/spec/containers/0/resources/limits/memory"), Some(&json!("256Mi")));
        assert_eq!(p.pointer("/spec/template/spec/containers/0/resources/limits/cpu"), Some(&json!(null)), "a new limit is removed again");
        a.container = Some("nope".into());
        assert_eq!(undo_patch(&a, Before::Deployment(&d)), Err(UndoError::NoSuchContainer("nope".into())));
    }

    #[test]
    fn hpa_max_replicas_is_restored() {
        let h: HorizontalPodAutoscaler = serde_json::from_value(json!({"metadata": {"name": "oms"},
            "spec": {"maxReplicas": 6, "scaleTargetRef": {"kind": "Deployment", "name": "oms"}}}))
        .expect("hpa");
        let mut a = ProposedAction::new(ActionKind::SetHpaMaxReplicas, "oms");
        a.replicas = Some(9);
        assert_eq!(undo_patch(&a, Before::Hpa(&h)), Ok(json!({"spec": {"maxReplicas": 6}})));
        assert_eq!(undo_patch(&a, Before::Deployment(&deployment())), Err(UndoError::WrongTarget { expected: "HorizontalPodAutoscaler" }));
    }

    #[test]
    fn scale_restores_the_replica_count_and_pull_requests_are_not_in_cluster() {
        let d = deployment();
        assert_eq!(
            undo_patch(&ProposedAction::new(ActionKind::Scale, "oms"), Before::Deployment(&d)),
            Ok(json!({"spec": {"replicas": 2}}))
        );
        let pr = ProposedAction::new(ActionKind::PullRequest, "oms");
        assert_eq!(undo_patch(&pr, Before::Deployment(&d)), Err(UndoError::NotInCluster(ActionKind::PullRequest)));
    }
}
