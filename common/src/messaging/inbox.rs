//! Receiving messages: unreadable or rejected ones go to the dead-letter table, the rest to the
//! service's handler, which dedupes by message id inside its own transaction.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::StoreUnavailable;
use super::dead_letters::DeadLetterStore;
use crate::db::DbError;
use crate::messages::Envelope;
use crate::metrics::Metrics;
use crate::settings::SettingsHandle;
use crate::time::Clock;
use crate::trace_context::TraceParent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Handled {
    Processed,
    /// Seen before: no second effect.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The message can never be processed as it is: keep it aside with the reason.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Try again later (database busy, shutting down...).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<DbError> for HandleError {
    fn from(e: DbError) -> Self {
        HandleError::Unavailable(e.to_string())
    }
}

/// What a service does with a message it can read.
#[async_trait]
pub trait MessageHandler: Send + Sync + 'static {
    async fn handle(&self, envelope: Envelope, trace: TraceParent) -> Result<Handled, HandleError>;
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Receipt {
    Processed,
    Duplicate,
    DeadLettered { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// Retry later.
    #[error("{0}")]
    Unavailable(String),
    /// Never processable as it is, and this inbox keeps no dead letters itself: the transport
    /// must park it (the SQS consumer moves it to the queue's DLQ).
    #[error("rejected: {0}")]
    Rejected(String),
}

impl From<StoreUnavailable> for InboxError {
    fn from(e: StoreUnavailable) -> Self {
        InboxError::Unavailable(e.0)
    }
}

pub struct Inbox {
    handler: Arc<dyn MessageHandler>,
    settings: SettingsHandle,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    dead_letters: Option<Arc<dyn DeadLetterStore>>,
}

impl Inbox {
    pub fn new(
        handler: Arc<dyn MessageHandler>,
        settings: SettingsHandle,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        dead_letters: Option<Arc<dyn DeadLetterStore>>,
    ) -> Self {
        Self { handler, settings, metrics, clock, dead_letters }
    }

    pub fn dead_letters(&self) -> Option<&Arc<dyn DeadLetterStore>> {
        self.dead_letters.as_ref()
    }

    /// Takes one message. `Ok` means it is durably handled (processed, duplicate, or kept as a
    /// dead letter) and the sender may forget it; `Err` says what the sender must do.
    pub async fn receive(&self, body: &str, traceparent: Option<&str>) -> Result<Receipt, InboxError> {
        let settings = self.settings.current();
        if settings.faults.consumer_paused {
            self.count("refused");
            return Err(InboxError::Unavailable("consumer paused by runtime settings".into()));
        }
        if settings.faults.message_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(settings.faults.message_delay_ms)).await;
        }
        match self.process(body, traceparent).await {
            Ok(Handled::Processed) => {
                self.count("processed");
                Ok(Receipt::Processed)
            }
            Ok(Handled::Duplicate) => {
                self.count("duplicate");
                Ok(Receipt::Duplicate)
            }
            Err(HandleError::Rejected(reason)) => {
                tracing::warn!(%reason, "message dead-lettered");
                self.count("dead_lettered");
                let Some(store) = &self.dead_letters else { return Err(InboxError::Rejected(reason)) };
                store.store(body, traceparent, &reason, self.clock.now()).await?;
                Ok(Receipt::DeadLettered { reason })
            }
            Err(HandleError::Unavailable(reason)) => {
                self.count("refused");
                Err(InboxError::Unavailable(reason))
            }
        }
    }

    /// Runs a dead letter through the handler again. On success it leaves the table; on a
    /// new rejection it stays, with the new reason and its redrive count raised.
    pub async fn redrive(&self, id: i64) -> Result<Option<Result<Handled, String>>, InboxError> {
        let Some(store) = &self.dead_letters else { return Ok(None) };
        let Some(letter) = store.get(id).await? else { return Ok(None) };
        match self.process(&letter.body, letter.traceparent.as_deref()).await {
            Ok(handled) => {
                store.delete(id).await?;
                self.count("redriven");
                Ok(Some(Ok(handled)))
            }
            Err(HandleError::Rejected(reason)) => {
                store.record_failed_redrive(id, &reason).await?;
                Ok(Some(Err(reason)))
            }
            Err(HandleError::Unavailable(reason)) => Err(InboxError::Unavailable(reason)),
        }
    }

    async fn process(&self, body: &str, traceparent: Option<&str>) -> Result<Handled, HandleError> {
        let envelope = Envelope::from_json(body).map_err(|e| HandleError::Rejected(format!("unreadable message: {e}")))?;
        let trace = TraceParent::continue_or_start(traceparent);
        tracing::debug!(message_id = %envelope.message_id, r#type = envelope.message.kind(), trace_id = %trace.trace_id, "message received");
        self.handler.handle(envelope, trace).await
    }

    fn count(&self, outcome: &str) {
        self.metrics.messages_received.with_label_values(&[outcome]).inc();
    }
}
