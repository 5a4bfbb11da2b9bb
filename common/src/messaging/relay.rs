//! The outbox relay: delivers due messages through the sink, deletes what was acknowledged,
//! and backs off (exponentially, with jitter) on what was not. Delivery is at least once; the
//! receiver's dedupe makes it effectively once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use rusqlite::params;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::outbox::Outbox;
use super::sink::{MessageSink, OutgoingMessage};
use crate::db::{Db, DbError};
use crate::metrics::Metrics;
use crate::time::{Clock, to_text};

const BATCH: u32 = 256;
const IDLE_POLL: Duration = Duration::from_millis(250);
/// On shutdown, how long the relay keeps trying to empty the outbox.
const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

pub struct Relay {
    pub db: Db,
    pub outbox: Outbox,
    pub sink: Arc<dyn MessageSink>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
}

struct Attempt {
    seq: i64,
    message: OutgoingMessage,
    attempts: i64,
}

impl Relay {
    /// Runs until `stop` is cancelled, then flushes what it can within a deadline.
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move { self.run(stop).await })
    }

    async fn run(self, stop: CancellationToken) {
        let wake = self.outbox.woken();
        loop {
            if stop.is_cancelled() {
                break;
            }
            match self.deliver_due_batch().await {
                Ok(0) | Err(_) => {
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = stop.cancelled() => {}
                    }
                }
                Ok(_) => {}
            }
        }
        let deadline = tokio::time::Instant::now() + FLUSH_DEADLINE;
        while tokio::time::Instant::now() < deadline {
            match self.deliver_due_batch().await {
                Ok(delivered) if delivered > 0 => continue,
                _ => break,
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// Delivers one batch of due messages concurrently; returns how many were acknowledged.
    pub async fn deliver_due_batch(&self) -> Result<usize, DbError> {
        let now = self.clock.now();
        let due = self.fetch_due(now).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let results = futures::future::join_all(due.iter().map(|a| self.sink.deliver(&a.message))).await;
        let mut delivered = Vec::new();
        let mut failed = Vec::new();
        for (attempt, result) in due.into_iter().zip(results) {
            let kind = attempt.message.message_type.clone();
            match result {
                Ok(()) => {
                    self.metrics.messages_sent.with_label_values(&[kind.as_str(), "delivered"]).inc();
                    delivered.push(attempt.seq);
                }
                Err(e) => {
                    self.metrics.messages_sent.with_label_values(&[kind.as_str(), "retry"]).inc();
                    tracing::warn!(message_id = %attempt.message.message_id, attempts = attempt.attempts + 1, error = %e, "delivery failed; will retry");
                    let next = now + backoff(attempt.attempts);
                    failed.push((attempt.seq, to_text(next), e.to_string()));
                }
            }
        }
        let acknowledged = delivered.len();
        self.db
            .write(move |tx| {
                let mut delete = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
                for seq in delivered {
                    delete.execute([seq])?;
                }
                let mut retry =
                    tx.prepare_cached("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE seq = ?1")?;
                for (seq, next, error) in failed {
                    retry.execute(params![seq, next, error])?;
                }
                Ok::<_, DbError>(())
            })
            .await?;
        Ok(acknowledged)
    }

    async fn fetch_due(&self, now: DateTime<Utc>) -> Result<Vec<Attempt>, DbError> {
        let now = to_text(now);
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT seq, message_id, message_type, body, traceparent, attempts FROM outbox
                     WHERE next_attempt_at <= ?1 ORDER BY seq LIMIT ?2",
                )?;
                let rows = stmt
                    .query_map(params![now, BATCH], |r| {
                        Ok(Attempt {
                            seq: r.get(0)?,
                            message: OutgoingMessage {
                                message_id: r.get(1)?,
                                message_type: r.get(2)?,
                                body: r.get(3)?,
                                traceparent: r.get(4)?,
                            },
                            attempts: r.get(5)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }
}

/// 100 ms, doubling per attempt, capped at 30 s, with up to 20% jitter so that many retrying
/// messages do not hit a recovering receiver at the same instant.
fn backoff(attempts: i64) -> chrono::Duration {
    let base = 100u64.saturating_mul(1u64 << attempts.clamp(0, 20)).min(30_000);
    let jitter = rand::rng().random_range(0..=base / 5);
    chrono::Duration::milliseconds((base + jitter) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0).num_milliseconds() >= 100 && backoff(0).num_milliseconds() <= 120);
        assert!(backoff(3).num_milliseconds() >= 800);
        assert!(backoff(60).num_milliseconds() <= 36_000);
    }
}
