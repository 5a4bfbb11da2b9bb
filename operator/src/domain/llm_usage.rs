//! LLM accounting: which diagnoses were model calls, and the running token use and estimated
//! cost of one Incident across its diagnosis attempts (kept in status and in the post-mortem).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::diagnoser::{Diagnosis, RULES_MODEL};

/// How a model call ended, as a Prometheus label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    Success,
    /// The model failed (timeout, throttling, invalid answer) and the offline rules answered.
    Error,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
        }
    }
}

/// One model call, as far as a diagnosis tells.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmCall {
    pub outcome: CallOutcome,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub estimated_cost_usd: f64,
}

/// `None` when the offline rules answered without a model being asked at all.
pub fn llm_call(d: &Diagnosis) -> Option<LlmCall> {
    if d.fallback_reason.is_some() {
        // A failed call reports no usage back to us; count the call, not the tokens.
        return Some(LlmCall { outcome: CallOutcome::Error, input_tokens: 0, output_tokens: 0, estimated_cost_usd: 0.0 });
    }
    if d.model == RULES_MODEL {
        return None;
    }
    Some(LlmCall {
        outcome: CallOutcome::Success,
        input_tokens: d.input_tokens,
        output_tokens: d.output_tokens,
        estimated_cost_usd: d.estimated_cost_usd.unwrap_or_default(),
    })
}

/// Cumulative model use of one Incident (every diagnosis attempt).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LlmUsage {
    #[serde(default)]
    pub calls: u32,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    /// From the token counts and the configured per-1k-token prices.
    #[serde(default)]
    pub estimated_cost_usd: f64,
}

impl LlmUsage {
    pub fn record(&mut self, call: &LlmCall) {
        self.calls = self.calls.saturating_add(1);
        self.input_tokens = self.input_tokens.saturating_add(call.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(call.output_tokens);
        self.estimated_cost_usd += call.estimated_cost_usd;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::diagnoser::DiagnosisInput;
    use crate::domain::diagnosis::diagnose_with_rules;

    fn model_diagnosis(input: u64, output: u64, cost: f64) -> Diagnosis {
        let mut d = diagnose_with_rules(&DiagnosisInput::default());
        d.model = "anthropic.claude-test".into();
        d.input_tokens = input;
        d.output_tokens = output;
        d.estimated_cost_usd = Some(cost);
        d
    }

    #[test]
    fn offline_rules_are_not_a_model_call() {
        assert_eq!(llm_call(&diagnose_with_rules(&DiagnosisInput::default())), None);
    }

    #[test]
    fn usage_accumulates_across_attempts_and_counts_failed_calls() {
        let mut usage = LlmUsage::default();
        for d in [model_diagnosis(1000, 200, 0.006), model_diagnosis(3000, 100, 0.0105)] {
            usage.record(&llm_call(&d).expect("a model call"));
        }
        let mut fell_back = diagnose_with_rules(&DiagnosisInput::default());
        fell_back.fallback_reason = Some("model-x: throttled".into());
        let failed = llm_call(&fell_back).expect("a failed model call still counts");
        assert_eq!(failed.outcome, CallOutcome::Error);
        usage.record(&failed);
        assert_eq!((usage.calls, usage.input_tokens, usage.output_tokens), (3, 4000, 300));
        assert!((usage.estimated_cost_usd - 0.0165).abs() < 1e-9);
    }
}
