//! Where notifications go. URLs and the signing secret are read from files (a mounted Secret),
//! never from flags or the environment, so they stay out of `ps`, logs and pod specs.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::delivery::Channels;

#[derive(Args, Debug, Clone, Default)]
pub struct NotifyArgs {
    /// File holding a Slack incoming-webhook URL (a mounted Secret key); unset = no Slack.
    #[arg(long, env = "SALVE_NOTIFY_SLACK_URL_FILE")]
    pub notify_slack_url_file: Option<PathBuf>,
    /// File holding a generic JSON webhook URL; unset = no generic webhook.
    #[arg(long, env = "SALVE_NOTIFY_WEBHOOK_URL_FILE")]
    pub notify_webhook_url_file: Option<PathBuf>,
    /// File holding the HMAC-SHA256 secret the generic webhook is signed with (required with it).
    #[arg(long, env = "SALVE_NOTIFY_WEBHOOK_SECRET_FILE")]
    pub notify_webhook_secret_file: Option<PathBuf>,
    /// Attempts per notification (5xx, 429 and connection errors are retried with back-off).
    #[arg(long, env = "SALVE_NOTIFY_MAX_ATTEMPTS", default_value_t = 5)]
    pub notify_max_attempts: u32,
    #[arg(long, env = "SALVE_NOTIFY_INITIAL_BACKOFF_MS", default_value_t = 500)]
    pub notify_initial_backoff_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyConfigError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("--notify-webhook-url-file needs --notify-webhook-secret-file: the webhook is always signed")]
    UnsignedWebhook,
}

fn read(path: &PathBuf) -> Result<String, NotifyConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| NotifyConfigError::Read { path: path.display().to_string(), source })
}

impl NotifyArgs {
    /// `None` when no channel is configured.
    pub fn channels(&self) -> Result<Option<Channels>, NotifyConfigError> {
        let slack = self.notify_slack_url_file.as_ref().map(read).transpose()?;
        let webhook = match (&self.notify_webhook_url_file, &self.notify_webhook_secret_file) {
            (None, _) => None,
            (Some(_), None) => return Err(NotifyConfigError::UnsignedWebhook),
            (Some(url), Some(secret)) => Some((read(url)?, read(secret)?.into_bytes())),
        };
        if slack.is_none() && webhook.is_none() {
            return Ok(None);
        }
        Ok(Some(Channels {
            slack,
            webhook,
            max_attempts: self.notify_max_attempts.max(1),
            initial_backoff: Duration::from_millis(self.notify_initial_backoff_ms),
            http: reqwest::Client::new(),
        }))
    }
}
