//! Messages that cannot be processed, kept with their reason until someone redrives or
//! deletes them (admin endpoints). Nothing is dropped silently. With the SQS bus the queue's
//! own DLQ plays this part instead.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::StoreUnavailable;
use crate::db::{Db, DbError};
use crate::time::to_text;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: i64,
    pub message_id: Option<String>,
    pub body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub reason: String,
    pub received_at: String,
    pub redrive_count: i64,
}

#[async_trait]
pub trait DeadLetterStore: Send + Sync + 'static {
    async fn store(&self, body: &str, traceparent: Option<&str>, reason: &str, now: DateTime<Utc>) -> Result<(), StoreUnavailable>;
    async fn list(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreUnavailable>;
    async fn get(&self, id: i64) -> Result<Option<DeadLetter>, StoreUnavailable>;
    async fn delete(&self, id: i64) -> Result<bool, StoreUnavailable>;
    /// A redrive was rejected again: keep it, with the new reason and the count raised.
    async fn record_failed_redrive(&self, id: i64, reason: &str) -> Result<(), StoreUnavailable>;
}

/// Dead letters in the service's SQLite file.
pub struct SqliteDeadLetters(pub Db);

const COLUMNS: &str = "id, message_id, body, traceparent, reason, received_at, redrive_count";

#[async_trait]
impl DeadLetterStore for SqliteDeadLetters {
    async fn store(&self, body: &str, traceparent: Option<&str>, reason: &str, now: DateTime<Utc>) -> Result<(), StoreUnavailable> {
        // Best effort: a message id makes a dead letter easier to trace, but it may be unreadable.
        let message_id = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message_id").and_then(|id| id.as_str()).map(str::to_string));
        let (body, traceparent, reason) = (body.to_string(), traceparent.map(str::to_string), reason.to_string());
        Ok(self
            .0
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO dead_letters (message_id, body, traceparent, reason, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![message_id, body, traceparent, reason, to_text(now)])?;
                Ok::<_, DbError>(())
            })
            .await?)
    }

    async fn list(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreUnavailable> {
        Ok(self
            .0
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!("SELECT {COLUMNS} FROM dead_letters ORDER BY id LIMIT ?1"))?;
                let rows = stmt.query_map([limit], row_to_letter)?.collect::<Result<Vec<_>, _>>()?;
                Ok::<_, DbError>(rows)
            })
            .await?)
    }

    async fn get(&self, id: i64) -> Result<Option<DeadLetter>, StoreUnavailable> {
        Ok(self
            .0
            .read(move |c| {
                Ok::<_, DbError>(
                    c.prepare_cached(&format!("SELECT {COLUMNS} FROM dead_letters WHERE id = ?1"))?
                        .query_row([id], row_to_letter)
                        .optional()?,
                )
            })
            .await?)
    }

    async fn delete(&self, id: i64) -> Result<bool, StoreUnavailable> {
        Ok(self
            .0
            .write(move |tx| Ok::<_, DbError>(tx.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?.execute([id])? == 1))
            .await?)
    }

    async fn record_failed_redrive(&self, id: i64, reason: &str) -> Result<(), StoreUnavailable> {
        let reason = reason.to_string();
        Ok(self
            .0
            .write(move |tx| {
                tx.prepare_cached("UPDATE dead_letters SET reason = ?2, redrive_count = redrive_count + 1 WHERE id = ?1")?
                    .execute(params![id, reason])?;
                Ok::<_, DbError>(())
            })
            .await?)
    }
}

fn row_to_letter(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetter> {
    Ok(DeadLetter {
        id: r.get(0)?,
        message_id: r.get(1)?,
        body: r.get(2)?,
        traceparent: r.get(3)?,
        reason: r.get(4)?,
        received_at: r.get(5)?,
        redrive_count: r.get(6)?,
    })
}
