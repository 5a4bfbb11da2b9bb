//! Messages that cannot be processed, kept with their reason until someone redrives or
//! deletes them (admin endpoints). Nothing is dropped silently.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

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

pub async fn store(db: &Db, body: &str, traceparent: Option<&str>, reason: &str, now: DateTime<Utc>) -> Result<(), DbError> {
    // Best effort: a message id makes a dead letter easier to trace, but it may be unreadable.
    let message_id = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message_id").and_then(|id| id.as_str()).map(str::to_string));
    let (body, traceparent, reason) = (body.to_string(), traceparent.map(str::to_string), reason.to_string());
    db.write(move |tx| {
        tx.execute(
            "INSERT INTO dead_letters (message_id, body, traceparent, reason, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![message_id, body, traceparent, reason, to_text(now)],
        )?;
        Ok(())
    })
    .await
}

pub async fn list(db: &Db, limit: u32) -> Result<Vec<DeadLetter>, DbError> {
    db.read(move |c| {
        let mut stmt = c.prepare(
            "SELECT id, message_id, body, traceparent, reason, received_at, redrive_count FROM dead_letters ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], row_to_letter)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })
    .await
}

pub async fn get(db: &Db, id: i64) -> Result<Option<DeadLetter>, DbError> {
    db.read(move |c| {
        Ok(c.query_row(
            "SELECT id, message_id, body, traceparent, reason, received_at, redrive_count FROM dead_letters WHERE id = ?1",
            [id],
            row_to_letter,
        )
        .optional()?)
    })
    .await
}

pub async fn delete(db: &Db, id: i64) -> Result<bool, DbError> {
    db.write(move |tx| Ok(tx.execute("DELETE FROM dead_letters WHERE id = ?1", [id])? == 1)).await
}

pub async fn record_failed_redrive(db: &Db, id: i64, reason: &str) -> Result<(), DbError> {
    let reason = reason.to_string();
    db.write(move |tx| {
        tx.execute("UPDATE dead_letters SET reason = ?2, redrive_count = redrive_count + 1 WHERE id = ?1", params![id, reason])?;
        Ok(())
    })
    .await
}

pub async fn count(db: &Db) -> Result<i64, DbError> {
    db.read(|c| Ok(c.query_row("SELECT count(*) FROM dead_letters", [], |r| r.get(0))?)).await
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
