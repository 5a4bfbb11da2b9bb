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

/// The backlog as `/readyz` and `/metrics` report it. Probes and scrapes ask for it every few
/// seconds, and a backlog is exactly when they must stay cheap and answer within their timeout,
/// so it is read with a bounded cost: `depth` is counted up to a bound (100,000 on SQLite, 1,000
/// on DynamoDB; a deeper backlog shows as the bound), and `oldest_age_seconds` is the oldest
/// undelivered message's age (exact on SQLite; on DynamoDB see its store).
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

/// Where counting the backlog stops: a few milliseconds of index entries.
const DEPTH_COUNTED_UP_TO: i64 = 100_000;

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

    /// The oldest message is the one with the smallest `seq` (new rows get a larger one, and a
    /// retry never changes it); the first few by `seq` are looked at because `created_at` is
    /// taken before the group commit assigns `seq`, so neighbours may be a little out of order.
    async fn stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, StoreUnavailable> {
        Ok(self
            .0
            .scan(move |c| {
                let depth: i64 = c
                    .prepare_cached("SELECT count(*) FROM (SELECT 1 FROM outbox LIMIT ?1)")?
                    .query_row([DEPTH_COUNTED_UP_TO], |r| r.get(0))?;
                let oldest: Option<String> = c
                    .prepare_cached("SELECT min(created_at) FROM (SELECT created_at FROM outbox ORDER BY seq LIMIT 256)")?
                    .query_row([], |r| r.get(0))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Message;

    async fn enqueue(db: &Db, id: &str, at: DateTime<Utc>) {
        let envelope = Envelope::new(id.to_string(), Message::ReleaseInventory { order_id: format!("o-{id}"), timestamp: at });
        let trace = TraceParent::continue_or_start(None);
        db.write(move |tx| Outbox::new().enqueue(tx, &envelope, &trace, at).map_err(DbError::from)).await.unwrap();
    }

    #[tokio::test]
    async fn the_backlog_reports_the_oldest_message_even_while_it_waits_out_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 1, crate::messaging::SCHEMA).unwrap();
        let now = Utc::now();
        enqueue(&db, "first", now - chrono::Duration::seconds(600)).await;
        enqueue(&db, "second", now - chrono::Duration::seconds(60)).await;
        enqueue(&db, "third", now - chrono::Duration::seconds(6)).await;
        let outbox = SqliteOutbox(db);
        // The oldest failed and waits for its next attempt; the second was delivered.
        let retry = Retry { message_id: "first".into(), next_attempt_at: now + chrono::Duration::seconds(30), error: "503".into() };
        outbox.settle(vec!["second".into()], vec![retry]).await.unwrap();
        let stats = outbox.stats(now).await.unwrap();
        assert_eq!(stats.depth, 2);
        assert!((stats.oldest_age_seconds - 600.0).abs() < 0.01, "{stats:?}");
        assert_eq!(outbox.due(now, 10).await.unwrap().len(), 1, "only the third is due");
    }

    #[tokio::test]
    async fn a_deep_backlog_is_counted_up_to_the_bound_not_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 1, crate::messaging::SCHEMA).unwrap();
        let at = to_text(Utc::now());
        db.write(move |tx| {
            tx.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO outbox (message_id, message_type, body, created_at, next_attempt_at)
                 SELECT 'm-' || i, 'ReleaseInventory', '{}', ?2, ?2 FROM n",
                params![DEPTH_COUNTED_UP_TO + 5, at],
            )
            .map_err(DbError::from)
        })
        .await
        .unwrap();
        assert_eq!(SqliteOutbox(db).stats(Utc::now()).await.unwrap().depth, DEPTH_COUNTED_UP_TO);
    }
}
