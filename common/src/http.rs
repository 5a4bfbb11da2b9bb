//! The HTTP edge both services share: health, readiness, metrics, the OpenAPI document, the
//! message inbox and dead-letter admin routes, JSON 404/405 answers, API-key auth, request
//! metrics, limits on what a request may carry (URI, header fields, body size and how long its
//! body may take to arrive), and the runtime-settings middleware (timeout and injected faults).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::OpenApi;

use crate::auth::{ApiKeys, require_api_key};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::messaging::dead_letters::DeadLetter;
use crate::messaging::inbox::{Handled, Inbox, InboxError, Receipt};
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
    /// The service's generated OpenAPI document (its business routes); the shared routes and
    /// responses are added to it by [`assemble`], which knows which of them it mounts.
    pub openapi: utoipa::openapi::OpenApi,
}

/// Longest path and query accepted (414 beyond). hyper refuses 64 KiB and more by itself; below
/// that, this is the limit clients can rely on.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most bytes of header fields (names, values and separators) accepted (431 beyond).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Largest request body accepted (413 beyond). Orders, products and messages are a few KiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Routes that need no API key.
pub const PUBLIC_PATHS: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/openapi.json"];

#[derive(OpenApi)]
#[openapi(paths(healthz, readyz, metrics, openapi), components(schemas(ErrorBody, Health, Readiness)))]
struct PublicApi;

#[derive(OpenApi)]
#[openapi(paths(receive_message), components(schemas(Receipt)))]
struct InboxApi;

#[derive(OpenApi)]
#[openapi(
    paths(list_dead_letters, delete_dead_letter, redrive_dead_letter),
    components(schemas(DeadLetters, DeadLetter, Redriven, Handled))
)]
struct DeadLetterApi;

/// Wraps a service's business routes with everything shared. Business, inbox and admin routes
/// need an API key; health, readiness, metrics and the OpenAPI document do not. The served
/// OpenAPI document describes exactly the routes mounted here.
pub fn assemble(business: Router, plumbing: Plumbing) -> Router {
    let mut doc = plumbing.openapi.clone();
    doc.merge(PublicApi::openapi());
    let mut messaging = Router::new();
    if plumbing.http_inbox {
        messaging = messaging.route("/internal/messages", post(receive_message));
        doc.merge(InboxApi::openapi());
    }
    if plumbing.inbox.dead_letters().is_some() {
        messaging = messaging
            .route("/admin/dead-letters", get(list_dead_letters))
            .route("/admin/dead-letters/{id}", axum::routing::delete(delete_dead_letter))
            .route("/admin/dead-letters/{id}/redrive", post(redrive_dead_letter));
        doc.merge(DeadLetterApi::openapi());
    }
    crate::openapi::describe_edge(&mut doc, &PUBLIC_PATHS);
    // Built from the service's own types at start-up: failing to serialize is a bug in this
    // code, not something a request or the environment can cause.
    let document = Bytes::from(doc.to_json().expect("the generated OpenAPI document serializes to JSON"));
    let messaging = messaging.with_state(plumbing.clone());
    let protected = business
        .merge(messaging)
        .route_layer(middleware::from_fn_with_state(plumbing.settings.clone(), inject_faults))
        .route_layer(middleware::from_fn_with_state(plumbing.keys.clone(), require_api_key));
    let public = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(move || openapi(document.clone())))
        .with_state(plumbing.clone());
    protected
        .merge(public)
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
        })
        .layer(middleware::from_fn_with_state(plumbing.settings.clone(), enforce_timeout))
        // Outside the request timeout: receiving a request and handling it are timed apart,
        // so a stalled upload is the client's 408, never the service's 503.
        .layer(middleware::from_fn_with_state(plumbing.settings.clone(), read_body))
        .layer(middleware::from_fn(limit_request_head))
        .layer(middleware::from_fn_with_state(plumbing.metrics.clone(), record_request))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Always `ready`.
    pub status: String,
    /// Messages waiting in the outbox, counted up to 100,000 on SQLite and 1,000 on DynamoDB
    /// (a deeper backlog shows as that bound), so a probe stays cheap during a backlog.
    pub outbox_depth: i64,
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health, description = "The process is up")))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, body = Readiness, description = "Storage is reachable and the outbox is moving"),
    (status = 503, body = ErrorBody, description = "Storage unreachable, or the oldest undelivered message is older than outbox_stuck_after_secs")))]
async fn readyz(State(p): State<Plumbing>) -> Response {
    if let Err(cause) = p.storage.ready().await {
        return ApiError::unavailable("storage unreachable").with_details(json!({"cause": cause})).into_response();
    }
    let limit = p.settings.current().outbox_stuck_after_secs as f64;
    match p.outbox.stats(p.clock.now()).await {
        Ok(stats) if stats.oldest_age_seconds > limit => ApiError::unavailable("outbox is stuck")
            .with_details(json!({"outbox_depth": stats.depth, "oldest_age_seconds": stats.oldest_age_seconds}))
            .into_response(),
        Ok(stats) => Json(Readiness { status: "ready".into(), outbox_depth: stats.depth }).into_response(),
        Err(e) => ApiError::unavailable(e.to_string()).into_response(),
    }
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, body = String, content_type = "text/plain; version=0.0.4", description = "Prometheus text format")))]
async fn metrics(State(p): State<Plumbing>) -> Response {
    if let Ok(stats) = p.outbox.stats(p.clock.now()).await {
        p.metrics.outbox_depth.set(stats.depth);
        p.metrics.outbox_oldest_age_seconds.set(stats.oldest_age_seconds);
    }
    p.gauges.refresh().await;
    ([("content-type", "text/plain; version=0.0.4")], p.metrics.render()).into_response()
}

