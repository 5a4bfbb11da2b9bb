//! A model's investigation, as data: the read-only tools it may call, their answers, and the
//! record of every call. The tools are views over the evidence bundle collected for the
//! incident (already redacted and bounded): the model starts from a compact summary and asks
//! for the detail it needs (a pod's log tail, a pod's description, events, the rollout diff,
//! cloud log lines, the alarm metric). Because the answers are a pure function of the recorded
//! evidence, `operator replay` can re-run every recorded call offline and check the answers.
//! Nothing here can change the cluster: there is no tool that writes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::evidence::Evidence;
use super::redact::{bound_line, redact_line};

/// Upper bound of one tool answer, bytes.
pub const MAX_ANSWER_BYTES: usize = 4096;

/// One tool call and its answer, in the order they happened.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolExchange {
    pub tool: String,
    #[serde(default)]
    pub input: Value,
    /// What the model was told (redacted, bounded).
    #[serde(default)]
    pub answer: String,
    /// The call was not answered: an unknown or writing tool, a repeated call, or the budget.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
}

/// Limits of one investigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Model calls, the final forced diagnosis included.
    pub max_turns: u32,
    /// Input plus output tokens over all calls; when spent, the next call must diagnose.
    pub max_tokens: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self { max_turns: 4, max_tokens: 60_000 }
    }
}

/// The read-only tools: name, description, JSON schema of the input.
pub fn tools() -> Vec<(&'static str, &'static str, Value)> {
    let pod = json!({"type": "object", "properties": {"pod": {"type": "string"}}, "required": ["pod"]});
    vec![
        (
            "pod_logs",
            "Log tail of one pod's container (current, or the previous instance with previous=true).",
            json!({"type": "object", "properties": {"pod": {"type": "string"}, "container": {"type": "string"}, "previous": {"type": "boolean"}}, "required": ["pod"]}),
        ),
        ("describe_pod", "Phase, conditions, node, QoS and per-container state and last termination of one pod.", pod),
        (
            "events",
            "Kubernetes events with counts and times, optionally only those about one object (e.g. Pod/oms-1).",
            json!({"type": "object", "properties": {"object": {"type": "string"}}}),
        ),
        (
            "rollout_diff",
            "The workload's recent revisions and what each changed in the pod template.",
            json!({"type": "object", "properties": {}}),
        ),
        (
            "logs_insights",
            "CloudWatch Logs Insights lines collected around the alarm, optionally only those containing a text.",
            json!({"type": "object", "properties": {"contains": {"type": "string"}}}),
        ),
        ("metric", "Datapoints of the alarm's metric around the alarm.", json!({"type": "object", "properties": {}})),
    ]
}

pub fn is_read_only_tool(name: &str) -> bool {
    tools().iter().any(|(n, _, _)| *n == name)
}

/// The evidence the first message carries: everything but the bulky text (log lines, cloud log
/// lines), which the tools return on request. Counts say what is there to ask for.
pub fn compact(ev: &Evidence) -> Value {
    let mut c = ev.clone();
    let logs: Vec<Value> =
        c.logs.iter().map(|l| json!({"pod": l.pod, "container": l.container, "previous": l.previous, "lines": l.lines.len()})).collect();
    c.logs.clear();
    let cloud_lines = c.cloud.as_mut().and_then(|cl| cl.logs.as_mut()).map(|l| std::mem::take(&mut l.lines).len());
    let mut v = serde_json::to_value(&c).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("logTails".into(), Value::Array(logs));
        if let Some(n) = cloud_lines {
            o.insert("cloudLogLines".into(), Value::from(n));
        }
    }
    v
}

fn bounded(text: String) -> String {
    let redacted: Vec<String> = text.lines().map(|l| bound_line(&redact_line(l), 400).0).collect();
    let joined = redacted.join("\n");
    if joined.len() <= MAX_ANSWER_BYTES {
        return joined;
    }
    let mut end = MAX_ANSWER_BYTES;
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[answer cut at {MAX_ANSWER_BYTES} bytes]", &joined[..end])
}

