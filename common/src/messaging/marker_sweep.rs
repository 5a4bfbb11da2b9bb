//! Forgetting old dedupe markers in SQLite, as DynamoDB's TTL forgets them there.
//!
//! Every handled message leaves a row in `processed_messages` (see `outbox::mark_processed`),
//! two per order. DynamoDB expires its markers after [`PROCESSED_TTL_DAYS`]; without this the
//! SQLite table would grow for as long as the service runs. A marker only has to outlive any
//! redelivery of its message, and a sender redelivers within seconds to minutes (the relay
//! backs off to 30 s), so a week is far beyond it.
//!
//! The table is keyed by message id alone (`WITHOUT ROWID`, one b-tree write per message), so
//! there is no index by age to delete a range from. The sweep walks the keys instead, a chunk
//! at a time, each chunk a small write unit of its own, so the writer is never held for long
//! however large the table is; after a full pass it rests. Cost: one pass over the markers per
//! [`REST_AFTER_PASS`], about [`CHUNK`] rows a second while it runs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::PROCESSED_TTL_DAYS;
use crate::db::{Db, DbError};
use crate::time::{Clock, to_text};

/// Markers looked at per write unit.
pub const CHUNK: u32 = 500;
/// Between chunks of a pass.
const BETWEEN_CHUNKS: Duration = Duration::from_secs(1);
/// After a full pass, and before the first one (a service that just started has other work).
const REST_AFTER_PASS: Duration = Duration::from_secs(600);

/// One chunk: the next [`CHUNK`] markers after `after` in key order; deletes those processed
/// before `cutoff`. Returns how many it deleted and where the next chunk starts (`None` when this
/// chunk reached the end of the table).
pub async fn sweep_chunk(db: &Db, after: Option<String>, cutoff: DateTime<Utc>) -> Result<(usize, Option<String>), DbError> {
    let cutoff = to_text(cutoff);
    db.write(move |tx| {
        let chunk: Vec<(String, String)> = tx
            .prepare_cached(
                "SELECT message_id, processed_at FROM processed_messages
                 WHERE ?1 IS NULL OR message_id > ?1 ORDER BY message_id LIMIT ?2",
            )?
            .query_map(params![after, CHUNK], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut forget = tx.prepare_cached("DELETE FROM processed_messages WHERE message_id = ?1")?;
        let mut deleted = 0;
        for (id, processed_at) in &chunk {
            // Timestamps are stored fixed-width (`to_text`), so text order is time order.
            if processed_at.as_str() < cutoff.as_str() {
                deleted += forget.execute([id])?;
            }
        }
        let next = if chunk.len() < CHUNK as usize { None } else { chunk.last().map(|(id, _)| id.clone()) };
        Ok::<_, DbError>((deleted, next))
    })
    .await
}

/// Sweeps for as long as the process runs: a pass, a rest, another pass.
pub fn spawn(db: Db, clock: std::sync::Arc<dyn Clock>) {
    tokio::spawn(async move {
        let mut after = None;
        loop {
            let rest = if after.is_none() { REST_AFTER_PASS } else { BETWEEN_CHUNKS };
            tokio::time::sleep(rest).await;
            let cutoff = clock.now() - chrono::Duration::days(PROCESSED_TTL_DAYS);
            match sweep_chunk(&db, after.take(), cutoff).await {
                Ok((deleted, next)) => {
                    if deleted > 0 {
                        tracing::debug!(deleted, "old dedupe markers forgotten");
                    }
                    after = next;
                }
                // Busy or failing storage: the next pass starts over; nothing depends on it.
                Err(e) => tracing::warn!(error = %e, "sweeping old dedupe markers failed; the next pass retries"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::outbox::mark_processed;

    #[tokio::test]
    async fn markers_older_than_the_ttl_are_forgotten_and_the_rest_still_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 1, crate::messaging::SCHEMA).unwrap();
        let now = Utc::now();
        let old = now - chrono::Duration::days(PROCESSED_TTL_DAYS + 1);
        // More than a chunk of each, interleaved in key order.
        let total = 2 * CHUNK as usize + 10;
        db.write(move |tx| {
            for i in 0..total {
                let at = if i % 2 == 0 { old } else { now };
                mark_processed(tx, &format!("m{i:05}"), at)?;
            }
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();

        let cutoff = now - chrono::Duration::days(PROCESSED_TTL_DAYS);
        let (mut after, mut deleted, mut chunks) = (None, 0, 0);
        loop {
            let (n, next) = sweep_chunk(&db, after, cutoff).await.unwrap();
            deleted += n;
            chunks += 1;
            match next {
                Some(id) => after = Some(id),
                None => break,
            }
        }
        assert_eq!(deleted, total / 2, "every old marker, and only those");
        assert_eq!(chunks, 3, "the pass went through the table a chunk at a time");
        let left: i64 =
            db.read(|c| c.query_row("SELECT count(*) FROM processed_messages", [], |r| r.get(0)).map_err(DbError::from)).await.unwrap();
        assert_eq!(left as usize, total / 2);
        // A recent message is still recognised as a duplicate.
        let again = db.write(move |tx| mark_processed(tx, "m00001", now).map_err(DbError::from)).await.unwrap();
        assert!(!again, "a recent marker still dedupes");
    }
}
