//! Evidence from the cloud around the alarm: log lines from CloudWatch Logs Insights, datapoints
//! of the alarm metric, and X-Ray traces referenced by those logs. The types here are pure; the
//! `CloudEvidenceSource` port is implemented in `aws`. A source never fails an
//! incident: what it could not collect becomes a note.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudEvidence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<CloudLogs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricSeries>,
    /// X-Ray trace ids found in the log lines (X-Ray form `1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx`).
    #[serde(default)]
    pub trace_ids: Vec<String>,
    #[serde(default)]
    pub traces: Vec<TraceSummary>,
    /// What could not be collected and why (a failed query is a note, not a failed incident).
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudLogs {
    pub log_group: String,
    pub query: String,
    /// RFC 3339 bounds of the queried window.
    pub start: String,
    pub end: String,
    /// Matching lines, oldest first (bounded, redacted).
    #[serde(default)]
    pub lines: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricSeries {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    pub statistic: String,
    pub period_seconds: i32,
    /// Oldest first.
    #[serde(default)]
    pub datapoints: Vec<Datapoint>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Datapoint {
    /// RFC 3339.
    pub time: String,
    pub value: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummary {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// 4xx in some segment.
    #[serde(default)]
    pub error: bool,
    /// 5xx in some segment.
    #[serde(default)]
    pub fault: bool,
    #[serde(default)]
    pub throttle: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i32>,
    /// Segment annotations (bounded, redacted).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The alarm metric, when the Incident names it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricRef {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
    /// `None` = the configured default statistic.
    pub statistic: Option<String>,
}

/// What a source needs to know about the incident.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudEvidenceRequest {
    pub namespace: String,
    pub workload: String,
    pub metric: Option<MetricRef>,
    /// Time of the alarm's state change (or of the incident, when the alarm's is unknown).
    pub alarm_time: Timestamp,
}

/// Port: collects cloud evidence for one incident. Infallible by design — failures are notes.
pub trait CloudEvidenceSource: Send + Sync {
    fn collect<'a>(&'a self, req: &'a CloudEvidenceRequest) -> BoxFuture<'a, CloudEvidence>;
}

static XRAY_TRACE_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}\b").expect("valid regex"));
/// W3C `traceparent`: version-traceid-parentid-flags.
static W3C_TRACEPARENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}\b").expect("valid regex"));

/// Trace ids mentioned in `lines`, in X-Ray form, first occurrence first, without duplicates.
/// W3C trace ids are converted: X-Ray's epoch part is the first 8 hex digits of the W3C id.
pub fn trace_ids_in<'a>(lines: impl IntoIterator<Item = &'a str>, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        let xray = XRAY_TRACE_ID.find_iter(line).map(|m| m.as_str().to_ascii_lowercase());
        let w3c = W3C_TRACEPARENT.captures_iter(line).filter_map(|c| c.get(1)).map(|m| {
            let hex = m.as_str();
            format!("1-{}-{}", &hex[..8], &hex[8..])
        });
        for id in xray.chain(w3c) {
            if out.len() >= max {
                return out;
            }
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

/// The log group of a workload from a template with `{cluster}`, `{namespace}`, `{workload}`.
pub fn log_group_name(template: &str, cluster: &str, namespace: &str, workload: &str) -> String {
    template.replace("{cluster}", cluster).replace("{namespace}", namespace).replace("{workload}", workload)
}

/// Escapes a literal for use inside a Logs Insights `/regex/`.
fn insights_literal(s: &str) -> String {
    regex::escape(s).replace('/', "\\/")
}

/// The Logs Insights query: newest error-ish lines of the workload first. When the log group is
/// not per-workload (the template has no `{workload}`), lines are narrowed to the workload's
/// streams or pods by name.
pub fn insights_query(template: &str, workload: &str, error_filter: &str, limit: u32) -> String {
    let mut q = String::from("fields @timestamp, @message, @logStream");
    if !template.contains("{workload}") {
        let w = insights_literal(workload);
        q.push_str(&format!(" | filter @logStream like /{w}/ or kubernetes.pod_name like /^{w}-/"));
    }
    if !error_filter.trim().is_empty() {
        q.push_str(&format!(" | filter {}", error_filter.trim()));
    }
    q.push_str(&format!(" | sort @timestamp desc | limit {limit}"));
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xray_and_w3c_trace_ids_are_found_once() {
        let lines = [
            "GET /orders 500 trace_id=1-5759e988-bd862e3fe1be46a994272793 took 3s",
            "retry Root=1-5759E988-BD862E3FE1BE46A994272793;Parent=53995c3f42cd8ad8",
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "no ids here 1-abc",
        ];
        assert_eq!(
            trace_ids_in(lines, 10),
            vec!["1-5759e988-bd862e3fe1be46a994272793".to_string(), "1-4bf92f35-77b34da6a3ce929d0e0e4736".to_string()]
        );
        assert_eq!(trace_ids_in(lines, 1).len(), 1);
    }

    #[test]
    fn log_group_and_query_follow_the_template() {
        assert_eq!(log_group_name("/salve/{namespace}/{workload}", "prod", "shop", "oms"), "/salve/shop/oms");
        let per_workload = insights_query("/salve/{namespace}/{workload}", "oms", "@message like /ERROR/", 20);
        assert_eq!(
            per_workload,
            "fields @timestamp, @message, @logStream | filter @message like /ERROR/ | sort @timestamp desc | limit 20"
        );
        let shared = insights_query("/aws/containerinsights/{cluster}/application", "oms.v2", "", 5);
        assert!(shared.contains(r"filter @logStream like /oms\.v2/"), "{shared}");
        assert!(shared.ends_with("| limit 5"));
    }
}
