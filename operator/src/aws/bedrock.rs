//! Bedrock adapter of the `Diagnoser` port: Converse with a forced tool whose input schema is
//! the diagnosis. With a budget of more than one turn the diagnosis is an investigation: the
//! model may first call read-only tools (`domain::investigation`) within the budget of turns,
//! tokens and time; unknown or writing tools and repeated calls are refused and recorded; the
//! last turn forces the diagnosis tool. Every call and answer is recorded in the diagnosis. Any failure (timeout, throttling after the SDK's retries, validation errors,
//! no or malformed tool use) falls back to the offline rule-based diagnoser, and the diagnosis
//! says so in `fallbackReason`. The answer is data: the controller runs the policy on it.

use std::time::Duration;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::DisplayErrorContext;
use aws_sdk_bedrockruntime::types::{
    AnyToolChoice, ContentBlock, ConversationRole, ConverseOutput, Message, SpecificToolChoice, SystemContentBlock, Tool, ToolChoice,
    ToolConfiguration, ToolInputSchema, ToolResultBlock, ToolResultContentBlock, ToolResultStatus, ToolSpecification, ToolUseBlock,
};
use aws_smithy_types::Document;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::domain::diagnoser::{DiagnoseError, Diagnoser, Diagnosis, DiagnosisInput};
use crate::domain::diagnosis::RuleBasedDiagnoser;
use crate::domain::investigation::{self, Budget, ToolExchange};
use crate::domain::model_prompt::{TOOL_NAME, build_investigation_prompt, build_prompt, estimate_cost, parse_answer, tool_schema};
use crate::domain::outbound;

