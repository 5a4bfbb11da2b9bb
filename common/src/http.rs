//! The HTTP edge both services share: health, readiness, metrics, the OpenAPI document, the
//! message inbox and dead-letter admin routes, JSON 404/405 answers, API-key auth, request
//! metrics, and the runtime-settings middleware (timeout and injected faults).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{ApiKeys, require_api_key};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::messaging::inbox::{Inbox, InboxError, Receipt};
use crate::messaging::outbox::OutboxStore;
use crate::metrics::Metrics;
use crate::settings::SettingsHandle;
use crate::time::Clock;

/// Service-specific gauges (e.g. orders by status) refreshed when /metrics is scraped.
#[async_trait]
pub trait GaugeRefresher: Send + Sync + 'static {
    async fn refresh(&self);
}

/// Can the service reach its storage? (/readyz)
#[async_trait]
pub trait ReadinessCheck: Send + Sync + 'static {
    async fn ready(&self) -> Result<(), String>;
}

#[async_trait]
impl ReadinessCheck for crate::db::Db {
    async fn ready(&self) -> Result<(), String> {
        self.ping().await.map_err(|e| e.to_string())
    }
}

/// Everything the shared routes and middleware need from a service.
#[derive(Clone)]
pub struct Plumbing {
    pub keys: ApiKeys,
    pub metrics: Arc<Metrics>,
    pub settings: SettingsHandle,
    pub storage: Arc<dyn ReadinessCheck>,
    pub outbox: Arc<dyn OutboxStore>,
    pub inbox: Arc<Inbox>,
    /// Whether messages arrive over HTTP (`POST /internal/messages`) rather than from a queue.
    pub http_inbox: bool,
    pub clock: Arc<dyn Clock>,
    pub gauges: Arc<dyn GaugeRefresher>,
    /// The service's generated OpenAPI document, served at /openapi.json.
    pub openapi: Arc<serde_json::Value>,
}

/// Wraps a service's business routes with everything shared. Business, inbox and admin routes
/// need an API key; health, readiness, metrics and the OpenAPI document do not.
pub fn assemble(business: Router, plumbing: Plumbing) -> Router {
    let mut messaging = Router::new();
    if plumbing.http_inbox {
        messaging = messaging.route("/internal/messages", post(receive_message));
    }
    if plumbing.inbox.dead_letters().is_some() {
        messaging = messaging
            .route("/admin/dead-letters", get(list_dead_letters))
            .route("/admin/dead-letters/{id}", axum::routing::delete(delete_dead_letter))
            .route("/admin/dead-letters/{id}/redrive", post(redrive_dead_letter));
    }
    let messaging = messaging.with_state(plumbing.clone());
    let protected = business
        .merge(messaging)
        .route_layer(middleware::from_fn_with_state(plumbing.settings.clone(), inject_faults))
        .route_layer(middleware::from_fn_with_state(plumbing.keys.clone(), require_api_key));
    let public = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .with_state(plumbing.clone());
    protected
        .merge(public)
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
        })
        .layer(middleware::from_fn_with_state(plumbing.settings.clone(), enforce_timeout))
        .layer(middleware::from_fn_with_state(plumbing.metrics.clone(), record_request))
}

async fn readyz(State(p): State<Plumbing>) -> Response {
    if let Err(cause) = p.storage.ready().await {
        return ApiError::unavailable("storage unreachable").with_details(json!({"cause": cause})).into_response();
    }
    let limit = p.settings.current().outbox_stuck_after_secs as f64;
    match p.outbox.stats(p.clock.now()).await {
        Ok(stats) if stats.oldest_age_seconds > limit => ApiError::unavailable("outbox is stuck")
            .with_details(json!({"outbox_depth": stats.depth, "oldest_age_seconds": stats.oldest_age_seconds}))
            .into_response(),
        Ok(stats) => Json(json!({"status": "ready", "outbox_depth": stats.depth})).into_response(),
        Err(e) => ApiError::unavailable(e.to_string()).into_response(),
    }
}

