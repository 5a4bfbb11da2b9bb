//! The outbox: messages written in the same atomic unit as the business change that causes
//! them, delivered later by the relay. [`OutboxStore`] is the relay's view of it; the SQLite
//! implementation is here, the DynamoDB one lives with the AWS adapters.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use tokio::sync::Notify;

use super::StoreUnavailable;
use super::sink::OutgoingMessage;
use crate::db::{Db, DbError};
use crate::messages::Envelope;
use crate::time::{from_text, to_text};
use crate::trace_context::TraceParent;

/// Handle a store uses to enqueue messages and to wake the relay after its commit.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the message to the SQLite outbox as part of `tx`: sent if and only if `tx` commits.
    pub fn enqueue(&self, tx: &Connection, envelope: &Envelope, trace: &TraceParent, now: DateTime<Utc>) -> rusqlite::Result<()> {
        let now = to_text(now);
        tx.prepare_cached(
            "INSERT INTO outbox (message_id, message_type, body, traceparent, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?
        .execute(params![envelope.message_id, envelope.message.kind(), envelope.to_json(), trace.child().to_string(), now])?;
        Ok(())
    }

    /// Call after the commit that enqueued something, so delivery starts without waiting for a poll.
    pub fn wake_relay(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn woken(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

/// Records that a message was handled. Returns false when it already was: the caller must then
/// have no effect (this is the inbox's dedupe, inside the business transaction).
pub fn mark_processed(tx: &Connection, message_id: &str, now: DateTime<Utc>) -> rusqlite::Result<bool> {
    let inserted = tx
        .prepare_cached("INSERT OR IGNORE INTO processed_messages (message_id, processed_at) VALUES (?1, ?2)")?
        .execute(params![message_id, to_text(now)])?;
    Ok(inserted == 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OutboxStats {
    pub depth: i64,
    pub oldest_age_seconds: f64,
}

/// A message waiting in the outbox, with its delivery attempts so far.
#[derive(Debug, Clone)]
pub struct Pending {
    pub message: OutgoingMessage,
    pub attempts: i64,
}

#[derive(Debug, Clone)]
pub struct Retry {
    pub message_id: String,
    pub next_attempt_at: DateTime<Utc>,
    pub error: String,
}

/// What the relay needs from wherever the outbox lives.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Messages whose next attempt is due, earliest due first. Reads only about as many
    /// messages as it returns, however long the outbox is.
    async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Pending>, StoreUnavailable>;
    /// Removes acknowledged messages and reschedules failed ones.
    async fn settle(&self, delivered: Vec<String>, retries: Vec<Retry>) -> Result<(), StoreUnavailable>;
    async fn stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, StoreUnavailable>;
}

pub struct SqliteOutbox(pub Db);

#[async_trait]
impl OutboxStore for SqliteOutbox {
    async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Pending>, StoreUnavailable> {
        let now = to_text(now);
        Ok(self
            .0
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    // In the order of the outbox_due index, so SQLite walks the index and stops at
                    // the limit instead of sorting every due message (a backlog) by seq first.
                    "SELECT message_id, message_type, body, traceparent, attempts FROM outbox
                     WHERE next_attempt_at <= ?1 ORDER BY next_attempt_at, seq LIMIT ?2",
                )?;
                let rows = stmt
                    .query_map(params![now, limit], |r| {
                        Ok(Pending {
                            message: OutgoingMessage {
                                message_id: r.get(0)?,
                                message_type: r.get(1)?,
                                body: r.get(2)?,
                                traceparent: r.get(3)?,
                            },
                            attempts: r.get(4)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, DbError>(rows)
            })
            .await?)
    }

    async fn settle(&self, delivered: Vec<String>, retries: Vec<Retry>) -> Result<(), StoreUnavailable> {
        Ok(self
            .0
            .write(move |tx| {
                let mut delete = tx.prepare_cached("DELETE FROM outbox WHERE message_id = ?1")?;
                for id in &delivered {
                    delete.execute([id])?;
                }
                let mut retry = tx.prepare_cached(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE message_id = ?1",
                )?;
                for r in &retries {
                    retry.execute(params![r.message_id, to_text(r.next_attempt_at), r.error])?;
                }
                Ok::<_, DbError>(())
            })
            .await?)
    }

    async fn stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, StoreUnavailable> {
        Ok(self
            .0
            .scan(move |c| {
                let (depth, oldest): (i64, Option<String>) =
                    c.prepare_cached("SELECT count(*), min(created_at) FROM outbox")?.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok::<_, DbError>(OutboxStats {
                    depth,
                    oldest_age_seconds: oldest.and_then(|t| from_text(&t).ok()).map(|t| age(now, t)).unwrap_or(0.0),
                })
            })
            .await?)
    }
}

pub fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> f64 {
    (now - then).num_milliseconds().max(0) as f64 / 1000.0
}
