//! What a remediation does, as data. A proposal from any diagnoser (rules or a model) takes
//! this shape and is checked by the policy before anything is created or applied.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum ActionKind {
    /// Set (or restore) one key of a ConfigMap.
    SetConfigMapKey,
    /// Set one environment variable of a Deployment container.
    SetDeploymentEnv,
    /// Set the memory, CPU or ephemeral-storage limit of one Deployment container.
    SetDeploymentResources,
    /// Change a Deployment's replica count.
    Scale,
    /// Restart a Deployment's pods (annotation on the pod template, like `kubectl rollout restart`).
    RolloutRestart,
    /// Put back the pod template of the previous ReplicaSet revision.
    Rollback,
    /// Raise a HorizontalPodAutoscaler's maxReplicas (within the replica bound) when it is at
    /// its maximum under load it should follow.
    SetHpaMaxReplicas,
    /// Open a pull request with file changes in a GitOps repository; a person merges it.
    PullRequest,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SetConfigMapKey => "SetConfigMapKey",
            Self::SetDeploymentEnv => "SetDeploymentEnv",
            Self::SetDeploymentResources => "SetDeploymentResources",
            Self::Scale => "Scale",
            Self::RolloutRestart => "RolloutRestart",
            Self::Rollback => "Rollback",
            Self::SetHpaMaxReplicas => "SetHpaMaxReplicas",
            Self::PullRequest => "PullRequest",
        }
    }

    /// The kind of object the action changes.
    pub fn target_kind(self) -> &'static str {
        match self {
            Self::SetConfigMapKey => "ConfigMap",
            Self::SetHpaMaxReplicas => "HorizontalPodAutoscaler",
            Self::PullRequest => "Repository",
            _ => "Deployment",
        }
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    /// Fixed risk per action kind: reversible, narrow changes are low; changes to what code
    /// or how much capacity runs are higher. A model cannot talk its way to a lower risk.
    ///
    /// A pull request is Low: opening one changes nothing that runs. The human gate is the
    /// merge, which the operator never does; the policy still bounds which repositories and
    /// paths it may touch, how much, and how often.
    pub fn of(kind: ActionKind) -> Risk {
        match kind {
            ActionKind::SetConfigMapKey | ActionKind::RolloutRestart | ActionKind::Scale | ActionKind::PullRequest => Risk::Low,
            // More replicas allowed costs money and load on dependencies: a person looks first.
            ActionKind::SetDeploymentEnv | ActionKind::SetDeploymentResources | ActionKind::SetHpaMaxReplicas => Risk::Medium,
            ActionKind::Rollback => Risk::High,
        }
    }
}

/// A proposed change. Flat on purpose: one structural schema, and the fields that matter for
/// a kind are checked by `validate` (and by CEL rules in the CRD).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProposedAction {
    pub kind: ActionKind,
    /// Name of the ConfigMap or Deployment, in the incident's namespace.
    pub target_name: String,
    /// ConfigMap key or environment variable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// New value for `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// New memory limit, a Kubernetes quantity such as `512Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
    /// New CPU limit (and request, when the request was higher), e.g. `1` or `1500m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    /// New ephemeral-storage limit, e.g. `2Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// ReplicaSet revision to roll back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// PullRequest: the GitOps repository, `owner/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// PullRequest: the file changes, applied in order on one branch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileChange>,
    /// PullRequest: the pull request title (a default is derived from the incident otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// One file change of a PullRequest action.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    /// Path inside the repository, e.g. `apps/oms/values.yaml`.
    pub path: String,
    /// Exact text that must occur exactly once in the current file; it is replaced by `replace`.
    /// Without it, `replace` is the whole new file content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    pub replace: String,
}

impl ProposedAction {
    pub fn new(kind: ActionKind, target_name: impl Into<String>) -> Self {
        Self {
            kind,
            target_name: target_name.into(),
            key: None,
            value: None,
            container: None,
            memory_limit: None,
            cpu_limit: None,
            ephemeral_storage_limit: None,
            replicas: None,
            revision: None,
            repository: None,
            files: Vec::new(),
            title: None,
        }
    }

