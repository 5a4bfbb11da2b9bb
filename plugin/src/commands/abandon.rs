//! `kubectl salve abandon REMEDIATION`: a person takes over a change Salve applied and has not
//! verified yet. The operator then leaves the change in place (no undo), the Remediation ends
//! as Failed with reason `Abandoned` naming who, the Incident escalates, and the post-mortem
//! records it. Deleting the Remediation or its Incident no longer waits for an undo.

use kube::ResourceExt;
use operator::crd::remediation::Remediation;
use operator::kube::finalizer::ABANDONED_BY_ANNOTATION;
use serde_json::json;

use super::print;
use crate::cluster::Cluster;
use crate::error::PluginError;
use crate::identity;
use crate::resources::{self, remediation_op};

pub async fn run(cluster: &Cluster, name: &str) -> Result<i32, PluginError> {
    let current = resources::remediation(cluster, name).await?;
    let phase = current.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if phase.is_terminal() {
        return Err(PluginError::NothingToAbandon { name: name.to_string(), phase: phase.as_str().to_string() });
    }
    let who = identity::confirmed(&cluster.client, &cluster.user).await;
    let body = json!({
        "metadata": {"resourceVersion": current.resource_version(), "annotations": {ABANDONED_BY_ANNOTATION: who}},
    });
    let ns = cluster.namespace.as_str();
    let _: Remediation = resources::merge_patch(cluster, name, body, remediation_op("patch", Some(name), Some(ns))).await?;
    print(&format!(
        "remediation.salve.dev/{name} abandoned by {who}: Salve leaves its change in place and hands the incident to you (kubectl salve describe {} -n {ns})\n",
        current.spec.incident_ref
    ));
    Ok(0)
}
