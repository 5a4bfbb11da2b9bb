//! The AWS emulators tests/run.sh starts (moto; ministack for CloudWatch): clients pointed at
//! them, and a loud failure, never a skip, when they are not running.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn require_moto() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|u| !u.is_empty()),
        "AWS_ENDPOINT_URL is unset: this test needs the moto server; run tests/run.sh (or `source tests/moto.sh && start_moto`)"
    );
}

/// The SDK configuration from the environment tests/moto.sh exports.
pub async fn aws() -> aws_config::SdkConfig {
    require_moto();
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// S3 with path-style addressing (moto serves buckets under one host).
pub async fn s3() -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&aws().await).force_path_style(true).build())
}

/// A new bucket, with Object Lock enabled (which also turns on versioning) or without.
pub async fn bucket(client: &aws_sdk_s3::Client, object_lock: bool) -> String {
    let name = unique("salve-pm");
    client.create_bucket().bucket(&name).object_lock_enabled_for_bucket(object_lock).send().await.expect("create bucket");
    name
}

/// A name no other test (or earlier run against the same emulator) uses.
pub fn unique(prefix: &str) -> String {
    let n = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{prefix}-{n}")
}
