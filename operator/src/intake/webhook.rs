//! `POST /intake/alertmanager`: an Alertmanager-compatible webhook receiver.
//!
//! Bearer-token auth, compared in constant time over SHA-256 digests (equal lengths, so the
//! comparison leaks neither the token nor its length). Without a configured token the route
//! answers 503: it is never open.
//!
//! Every alert of a batch gets its own outcome, listed in the 200 response (Alertmanager
//! ignores the body; it is for people testing a route with curl). An alert that can never be
//! written (malformed, unmappable, namespace not allowed, 403, 404, 422, a stale OK) is counted
//! in `salve_intake_rejected_total{reason}`, logged, and does not hold back the others. Only a
//! failure a retry can help (API server unreachable, 429, 5xx, a conflict) answers 503, after
//! every other alert of the batch was handled: Alertmanager's webhook notifier retries a
//! notification only on 5xx — `notify.Retrier.Check` in prometheus/alertmanager
//! `notify/util.go` ("2xx status codes are successful, anything else is a failure and only 5xx
//! status codes should be retried"; `notify/webhook/webhook.go` sets no extra `RetryCodes`, so
//! a 4xx or 429 would drop the whole batch for good). The retried batch is safe: every write is
//! idempotent.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::alertmanager::{WebhookPayload, from_alert};
use super::intent::Intent;
use super::rejection::Rejection;
use super::workload::WorkloadResolver;
use super::writer::{self, Outcome, WriteError};
use crate::domain::policy::Policy;
use crate::metrics::Metrics;

pub const PATH: &str = "/intake/alertmanager";
const SOURCE: &str = "alertmanager";

pub struct WebhookState {
    token_digest: Option<[u8; 32]>,
    kube: kube::Client,
    resolver: WorkloadResolver,
    policy: Policy,
    metrics: Metrics,
}

impl WebhookState {
    pub fn new(token: Option<&str>, kube: kube::Client, resolver: WorkloadResolver, policy: Policy, metrics: Metrics) -> Self {
        Self { token_digest: token.filter(|t| !t.is_empty()).map(digest), kube, resolver, policy, metrics }
    }
}

pub fn router(state: Arc<WebhookState>) -> Router {
    Router::new().route(PATH, post(receive)).with_state(state)
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Constant-time equality of two digests (the same `subtle` comparison the services use).
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message.into()}}))).into_response()
}

/// What the response reports per alert.
#[derive(Serialize, Default)]
struct Summary {
    created: Vec<String>,
    duplicate: Vec<String>,
    resolved: Vec<String>,
    /// Nothing to do (resolved with no open incident, ignored).
    skipped: Vec<Skipped>,
    /// Never written, and never will be: not retried.
    rejected: Vec<Rejected>,
    /// Not written for now (the API server failed): the batch answers 503 and is retried.
    failed: Vec<Skipped>,
}

#[derive(Serialize)]
struct Skipped {
    alert: String,
    reason: String,
}

#[derive(Serialize)]
struct Rejected {
    alert: String,
    reason: &'static str,
    message: String,
}

async fn receive(State(s): State<Arc<WebhookState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(expected) = &s.token_digest else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "not_configured", "the Alertmanager webhook has no token configured");
    };
    let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|t| digests_equal(&digest(t.trim()), expected)) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token");
    }
    let payload: WebhookPayload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            s.metrics.intake_messages.with_label_values(&[SOURCE, "malformed"]).inc();
            return error(StatusCode::BAD_REQUEST, "malformed", format!("not an Alertmanager webhook payload: {e}"));
        }
    };
    if payload.version.as_deref().is_some_and(|v| v != "4") {
        tracing::warn!(version = ?payload.version, "Alertmanager webhook version other than 4; reading it as version 4");
    }
    let mut summary = Summary::default();
    for alert in &payload.alerts {
        let label = alert.name().unwrap_or("(no alertname)").to_string();
        let intent = match from_alert(alert, &s.resolver) {
            Ok(i) => i,
            Err(e) => {
                s.metrics.intake_messages.with_label_values(&[SOURCE, e.outcome()]).inc();
                reject(&s, &mut summary, label, alert.fingerprint.as_deref(), Rejection::new(e.reason(), e.to_string()));
                continue;
            }
        };
        let outcome = match writer::apply(&s.kube, &s.policy, &intent).await {
            Ok(o) => o,
            Err(WriteError::Rejected(r)) => {
                reject(&s, &mut summary, label, alert.fingerprint.as_deref(), r);
                continue;
            }
            Err(WriteError::Transient(e)) => {
                tracing::warn!(alert = %label, fingerprint = ?alert.fingerprint, error = %e, "Alertmanager intake: Kubernetes API failure; the batch will be retried");
                summary.failed.push(Skipped { alert: label, reason: e.to_string() });
                continue;
            }
        };
        s.metrics.intake_messages.with_label_values(&[SOURCE, outcome.label()]).inc();
        let incident = match &intent {
            Intent::Open(i) => i.metadata.name.clone().unwrap_or_default(),
            _ => label.clone(),
        };
        match outcome {
            Outcome::Created => summary.created.push(incident),
            Outcome::Duplicate => summary.duplicate.push(incident),
            Outcome::OkRecorded(_) => summary.resolved.push(label),
            Outcome::OkWithoutIncident => summary.skipped.push(Skipped { alert: label, reason: "resolved, but no open incident".into() }),
            Outcome::Ignored => summary.skipped.push(Skipped { alert: label, reason: "ignored".into() }),
        }
    }
    if summary.failed.is_empty() {
        return (StatusCode::OK, Json(summary)).into_response();
    }
    let message = format!("{} alert(s) could not be recorded now; retry", summary.failed.len());
    let body = json!({"error": {"code": "kubernetes_unavailable", "message": message}, "alerts": summary});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Counts, logs and reports one alert that will never be written.
fn reject(s: &WebhookState, summary: &mut Summary, alert: String, fingerprint: Option<&str>, r: Rejection) {
    s.metrics.intake_rejected.with_label_values(&[r.reason.as_str()]).inc();
    tracing::warn!(source = SOURCE, alert = %alert, fingerprint = ?fingerprint, reason = r.reason.as_str(), detail = %r.message, "intake rejected an alert");
    summary.rejected.push(Rejected { alert, reason: r.reason.as_str(), message: r.message });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_comparison() {
        assert!(digests_equal(&digest("token"), &digest("token")));
        assert!(!digests_equal(&digest("token"), &digest("token2")));
        assert!(!digests_equal(&digest(""), &digest("token")));
    }
}
