//! Flags of the AWS evidence adapters (each with an environment variable).

use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct AwsEvidenceArgs {
    /// Collect evidence from AWS (Logs Insights, the alarm metric, X-Ray). Also on when a log group template is set.
    #[arg(long = "aws-evidence", env = "SALVE_AWS_EVIDENCE", default_value_t = false)]
    pub enabled: bool,
    /// Log group of a workload; `{cluster}`, `{namespace}` and `{workload}` are replaced
    /// (e.g. `/aws/containerinsights/{cluster}/application` or `/salve/{namespace}/{workload}`).
    #[arg(long, env = "SALVE_LOG_GROUP_TEMPLATE")]
    pub log_group_template: Option<String>,
    /// Cluster name for `{cluster}` in the log group template.
    #[arg(long, env = "SALVE_CLUSTER_NAME", default_value = "")]
    pub cluster_name: String,
    /// Minutes of logs and metrics before the alarm's state change.
    #[arg(long, env = "SALVE_AWS_EVIDENCE_MINUTES_BEFORE", default_value_t = 15)]
    pub minutes_before: u32,
    /// Minutes after it.
    #[arg(long, env = "SALVE_AWS_EVIDENCE_MINUTES_AFTER", default_value_t = 5)]
    pub minutes_after: u32,
    /// Logs Insights filter for error-ish lines (empty = every line of the workload).
    #[arg(
        long,
        env = "SALVE_AWS_LOG_FILTER",
        default_value = r"@message like /(?i)(error|exception|fatal|panic|timeout|refused|denied|fail)/"
    )]
    pub log_filter: String,
    /// Lines the Logs Insights query returns at most.
    #[arg(long, env = "SALVE_AWS_LOG_LIMIT", default_value_t = 50)]
    pub log_limit: u32,
    /// How long to wait for a Logs Insights query to complete, milliseconds.
    #[arg(long, env = "SALVE_AWS_QUERY_TIMEOUT_MS", default_value_t = 20_000)]
    pub query_timeout_ms: u64,
    /// Pause between GetQueryResults polls, milliseconds.
    #[arg(long, env = "SALVE_AWS_QUERY_POLL_MS", default_value_t = 500)]
    pub query_poll_ms: u64,
    /// Timeout of one GetMetricData or BatchGetTraces call, retries included, milliseconds.
    #[arg(long, env = "SALVE_AWS_CALL_TIMEOUT_MS", default_value_t = 10_000)]
    pub call_timeout_ms: u64,
    /// Statistic of the alarm metric when the Incident does not name one.
    #[arg(long, env = "SALVE_AWS_METRIC_STATISTIC", default_value = "Average")]
    pub metric_statistic: String,
    /// Period of the metric datapoints, seconds.
    #[arg(long, env = "SALVE_AWS_METRIC_PERIOD_SECONDS", default_value_t = 60)]
    pub metric_period_seconds: i32,
    /// X-Ray traces fetched at most (ids come from the log lines).
    #[arg(long, env = "SALVE_AWS_MAX_TRACES", default_value_t = 5)]
    pub max_traces: usize,
}

impl AwsEvidenceArgs {
    /// The usable log group template, if any.
    pub fn template(&self) -> Option<&str> {
        self.log_group_template.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled || self.template().is_some()
    }

    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
    }

    pub fn query_poll(&self) -> Duration {
        Duration::from_millis(self.query_poll_ms.max(1))
    }

    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }
}
