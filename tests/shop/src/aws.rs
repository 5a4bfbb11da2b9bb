//! Running the services against the AWS emulator (moto in server mode) that `tests/run.sh`
//! starts and points `AWS_ENDPOINT_URL` at. Each test gets its own table prefix and queue
//! names, so tests never see each other's data.

use std::process::Command;

use anyhow::{Context, bail};

use crate::processes::bin_path;

/// The emulator's endpoint; tests that need it fail with a clear message without it.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run these tests through tests/run.sh, which starts the moto server")
}

/// Names of one test's resources.
#[derive(Clone)]
pub struct AwsNames {
    pub prefix: String,
    pub oms_queue: String,
    pub ims_queue: String,
    /// Receives before SQS moves a message to the DLQ.
    pub max_receives: u32,
}

impl AwsNames {
    pub fn unique() -> Self {
        let prefix = format!("t{}-", &uuid_like()[..10]);
        Self { oms_queue: format!("{prefix}oms-inbox"), ims_queue: format!("{prefix}ims-inbox"), prefix, max_receives: 5 }
    }

    /// Environment for `oms`/`ims` on DynamoDB + SQS with these names. The visibility timeout
    /// is kept small so redeliveries (and DLQ moves) show within seconds.
    pub fn env(&self, service: &str) -> Vec<(String, String)> {
        let up = service.to_uppercase();
        let (own, peer, peer_var) = if service == "oms" {
            (&self.oms_queue, &self.ims_queue, "OMS_IMS_QUEUE_NAME")
        } else {
            (&self.ims_queue, &self.oms_queue, "IMS_OMS_QUEUE_NAME")
        };
        vec![
            (format!("{up}_STORE"), "dynamodb".into()),
            (format!("{up}_BUS"), "sqs".into()),
            (format!("{up}_TABLE_PREFIX"), self.prefix.clone()),
            (format!("{up}_QUEUE_NAME"), own.clone()),
            (peer_var.to_string(), peer.clone()),
            (format!("{up}_QUEUE_WAIT_SECONDS"), "1".into()),
            (format!("{up}_QUEUE_VISIBILITY_SECONDS"), "2".into()),
            (format!("{up}_QUEUE_MAX_RECEIVES"), self.max_receives.to_string()),
        ]
    }

    /// Runs `oms init-aws` and `ims init-aws` (the real subcommands) for these names.
    pub fn init(&self) -> anyhow::Result<()> {
        endpoint();
        for service in ["oms", "ims"] {
            let output = Command::new(bin_path(service))
                .arg("init-aws")
                .envs(self.env(service))
                .output()
                .with_context(|| format!("running {service} init-aws"))?;
            if !output.status.success() {
                bail!("{service} init-aws failed: {}", String::from_utf8_lossy(&output.stderr));
            }
        }
        Ok(())
    }

    /// Runs `<service> redrive`; returns its output.
    pub fn redrive(&self, service: &str) -> anyhow::Result<String> {
        let output = Command::new(bin_path(service)).arg("redrive").envs(self.env(service)).output()?;
        if !output.status.success() {
            bail!("{service} redrive failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, String)> {
        env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
    }
}

fn uuid_like() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

/// An SQS client for the emulator, for tests that look into queues directly.
pub async fn sqs() -> aws_sdk_sqs::Client {
    endpoint();
    aws_sdk_sqs::Client::new(&salve_common::aws::sdk_config().await)
}
