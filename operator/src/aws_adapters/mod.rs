//! Adapters that read evidence from AWS: CloudWatch Logs Insights, CloudWatch metric data and
//! X-Ray, combined behind the `domain::cloud_evidence::CloudEvidenceSource` port. Clients come
//! from the default AWS chain; endpoints are overridden with the standard `AWS_ENDPOINT_URL*`
//! variables (moto and ministack in tests).

pub mod cloud_evidence;
pub mod logs_insights;
pub mod metric_data;
pub mod settings;
pub mod xray_traces;

use k8s_openapi::jiff::Timestamp;

/// The SDK's time type for a `Timestamp` (millisecond precision is all AWS keeps).
fn smithy_time(t: Timestamp) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.as_millisecond())
}

/// RFC 3339, second precision, like the rest of the status.
fn rfc3339(t: Timestamp) -> String {
    t.round(k8s_openapi::jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default()
}