/// Answers a read-only tool call from the evidence; `Err` says why it cannot be answered.
pub fn answer(ev: &Evidence, tool: &str, input: &Value) -> Result<String, String> {
    let s = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_string);
    let text = match tool {
        "pod_logs" => {
            let pod = s("pod").ok_or("pod_logs needs a pod")?;
            let previous = input.get("previous").and_then(Value::as_bool).unwrap_or(false);
            let container = s("container");
            let tail = ev
                .logs
                .iter()
                .find(|l| l.pod == pod && l.previous == previous && container.as_ref().is_none_or(|c| *c == l.container))
                .ok_or_else(|| format!("no {}log tail was collected for pod {pod}", if previous { "previous " } else { "" }))?;
            tail.lines.join("\n")
        }
        "describe_pod" => {
            let pod = s("pod").ok_or("describe_pod needs a pod")?;
            let p = ev.pods.iter().find(|p| p.name == pod).ok_or_else(|| format!("pod {pod} is not in the evidence"))?;
            serde_json::to_string_pretty(p).unwrap_or_default()
        }
        "events" => {
            let object = s("object");
            let evs: Vec<_> = ev.events.iter().filter(|e| object.as_ref().is_none_or(|o| e.object == *o)).collect();
            serde_json::to_string_pretty(&evs).unwrap_or_default()
        }
        "rollout_diff" => serde_json::to_string_pretty(&ev.rollouts).unwrap_or_default(),
        "logs_insights" => {
            let lines =
                ev.cloud.as_ref().and_then(|c| c.logs.as_ref()).map(|l| l.lines.clone()).ok_or("no Logs Insights lines were collected")?;
            let contains = s("contains").unwrap_or_default();
            lines.into_iter().filter(|l| l.contains(&contains)).collect::<Vec<_>>().join("\n")
        }
        "metric" => {
            let m = ev.cloud.as_ref().and_then(|c| c.metric.as_ref()).ok_or("no metric datapoints were collected")?;
            serde_json::to_string_pretty(m).unwrap_or_default()
        }
        other => return Err(format!("{other} is not one of the read-only investigation tools")),
    };
    Ok(bounded(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::evidence::{LogTail, PodEvidence};

    fn ev() -> Evidence {
        Evidence {
            workload: "Deployment/oms".into(),
            pods: vec![PodEvidence { name: "oms-1".into(), phase: "Running".into(), ..Default::default() }],
            logs: vec![LogTail {
                pod: "oms-1".into(),
                container: "oms".into(),
                lines: vec!["error: POOL_SIZE must be > 0".into(), "password=hunter2".into()],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn tools_answer_from_the_evidence_redacted() {
        let a = answer(&ev(), "pod_logs", &json!({"pod": "oms-1"})).expect("logs");
        assert!(a.contains("POOL_SIZE must be > 0") && a.contains("password=[REDACTED:secret-value]") && !a.contains("hunter2"), "{a}");
        assert!(answer(&ev(), "pod_logs", &json!({"pod": "oms-1", "previous": true})).is_err());
        assert!(answer(&ev(), "describe_pod", &json!({"pod": "oms-1"})).expect("pod").contains("Running"));
        assert!(answer(&ev(), "delete_pod", &json!({"pod": "oms-1"})).is_err());
        assert!(!is_read_only_tool("kubectl_apply") && is_read_only_tool("rollout_diff"));
    }

    #[test]
    fn the_compact_evidence_leaves_the_log_lines_to_the_tools() {
        let c = compact(&ev());
        assert_eq!(c["logs"], json!([]));
        assert_eq!(c["logTails"][0]["lines"], 2);
        assert!(!c.to_string().contains("POOL_SIZE"));
    }
}
