//! Delivery with retries, each channel on its own: 5xx, 429 and connection errors are retried
//! with exponential back-off (the initial delay doubling per attempt), or after the receiver's
//! `Retry-After` when it sends one; any other 4xx is final. Channels are sent to side by side,
//! so a slow or failing Slack never delays the webhook, and the caller records each channel's
//! result on its own. Each outcome is counted in `salve_notifications_total{channel,outcome}`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::message::{Notification, json_body, slack_body};
use super::signing;
use crate::metrics::Metrics;

/// Longest `Retry-After` waited for inside one delivery; a longer one ends the delivery, and
/// the notifier tries that channel again once it has passed.
const MAX_INLINE_RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    Slack,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Slack => "slack",
            Channel::Webhook => "webhook",
        }
    }
}

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
    GaveUp {
        channel: &'static str,
        attempts: u32,
        last: String,
        /// The receiver's last `Retry-After`: not before then.
        retry_after: Option<Duration>,
    },
}

impl DeliveryError {
    /// How long the receiver asked us to wait before the next try, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::GaveUp { retry_after, .. } => *retry_after,
            DeliveryError::Rejected { .. } => None,
        }
    }
}

impl Channels {
    /// The channels configured, in a fixed order.
    pub fn configured(&self) -> Vec<Channel> {
        let mut out = Vec::new();
        if self.slack.is_some() {
            out.push(Channel::Slack);
        }
        if self.webhook.is_some() {
            out.push(Channel::Webhook);
        }
        out
    }

    /// Sends `n` to each channel of `to` at once; one result per channel.
    pub async fn deliver(&self, n: &Notification, to: &[Channel], metrics: &Metrics) -> Vec<(Channel, Result<(), DeliveryError>)> {
        let sends = to.iter().map(|&channel| async move {
            let r = match channel {
                Channel::Slack => match &self.slack {
                    Some(url) => self.send(channel.as_str(), url, slack_body(n).to_string(), None).await,
                    None => Ok(()),
                },
                Channel::Webhook => match &self.webhook {
                    Some((url, secret)) => self.send(channel.as_str(), url, json_body(n).to_string(), Some(secret)).await,
                    None => Ok(()),
                },
            };
            metrics.notifications.with_label_values(&[channel.as_str(), if r.is_ok() { "delivered" } else { "failed" }]).inc();
            (channel, r)
        });
        futures::future::join_all(sends).await
    }

    async fn send(&self, channel: &'static str, url: &str, body: String, secret: Option<&Vec<u8>>) -> Result<(), DeliveryError> {
        let mut delay = self.initial_backoff;
        let mut last = String::new();
        let mut retry_after = None;
        for attempt in 1..=self.max_attempts {
            let mut req = self.http.post(url).header("content-type", "application/json").timeout(Duration::from_secs(10));
            if let Some(secret) = secret {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
                req = req.header(signing::HEADER, signing::sign(secret, now, body.as_bytes()));
            }
            retry_after = None;
            match req.body(body.clone()).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS => {
                    last = format!("HTTP {}", r.status().as_u16());
                    retry_after = retry_after_of(r.headers(), SystemTime::now());
                }
                Ok(r) => return Err(DeliveryError::Rejected { channel, status: r.status().as_u16() }),
                // The error may quote the URL (a credential): keep only its kind.
                Err(e) => last = if e.is_timeout() { "timeout".into() } else { "connection failed".into() },
            }
            if attempt == self.max_attempts {
                break;
            }
            // The receiver said when: that wait replaces our back-off (RFC 9110 section 10.2.3).
            let wait = match retry_after {
                Some(asked) if asked > MAX_INLINE_RETRY_AFTER => break,
                Some(asked) => asked,
                None => delay,
            };
            tokio::time::sleep(wait).await;
            delay *= 2;
        }
        Err(DeliveryError::GaveUp { channel, attempts: self.max_attempts, last, retry_after })
    }
}

/// `Retry-After` (RFC 9110 section 10.2.3): delay-seconds, or an HTTP-date (IMF-fixdate, e.g.
/// `Wed, 21 Oct 2026 07:28:00 GMT`) turned into the time left from `now`. A date in the past
/// means "now"; an unreadable value is ignored.
pub fn retry_after_of(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = k8s_openapi::jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = k8s_openapi::jiff::Timestamp::try_from(now).ok()?;
    let left = now.duration_until(at);
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).expect("header"));
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        // 2026-10-21T07:28:00Z
        let now = UNIX_EPOCH + Duration::from_secs(1_792_567_680);
        assert_eq!(retry_after_of(&headers("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after_of(&headers("Wed, 21 Oct 2026 07:28:30 GMT"), now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after_of(&headers("Wed, 21 Oct 2026 07:27:00 GMT"), now), Some(Duration::ZERO), "a past date: now");
        assert_eq!(retry_after_of(&headers("soon"), now), None);
        assert_eq!(retry_after_of(&HeaderMap::new(), now), None);
    }
}