#[derive(Clone, Debug)]
pub struct BedrockSettings {
    pub model_id: String,
    /// For the whole investigation (every call of it).
    pub timeout: Duration,
    /// One turn = one forced call, as before investigations; more turns let the model call the
    /// read-only tools first.
    pub budget: Budget,
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
        let unavailable = |e: aws_smithy_types::error::operation::BuildError| DiagnoseError::Unavailable(e.to_string());
        let budget = self.settings.budget;
        let investigate = budget.max_turns > 1;
        let prompt = if investigate { build_investigation_prompt(input) } else { build_prompt(input) };
        let report = ToolSpecification::builder()
            .name(TOOL_NAME)
            .description("Report the diagnosis of the incident and at most one proposed remediation action.")
            .input_schema(ToolInputSchema::Json(to_document(&tool_schema())))
            .build()
            .map_err(unavailable)?;
        let mut tools = vec![Tool::ToolSpec(report)];
        if investigate {
            for (name, description, schema) in investigation::tools() {
                let spec = ToolSpecification::builder()
                    .name(name)
                    .description(description)
                    .input_schema(ToolInputSchema::Json(to_document(&schema)))
                    .build()
                    .map_err(unavailable)?;
                tools.push(Tool::ToolSpec(spec));
            }
        }
        let forced = ToolChoice::Tool(SpecificToolChoice::builder().name(TOOL_NAME).build().map_err(unavailable)?);
        let mut messages = vec![
            Message::builder()
                .role(ConversationRole::User)
                .content(ContentBlock::Text(prompt.user.clone()))
                .build()
                .map_err(unavailable)?,
        ];
        // The whole investigation shares one deadline; every call gets what is left of it.
        let deadline = tokio::time::Instant::now() + self.settings.timeout;
        let (mut input_tokens, mut output_tokens) = (0u64, 0u64);
        let mut exchanges: Vec<ToolExchange> = Vec::new();
        let mut repeats = 0;
        let mut turn = 0;
        loop {
            turn += 1;
            // The last turn forces the diagnosis: turns or tokens spent, or the model looping.
            let last = turn >= budget.max_turns || input_tokens + output_tokens >= budget.max_tokens || repeats >= MAX_REPEATS;
            let choice = if last { forced.clone() } else { ToolChoice::Any(AnyToolChoice::builder().build()) };
            let tool_config =
                ToolConfiguration::builder().set_tools(Some(tools.clone())).tool_choice(choice).build().map_err(unavailable)?;
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let call = self
                .client
                .converse()
                .model_id(&self.settings.model_id)
                .system(SystemContentBlock::Text(prompt.system.clone()))
                .set_messages(Some(messages.clone()))
                .tool_config(tool_config)
                .send();
            let resp = tokio::time::timeout(remaining, call)
                .await
                .map_err(|_| DiagnoseError::Unavailable(format!("timed out after {:?}", self.settings.timeout)))?
                .map_err(|e| DiagnoseError::Unavailable(DisplayErrorContext(&e).to_string()))?;
            if let Some(u) = resp.usage() {
                input_tokens += u.input_tokens().max(0) as u64;
                output_tokens += u.output_tokens().max(0) as u64;
            }
            let Some(ConverseOutput::Message(reply)) = resp.output() else {
                return Err(DiagnoseError::InvalidAnswer("the answer holds no message".into()));
            };
            let uses: Vec<&ToolUseBlock> =
                reply.content().iter().filter_map(|c| if let ContentBlock::ToolUse(t) = c { Some(t) } else { None }).collect();
            if let Some(t) = uses.iter().find(|t| t.name() == TOOL_NAME) {
                let answer = parse_answer(&from_document(t.input()), input).map_err(|e| DiagnoseError::InvalidAnswer(e.to_string()))?;
                return Ok(Diagnosis {
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
                    contradicting_evidence: Vec::new(),
                    investigation: exchanges,
                });
            }
            if last || uses.is_empty() {
                let why = if investigate && !uses.is_empty() {
                    format!(
                        "the investigation budget ({turn} call(s), {} tokens) was spent without a report_diagnosis tool use",
                        input_tokens + output_tokens
                    )
                } else {
                    "the answer holds no report_diagnosis tool use".to_string()
                };
                return Err(DiagnoseError::InvalidAnswer(why));
            }
            let mut results = Vec::new();
            for u in uses {
                let call_input = from_document(u.input());
                let (answer, refused) = if !investigation::is_read_only_tool(u.name()) {
                    (format!("{} is not available: only the read-only investigation tools can be called", u.name()), true)
                } else if exchanges.iter().any(|e| e.tool == u.name() && e.input == call_input) {
                    repeats += 1;
                    ("already answered above; a repeated call is not answered again".to_string(), true)
                } else {
                    let answer = investigation::answer(&input.evidence, u.name(), &call_input).unwrap_or_else(|why| why);
                    (outbound::text(&answer), false)
                };
                results.push(ContentBlock::ToolResult(
                    ToolResultBlock::builder()
                        .tool_use_id(u.tool_use_id())
                        .content(ToolResultContentBlock::Text(answer.clone()))
                        .status(if refused { ToolResultStatus::Error } else { ToolResultStatus::Success })
                        .build()
                        .map_err(unavailable)?,
                ));
                exchanges.push(ToolExchange { tool: u.name().to_string(), input: call_input, answer, refused });
            }
            messages.push(reply.clone());
            messages.push(Message::builder().role(ConversationRole::User).set_content(Some(results)).build().map_err(unavailable)?);
        }
    }
}

/// Repeated identical tool calls tolerated before the diagnosis is forced (a looping model).
const MAX_REPEATS: u32 = 2;

impl Diagnoser for BedrockDiagnoser {
    fn diagnose<'a>(&'a self, input: &'a DiagnosisInput) -> BoxFuture<'a, Result<Diagnosis, DiagnoseError>> {
        Box::pin(async move {
            match self.ask(input).await {
                // A model may quote whatever it was shown or invent anything: its answer passes
                // the gate before it is stored or sent anywhere.
                Ok(d) => Ok(outbound::diagnosis(&d)),
                Err(e) => {
                    tracing::warn!(model = %self.settings.model_id, error = %e, "Bedrock diagnosis failed; using the offline diagnoser");
                    let mut d = self.fallback.diagnose(input).await?;
                    d.fallback_reason = Some(outbound::text(&format!("{}: {e}", self.settings.model_id)));
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
