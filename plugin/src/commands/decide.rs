//! `kubectl salve approve REMEDIATION` and `reject REMEDIATION --feedback TEXT`: writes
//! `spec.approval {state, by, feedback}`, the fields the Remediation controller reads, only
//! while the Remediation is in phase `AwaitingApproval`. The patch carries the resourceVersion
//! that was checked, so a Remediation that moved on meanwhile is not decided blindly.

use kube::ResourceExt;
use operator::crd::remediation::{AUTO_APPROVER, ApprovalState, Remediation, RemediationPhase};
use serde_json::json;

use super::print;
use crate::cluster::Cluster;
use crate::error::PluginError;
use crate::identity;
use crate::resources::{self, remediation_op};

pub enum Decision {
    Approve,
    Reject { feedback: String },
}

pub async fn run(cluster: &Cluster, name: &str, decision: Decision) -> Result<i32, PluginError> {
    if let Decision::Reject { feedback } = &decision
        && feedback.trim().is_empty()
    {
        return Err(PluginError::EmptyFeedback);
    }
    let current = resources::remediation(cluster, name).await?;
    let phase = current.status.as_ref().map(|s| s.phase).unwrap_or_default();
    let approval = current.spec.approval.as_ref();
    let approval_text = approval
        .map(|a| format!("{:?}{}", a.state, a.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default()))
        .unwrap_or_else(|| "Pending".into());
    let decided_by_person = approval.is_some_and(|a| a.state != ApprovalState::Pending && a.by.as_deref() != Some(AUTO_APPROVER));
    if phase != RemediationPhase::AwaitingApproval || decided_by_person {
        return Err(PluginError::NotAwaitingApproval {
            name: name.to_string(),
            phase: phase.as_str().to_string(),
            approval: approval_text,
        });
    }
    let who = identity::confirmed(&cluster.client, &cluster.user).await;
    let (state, feedback, verb) = match &decision {
        Decision::Approve => (ApprovalState::Approved, None, "approved"),
        Decision::Reject { feedback } => (ApprovalState::Rejected, Some(feedback.trim().to_string()), "rejected"),
    };
    let body = json!({
        "metadata": {"resourceVersion": current.resource_version()},
        "spec": {"approval": {"state": state, "by": who, "feedback": feedback}},
    });
    let ns = cluster.namespace.as_str();
    let _: Remediation = resources::merge_patch(cluster, name, body, remediation_op("patch", Some(name), Some(ns))).await?;
    let next = match decision {
        Decision::Approve => "the operator applies it next and verifies it",
        Decision::Reject { .. } => "the incident is diagnosed again with your feedback",
    };
    print(&format!(
        "remediation.salve.dev/{name} {verb} by {who}; {next} (kubectl salve describe {} -n {ns})\n",
        current.spec.incident_ref
    ));
    Ok(0)
}
