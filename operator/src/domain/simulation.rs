//! Everything needed to replay a diagnosis offline: the redacted evidence bundle, the prompt
//! inputs beside it (reviewer feedback, excluded actions, action limits) and the diagnosis that
//! was recorded from them (model id, prompt hash, tokens).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::action::ActionKind;
use super::diagnoser::{ActionLimits, Diagnosis, DiagnosisInput};
use super::evidence::Evidence;

/// The inputs of the latest diagnosis besides the evidence, recorded when it is made
/// (`status.diagnosisInputs`): the feedback and exclusions change as attempts go on, so they
/// cannot be reconstructed later.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptInputs {
    #[serde(default)]
    pub feedback: Vec<String>,
    #[serde(default)]
    pub excluded_actions: Vec<ActionKind>,
    #[serde(default)]
    pub action_limits: ActionLimits,
}

impl From<&DiagnosisInput> for PromptInputs {
    fn from(i: &DiagnosisInput) -> Self {
        Self { feedback: i.feedback.clone(), excluded_actions: i.excluded.clone(), action_limits: i.limits.clone() }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SimulationContext {
    /// The redacted, bounded evidence the diagnosis saw. `null` only in a trimmed copy.
    pub evidence: Option<Evidence>,
    pub feedback: Vec<String>,
    pub excluded_actions: Vec<ActionKind>,
    pub action_limits: ActionLimits,
    pub recorded_diagnosis: Option<Diagnosis>,
}

impl SimulationContext {
    /// The diagnoser input to replay, or `None` when this copy carries no evidence.
    pub fn diagnosis_input(&self) -> Option<DiagnosisInput> {
        Some(DiagnosisInput {
            evidence: self.evidence.clone()?,
            feedback: self.feedback.clone(),
            excluded: self.excluded_actions.clone(),
            limits: self.action_limits.clone(),
        })
    }
}
