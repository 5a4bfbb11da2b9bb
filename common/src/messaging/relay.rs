//! The outbox relay: delivers due messages through the sink, deletes what was acknowledged,
//! and backs off (exponentially, with jitter) on what was not. Delivery is at least once; the
//! receiver's dedupe makes it effectively once.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::StoreUnavailable;
use super::outbox::{Outbox, OutboxStore, Retry};
use super::sink::MessageSink;
use crate::metrics::Metrics;
use crate::time::Clock;

const BATCH: u32 = 256;
const IDLE_POLL: Duration = Duration::from_millis(250);
/// On shutdown, how long the relay keeps trying to empty the outbox.
const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

pub struct Relay {
    pub store: Arc<dyn OutboxStore>,
    pub outbox: Outbox,
    pub sink: Arc<dyn MessageSink>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
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
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => tracing::warn!(error = %e, "outbox relay cannot read the outbox; retrying"),
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.cancelled() => {}
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
    pub async fn deliver_due_batch(&self) -> Result<usize, StoreUnavailable> {
        let now = self.clock.now();
        let due = self.store.due(now, BATCH).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let results = self.sink.deliver_all(&due.iter().map(|p| &p.message).collect::<Vec<_>>()).await;
        let mut delivered = Vec::new();
        let mut retries = Vec::new();
        for (pending, result) in due.into_iter().zip(results) {
            let kind = pending.message.message_type.as_str();
            match result {
                Ok(()) => {
                    self.metrics.messages_sent.with_label_values(&[kind, "delivered"]).inc();
                    delivered.push(pending.message.message_id);
                }
                Err(e) => {
                    self.metrics.messages_sent.with_label_values(&[kind, "retry"]).inc();
                    tracing::warn!(message_id = %pending.message.message_id, attempts = pending.attempts + 1, error = %e, "delivery failed; will retry");
                    retries.push(Retry {
                        message_id: pending.message.message_id,
                        next_attempt_at: now + backoff(pending.attempts),
                        error: e.to_string(),
                    });
                }
            }
        }
        let acknowledged = delivered.len();
        self.store.settle(delivered, retries).await?;
        Ok(acknowledged)
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
