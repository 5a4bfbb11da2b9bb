//! S3 adapter of the `PostMortemStore` port: one object per Incident,
//! `<prefix><namespace>/<incident>.json`, written with Object Lock (GOVERNANCE or COMPLIANCE)
//! and a retain-until date, so a post-mortem cannot be altered or deleted before it expires.
//! A rewrite (a new feedback score) is a new object version with its own retention.
//!
//! IAM: `s3:PutObject` and `s3:PutObjectRetention` on `arn:aws:s3:::<bucket>/<prefix>*`. The
//! bucket must be created with Object Lock enabled (which also enables versioning).

use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::{ByteStream, DateTime, DateTimeFormat};
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode};
use futures::future::BoxFuture;

use crate::domain::post_mortem_store::{ArchiveError, PostMortemStore, StoredObject};

/// Object Lock retention mode. GOVERNANCE can be lifted by a principal with
/// `s3:BypassGovernanceRetention`; COMPLIANCE by nobody, not even the root user.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetentionMode {
    #[value(name = "GOVERNANCE")]
    Governance,
    #[value(name = "COMPLIANCE")]
    Compliance,
}

/// Archive of post-mortems in S3. Unset bucket = no archive (ConfigMap and status only).
#[derive(clap::Args, Debug, Clone)]
pub struct PostMortemArchiveArgs {
    /// S3 bucket for post-mortems, created with Object Lock enabled. Region, credentials and
    /// endpoint (`AWS_ENDPOINT_URL`) come from the default AWS chain.
    #[arg(long, env = "SALVE_POSTMORTEM_BUCKET")]
    pub postmortem_bucket: Option<String>,
    /// Key prefix, e.g. `postmortems/`; objects are `<prefix><namespace>/<incident>.json`.
    #[arg(long, env = "SALVE_POSTMORTEM_PREFIX", default_value = "")]
    pub postmortem_prefix: String,
    /// Object Lock mode of every version written: GOVERNANCE or COMPLIANCE.
    #[arg(long, env = "SALVE_POSTMORTEM_RETENTION_MODE", value_enum, ignore_case = true, default_value = "GOVERNANCE")]
    pub postmortem_retention_mode: RetentionMode,
    /// Days each version is retained (locked) after it is written.
    #[arg(long, env = "SALVE_POSTMORTEM_RETENTION_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub postmortem_retention_days: u32,
    /// Path-style bucket addressing (S3-compatible stores and local emulators need it).
    #[arg(long, env = "SALVE_POSTMORTEM_S3_FORCE_PATH_STYLE", default_value_t = false)]
    pub postmortem_s3_force_path_style: bool,
}

#[derive(Clone, Debug)]
pub struct S3Settings {
    pub bucket: String,
    pub prefix: String,
    pub mode: RetentionMode,
    pub retention: Duration,
}

impl PostMortemArchiveArgs {
    pub fn settings(&self) -> Option<S3Settings> {
        let bucket = self.postmortem_bucket.as_deref().map(str::trim).filter(|b| !b.is_empty())?;
        Some(S3Settings {
            bucket: bucket.to_string(),
            prefix: self.postmortem_prefix.clone(),
            mode: self.postmortem_retention_mode,
            retention: Duration::from_secs(u64::from(self.postmortem_retention_days) * 86_400),
        })
    }

    /// The store from configuration, or `None` when no bucket is set.
    pub async fn store(&self) -> Option<S3PostMortemStore> {
        let settings = self.settings()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let conf = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(self.postmortem_s3_force_path_style).build();
        tracing::info!(bucket = %settings.bucket, mode = ?settings.mode, "post-mortem archive in S3 enabled");
        Some(S3PostMortemStore::new(Client::from_conf(conf), settings))
    }
}

pub struct S3PostMortemStore {
    client: Client,
    settings: S3Settings,
}

impl S3PostMortemStore {
    pub fn new(client: Client, settings: S3Settings) -> Self {
        Self { client, settings }
    }

    pub fn key(&self, namespace: &str, incident: &str) -> String {
        format!("{}{namespace}/{incident}.json", self.settings.prefix)
    }

    async fn upload(&self, namespace: &str, incident: &str, json: &[u8]) -> Result<StoredObject, ArchiveError> {
        let bucket = &self.settings.bucket;
        let key = self.key(namespace, incident);
        let uri = format!("s3://{bucket}/{key}");
        let until = DateTime::from(SystemTime::now() + self.settings.retention);
        let mode = match self.settings.mode {
            RetentionMode::Governance => ObjectLockMode::Governance,
            RetentionMode::Compliance => ObjectLockMode::Compliance,
        };
        let resp = self
            .client
            .put_object()
            .bucket(bucket)
            .key(&key)
            .body(ByteStream::from(json.to_vec()))
            .content_type("application/json")
            // Object Lock puts must carry a content checksum; CRC32 is the SDK's flexible checksum.
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .object_lock_mode(mode)
            .object_lock_retain_until_date(until)
            .send()
            .await
            .map_err(|e| {
                let (code, message) = (e.code().unwrap_or_default().to_string(), e.message().unwrap_or_default().to_ascii_lowercase());
                if code == "NoSuchBucket" {
                    ArchiveError::NoSuchBucket { bucket: bucket.clone() }
                } else if code == "InvalidRequest" && message.replace(' ', "").contains("objectlock") {
                    ArchiveError::ObjectLockNotEnabled { bucket: bucket.clone() }
                } else {
                    ArchiveError::Upload { uri: uri.clone(), message: DisplayErrorContext(&e).to_string() }
                }
            })?;
        Ok(StoredObject { uri, version_id: resp.version_id().map(String::from), retain_until: until.fmt(DateTimeFormat::DateTime).ok() })
    }
}

impl PostMortemStore for S3PostMortemStore {
    fn put<'a>(&'a self, namespace: &'a str, incident: &'a str, json: &'a [u8]) -> BoxFuture<'a, Result<StoredObject, ArchiveError>> {
        Box::pin(self.upload(namespace, incident, json))
    }
}
