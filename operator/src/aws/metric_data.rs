//! The alarm metric's datapoints around the alarm (CloudWatch GetMetricData).

use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::error::DisplayErrorContext;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use k8s_openapi::jiff::Timestamp;

use super::smithy_time;
use crate::domain::cloud_evidence::{Datapoint, MetricRef, MetricSeries};
use crate::domain::time::rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum MetricDataError {
    #[error("GetMetricData failed: {0}")]
    Call(String),
    #[error("GetMetricData did not answer within {0:?}")]
    TimedOut(Duration),
}

#[derive(Clone, Debug)]
pub struct MetricData {
    client: Client,
    timeout: Duration,
}

impl MetricData {
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    pub async fn fetch(
        &self,
        metric: &MetricRef,
        statistic: &str,
        period_seconds: i32,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<MetricSeries, MetricDataError> {
        let dimensions = metric.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build());
        let query = MetricDataQuery::builder()
            .id("alarm")
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace(&metric.namespace)
                            .metric_name(&metric.name)
                            .set_dimensions(Some(dimensions.collect()))
                            .build(),
                    )
                    .period(period_seconds)
                    .stat(statistic)
                    .build(),
            )
            .return_data(true)
            .build();
        let call =
            self.client.get_metric_data().metric_data_queries(query).start_time(smithy_time(start)).end_time(smithy_time(end)).send();
        let out = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| MetricDataError::TimedOut(self.timeout))?
            .map_err(|e| MetricDataError::Call(DisplayErrorContext(e).to_string()))?;
        let mut datapoints: Vec<(i64, Datapoint)> = out
            .metric_data_results()
            .iter()
            .flat_map(|r| r.timestamps().iter().zip(r.values()))
            .filter_map(|(t, v)| {
                let millis = t.to_millis().ok()?;
                let time = Timestamp::from_millisecond(millis).ok()?;
                Some((millis, Datapoint { time: rfc3339(time), value: *v }))
            })
            .collect();
        datapoints.sort_by_key(|(millis, _)| *millis);
        Ok(MetricSeries {
            namespace: metric.namespace.clone(),
            name: metric.name.clone(),
            dimensions: metric.dimensions.clone(),
            statistic: statistic.to_string(),
            period_seconds,
            datapoints: datapoints.into_iter().map(|(_, d)| d).collect(),
        })
    }
}
