//! The evidence bundle about one workload. Collected by `kube::evidence`, bounded and
//! redacted by `redact`, stored in the Incident's status and fed to a diagnoser. It is also the
//! `simulation_context` that lets a diagnosis be replayed offline.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// `Deployment/name` the evidence is about.
    pub workload: String,
    #[serde(default)]
    pub desired_replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default)]
    pub unavailable_replicas: i32,
    /// Memory limit per container, as declared on the Deployment.
    #[serde(default)]
    pub containers: Vec<ContainerEvidence>,
    #[serde(default)]
    pub pods: Vec<PodEvidence>,
    /// Kubernetes events about the workload and its pods, newest last.
    #[serde(default)]
    pub events: Vec<EventEvidence>,
    /// ReplicaSet revisions of the Deployment, oldest first.
    #[serde(default)]
    pub rollouts: Vec<RolloutEvidence>,
    /// Changes the operator observed to ConfigMaps the workload mounts, with previous values.
    #[serde(default)]
    pub config_changes: Vec<ConfigChange>,
    /// Container log tails (bounded, redacted).
    #[serde(default)]
    pub logs: Vec<LogTail>,
    /// Free text from the alarm (reason, alarm name) — used for "under load" signals.
    #[serde(default)]
    pub signal: String,
    /// Evidence from AWS (Logs Insights, alarm metric, X-Ray), when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<super::cloud_evidence::CloudEvidence>,
    /// True when something was dropped to respect the size bound.
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEvidence {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodEvidence {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub restarts: i32,
    /// e.g. `CrashLoopBackOff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
    /// e.g. `OOMKilled`, `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_termination_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<i32>,
    /// Revision (pod-template-hash owner) the pod belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventEvidence {
    pub reason: String,
    pub object: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub type_: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutEvidence {
    pub revision: i64,
    pub replica_set: String,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub created: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigChange {
    pub config_map: String,
    pub key: String,
    /// `None` when the key did not exist before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// RFC 3339 time the change was observed.
    #[serde(default)]
    pub observed_at: String,
    /// Set by redaction: the values were withheld because the key looks secret.
    #[serde(default)]
    pub redacted: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogTail {
    pub pod: String,
    pub container: String,
    #[serde(default)]
    pub lines: Vec<String>,
}

impl Evidence {
    pub fn crash_looping_pods(&self) -> impl Iterator<Item = &PodEvidence> {
        self.pods.iter().filter(|p| p.waiting_reason.as_deref() == Some("CrashLoopBackOff") || (p.restarts > 0 && !p.ready))
    }

    pub fn oom_killed_pods(&self) -> impl Iterator<Item = &PodEvidence> {
        self.pods.iter().filter(|p| p.last_termination_reason.as_deref() == Some("OOMKilled"))
    }
}
