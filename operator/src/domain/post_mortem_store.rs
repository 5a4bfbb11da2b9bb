//! Port for the archive of post-mortems (S3 with Object Lock in production). The controller
//! only knows this trait; the adapter in `aws::post_mortem_s3` speaks to S3.

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where an archived post-mortem is, recorded in `status.postMortemArchive`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedPostMortem {
    /// `s3://bucket/key`.
    pub uri: String,
    /// The object version: every rewrite (e.g. a new score) is a new, separately locked version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// RFC 3339 end of the Object Lock retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<String>,
    /// Content hash of the archived JSON; a different hash means the archive is out of date.
    pub digest: String,
}

/// What the store reports after a successful write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub uri: String,
    pub version_id: Option<String>,
    pub retain_until: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("bucket {bucket} has no Object Lock configuration; create it with Object Lock enabled (post-mortems must be immutable)")]
    ObjectLockNotEnabled { bucket: String },
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket { bucket: String },
    #[error("upload of {uri} failed: {message}")]
    Upload { uri: String, message: String },
}

pub trait PostMortemStore: Send + Sync {
    /// Stores `json` as the post-mortem of `namespace/incident`, under retention.
    fn put<'a>(&'a self, namespace: &'a str, incident: &'a str, json: &'a [u8]) -> BoxFuture<'a, Result<StoredObject, ArchiveError>>;
}