async fn metrics(State(p): State<Plumbing>) -> Response {
    if let Ok(stats) = p.outbox.stats(p.clock.now()).await {
        p.metrics.outbox_depth.set(stats.depth);
        p.metrics.outbox_oldest_age_seconds.set(stats.oldest_age_seconds);
    }
    p.gauges.refresh().await;
    ([("content-type", "text/plain; version=0.0.4")], p.metrics.render()).into_response()
}

async fn openapi(State(p): State<Plumbing>) -> Json<serde_json::Value> {
    Json((*p.openapi).clone())
}

/// The inbox. The body is taken raw: a message that is not valid JSON is still kept (as a
/// dead letter), never bounced back to a sender that would only retry it forever.
async fn receive_message(State(p): State<Plumbing>, headers: HeaderMap, body: Bytes) -> Response {
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok());
    let body = String::from_utf8_lossy(&body);
    match p.inbox.receive(&body, traceparent).await {
        Ok(receipt @ Receipt::DeadLettered { .. }) => (StatusCode::ACCEPTED, Json(receipt)).into_response(),
        Ok(receipt) => (StatusCode::OK, Json(receipt)).into_response(),
        Err(InboxError::Unavailable(reason)) => ApiError::unavailable(reason).into_response(),
        Err(InboxError::Rejected(reason)) => ApiError::unprocessable(reason).into_response(),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list_dead_letters(State(p): State<Plumbing>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let limit = crate::page_token::check_limit(q.limit.or(Some(100)))?;
    let store = p.inbox.dead_letters().ok_or_else(|| ApiError::not_found("no dead letters here"))?;
    let letters = store.list(limit).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(json!({"dead_letters": letters})).into_response())
}

async fn delete_dead_letter(State(p): State<Plumbing>, ApiPath(id): ApiPath<i64>) -> Result<StatusCode, ApiError> {
    let store = p.inbox.dead_letters().ok_or_else(|| ApiError::not_found("no dead letters here"))?;
    match store.delete(id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::not_found("no such dead letter")),
        Err(e) => Err(ApiError::unavailable(e.to_string())),
    }
}

async fn redrive_dead_letter(State(p): State<Plumbing>, ApiPath(id): ApiPath<i64>) -> Result<Response, ApiError> {
    match p.inbox.redrive(id).await {
        Ok(None) => Err(ApiError::not_found("no such dead letter")),
        Ok(Some(Ok(handled))) => Ok(Json(json!({"outcome": handled})).into_response()),
        Ok(Some(Err(reason))) => {
            Err(ApiError::unprocessable("the message was rejected again and stays a dead letter").with_details(json!({"reason": reason})))
        }
        Err(InboxError::Unavailable(reason)) | Err(InboxError::Rejected(reason)) => Err(ApiError::unavailable(reason)),
    }
}

/// Records requests by method, matched route template (never the raw path: ids would explode
/// the label set) and status, with latency.
async fn record_request(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_string();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.http_latency.with_label_values(&[method.as_str(), route.as_str()]).observe(started.elapsed().as_secs_f64());
    metrics.http_requests.with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()]).inc();
    response
}

async fn enforce_timeout(State(settings): State<SettingsHandle>, request: Request, next: Next) -> Response {
    let limit = settings.current().request_timeout();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "request timed out").into_response(),
    }
}

/// Fault injection from the runtime settings, keyed by "METHOD /route/template".
async fn inject_faults(State(settings): State<SettingsHandle>, request: Request, next: Next) -> Response {
    let settings = settings.current();
    if !settings.faults.routes.is_empty() {
        let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str()).unwrap_or_default();
        let key = format!("{} {}", request.method(), route);
        if let Some(fault) = settings.faults.routes.get(&key) {
            if fault.latency_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(fault.latency_ms)).await;
            }
            if fault.error_rate > 0.0 && rand::rng().random_bool(fault.error_rate) {
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "injected_fault", format!("fault injected on {key}"))
                    .into_response();
            }
        }
    }
    next.run(request).await
}
