//! Creates manifests (as `kubectl create -f` would) for the kinds the scenarios and the
//! sandbox's access control use.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("manifest {index}: {message}")]
    Invalid { index: usize, message: String },
    #[error("creating {kind}/{name}: {source}")]
    Create { kind: String, name: String, source: kube::Error },
}

/// The resource (plural) of a kind, and whether it is namespaced.
fn resource(kind: &str) -> Option<(&'static str, bool)> {
    Some(match kind {
        "ConfigMap" => ("configmaps", true),
        "Secret" => ("secrets", true),
        "Service" => ("services", true),
        "ServiceAccount" => ("serviceaccounts", true),
        "Pod" => ("pods", true),
        "Deployment" => ("deployments", true),
        "ReplicaSet" => ("replicasets", true),
        "StatefulSet" => ("statefulsets", true),
        "DaemonSet" => ("daemonsets", true),
        "Job" => ("jobs", true),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        "ValidatingAdmissionPolicy" => ("validatingadmissionpolicies", false),
        "ValidatingAdmissionPolicyBinding" => ("validatingadmissionpolicybindings", false),
        _ => return None,
    })
}

/// Creates each object, in its own `metadata.namespace` or else in `namespace` (cluster-scoped
/// kinds in none); objects that already exist are left as they are.
pub async fn create_all(client: &Client, namespace: &str, docs: &[Value]) -> Result<(), ApplyError> {
    for (index, doc) in docs.iter().enumerate() {
        let invalid = |message: String| ApplyError::Invalid { index, message };
        let api_version = doc.get("apiVersion").and_then(Value::as_str).ok_or_else(|| invalid("apiVersion is missing".into()))?;
        let kind = doc.get("kind").and_then(Value::as_str).ok_or_else(|| invalid("kind is missing".into()))?;
        let (plural, namespaced) = resource(kind).ok_or_else(|| invalid(format!("kind {kind} is not simulated")))?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let obj: DynamicObject = serde_json::from_value(doc.clone()).map_err(|e| invalid(e.to_string()))?;
        let name = obj.metadata.name.clone().unwrap_or_default();
        let api: Api<DynamicObject> = match (namespaced, obj.metadata.namespace.as_deref()) {
            (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
            (true, None) => Api::namespaced_with(client.clone(), namespace, &ar),
            (false, _) => Api::all_with(client.clone(), &ar),
        };
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(source) => return Err(ApplyError::Create { kind: kind.into(), name, source }),
        }
    }
    Ok(())
}

/// Parses a multi-document YAML stream into objects (empty documents skipped).
pub fn parse_yaml_stream(text: &str) -> Result<Vec<Value>, serde_yaml::Error> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v: Value = serde::Deserialize::deserialize(doc)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}
