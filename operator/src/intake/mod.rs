//! Alarm intake: CloudWatch alarm state changes from SQS (SNS notifications, raw or enveloped,
//! and EventBridge events) and Alertmanager webhooks become `Incident`s; OK/resolved transitions
//! are recorded on the open Incidents of the same alarm.
//!
//! Pure: `alarm` and `alertmanager` (parsing), `workload` (alarm -> workload), `identity`
//! (idempotent names, the alarm label), `intent` (what a signal asks for, which Incidents an OK
//! is for), `rejection` (what is final and what a retry can help).
//! Adapters: `writer` (Kubernetes), `sqs` (the consumer), `webhook` (axum). `config`: flags.

pub mod alarm;
pub mod alertmanager;
pub mod config;
pub mod identity;
pub mod intent;
pub mod rejection;
pub mod sqs;
pub mod webhook;
pub mod workload;
pub mod writer;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::domain::policy::Policy;
use crate::metrics::Metrics;
use config::IntakeArgs;
pub use workload::WorkloadMapError;

/// Starts intake for this replica: the SQS consumer when a queue is configured, and returns the
/// webhook routes to merge into the HTTP server. Intake runs on every replica, not only the
/// leader: its writes are idempotent.
pub async fn start(
    kube: kube::Client,
    args: &IntakeArgs,
    policy: &Policy,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<axum::Router, WorkloadMapError> {
    let resolver = args.resolver()?;
    if let Some(queue) = args.sqs_queue.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let (kube, resolver, policy, metrics, queue, dlq_url, wait_seconds) = (
            kube.clone(),
            resolver.clone(),
            policy.clone(),
            metrics.clone(),
            queue.to_string(),
            args.sqs_dlq_url.clone(),
            args.sqs_wait_seconds,
        );
        tokio::spawn(async move {
            // Resolving a queue name needs SQS; retry until it answers or we shut down.
            let queue_url = loop {
                match sqs::queue_url(&sqs, &queue).await {
                    Ok(u) => break u,
                    Err(e) => tracing::warn!(%queue, error = %e, "SQS intake: cannot resolve the queue; retrying"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    _ = shutdown.cancelled() => return,
                }
            };
            let dlq_url = dlq_url.map(|u| u.trim().to_string()).filter(|u| !u.is_empty());
            sqs::SqsIntake { sqs, queue_url, dlq_url, wait_seconds, kube, resolver, policy, metrics }.run(shutdown).await;
        });
    }
    let state = webhook::WebhookState::new(args.token(), kube, resolver, policy.clone(), metrics);
    Ok(webhook::router(Arc::new(state)))
}
