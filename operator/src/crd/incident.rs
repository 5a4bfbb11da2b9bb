//! `Incident`: something is wrong with a workload. Created by intake (alarms, webhooks) or by
//! hand; driven through its phases by the Incident controller.

// kube-derive takes one `printcolumn(...)` per column; clippy mistakes the repeated
// `type_ = "string"` arguments for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::condition::{Condition, conditions_schema};
pub use crate::domain::diagnoser::{Diagnosis, RootCause};
pub use crate::domain::evidence::Evidence;
pub use crate::domain::llm_usage::LlmUsage;
pub use crate::domain::phase::IncidentPhase;
pub use crate::domain::post_mortem::PostMortem;
pub use crate::domain::post_mortem_store::ArchivedPostMortem;
pub use crate::domain::simulation::PromptInputs;
pub use crate::domain::source::{AlarmMetric, IncidentSource, Severity, SourceKind};
pub use crate::domain::timeline::TimelineEntry;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "salve.dev",
    version = "v1alpha1",
    kind = "Incident",
    namespaced,
    status = "IncidentStatus",
    shortname = "inc",
    category = "salve",
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"),
    printcolumn(name = "Severity", type_ = "string", json_path = ".spec.severity"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Root Cause", type_ = "string", json_path = ".status.diagnosis.rootCauseCategory"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct IncidentSpec {
    /// The affected service, as users name it (shown by `kubectl get incidents`).
    pub service: String,
    pub severity: Severity,
    /// Where the incident came from. Immutable: an incident is about one alarm transition.
    #[x_kube(validation = "self == oldSelf")]
    pub source: IncidentSource,
    /// The workload to investigate, in the Incident's namespace.
    pub target: WorkloadRef,
    /// Latest state of the signal. Intake records the alarm's OK transition here; a person may too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<SignalState>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum SignalState {
    Alarm,
    #[serde(rename = "OK")]
    Ok,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// `Deployment` (the default), `StatefulSet`, `DaemonSet`, `Job`, `CronJob` or `Pod`. Every kind
    /// is investigated; in-cluster actions change only Deployments (and their ConfigMaps and HPAs).
    #[serde(default = "deployment")]
    pub kind: String,
    pub name: String,
}

fn deployment() -> String {
    "Deployment".into()
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
// The bulky members are boxed: an Incident's size in memory is paid by every cached copy (the
// controller caches all of them), most of which do not hold those members.
pub struct IncidentStatus {
    #[serde(default)]
    pub phase: IncidentPhase,
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Content-addressed signature of this failure (see `domain::signature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Bounded, redacted evidence used for the latest diagnosis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Box<Evidence>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Box<Diagnosis>>,
    /// Names of the Remediations this incident created, oldest first.
    #[serde(default)]
    pub remediations: Vec<String>,
    /// Diagnosis attempts so far (each rejected or failed remediation starts a new one).
    #[serde(default)]
    pub attempts: u32,
    /// Feedback from rejected remediations, fed to the next diagnosis.
    #[serde(default)]
    pub feedback: Vec<String>,
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// Name of the ConfigMap holding the post-mortem JSON, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_mortem_ref: Option<String>,
    /// Feedback, excluded actions and limits the latest diagnosis was given (for replay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis_inputs: Option<PromptInputs>,
    /// Model calls, tokens and estimated cost, summed over every diagnosis attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_usage: Option<LlmUsage>,
    /// The post-mortem, bounded to 32 KiB (see its `truncated` list); the full record is in
    /// the ConfigMap `postMortemRef` and, when configured, in S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "post_mortem_schema")]
    pub post_mortem: Option<Box<PostMortem>>,
    /// Content hash of the full post-mortem last written to the ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_mortem_digest: Option<String>,
    /// The S3 object (under Object Lock) holding the post-mortem, when an archive is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_mortem_archive: Option<ArchivedPostMortem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The post-mortem copy is a document of its own (snake_case keys, nested records): keep its
/// schema open, so the API server stores it as written.
fn post_mortem_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "description": "The post-mortem document (see operator/src/domain/post_mortem.rs).",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