#[utoipa::path(get, path = "/openapi.json", responses((status = 200, body = Object, description = "This document")))]
async fn openapi(document: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], document).into_response()
}

/// The inbox of messages from the other service.
///
/// The body is taken raw: a message that is not valid JSON is still kept (as a dead letter),
/// never bounced back to a sender that would only retry it forever.
#[utoipa::path(post, path = "/internal/messages",
    request_body(content = String, content_type = "*/*", description = "A message envelope (JSON); anything unreadable is kept as a dead letter"),
    params(("traceparent" = Option<String>, Header, description = "W3C trace context of the sender")),
    responses(
        (status = 200, body = Receipt, description = "Processed, or a duplicate of a message already processed"),
        (status = 202, body = Receipt, description = "Unreadable or not for this service: kept as a dead letter"),
        (status = 503, body = ErrorBody, description = "Not taken now (consumer paused, storage busy): send it again later")))]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// 1..=100.
    #[param(minimum = 1, maximum = 100, default = 100)]
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadLetters {
    pub dead_letters: Vec<DeadLetter>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Redriven {
    pub outcome: Handled,
}

#[utoipa::path(get, path = "/admin/dead-letters", params(ListQuery),
    responses((status = 200, body = DeadLetters), (status = 400, body = ErrorBody, description = "limit out of range")))]
async fn list_dead_letters(State(p): State<Plumbing>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Json<DeadLetters>, ApiError> {
    let limit = crate::page_token::check_limit(q.limit.or(Some(100)))?;
    let store = p.inbox.dead_letters().ok_or_else(|| ApiError::not_found("no dead letters here"))?;
    let dead_letters = store.list(limit).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(DeadLetters { dead_letters }))
}

#[utoipa::path(delete, path = "/admin/dead-letters/{id}", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody, description = "id is not an integer"),
        (status = 404, body = ErrorBody)))]
async fn delete_dead_letter(State(p): State<Plumbing>, ApiPath(id): ApiPath<i64>) -> Result<StatusCode, ApiError> {
    let store = p.inbox.dead_letters().ok_or_else(|| ApiError::not_found("no dead letters here"))?;
    match store.delete(id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::not_found("no such dead letter")),
        Err(e) => Err(ApiError::unavailable(e.to_string())),
    }
}

#[utoipa::path(post, path = "/admin/dead-letters/{id}/redrive", params(("id" = i64, Path)),
    responses((status = 200, body = Redriven, description = "Handled this time; no longer a dead letter"),
        (status = 400, body = ErrorBody, description = "id is not an integer"), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "Rejected again: it stays a dead letter, with the new reason")))]
async fn redrive_dead_letter(State(p): State<Plumbing>, ApiPath(id): ApiPath<i64>) -> Result<Json<Redriven>, ApiError> {
    match p.inbox.redrive(id).await {
        Ok(None) => Err(ApiError::not_found("no such dead letter")),
        Ok(Some(Ok(outcome))) => Ok(Json(Redriven { outcome })),
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

/// Refuses a URI or header fields over the limits, in the JSON error shape.
async fn limit_request_head(request: Request, next: Next) -> Response {
    let uri_bytes = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return ApiError::uri_too_long(MAX_URI_BYTES).into_response();
    }
    // As on the wire: "name: value\r\n".
    let header_bytes: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::headers_too_large(MAX_HEADER_BYTES).into_response();
    }
    next.run(request).await
}

/// Receives the whole body, within `body_timeout_ms` and [`MAX_BODY_BYTES`], before the request
/// goes on. A body shorter than its Content-Length would otherwise hold the request until the
/// request timeout and come back as a 503, blaming the service for the client's mistake.
async fn read_body(State(settings): State<SettingsHandle>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if body.size_hint().exact() == Some(0) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return closing(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let settings = settings.current();
    let received = tokio::time::timeout(settings.body_timeout(), Limited::new(body, MAX_BODY_BYTES).collect()).await;
    match received {
        Ok(Ok(collected)) => next.run(Request::from_parts(parts, Body::from(collected.to_bytes()))).await,
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => closing(ApiError::payload_too_large(MAX_BODY_BYTES)),
        Ok(Err(e)) => closing(ApiError::new(
            StatusCode::BAD_REQUEST,
            "incomplete_body",
            format!("the request body could not be read to its end: {e}"),
        )),
        Err(_) => {
            let limit_ms = settings.body_timeout_ms;
            closing(
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!("the request body did not arrive in full within {limit_ms} ms"),
                )
                .with_details(json!({"body_timeout_ms": limit_ms})),
            )
        }
    }
}

/// The body was not read to its end, so the connection cannot carry another request: say so.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
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
