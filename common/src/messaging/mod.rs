//! At-least-once delivery between the services, with exactly-once effects.
//!
//! A service writes outgoing messages into its `outbox` table in the same transaction as the
//! business change ([`outbox`]); the [`relay`] delivers them through a [`sink`] (HTTP to the
//! other service's inbox, or a direct call when both run in one process) until acknowledged;
//! the receiving [`inbox`] dedupes by message id (the service records the id in its own
//! transaction) and keeps unreadable messages in [`dead_letters`].

pub mod dead_letters;
pub mod inbox;
pub mod marker_sweep;
pub mod outbox;
pub mod relay;
pub mod sink;

/// How long a processed-message (dedupe) marker is kept: far longer than any redelivery. The
/// DynamoDB table's TTL and the SQLite sweep ([`marker_sweep`]) both use it.
pub const PROCESSED_TTL_DAYS: i64 = 7;

/// The outbox or dead-letter storage cannot be reached right now; try again later.
#[derive(Debug, thiserror::Error)]
#[error("message storage unavailable: {0}")]
pub struct StoreUnavailable(pub String);

impl From<crate::db::DbError> for StoreUnavailable {
    fn from(e: crate::db::DbError) -> Self {
        StoreUnavailable(e.to_string())
    }
}

/// Tables every service's database needs for messaging.
///
/// `outbox.seq` is a plain rowid, not AUTOINCREMENT: AUTOINCREMENT reads and rewrites a row of
/// `sqlite_sequence` on every insert, one more b-tree write per message, to promise that a key
/// is never reused even after its row is deleted. The relay needs only that a new message sorts
/// after every message still waiting, and a new rowid (the largest present plus one) does.
/// `processed_messages` is `WITHOUT ROWID`: its rows are small and only ever found by id, so
/// the id's own b-tree holds them, one insert per message instead of a table row and an index
/// entry. (Files from older builds are rebuilt to this layout on start: see `crate::schema`.)
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    message_type TEXT NOT NULL,
    body TEXT NOT NULL,
    traceparent TEXT,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_at, seq);
CREATE TABLE IF NOT EXISTS processed_messages (
    message_id TEXT PRIMARY KEY,
    processed_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT,
    body TEXT NOT NULL,
    traceparent TEXT,
    reason TEXT NOT NULL,
    received_at TEXT NOT NULL,
    redrive_count INTEGER NOT NULL DEFAULT 0
);
";
