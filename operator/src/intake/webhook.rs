//! `POST /intake/alertmanager`: an Alertmanager-compatible webhook receiver.
//!
//! Bearer-token auth, compared in constant time over SHA-256 digests (equal lengths, so the
//! comparison leaks neither the token nor its length). Without a configured token the route
//! answers 503: it is never open. A Kubernetes API failure answers 503 so Alertmanager retries;
//! the retry is safe because every write is idempotent.

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
use super::workload::WorkloadResolver;
use super::writer::{self, Outcome};
use crate::metrics::Metrics;

pub const PATH: &str = "/intake/alertmanager";
const SOURCE: &str = "alertmanager";

pub struct WebhookState {
    token_digest: Option<[u8; 32]>,
    kube: kube::Client,
    resolver: WorkloadResolver,
    metrics: Metrics,
}

impl WebhookState {
    pub fn new(token: Option<&str>, kube: kube::Client, resolver: WorkloadResolver, metrics: Metrics) -> Self {
        Self { token_digest: token.filter(|t| !t.is_empty()).map(digest), kube, resolver, metrics }
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
    skipped: Vec<Skipped>,
}

#[derive(Serialize)]
struct Skipped {
    alert: String,
    reason: String,
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
                summary.skipped.push(Skipped { alert: label, reason: e.to_string() });
                continue;
            }
        };
        let outcome = match writer::apply(&s.kube, &intent).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "Alertmanager intake: Kubernetes API failure");
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "kubernetes_unavailable",
                    format!("could not record the alerts, retry: {e}"),
                );
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
    (StatusCode::OK, Json(summary)).into_response()
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
