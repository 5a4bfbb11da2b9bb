//! Receiving messages: unreadable or rejected ones go to the dead-letter table, the rest to the
//! service's handler, which dedupes by message id inside its own transaction.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::dead_letters::{self, DeadLetter};
use crate::db::{Db, DbError};
use crate::messages::Envelope;
use crate::metrics::Metrics;
use crate::settings::SettingsHandle;
use crate::time::Clock;
use crate::trace_context::TraceParent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Receipt {
    Processed,
    Duplicate,
    DeadLettered { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("{0}")]
    Unavailable(String),
}

pub struct Inbox {
    db: Db,
    handler: Arc<dyn MessageHandler>,
    settings: SettingsHandle,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
}

impl Inbox {
    pub fn new(db: Db, handler: Arc<dyn MessageHandler>, settings: SettingsHandle, metrics: Arc<Metrics>, clock: Arc<dyn Clock>) -> Self {
        Self { db, handler, settings, metrics, clock }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Takes one message. `Ok` means it is durably handled (processed, duplicate, or kept as a
    /// dead letter) and the sender may forget it; `Err` means the sender must retry.
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
                dead_letters::store(&self.db, body, traceparent, &reason, self.clock.now())
                    .await
                    .map_err(|e| InboxError::Unavailable(e.to_string()))?;
                self.count("dead_lettered");
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
        let unavailable = |e: DbError| InboxError::Unavailable(e.to_string());
        let Some(letter): Option<DeadLetter> = dead_letters::get(&self.db, id).await.map_err(unavailable)? else {
            return Ok(None);
        };
        match self.process(&letter.body, letter.traceparent.as_deref()).await {
            Ok(handled) => {
                dead_letters::delete(&self.db, id).await.map_err(unavailable)?;
                self.count("redriven");
                Ok(Some(Ok(handled)))
            }
            Err(HandleError::Rejected(reason)) => {
                dead_letters::record_failed_redrive(&self.db, id, &reason).await.map_err(unavailable)?;
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
