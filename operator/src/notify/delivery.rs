//! Delivery with retries: 5xx, 429 and connection errors are retried with exponential back-off
//! (the initial delay doubling per attempt); any other 4xx is final. Each outcome is counted in
//! `salve_notifications_total{channel,outcome}`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::message::{Notification, json_body, slack_body};
use super::signing;
use crate::metrics::Metrics;

pub struct Channels {
    pub slack: Option<String>,
    /// URL and HMAC secret.
    pub webhook: Option<(String, Vec<u8>)>,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub http: reqwest::Client,
}

impl std::fmt::Debug for Channels {
    // The URLs are secrets (a Slack webhook URL is a bearer credential): never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels").field("slack", &self.slack.is_some()).field("webhook", &self.webhook.is_some()).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{channel} answered {status}")]
    Rejected { channel: &'static str, status: u16 },
    #[error("{channel} failed after {attempts} attempt(s): {last}")]
    GaveUp { channel: &'static str, attempts: u32, last: String },
}

impl Channels {
    /// Sends to every configured channel; the first failure is returned (the others still run).
    pub async fn deliver(&self, n: &Notification, metrics: &Metrics) -> Result<(), DeliveryError> {
        let mut first_error = None;
        if let Some(url) = &self.slack {
            let body = slack_body(n).to_string();
            let r = self.send("slack", url, body, None).await;
            metrics.notifications.with_label_values(&["slack", if r.is_ok() { "delivered" } else { "failed" }]).inc();
            first_error = first_error.or(r.err());
        }
        if let Some((url, secret)) = &self.webhook {
            let body = json_body(n).to_string();
            let r = self.send("webhook", url, body, Some(secret)).await;
            metrics.notifications.with_label_values(&["webhook", if r.is_ok() { "delivered" } else { "failed" }]).inc();
            first_error = first_error.or(r.err());
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn send(&self, channel: &'static str, url: &str, body: String, secret: Option<&Vec<u8>>) -> Result<(), DeliveryError> {
        let mut delay = self.initial_backoff;
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            let mut req = self.http.post(url).header("content-type", "application/json").timeout(Duration::from_secs(10));
            if let Some(secret) = secret {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
                req = req.header(signing::HEADER, signing::sign(secret, now, body.as_bytes()));
            }
            match req.body(body.clone()).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => last = format!("HTTP {}", r.status().as_u16()),
                Ok(r) => return Err(DeliveryError::Rejected { channel, status: r.status().as_u16() }),
                // The error may quote the URL (a credential): keep only its kind.
                Err(e) => last = if e.is_timeout() { "timeout".into() } else { "connection failed".into() },
            }
            if attempt < self.max_attempts {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(DeliveryError::GaveUp { channel, attempts: self.max_attempts, last })
    }
}
