//! The S3 post-mortem archive against moto (real S3 wire protocol, started by tests/run.sh):
//! Object Lock mode and retain-until date on every version, content as written, COMPLIANCE
//! versions that cannot be deleted, and a clear error for a bucket without Object Lock.

use std::time::SystemTime;

use crate::support::moto::{bucket, require_moto, s3, unique};
use aws_sdk_s3::types::ObjectLockMode;
use operator::aws::post_mortem_s3::{PostMortemArchiveArgs, RetentionMode, S3PostMortemStore};
use operator::domain::post_mortem_store::{ArchiveError, PostMortemStore};

fn args(bucket: &str, mode: RetentionMode, days: u32) -> PostMortemArchiveArgs {
    PostMortemArchiveArgs {
        postmortem_bucket: Some(bucket.into()),
        postmortem_prefix: "postmortems/".into(),
        postmortem_retention_mode: mode,
        postmortem_retention_days: days,
        postmortem_s3_force_path_style: true,
    }
}

async fn store(bucket: &str, mode: RetentionMode, days: u32) -> S3PostMortemStore {
    require_moto();
    args(bucket, mode, days).store().await.expect("a bucket is configured")
}

#[tokio::test]
async fn uploads_are_locked_until_the_retention_date_with_the_content_as_written() {
    require_moto();
    let client = s3().await;
    let b = bucket(&client, true).await;
    let store = store(&b, RetentionMode::Governance, 30).await;
    let body = br#"{"incident_signature":"sha256:abc","human_feedback_score":null}"#;
    let obj = store.put("shop", "oms-5xx", body).await.expect("upload");
    assert_eq!(obj.uri, format!("s3://{b}/postmortems/shop/oms-5xx.json"));
    let version = obj.version_id.clone().expect("a version id (Object Lock buckets are versioned)");

    let key = "postmortems/shop/oms-5xx.json";
    // moto does not implement GetObjectRetention; HeadObject reports the same lock (mode and
    // retain-until date of this version) in the x-amz-object-lock-* headers.
    let head = client.head_object().bucket(&b).key(key).version_id(&version).send().await.expect("head");
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    let until = head.object_lock_retain_until_date().expect("retain-until").secs();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_secs() as i64;
    assert!(until > now + 29 * 86_400 && until <= now + 31 * 86_400, "retained about 30 days: {until} vs now {now}");

    let got = client.get_object().bucket(&b).key(key).send().await.expect("get");
    assert_eq!(got.content_type(), Some("application/json"));
    let bytes = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(&bytes[..], body);
}

#[tokio::test]
async fn compliance_versions_cannot_be_deleted_and_a_rewrite_is_a_new_version() {
    require_moto();
    let client = s3().await;
    let b = bucket(&client, true).await;
    let store = store(&b, RetentionMode::Compliance, 1).await;
    let first = store.put("shop", "oms-oom", br#"{"human_feedback_score":null}"#).await.expect("upload");
    let second = store.put("shop", "oms-oom", br#"{"human_feedback_score":4}"#).await.expect("rewrite");
    assert_ne!(first.version_id, second.version_id, "a rewrite keeps the earlier version");

    let key = "postmortems/shop/oms-oom.json";
    let version = first.version_id.expect("version");
    let deleted = client.delete_object().bucket(&b).key(key).version_id(&version).send().await;
    assert!(deleted.is_err(), "a COMPLIANCE-locked version cannot be deleted");
    let still = client.get_object().bucket(&b).key(key).version_id(&version).send().await.expect("still there");
    assert_eq!(&still.body.collect().await.expect("body").into_bytes()[..], br#"{"human_feedback_score":null}"#);
    let head = client.head_object().bucket(&b).key(key).version_id(&version).send().await.expect("head");
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
}

#[tokio::test]
async fn a_bucket_without_object_lock_is_a_clear_error() {
    require_moto();
    let client = s3().await;
    let b = bucket(&client, false).await;
    let err = store(&b, RetentionMode::Governance, 1).await.put("shop", "x", b"{}").await.expect_err("refused");
    assert!(matches!(err, ArchiveError::ObjectLockNotEnabled { .. }), "{err:?}");
    assert!(err.to_string().contains("Object Lock"), "{err}");
    let missing = store(&unique("salve-missing"), RetentionMode::Governance, 1).await.put("shop", "x", b"{}").await.expect_err("no bucket");
    assert!(matches!(missing, ArchiveError::NoSuchBucket { .. }), "{missing:?}");
}

#[test]
fn no_bucket_means_no_archive() {
    let mut a = args("b", RetentionMode::Governance, 1);
    a.postmortem_bucket = Some("  ".into());
    assert!(a.settings().is_none());
}
