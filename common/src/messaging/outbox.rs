//! Writing to the outbox, inside the caller's transaction, and reading its state.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};
use tokio::sync::Notify;

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

    /// Adds the message to the outbox as part of `tx`: it is sent if and only if `tx` commits.
    pub fn enqueue(&self, tx: &Transaction<'_>, envelope: &Envelope, trace: &TraceParent, now: DateTime<Utc>) -> rusqlite::Result<()> {
        let now = to_text(now);
        tx.execute(
            "INSERT INTO outbox (message_id, message_type, body, traceparent, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![envelope.message_id, envelope.message.kind(), envelope.to_json(), trace.child().to_string(), now],
        )?;
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
pub fn mark_processed(tx: &Transaction<'_>, message_id: &str, now: DateTime<Utc>) -> rusqlite::Result<bool> {
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO processed_messages (message_id, processed_at) VALUES (?1, ?2)",
        params![message_id, to_text(now)],
    )?;
    Ok(inserted == 1)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutboxStats {
    pub depth: i64,
    pub oldest_age_seconds: f64,
}

pub async fn stats(db: &Db, now: DateTime<Utc>) -> Result<OutboxStats, DbError> {
    db.read(move |c| {
        let (depth, oldest): (i64, Option<String>) =
            c.query_row("SELECT count(*), min(created_at) FROM outbox", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let oldest_age_seconds =
            oldest.and_then(|t| from_text(&t).ok()).map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0).unwrap_or(0.0);
        Ok(OutboxStats { depth, oldest_age_seconds })
    })
    .await
}

/// True when some message is still in the outbox (used by tests and shutdown).
pub async fn has_pending(db: &Db) -> Result<bool, DbError> {
    db.read(|c| Ok(c.query_row("SELECT seq FROM outbox LIMIT 1", [], |r| r.get::<_, i64>(0)).optional()?.is_some())).await
}
