//! The AWS implementation of the `CloudEvidenceSource` port: Logs Insights over the workload's
//! log group, the alarm metric's datapoints, and the X-Ray traces the log lines mention. Each
//! part fails on its own; its error becomes a note and the rest is still returned.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;

use super::logs_insights::LogsInsights;
use super::metric_data::MetricData;
use super::settings::AwsEvidenceArgs;
use super::xray_traces::XrayTraces;
use crate::domain::cloud_evidence::{
    CloudEvidence, CloudEvidenceRequest, CloudEvidenceSource, CloudLogs, insights_query, log_group_name, trace_ids_in,
};
use crate::domain::time::rfc3339;

pub struct AwsCloudEvidence {
    logs: LogsInsights,
    metrics: MetricData,
    xray: XrayTraces,
    settings: AwsEvidenceArgs,
}

impl AwsCloudEvidence {
    pub fn new(
        logs: aws_sdk_cloudwatchlogs::Client,
        metrics: aws_sdk_cloudwatch::Client,
        xray: aws_sdk_xray::Client,
        settings: AwsEvidenceArgs,
    ) -> Self {
        Self {
            logs: LogsInsights::new(logs, settings.query_timeout(), settings.query_poll()),
            metrics: MetricData::new(metrics, settings.call_timeout()),
            xray: XrayTraces::new(xray, settings.call_timeout()),
            settings,
        }
    }

    /// Clients from an SDK config loaded from the default chain (region, credentials and the
    /// `AWS_ENDPOINT_URL*` overrides).
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, settings: AwsEvidenceArgs) -> Self {
        Self::new(aws_sdk_cloudwatchlogs::Client::new(sdk), aws_sdk_cloudwatch::Client::new(sdk), aws_sdk_xray::Client::new(sdk), settings)
    }

    fn window(&self, alarm_time: Timestamp) -> (Timestamp, Timestamp) {
        let minutes = |m: u32| Duration::from_secs(u64::from(m) * 60);
        let start = alarm_time.checked_sub(minutes(self.settings.minutes_before)).unwrap_or(alarm_time);
        let end = alarm_time.checked_add(minutes(self.settings.minutes_after)).unwrap_or(alarm_time);
        (start, end)
    }

    async fn collect_logs(&self, req: &CloudEvidenceRequest, start: Timestamp, end: Timestamp, out: &mut CloudEvidence) {
        let Some(template) = self.settings.template() else { return };
        let group = log_group_name(template, &self.settings.cluster_name, &req.namespace, &req.workload);
        let query = insights_query(template, &req.workload, &self.settings.log_filter, self.settings.log_limit);
        match self.logs.run(&group, &query, start, end).await {
            Ok(mut lines) => {
                // The query sorts newest first; evidence lists are oldest first, newest last.
                lines.reverse();
                out.trace_ids = trace_ids_in(lines.iter().rev().map(String::as_str), self.settings.max_traces);
                out.logs = Some(CloudLogs { log_group: group, query, start: rfc3339(start), end: rfc3339(end), lines });
            }
            Err(e) => out.notes.push(format!("Logs Insights on {group}: {e}")),
        }
    }

    async fn collect(&self, req: &CloudEvidenceRequest) -> CloudEvidence {
        let (start, end) = self.window(req.alarm_time);
        let mut out = CloudEvidence::default();
        let metric = async {
            let metric = req.metric.as_ref()?;
            let statistic = metric.statistic.as_deref().unwrap_or(&self.settings.metric_statistic);
            Some(self.metrics.fetch(metric, statistic, self.settings.metric_period_seconds, start, end).await)
        };
        let (_, metric) = tokio::join!(self.collect_logs(req, start, end, &mut out), metric);
        match metric {
            Some(Ok(series)) => out.metric = Some(series),
            Some(Err(e)) => out.notes.push(format!("metric {}: {e}", req.metric.as_ref().map(|m| m.name.as_str()).unwrap_or_default())),
            None => {}
        }
        if !out.trace_ids.is_empty() {
            match self.xray.summaries(&out.trace_ids).await {
                Ok(lookup) => {
                    out.traces = lookup.summaries;
                    if !lookup.unknown.is_empty() {
                        out.notes.push(format!("X-Ray has no trace for {}", lookup.unknown.join(", ")));
                    }
                }
                Err(e) => out.notes.push(format!("X-Ray: {e}")),
            }
        }
        out
    }
}

impl CloudEvidenceSource for AwsCloudEvidence {
    fn collect<'a>(&'a self, req: &'a CloudEvidenceRequest) -> BoxFuture<'a, CloudEvidence> {
        AwsCloudEvidence::collect(self, req).boxed()
    }
}
