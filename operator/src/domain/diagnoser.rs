//! The `Diagnoser` port and the types around it. Two adapters implement it: the offline rule
//! engine (`domain::diagnosis`) and Bedrock (`aws::bedrock`). A diagnosis proposes an action as
//! data; the policy decides.

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::action::{ActionKind, ProposedAction};
use super::evidence::Evidence;

#[allow(non_camel_case_types)]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RootCause {
    Code_Bug,
    Config_Error,
    Permission_Issue,
    Resource_Limit,
    External_Dependency,
}

impl RootCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code_Bug => "Code_Bug",
            Self::Config_Error => "Config_Error",
            Self::Permission_Issue => "Permission_Issue",
            Self::Resource_Limit => "Resource_Limit",
            Self::External_Dependency => "External_Dependency",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    /// `None` when the evidence fits no known pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause_category: Option<RootCause>,
    pub summary: String,
    /// 0.0 – 1.0.
    pub confidence: f64,
    /// `rules/v1` for the offline diagnoser, the model id for Bedrock.
    pub model: String,
    pub prompt_hash: String,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_action: Option<ProposedAction>,
    /// Evidence the model cited (pod names, event reasons, log lines), for the reviewer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cited_evidence: Vec<String>,
    /// Estimated model cost in USD from the token use and the configured prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<f64>,
    /// Set when the configured model failed and the offline diagnoser answered instead: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// What spoke against the diagnosis: competing explanations and facts that weaken it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contradicting_evidence: Vec<String>,
    /// A model's investigation: every read-only tool call and its answer, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub investigation: Vec<super::investigation::ToolExchange>,
}

impl Diagnosis {
    /// No category and no action: a person must look (filled in by the caller's summary).
    pub fn escalation(model: impl Into<String>, prompt_hash: String) -> Self {
        Self {
            root_cause_category: None,
            summary: String::new(),
            confidence: 0.0,
            model: model.into(),
            prompt_hash,
            input_tokens: 0,
            output_tokens: 0,
            proposed_action: None,
            cited_evidence: Vec::new(),
            estimated_cost_usd: None,
            fallback_reason: None,
            contradicting_evidence: Vec::new(),
            investigation: Vec::new(),
        }
    }
}

/// Everything a diagnoser may look at.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiagnosisInput {
    pub evidence: Evidence,
    /// Feedback from people who rejected earlier proposals, oldest first.
    pub feedback: Vec<String>,
    /// Actions already rejected or failed for this incident; not proposed again.
    pub excluded: Vec<ActionKind>,
    pub limits: ActionLimits,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionLimits {
    pub max_memory: String,
    pub max_replicas: i32,
    /// Upper bound for a CPU limit the rules propose (absent in records of earlier versions).
    #[serde(default = "default_max_cpu")]
    pub max_cpu: String,
    /// Upper bound for an ephemeral-storage limit the rules propose.
    #[serde(default = "default_max_ephemeral_storage")]
    pub max_ephemeral_storage: String,
}

fn default_max_cpu() -> String {
    "4".into()
}

fn default_max_ephemeral_storage() -> String {
    "10Gi".into()
}

impl Default for ActionLimits {
    fn default() -> Self {
        Self {
            max_memory: "2Gi".into(),
            max_replicas: 10,
            max_cpu: default_max_cpu(),
            max_ephemeral_storage: default_max_ephemeral_storage(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error("diagnoser unavailable: {0}")]
    Unavailable(String),
    #[error("diagnoser answer invalid: {0}")]
    InvalidAnswer(String),
}

/// One diagnosis with the input it was given: what an investigation produces and the status
/// records.
#[derive(Clone, Debug)]
pub struct Investigation {
    pub input: DiagnosisInput,
    pub diagnosis: Diagnosis,
}

pub trait Diagnoser: Send + Sync {
    fn diagnose<'a>(&'a self, input: &'a DiagnosisInput) -> BoxFuture<'a, Result<Diagnosis, DiagnoseError>>;
}

/// The model name recorded for the offline rules (`diagnosis::RuleBasedDiagnoser`).
pub const RULES_MODEL: &str = "rules/v1";
