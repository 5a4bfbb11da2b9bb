//! Where the relay hands messages over: the other service's inbox, over HTTP or in-process.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use super::inbox::{Inbox, InboxError};
use crate::auth::API_KEY_HEADER;

/// One message as it leaves the outbox.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub message_id: String,
    pub message_type: String,
    pub body: String,
    pub traceparent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("receiver unavailable: {0}")]
    Unavailable(String),
    #[error("receiver answered {status}: {body}")]
    Refused { status: u16, body: String },
}

/// The port the relay delivers through. `Ok` means the receiver has durably taken the message
/// (processed it, recognised it as a duplicate, or dead-lettered it): it may leave the outbox.
#[async_trait]
pub trait MessageSink: Send + Sync + 'static {
    async fn deliver(&self, message: &OutgoingMessage) -> Result<(), DeliveryError>;

    /// Delivers several messages, a result for each in the same order. A sink whose receiver
    /// takes many messages per call overrides it; by default they go one by one, side by side.
    async fn deliver_all(&self, messages: &[&OutgoingMessage]) -> Vec<Result<(), DeliveryError>> {
        futures::future::join_all(messages.iter().map(|m| self.deliver(m))).await
    }
}

/// POSTs to `<base>/internal/messages` of the other service.
pub struct HttpSink {
    client: reqwest::Client,
    url: String,
    api_key: Option<String>,
}

impl HttpSink {
    pub fn new(base_url: &str, api_key: Option<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        Self { client, url: format!("{}/internal/messages", base_url.trim_end_matches('/')), api_key }
    }
}

#[async_trait]
impl MessageSink for HttpSink {
    async fn deliver(&self, message: &OutgoingMessage) -> Result<(), DeliveryError> {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-message-id", &message.message_id)
            .body(message.body.clone());
        if let Some(tp) = &message.traceparent {
            request = request.header("traceparent", tp);
        }
        if let Some(key) = &self.api_key {
            request = request.header(API_KEY_HEADER, key);
        }
        let response = request.send().await.map_err(|e| DeliveryError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(DeliveryError::Refused { status: status.as_u16(), body })
    }
}

/// Calls the other service's inbox directly, for both services in one process. The target is
/// set after both services exist (each one's relay needs the other's inbox).
#[derive(Default)]
pub struct InProcessSink {
    target: OnceLock<Arc<Inbox>>,
}

impl InProcessSink {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn connect(&self, inbox: Arc<Inbox>) {
        let _ = self.target.set(inbox);
    }
}

#[async_trait]
impl MessageSink for InProcessSink {
    async fn deliver(&self, message: &OutgoingMessage) -> Result<(), DeliveryError> {
        let inbox = self.target.get().ok_or_else(|| DeliveryError::Unavailable("in-process receiver not connected".into()))?;
        match inbox.receive(&message.body, message.traceparent.as_deref()).await {
            Ok(_) => Ok(()),
            Err(InboxError::Unavailable(reason)) => Err(DeliveryError::Unavailable(reason)),
            // The in-process pair always keeps dead letters, so this does not happen; retrying
            // is the safe answer if it ever does.
            Err(InboxError::Rejected(reason)) => Err(DeliveryError::Refused { status: 422, body: reason }),
        }
    }
}
