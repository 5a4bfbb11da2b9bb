//! Who may do what in the simulated cluster. Its API server authenticates and authorizes as a
//! real one (`FakeKube::start_enforcing`): every client has its own bearer token, RBAC decides,
//! and validating admission policies apply.
//!
//! - `sandbox-admin` (the kubeconfig the sandbox writes) is in `system:masters`; so are the
//!   control plane and the node (the sandbox does not reproduce their bootstrap roles, only
//!   what Salve is given is under test);
//! - people, each with a kubeconfig file `kubeconfig-<name>` in the work directory: the
//!   on-call person who approves in scenarios (`sandbox-oncall`), `alice` and `bob`; all may read
//!   Salve's resources and patch Remediations (the ClusterRole `salve-responder`), and
//!   `sandbox-oncall` and `bob` are in the group `salve-approvers`;
//! - the operator: ServiceAccount `salve-system/salve-operator`, with exactly the RBAC of
//!   `operator/examples/rbac.yaml` (which tests/helm.sh keeps equal to the chart's render), so a
//!   request the chart does not allow is a 403 here as in a cluster;
//! - the approval policy of `operator/examples/approval-policy.yaml` (the chart's, too).
//!
//! The people's tokens are their names, readable in their kubeconfig files; a real cluster's
//! are secrets.

use fake_kube::FakeKube;
use kube::Client;
use serde_json::{Value, json};

use crate::cluster::ClusterError;

pub const ADMIN: &str = "sandbox-admin";
pub const CONTROL_PLANE: &str = "system:kube-controller-manager";
pub const NODE_USER: &str = "system:node:sandbox-node";
/// Where the operator's ServiceAccount and leader-election Lease live (as in the examples).
pub const OPERATOR_NAMESPACE: &str = "salve-system";
pub const OPERATOR_SERVICE_ACCOUNT: &str = "salve-operator";
/// The namespace `operator/examples/rbac.yaml` grants the operator.
const EXAMPLE_NAMESPACE: &str = "shop";
pub const APPROVERS: &str = "salve-approvers";

/// People (name = token) and their groups.
pub const PEOPLE: [(&str, &[&str]); 3] =
    [(crate::scenario::ON_CALL, &["sre", APPROVERS]), ("alice", &["sre"]), ("bob", &["sre", APPROVERS])];

const OPERATOR_RBAC: &str = include_str!("../../../operator/examples/rbac.yaml");
const APPROVAL_POLICY: &str = include_str!("../../../operator/examples/approval-policy.yaml");

/// What every person may do: read Salve's resources and what `kubectl salve describe` and
/// `postmortem` show, and approve or reject (patch) Remediations; the approval policy decides
/// in whose name.
fn responder_rbac() -> Vec<Value> {
    let subjects: Vec<Value> =
        ["sre", APPROVERS].iter().map(|g| json!({"kind": "Group", "name": g, "apiGroup": "rbac.authorization.k8s.io"})).collect();
    vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "salve-responder"},
            "rules": [
                {"apiGroups": ["salve.dev"], "resources": ["incidents", "remediations"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["salve.dev"], "resources": ["remediations"], "verbs": ["patch"]},
                {"apiGroups": [""], "resources": ["events", "configmaps"], "verbs": ["get", "list"]},
                {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "salve-responder"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "salve-responder"},
            "subjects": subjects}),
    ]
}

/// Registers every token the sandbox hands out.
pub fn register_users(fake: &FakeKube) {
    for admin in [ADMIN, CONTROL_PLANE, NODE_USER] {
        fake.add_user(admin, admin, &["system:masters"]);
    }
    for (name, groups) in PEOPLE {
        fake.add_user(name, name, groups);
    }
}

async fn create_all(client: &Client, what: &str, docs: Vec<Value>) -> Result<(), ClusterError> {
    crate::demo::apply::create_all(client, "default", &docs).await.map_err(|e| ClusterError::Install(what.into(), e.to_string()))
}

fn parse(text: &str, what: &str) -> Result<Vec<Value>, ClusterError> {
    crate::demo::apply::parse_yaml_stream(text).map_err(|e| ClusterError::Install(what.into(), e.to_string()))
}

/// Installs what every sandbox cluster has: the people's RBAC and the approval policy.
pub async fn install(client: &Client) -> Result<(), ClusterError> {
    create_all(client, "people's RBAC", responder_rbac()).await?;
    create_all(client, "operator/examples/approval-policy.yaml", parse(APPROVAL_POLICY, "approval policy")?).await
}

/// Installs the operator's ServiceAccount and RBAC (`operator/examples/rbac.yaml`, with its
/// per-namespace Role and RoleBinding in `allowed_namespace`, as that file says to do for
/// another namespace) and returns the ServiceAccount's token.
pub async fn install_operator(fake: &FakeKube, client: &Client, allowed_namespace: &str) -> Result<String, ClusterError> {
    crate::cluster::ensure_namespace(client, OPERATOR_NAMESPACE).await?;
    let mut docs = parse(OPERATOR_RBAC, "operator/examples/rbac.yaml")?;
    for doc in &mut docs {
        if doc.pointer("/metadata/namespace").and_then(Value::as_str) == Some(EXAMPLE_NAMESPACE) {
            doc["metadata"]["namespace"] = json!(allowed_namespace);
        }
    }
    create_all(client, "operator/examples/rbac.yaml", docs).await?;
    Ok(fake.service_account_token(OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT))
}
