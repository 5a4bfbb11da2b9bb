//! CloudWatch Logs Insights: StartQuery, then GetQueryResults until the query completes or a
//! bounded wait runs out (the query is then stopped, best effort).

use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::DisplayErrorContext;
use aws_sdk_cloudwatchlogs::types::QueryStatus;
use k8s_openapi::jiff::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum LogsInsightsError {
    #[error("StartQuery failed: {0}")]
    Start(String),
    #[error("GetQueryResults failed: {0}")]
    Results(String),
    #[error("query ended with status {0}")]
    Ended(String),
    #[error("query did not complete within {0:?}")]
    TimedOut(Duration),
}

#[derive(Clone, Debug)]
pub struct LogsInsights {
    client: Client,
    timeout: Duration,
    poll: Duration,
}

impl LogsInsights {
    pub fn new(client: Client, timeout: Duration, poll: Duration) -> Self {
        Self { client, timeout, poll }
    }

    /// Runs `query` over `log_group` between `start` and `end`; returns `@timestamp @message`
    /// lines in the order the query sorted them.
    pub async fn run(&self, log_group: &str, query: &str, start: Timestamp, end: Timestamp) -> Result<Vec<String>, LogsInsightsError> {
        let started = self
            .client
            .start_query()
            .log_group_name(log_group)
            .query_string(query)
            .start_time(start.as_second())
            .end_time(end.as_second())
            .send()
            .await
            .map_err(|e| LogsInsightsError::Start(DisplayErrorContext(e).to_string()))?;
        let Some(query_id) = started.query_id() else {
            return Err(LogsInsightsError::Start("no query id in the answer".into()));
        };
        match tokio::time::timeout(self.timeout, self.wait_for_results(query_id)).await {
            Ok(result) => result,
            Err(_) => {
                // Do not leave a query running (and billing) after we stopped waiting for it.
                let _ = self.client.stop_query().query_id(query_id).send().await;
                Err(LogsInsightsError::TimedOut(self.timeout))
            }
        }
    }

    async fn wait_for_results(&self, query_id: &str) -> Result<Vec<String>, LogsInsightsError> {
        loop {
            let out = self
                .client
                .get_query_results()
                .query_id(query_id)
                .send()
                .await
                .map_err(|e| LogsInsightsError::Results(DisplayErrorContext(e).to_string()))?;
            match out.status() {
                Some(QueryStatus::Complete) => return Ok(out.results().iter().filter_map(|row| line(row)).collect()),
                Some(QueryStatus::Running | QueryStatus::Scheduled) | None => tokio::time::sleep(self.poll).await,
                Some(other) => return Err(LogsInsightsError::Ended(other.as_str().to_string())),
            }
        }
    }
}

/// `@timestamp @message` of one result row; rows without a message are skipped.
fn line(row: &[aws_sdk_cloudwatchlogs::types::ResultField]) -> Option<String> {
    let field = |name: &str| row.iter().find(|f| f.field() == Some(name)).and_then(|f| f.value());
    let message = field("@message")?.trim_end();
    Some(match field("@timestamp") {
        Some(ts) => format!("{ts} {message}"),
        None => message.to_string(),
    })
}
