//! The evidence bundle about one workload. Collected by `kube::evidence`, bounded and
//! redacted by `redact`, stored in the Incident's status and fed to a diagnoser. It is also the
//! `simulation_context` that lets a diagnosis be replayed offline.

use std::collections::BTreeMap;

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
    /// RFC 3339 time the bundle was collected: the reference for event and revision ages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub collected_at: String,
    /// ConfigMaps the workload reads, with their current values (bounded, redacted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<ConfigMapEvidence>,
    /// ConfigMaps, Secrets and keys the pod template references that do not exist (names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_refs: Vec<MissingRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<HpaEvidence>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pvcs: Vec<PvcEvidence>,
    /// ResourceQuotas of the namespace (hard and used), and LimitRanges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quotas: Vec<QuotaEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccountEvidence>,
    /// NetworkPolicies whose pod selector selects the workload's pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_policies: Vec<NetworkPolicyEvidence>,
    /// The nodes the pods run on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeEvidence>,
    /// What could not be collected and why (missing permission, unknown API): a note, never a
    /// failed incident.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEvidence {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// An init container (they run to completion, in order, before the others start).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// `cpu`, `memory`, `ephemeral-storage` requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeEvidence>,
    /// Environment variable names with their source; never a Secret's value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvEvidence>,
    /// `envFrom` sources: `ConfigMap/name` or `Secret/name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountEvidence>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeEvidence {
    /// `liveness`, `readiness` or `startup`.
    pub kind: String,
    /// e.g. `httpGet :8080/healthz`, `tcpSocket :5432`, `exec`.
    #[serde(default)]
    pub handler: String,
    #[serde(default)]
    pub initial_delay_seconds: i32,
    #[serde(default)]
    pub timeout_seconds: i32,
    #[serde(default)]
    pub period_seconds: i32,
    #[serde(default)]
    pub failure_threshold: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvEvidence {
    pub name: String,
    /// `value` (literal, not recorded), `ConfigMap/name:key`, `Secret/name:key`, `field`, `resource`.
    #[serde(default)]
    pub source: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MountEvidence {
    pub volume: String,
    pub mount_path: String,
    /// A subPath mount never sees later changes of its ConfigMap/Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    /// `ConfigMap/name`, `Secret/name`, `PersistentVolumeClaim/name`, `emptyDir`, ...
    #[serde(default)]
    pub source: String,
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
    /// Per container (init containers included), with state and last termination.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerStatusEvidence>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PodConditionEvidence>,
    /// `status.reason`, e.g. `Evicted`, `NodeLost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_class: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatusEvidence {
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub restarts: i32,
    /// `running`, `waiting` or `terminated`.
    #[serde(default)]
    pub state: String,
    /// Reason of the current state (`CrashLoopBackOff`, `ImagePullBackOff`, `OOMKilled`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_termination: Option<TerminationEvidence>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TerminationEvidence {
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub finished_at: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodConditionEvidence {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
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
    /// How often the event happened (a repeated event is one object with a count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i32>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub first_seen: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_seen: String,
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
    /// What this revision changed in the pod template, compared with the one before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<TemplateChange>,
}

/// One difference between two pod templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateChange {
    /// `image`, `env`, `resources`, `command`, `probes`, `annotations`, `volumes`, `other`.
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// e.g. `oms:1.0 -> oms:2.0`, `+DB_HOST`, `limits.memory 256Mi -> 128Mi` (values of
    /// secret-looking names are withheld).
    #[serde(default)]
    pub detail: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapEvidence {
    pub name: String,
    /// Current values (bounded; values of secret-looking keys withheld).
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// How the workload reads it: `env` (values fixed at container start), `volume` (updated
    /// in place), `subPath` (never updated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_as: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MissingRef {
    /// `ConfigMap` or `Secret`.
    pub kind: String,
    pub name: String,
    /// The missing key; `None` when the whole object is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The container referencing it.
    #[serde(default)]
    pub container: String,
    /// An optional reference does not stop the container.
    #[serde(default)]
    pub optional: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvidence {
    pub name: String,
    #[serde(default)]
    pub ready_endpoints: i32,
    #[serde(default)]
    pub not_ready_endpoints: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HpaEvidence {
    pub name: String,
    #[serde(default)]
    pub min_replicas: i32,
    pub max_replicas: i32,
    #[serde(default)]
    pub current_replicas: i32,
    #[serde(default)]
    pub desired_replicas: i32,
    /// e.g. `ScalingLimited=True TooManyReplicas: the desired replica count is more than the maximum replica count`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcEvidence {
    pub name: String,
    /// `Bound`, `Pending`, `Lost`.
    #[serde(default)]
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaEvidence {
    /// `ResourceQuota/name` or `LimitRange/name`.
    pub name: String,
    #[serde(default)]
    pub hard: BTreeMap<String, String>,
    #[serde(default)]
    pub used: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountEvidence {
    pub name: String,
    #[serde(default = "yes")]
    pub exists: bool,
    /// `eks.amazonaws.com/role-arn` (IRSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicyEvidence {
    pub name: String,
    /// `Ingress`, `Egress`.
    #[serde(default)]
    pub policy_types: Vec<String>,
    #[serde(default)]
    pub ingress_rules: usize,
    #[serde(default)]
    pub egress_rules: usize,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeEvidence {
    pub name: String,
    /// Conditions that are not in their healthy state, e.g. `MemoryPressure=True`, `Ready=False`.
    #[serde(default)]
    pub conditions: Vec<String>,
    #[serde(default)]
    pub unschedulable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<String>,
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
    /// The previous (terminated) instance of the container, as `kubectl logs --previous`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub previous: bool,
    /// Whether the pod was ready when its logs were read (errors in healthy pods matter too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ready: Option<bool>,
}

impl Evidence {
    /// `Deployment` from `Deployment/name` (`Deployment` for bundles written before kinds).
    pub fn kind(&self) -> &str {
        self.workload.split_once('/').map_or("Deployment", |(k, _)| k)
    }

    pub fn name(&self) -> &str {
        self.workload.split_once('/').map_or(self.workload.as_str(), |(_, n)| n)
    }

    pub fn crash_looping_pods(&self) -> impl Iterator<Item = &PodEvidence> {
        self.pods.iter().filter(|p| p.waiting_reason.as_deref() == Some("CrashLoopBackOff") || (p.restarts > 0 && !p.ready))
    }

    pub fn oom_killed_pods(&self) -> impl Iterator<Item = &PodEvidence> {
        self.pods.iter().filter(|p| p.last_termination_reason.as_deref() == Some("OOMKilled"))
    }
}