    /// `Kind/name`, used as the key for "one in-flight remediation per target". For a pull
    /// request the target is the repository: one open Salve PR per repository keeps reviews and
    /// reverts from stepping on each other.
    pub fn target(&self) -> String {
        match (self.kind, &self.repository) {
            (ActionKind::PullRequest, Some(repo)) => format!("{}/{repo}", self.kind.target_kind()),
            _ => format!("{}/{}", self.kind.target_kind(), self.target_name),
        }
    }

    /// Checks that the fields the kind needs are present.
    pub fn validate(&self) -> Result<(), String> {
        let need = |ok: bool, what: &str| if ok { Ok(()) } else { Err(format!("{} needs {what}", self.kind)) };
        if self.target_name.is_empty() {
            return Err("target name is empty".into());
        }
        match self.kind {
            ActionKind::SetConfigMapKey => need(self.key.is_some() && self.value.is_some(), "key and value"),
            ActionKind::SetDeploymentEnv => need(self.key.is_some() && self.value.is_some(), "key and value"),
            ActionKind::SetDeploymentResources => need(
                self.memory_limit.is_some() || self.cpu_limit.is_some() || self.ephemeral_storage_limit.is_some(),
                "memoryLimit, cpuLimit or ephemeralStorageLimit",
            ),
            ActionKind::Scale => need(self.replicas.is_some_and(|r| r >= 0), "replicas >= 0"),
            ActionKind::SetHpaMaxReplicas => need(self.replicas.is_some_and(|r| r >= 1), "replicas (the new maxReplicas) >= 1"),
            ActionKind::Rollback => need(self.revision.is_some(), "revision"),
            ActionKind::RolloutRestart => Ok(()),
            ActionKind::PullRequest => {
                let repo_ok = self.repository.as_deref().and_then(|r| r.split_once('/')).is_some_and(|(o, n)| {
                    let part = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                    part(o) && part(n)
                });
                need(repo_ok, "repository as owner/name")?;
                need(!self.files.is_empty(), "at least one file")?;
                need(self.files.iter().all(|f| !f.path.trim().is_empty()), "a path for every file")?;
                need(self.files.iter().all(|f| f.search.as_deref() != Some("")), "a non-empty search text (omit it to replace the file)")
            }
        }
    }

    /// One line for printer columns, events and the timeline.
    pub fn describe(&self) -> String {
        match self.kind {
            ActionKind::SetConfigMapKey => format!("set ConfigMap {} key {}", self.target_name, self.key.as_deref().unwrap_or("?")),
            ActionKind::SetDeploymentEnv => format!("set env {} on Deployment {}", self.key.as_deref().unwrap_or("?"), self.target_name),
            ActionKind::SetDeploymentResources => {
                let mut parts = Vec::new();
                for (what, v) in
                    [("memory", &self.memory_limit), ("cpu", &self.cpu_limit), ("ephemeral-storage", &self.ephemeral_storage_limit)]
                {
                    if let Some(v) = v {
                        parts.push(format!("{what} limit {v}"));
                    }
                }
                let on = self.container.as_deref().map(|c| format!(" of container {c}")).unwrap_or_default();
                format!("set {}{on} on Deployment {}", parts.join(", "), self.target_name)
            }
            ActionKind::Scale => format!("scale Deployment {} to {}", self.target_name, self.replicas.unwrap_or_default()),
            ActionKind::RolloutRestart => format!("restart Deployment {}", self.target_name),
            ActionKind::SetHpaMaxReplicas => {
                format!("set maxReplicas of HorizontalPodAutoscaler {} to {}", self.target_name, self.replicas.unwrap_or_default())
            }
            ActionKind::Rollback => format!("roll back Deployment {} to revision {}", self.target_name, self.revision.unwrap_or_default()),
            ActionKind::PullRequest => {
                let paths: Vec<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
                format!("open a pull request on {} changing {}", self.repository.as_deref().unwrap_or("?"), paths.join(", "))
            }
        }
    }
}
