//! `Remediation`: one proposed change for an Incident, owned by it. Carries the approval, the
//! snapshot needed to undo it, and the verification window.

// kube-derive takes one `printcolumn(...)` per column; clippy mistakes the repeated
// `type_ = "string"` arguments for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::condition::{Condition, conditions_schema};
pub use crate::domain::action::{ActionKind, ProposedAction, Risk};
pub use crate::domain::approval::{AUTO_APPROVER, ApprovalState};
pub use crate::domain::phase::RemediationPhase;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "salve.dev",
    version = "v1alpha1",
    kind = "Remediation",
    namespaced,
    status = "RemediationStatus",
    shortname = "rem",
    category = "salve",
    printcolumn(name = "Incident", type_ = "string", json_path = ".spec.incidentRef"),
    printcolumn(name = "Action", type_ = "string", json_path = ".spec.action.kind"),
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.action.targetName"),
    printcolumn(name = "Approval", type_ = "string", json_path = ".spec.approval.state"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct RemediationSpec {
    /// Name of the owning Incident (same namespace). Immutable.
    #[x_kube(validation = "self == oldSelf")]
    pub incident_ref: String,
    /// What to change. Immutable: a different change is a different Remediation.
    #[x_kube(validation = "self == oldSelf")]
    pub action: ProposedAction,
    /// Why, citing the evidence (from the diagnosis).
    #[serde(default)]
    pub rationale: String,
    pub risk: Risk,
    /// Set by a person with kubectl (or by the operator when the policy auto-approves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    #[serde(default)]
    pub verification: Verification,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.state != 'Rejected' || (has(self.feedback) && size(self.feedback) > 0)").message("a rejection needs feedback: it is what the next diagnosis learns from"))]
pub struct Approval {
    /// `Pending`, `Approved` or `Rejected`.
    pub state: ApprovalState,
    /// Why it was rejected; sent back to diagnosis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    /// Who decided (`AUTO_APPROVER`, `salve-operator/policy`, for automatic approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// How long the signal has to clear after the change is applied.
    #[serde(default = "default_window")]
    pub window_seconds: u32,
}

fn default_window() -> u32 {
    300
}

impl Default for Verification {
    fn default() -> Self {
        Self { window_seconds: default_window() }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemediationStatus {
    #[serde(default)]
    pub phase: RemediationPhase,
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Pre-change state, saved BEFORE anything is applied; never overwritten once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Snapshot>,
    /// The exact patch applied (JSON), for the post-mortem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_patch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    /// Server-side dry-run result in dry-run mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run_result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationResult>,
    /// Pull request URL and state (`open`, `merged` or `closed`) of a PullRequest action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_number: Option<u64>,
    /// The pull request that reverts a merged change whose verification failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_pr_url: Option<String>,
    /// A reviewer's feedback when the pull request was closed without merge; sent back to diagnosis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl RemediationStatus {
    /// `appliedAt`, parsed (`None` when absent or not a time).
    pub fn applied_time(&self) -> Option<k8s_openapi::jiff::Timestamp> {
        self.applied_at.as_deref().and_then(crate::domain::time::parse_time)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// `ConfigMap/name`, `Deployment/name` or `Repository/owner/name`.
    pub target: String,
    /// resourceVersion of the target when the snapshot was taken (base commit for a repository).
    #[serde(default)]
    pub resource_version: String,
    /// A JSON merge patch that puts the pre-change values back (`null` removes a key); for a
    /// repository, the previous contents of the changed files (see `domain::pull_request`).
    pub undo_patch: String,
    /// Total container restarts of the workload at snapshot time (for the record).
    #[serde(default)]
    pub restarts: i32,
    pub taken_at: String,
    /// Whether the workload looked healthy (all ready, nothing crash-looping) before the change:
    /// then only the alarm returning to OK can verify the fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_before: Option<bool>,
    /// When the restored value cannot reach the running containers (env, subPath, a long
    /// back-off), the fix also restarts the workload: `Deployment/name` and the strategic merge
    /// patch that undoes that restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<FollowUpRestart>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowUpRestart {
    pub target: String,
    /// Why the restart is needed.
    pub reason: String,
    pub undo_patch: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationResult {
    /// RFC 3339 deadline of the window.
    pub deadline: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    #[serde(default)]
    pub message: String,
}
