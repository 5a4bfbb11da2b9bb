//! X-Ray traces named in the logs (BatchGetTraces), reduced to summaries: duration,
//! error/fault/throttle flags, the worst HTTP status and the annotations of their segments.

use std::time::Duration;

use aws_sdk_xray::Client;
use aws_sdk_xray::error::DisplayErrorContext;
use serde_json::Value;

use crate::domain::cloud_evidence::TraceSummary;

/// BatchGetTraces accepts at most this many ids per call.
const IDS_PER_CALL: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum XrayError {
    #[error("BatchGetTraces failed: {0}")]
    Call(String),
    #[error("BatchGetTraces did not answer within {0:?}")]
    TimedOut(Duration),
}

#[derive(Clone, Debug)]
pub struct XrayTraces {
    client: Client,
    timeout: Duration,
}

/// Summaries found, and the ids X-Ray did not know (not yet indexed, or sampled out).
#[derive(Debug, Default)]
pub struct TraceLookup {
    pub summaries: Vec<TraceSummary>,
    pub unknown: Vec<String>,
}

impl XrayTraces {
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    pub async fn summaries(&self, ids: &[String]) -> Result<TraceLookup, XrayError> {
        let mut lookup = TraceLookup::default();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let call = self.client.batch_get_traces().set_trace_ids(Some(chunk.to_vec())).send();
            let out = tokio::time::timeout(self.timeout, call)
                .await
                .map_err(|_| XrayError::TimedOut(self.timeout))?
                .map_err(|e| XrayError::Call(DisplayErrorContext(e).to_string()))?;
            for trace in out.traces() {
                let documents: Vec<&str> = trace.segments().iter().filter_map(|s| s.document()).collect();
                lookup.summaries.push(summarize(trace.id().unwrap_or_default(), trace.duration(), &documents));
            }
            lookup.unknown.extend(out.unprocessed_trace_ids().iter().cloned());
        }
        Ok(lookup)
    }
}

/// Summary of one trace from its segment documents (X-Ray segment JSON). Unparsable documents
/// are skipped: a summary with less detail beats none.
pub fn summarize(id: &str, duration: Option<f64>, documents: &[&str]) -> TraceSummary {
    let mut summary = TraceSummary { id: id.to_string(), duration_seconds: duration, ..Default::default() };
    let mut span: Option<(f64, f64)> = None;
    for doc in documents {
        let Ok(segment) = serde_json::from_str::<Value>(doc) else { continue };
        if let (Some(start), Some(end)) = (segment["start_time"].as_f64(), segment["end_time"].as_f64()) {
            span = Some(span.map_or((start, end), |(s, e)| (s.min(start), e.max(end))));
        }
        visit(&segment, &mut summary);
    }
    if summary.duration_seconds.is_none_or(|d| d <= 0.0)
        && let Some((start, end)) = span
    {
        summary.duration_seconds = Some(end - start);
    }
    summary
}

/// Folds a segment and its subsegments into the summary.
fn visit(segment: &Value, summary: &mut TraceSummary) {
    let flag = |name: &str| segment[name].as_bool() == Some(true);
    summary.error |= flag("error");
    summary.fault |= flag("fault");
    summary.throttle |= flag("throttle");
    if let Some(status) = segment.pointer("/http/response/status").and_then(Value::as_i64).and_then(|s| i32::try_from(s).ok()) {
        summary.http_status = Some(summary.http_status.map_or(status, |s| s.max(status)));
    }
    if let Some(annotations) = segment["annotations"].as_object() {
        for (k, v) in annotations {
            let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            summary.annotations.entry(k.clone()).or_insert(text);
        }
    }
    for sub in segment["subsegments"].as_array().into_iter().flatten() {
        visit(sub, summary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_status_and_annotations_come_from_all_segments() {
        let root = r#"{"id":"a","trace_id":"1-5759e988-bd862e3fe1be46a994272793","start_time":10.0,"end_time":12.5,
            "http":{"response":{"status":502}},"fault":true,"annotations":{"order":"42","retries":3},
            "subsegments":[{"id":"b","throttle":true,"http":{"response":{"status":429}}}]}"#;
        let s = summarize("1-5759e988-bd862e3fe1be46a994272793", None, &[root, "not json"]);
        assert!(s.fault && s.throttle && !s.error);
        assert_eq!(s.http_status, Some(502));
        assert_eq!(s.annotations.get("retries").map(String::as_str), Some("3"));
        assert_eq!(s.duration_seconds, Some(2.5));
    }
}
