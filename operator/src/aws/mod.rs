//! Everything that talks to AWS: Bedrock (diagnosis), S3 (post-mortem archive), and evidence
//! from CloudWatch Logs Insights, CloudWatch metric data and X-Ray, combined behind the
//! `domain::cloud_evidence::CloudEvidenceSource` port. Clients come
//! from the default AWS chain; endpoints are overridden with the standard `AWS_ENDPOINT_URL*`
//! variables (moto and ministack in tests).

pub mod bedrock;
pub mod cloud_evidence;
pub mod logs_insights;
pub mod metric_data;
pub mod post_mortem_s3;
pub mod settings;
pub mod xray_traces;

use k8s_openapi::jiff::Timestamp;

/// The SDK's time type for a `Timestamp` (millisecond precision is all AWS keeps).
fn smithy_time(t: Timestamp) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.as_millisecond())
}
