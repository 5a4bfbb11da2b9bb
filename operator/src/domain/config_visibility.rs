//! Can the running containers of a Deployment see a change to a ConfigMap? Only through a
//! volume mounted as a directory, and only after the kubelet's next sync. Environment variables
//! are resolved when a container starts, and a `subPath` mount is a copy taken then: neither is
//! ever updated ("Configure a Pod to Use a ConfigMap", Kubernetes documentation). A restored
//! value read that way needs a rollout restart to take effect.

use k8s_openapi::api::apps::v1::Deployment;

/// Why a restart is needed for the pods to see `config_map`, or `None` when a mounted volume
/// (or nothing) reads it.
pub fn restart_needed(d: &Deployment, config_map: &str) -> Option<String> {
    let spec = d.spec.template.spec.as_ref()?;
    let volumes: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.config_map.as_ref().is_some_and(|c| c.name == config_map))
        .map(|v| v.name.as_str())
        .collect();
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        let by_env = c
            .env
            .iter()
            .flatten()
            .any(|e| e.value_from.as_ref().and_then(|f| f.config_map_key_ref.as_ref()).is_some_and(|r| r.name == config_map))
            || c.env_from.iter().flatten().any(|e| e.config_map_ref.as_ref().is_some_and(|r| r.name == config_map));
        if by_env {
            return Some(format!("container {} reads ConfigMap {config_map} through its environment, fixed at start", c.name));
        }
        let by_sub_path = c
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| volumes.contains(&m.name.as_str()) && m.sub_path.as_deref().is_some_and(|s| !s.is_empty()));
        if by_sub_path {
            return Some(format!("container {} mounts ConfigMap {config_map} through subPath, which is never updated", c.name));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(container: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": "oms"}, "spec": {"selector": {}, "template": {"spec": {
            "volumes": [{"name": "settings", "configMap": {"name": "oms-config"}}],
            "containers": [container]}}}}))
        .expect("deployment")
    }

    #[test]
    fn env_and_sub_path_need_a_restart_a_mounted_directory_does_not() {
        let env = deployment(
            json!({"name": "oms", "env": [{"name": "POOL", "valueFrom": {"configMapKeyRef": {"name": "oms-config", "key": "POOL"}}}]}),
        );
        assert!(restart_needed(&env, "oms-config").is_some_and(|r| r.contains("environment")));
        let env_from = deployment(json!({"name": "oms", "envFrom": [{"configMapRef": {"name": "oms-config"}}]}));
        assert!(restart_needed(&env_from, "oms-config").is_some());
        let sub =
            deployment(json!({"name": "oms", "volumeMounts": [{"name": "settings", "mountPath": "/etc/x.toml", "subPath": "x.toml"}]}));
        assert!(restart_needed(&sub, "oms-config").is_some_and(|r| r.contains("subPath")));
        let dir = deployment(json!({"name": "oms", "volumeMounts": [{"name": "settings", "mountPath": "/etc/oms"}]}));
        assert_eq!(restart_needed(&dir, "oms-config"), None);
        assert_eq!(restart_needed(&env, "other"), None);
    }
}
