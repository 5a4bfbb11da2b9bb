//! Bedrock adapter of the `Diagnoser` port: Converse with one forced tool whose input schema is
//! the diagnosis. Any failure (timeout, throttling after the SDK's retries, validation errors,
//! no or malformed tool use) falls back to the offline rule-based diagnoser, and the diagnosis
//! says so in `fallbackReason`. The answer is data: the controller runs the policy on it.

use std::time::Duration;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::DisplayErrorContext;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseOutput, Message, SpecificToolChoice, SystemContentBlock, Tool, ToolChoice, ToolConfiguration,
    ToolInputSchema, ToolSpecification,
};
use aws_smithy_types::Document;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::domain::diagnoser::{DiagnoseError, Diagnoser, Diagnosis, DiagnosisInput, RuleBasedDiagnoser};
use crate::domain::model_prompt::{TOOL_NAME, build_prompt, estimate_cost, parse_answer, tool_schema};

#[derive(Clone, Debug)]
pub struct BedrockSettings {
    pub model_id: String,
    pub timeout: Duration,
    pub usd_per_1k_input: f64,
    pub usd_per_1k_output: f64,
}

pub struct BedrockDiagnoser {
    client: Client,
    settings: BedrockSettings,
    fallback: RuleBasedDiagnoser,
}

/// Builds the SDK client from a base config: retries with exponential backoff for throttling
/// (the SDK's standard retry mode), an optional endpoint override for local stand-ins.
pub fn client(
    base: aws_sdk_bedrockruntime::config::Builder,
    max_attempts: u32,
    initial_backoff: Duration,
    endpoint_url: Option<&str>,
) -> Client {
    let retry = aws_sdk_bedrockruntime::config::retry::RetryConfig::standard()
        .with_max_attempts(max_attempts.max(1))
        .with_initial_backoff(initial_backoff);
    let mut b = base.retry_config(retry);
    if let Some(url) = endpoint_url {
        b = b.endpoint_url(url);
    }
    Client::from_conf(b.build())
}

impl BedrockDiagnoser {
    pub fn new(client: Client, settings: BedrockSettings) -> Self {
        Self { client, settings, fallback: RuleBasedDiagnoser }
    }

    async fn ask(&self, input: &DiagnosisInput) -> Result<Diagnosis, DiagnoseError> {
        let prompt = build_prompt(input);
        let tool = ToolSpecification::builder()
            .name(TOOL_NAME)
            .description("Report the diagnosis of the incident and at most one proposed remediation action.")
            .input_schema(ToolInputSchema::Json(to_document(&tool_schema())))
            .build()
            .map_err(|e| DiagnoseError::Unavailable(e.to_string()))?;
        let tool_config = ToolConfiguration::builder()
            .tools(Tool::ToolSpec(tool))
            .tool_choice(ToolChoice::Tool(
                SpecificToolChoice::builder().name(TOOL_NAME).build().map_err(|e| DiagnoseError::Unavailable(e.to_string()))?,
            ))
            .build()
            .map_err(|e| DiagnoseError::Unavailable(e.to_string()))?;
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(prompt.user.clone()))
            .build()
            .map_err(|e| DiagnoseError::Unavailable(e.to_string()))?;
        let call = self
            .client
            .converse()
            .model_id(&self.settings.model_id)
            .system(SystemContentBlock::Text(prompt.system.clone()))
            .messages(message)
            .tool_config(tool_config)
            .send();
        let resp = tokio::time::timeout(self.settings.timeout, call)
            .await
            .map_err(|_| DiagnoseError::Unavailable(format!("timed out after {:?}", self.settings.timeout)))?
            .map_err(|e| DiagnoseError::Unavailable(DisplayErrorContext(&e).to_string()))?;
        let (input_tokens, output_tokens) =
            resp.usage().map(|u| (u.input_tokens().max(0) as u64, u.output_tokens().max(0) as u64)).unwrap_or_default();
        let tool_input = match resp.output() {
            Some(ConverseOutput::Message(m)) => m.content().iter().find_map(|c| match c {
                ContentBlock::ToolUse(t) if t.name() == TOOL_NAME => Some(from_document(t.input())),
                _ => None,
            }),
            _ => None,
        }
        .ok_or_else(|| DiagnoseError::InvalidAnswer("the answer holds no report_diagnosis tool use".into()))?;
        let answer = parse_answer(&tool_input, input).map_err(|e| DiagnoseError::InvalidAnswer(e.to_string()))?;
        Ok(Diagnosis {
            root_cause_category: Some(answer.category),
            summary: answer.summary,
            confidence: answer.confidence,
            model: self.settings.model_id.clone(),
            prompt_hash: prompt.hash,
            input_tokens,
            output_tokens,
            proposed_action: answer.proposed_action,
            cited_evidence: answer.cited_evidence,
            estimated_cost_usd: Some(estimate_cost(
                input_tokens,
                output_tokens,
                self.settings.usd_per_1k_input,
                self.settings.usd_per_1k_output,
            )),
            fallback_reason: None,
        })
    }
}

impl Diagnoser for BedrockDiagnoser {
    fn diagnose<'a>(&'a self, input: &'a DiagnosisInput) -> BoxFuture<'a, Result<Diagnosis, DiagnoseError>> {
        Box::pin(async move {
            match self.ask(input).await {
                Ok(d) => Ok(d),
                Err(e) => {
                    tracing::warn!(model = %self.settings.model_id, error = %e, "Bedrock diagnosis failed; using the offline diagnoser");
                    let mut d = self.fallback.diagnose(input).await?;
                    d.fallback_reason = Some(format!("{}: {e}", self.settings.model_id));
                    Ok(d)
                }
            }
        })
    }
}

fn to_document(v: &Value) -> Document {
    use aws_smithy_types::Number;
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or_default())
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(to_document).collect()),
        Value::Object(o) => Document::Object(o.iter().map(|(k, v)| (k.clone(), to_document(v))).collect()),
    }
}

fn from_document(d: &Document) -> Value {
    use aws_smithy_types::Number;
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Document::String(s) => Value::String(s.clone()),
        Document::Array(a) => Value::Array(a.iter().map(from_document).collect()),
        Document::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), from_document(v))).collect()),
    }
}
