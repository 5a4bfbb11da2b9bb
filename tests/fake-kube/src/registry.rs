//! Which resource types the fake serves, and the discovery documents that describe them.

use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub json_path: String,
}

#[derive(Clone, Debug)]
pub struct ResourceType {
    /// "" for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// Has a `/status` subresource: writes to the main resource ignore `.status` and writes to
    /// `/status` ignore everything else.
    pub status_subresource: bool,
    pub printer_columns: Vec<PrinterColumn>,
    /// openAPIV3Schema of a custom resource; its CEL rules (`x-kubernetes-validations`) are
    /// enforced on every write, as the real server does.
    pub schema: Option<Value>,
}

impl ResourceType {
    fn builtin(group: &str, version: &str, kind: &str, plural: &str, short: &[&str], status: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            short_names: short.iter().map(|s| s.to_string()).collect(),
            categories: vec![],
            namespaced: true,
            status_subresource: status,
            printer_columns: vec![],
            schema: None,
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Reads a CustomResourceDefinition (JSON) into one type per served version.
    pub fn from_crd(crd: &Value) -> Vec<Self> {
        let spec = &crd["spec"];
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let list = |v: &Value| -> Vec<String> {
            v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default()
        };
        let versions = spec["versions"].as_array().cloned().unwrap_or_default();
        versions
            .iter()
            .filter(|v| v["served"].as_bool().unwrap_or(true))
            .map(|v| ResourceType {
                group: s(&spec["group"]),
                version: s(&v["name"]),
                kind: s(&spec["names"]["kind"]),
                plural: s(&spec["names"]["plural"]),
                singular: s(&spec["names"]["singular"]),
                short_names: list(&spec["names"]["shortNames"]),
                categories: list(&spec["names"]["categories"]),
                namespaced: spec["scope"].as_str() != Some("Cluster"),
                status_subresource: v["subresources"].get("status").is_some(),
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .map(|cols| {
                        cols.iter()
                            .map(|c| PrinterColumn { name: s(&c["name"]), type_: s(&c["type"]), json_path: s(&c["jsonPath"]) })
                            .collect()
                    })
                    .unwrap_or_default(),
                schema: v["schema"].get("openAPIV3Schema").cloned(),
            })
            .collect()
    }

    fn api_resource(&self) -> Value {
        let verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
        json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
            "shortNames": self.short_names,
            "categories": self.categories,
        })
    }
}

pub fn builtins() -> Vec<ResourceType> {
    let mut v = vec![
        ResourceType::builtin("", "v1", "Pod", "pods", &["po"], true),
        ResourceType::builtin("", "v1", "ConfigMap", "configmaps", &["cm"], false),
        ResourceType::builtin("", "v1", "Secret", "secrets", &[], false),
        ResourceType::builtin("", "v1", "Service", "services", &["svc"], true),
        ResourceType::builtin("", "v1", "Event", "events", &["ev"], false),
        ResourceType::builtin("", "v1", "ServiceAccount", "serviceaccounts", &["sa"], false),
        ResourceType::builtin("", "v1", "Endpoints", "endpoints", &["ep"], false),
        ResourceType::builtin("apps", "v1", "Deployment", "deployments", &["deploy"], true),
        ResourceType::builtin("apps", "v1", "ReplicaSet", "replicasets", &["rs"], true),
        ResourceType::builtin("apps", "v1", "StatefulSet", "statefulsets", &["sts"], true),
        ResourceType::builtin("apps", "v1", "DaemonSet", "daemonsets", &["ds"], true),
        ResourceType::builtin("apps", "v1", "ControllerRevision", "controllerrevisions", &[], false),
        ResourceType::builtin("batch", "v1", "Job", "jobs", &[], true),
        // Every API server serves autoscaling/v2 (GA since 1.23); no controller acts on it here.
        ResourceType::builtin("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", &["hpa"], true),
        ResourceType::builtin("coordination.k8s.io", "v1", "Lease", "leases", &[], false),
        ResourceType::builtin("events.k8s.io", "v1", "Event", "events", &["ev"], false),
        ResourceType::builtin("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", &["pdb"], true),
    ];
    let mut ns = ResourceType::builtin("", "v1", "Namespace", "namespaces", &["ns"], true);
    ns.namespaced = false;
    let mut node = ResourceType::builtin("", "v1", "Node", "nodes", &["no"], true);
    node.namespaced = false;
    v.push(node);
    let mut crd = ResourceType::builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        &["crd", "crds"],
        true,
    );
    crd.namespaced = false;
    v.push(ns);
    v.push(crd);
    // Access control: RBAC (what the authorizer reads), validating admission policies, and the
    // self-subject review (answered, never stored: see `http`).
    v.push(ResourceType::builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", &[], false));
    v.push(ResourceType::builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", &[], false));
    let cluster_scoped = [
        ("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", false),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", false),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", true),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", false),
        ("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews", false),
    ];
    for (group, kind, plural, status) in cluster_scoped {
        let mut t = ResourceType::builtin(group, "v1", kind, plural, &[], status);
        t.namespaced = false;
        v.push(t);
    }
    for r in &mut v {
        if r.group.is_empty() && ["pods", "services", "configmaps", "secrets", "serviceaccounts"].contains(&r.plural.as_str())
            || ["deployments", "replicasets", "statefulsets", "daemonsets", "jobs"].contains(&r.plural.as_str())
        {
            r.categories = vec!["all".into()];
        }
    }
    v
}

pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "apiVersion": "v1", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

pub fn api_group_list(types: &[ResourceType]) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) if !vs.contains(&t.version) => vs.push(t.version.clone()),
            Some(_) => {}
            None => groups.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `None` when no type is served under this group/version.
pub fn api_resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for t in types.iter().filter(|t| t.group == group && t.version == version) {
        resources.push(t.api_resource());
        if t.status_subresource {
            resources.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
                                  "kind": t.kind, "verbs": ["get", "patch", "update"]}));
        }
        if t.plural == "pods" {
            resources.push(json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}));
            resources.push(json!({"name": "pods/eviction", "singularName": "", "namespaced": true, "group": "policy",
                                  "version": "v1", "kind": "Eviction", "verbs": ["create"]}));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}
