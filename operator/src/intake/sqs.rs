//! The SQS consumer: long-polls the alarm queue and turns each message into an Incident write.
//!
//! Each message has its own outcome. It is deleted once its write succeeded (or it was a
//! duplicate). A Kubernetes API failure a retry can help (unreachable, 429, 5xx, a conflict)
//! leaves it on the queue: the visibility timeout redelivers it, and the loop goes on with the
//! next messages at once. A message that can never succeed (malformed, unmappable, namespace
//! not allowed, 403, 404, 422) is counted in `salve_intake_rejected_total{reason}` and goes to
//! the dead-letter queue with the reason as a message attribute, and is deleted from the source
//! queue; without a DLQ it is left for the queue's own redrive policy. A stale OK (older than
//! every open Incident of its alarm) is counted and deleted: it was understood, it just came
//! late. Runs on every replica: names are idempotent.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_sqs::types::{Message, MessageAttributeValue};
use tokio_util::sync::CancellationToken;

use super::alarm::parse_sqs_body;
use super::intent::from_alarm;
use super::rejection::{Reason, Rejection};
use super::workload::WorkloadResolver;
use super::writer::{self, Outcome, WriteError};
use crate::domain::policy::Policy;
use crate::metrics::Metrics;

/// Message attribute on dead-lettered messages saying why they were rejected.
pub const REJECT_REASON_ATTRIBUTE: &str = "SalveRejectReason";
const SOURCE: &str = "sqs";
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SqsIntakeError {
    #[error("SQS: {0}")]
    Sqs(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

fn sqs_error<E: std::error::Error + 'static>(e: aws_sdk_sqs::error::SdkError<E>) -> SqsIntakeError {
    SqsIntakeError::Sqs(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

pub struct SqsIntake {
    pub sqs: SqsClient,
    pub queue_url: String,
    pub dlq_url: Option<String>,
    pub wait_seconds: i32,
    pub kube: kube::Client,
    pub resolver: WorkloadResolver,
    /// Incidents are opened only in the policy's allowed namespaces.
    pub policy: Policy,
    pub metrics: Metrics,
}

/// A queue given by name is resolved to its URL (URLs are used as they are).
pub async fn queue_url(sqs: &SqsClient, queue: &str) -> Result<String, SqsIntakeError> {
    if queue.starts_with("https://") || queue.starts_with("http://") {
        return Ok(queue.to_string());
    }
    let out = sqs.get_queue_url().queue_name(queue).send().await.map_err(sqs_error)?;
    out.queue_url.ok_or_else(|| SqsIntakeError::Sqs(format!("no URL for queue {queue}")))
}

impl SqsIntake {
    /// Polls until `shutdown`. Errors are logged and retried with a bounded backoff: intake
    /// never crashes the operator and never spins.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(queue = %self.queue_url, dlq = ?self.dlq_url, "SQS intake started");
        let mut backoff = Duration::from_secs(1);
        loop {
            let polled = tokio::select! {
                r = self.poll_once() => r,
                _ = shutdown.cancelled() => break,
            };
            match polled {
                Ok(_) => backoff = Duration::from_secs(1),
                // The failed message stays invisible for the queue's visibility timeout, which
                // paces its retries; the next messages need not wait for it.
                Err(e @ SqsIntakeError::Kube(_)) => {
                    tracing::warn!(error = %e, "SQS intake: a message is left for redelivery");
                    backoff = Duration::from_secs(1);
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "SQS intake poll failed");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        tracing::info!("SQS intake stopped");
    }

    /// One long poll and the handling of what it returned; the number of messages received.
    pub async fn poll_once(&self) -> Result<usize, SqsIntakeError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(self.wait_seconds.clamp(0, 20))
            .send()
            .await
            .map_err(sqs_error)?;
        let messages = out.messages.unwrap_or_default();
        // Different alarms are handled concurrently (a burst of ten costs one message's time,
        // not ten); one alarm's messages in the order received, so its OK never overtakes the
        // ALARM it clears. Unreadable messages are groups of their own.
        let mut by_alarm: BTreeMap<String, Vec<&Message>> = BTreeMap::new();
        for (i, m) in messages.iter().enumerate() {
            let alarm = parse_sqs_body(m.body.as_deref().unwrap_or_default()).map(|t| t.identity().to_string());
            by_alarm.entry(alarm.unwrap_or_else(|_| format!("unreadable #{i}"))).or_default().push(m);
        }
        let groups = futures::future::join_all(by_alarm.into_values().map(|group| async move {
            let mut failure = None;
            for m in group {
                // One failing message must not hold back the others in the batch.
                if let Err(e) = self.handle(m).await {
                    tracing::warn!(message_id = ?m.message_id, error = %e, "intake message left for redelivery");
                    failure = Some(e);
                }
            }
            failure
        }))
        .await;
        match groups.into_iter().flatten().next() {
            Some(e) => Err(e),
            None => Ok(messages.len()),
        }
    }

    async fn handle(&self, m: &Message) -> Result<(), SqsIntakeError> {
        let body = m.body.as_deref().unwrap_or_default();
        let intent = match parse_sqs_body(body) {
            Ok(t) => from_alarm(&t, &self.resolver).map_err(|e| ("unmappable", Rejection::new(Reason::Unmappable, e.to_string()))),
            Err(e) => Err(("malformed", Rejection::new(Reason::Malformed, e.to_string()))),
        };
        let intent = match intent {
            Ok(i) => i,
            Err((outcome, rejection)) => {
                self.count(outcome);
                return self.reject(m, body, rejection).await;
            }
        };
        let outcome = match writer::apply(&self.kube, &self.policy, &intent).await {
            Ok(o) => o,
            Err(WriteError::Rejected(r)) => return self.reject(m, body, r).await,
            Err(WriteError::Transient(e)) => return Err(e.into()),
        };
        self.count(outcome.label());
        if let Outcome::Created = outcome {
            tracing::info!(message_id = ?m.message_id, "incident created from alarm");
        }
        self.delete(m).await
    }

    /// A message that will never be acted on: counted and logged; dead-lettered, except a stale
    /// OK, which is deleted (nothing is wrong with it but its timing).
    async fn reject(&self, m: &Message, body: &str, r: Rejection) -> Result<(), SqsIntakeError> {
        self.metrics.intake_rejected.with_label_values(&[r.reason.as_str()]).inc();
        tracing::warn!(source = SOURCE, message_id = ?m.message_id, reason = r.reason.as_str(), detail = %r.message, "intake rejected a message");
        if r.reason == Reason::StaleOk {
            return self.delete(m).await;
        }
        self.dead_letter(m, body, &r.to_string()).await
    }

    async fn dead_letter(&self, m: &Message, body: &str, reason: &str) -> Result<(), SqsIntakeError> {
        let Some(dlq) = &self.dlq_url else {
            // Left invisible for the visibility timeout, then redelivered until the queue's
            // redrive policy moves it.
            return Ok(());
        };
        let attr = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(truncate(reason, 1024))
            .build()
            .map_err(|e| SqsIntakeError::Sqs(e.to_string()))?;
        self.sqs
            .send_message()
            .queue_url(dlq)
            .message_body(if body.is_empty() { "(empty body)" } else { body })
            .message_attributes(REJECT_REASON_ATTRIBUTE, attr)
            .send()
            .await
            .map_err(sqs_error)?;
        self.count("dead_lettered");
        self.delete(m).await
    }

    async fn delete(&self, m: &Message) -> Result<(), SqsIntakeError> {
        let Some(handle) = m.receipt_handle.as_deref() else { return Ok(()) };
        self.sqs.delete_message().queue_url(&self.queue_url).receipt_handle(handle).send().await.map_err(sqs_error)?;
        Ok(())
    }

    fn count(&self, outcome: &str) {
        self.metrics.intake_messages.with_label_values(&[SOURCE, outcome]).inc();
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
