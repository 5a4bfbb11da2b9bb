//! The OMS HTTP API (contract: docs/contracts/oms.yaml, plus customers and Idempotency-Key).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use salve_common::error::{ApiError, ErrorBody};
use salve_common::extract::{ApiJson, ApiPath, ApiQuery};
use salve_common::openapi::ApiKeySecurity;
use salve_common::page_token;
use salve_common::time::{from_text, to_text};
use salve_common::trace_context::TraceParent;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::OpenApi;

use crate::domain::error::OrderError;
use crate::domain::ports::{OrderQuery, StoreError};
use crate::domain::{Customer, NewCustomer, NewOrder, Order, OrderItem, OrderLine, OrderService, OrderStatus};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub fn routes(service: Arc<OrderService>) -> Router {
    Router::new()
        .route("/customers", post(create_customer))
        .route("/customers/{id}", get(get_customer))
        .route("/orders", post(create_order).get(list_orders))
        .route("/orders/{id}", get(get_order).delete(delete_order))
        .with_state(service)
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Validation(m) => ApiError::validation(m),
            OrderError::UnknownCustomer(id) => {
                ApiError::new(StatusCode::BAD_REQUEST, "unknown_customer", format!("customer {id} does not exist"))
                    .with_details(json!({"customer_id": id}))
            }
            OrderError::UnknownSkus(skus) => {
                ApiError::new(StatusCode::BAD_REQUEST, "unknown_sku", format!("unknown products: {}", skus.join(", ")))
                    .with_details(json!({"skus": skus}))
            }
            OrderError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            OrderError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request",
            ),
            OrderError::Catalog(e) => ApiError::unavailable(format!("product catalog unavailable: {e}")),
            OrderError::Store(StoreError::Unavailable(e)) => ApiError::unavailable(format!("storage unavailable: {e}")),
            OrderError::Store(e @ StoreError::Failed(_)) => ApiError::internal(e),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn trace_of(headers: &HeaderMap) -> TraceParent {
    TraceParent::continue_or_start(headers.get("traceparent").and_then(|v| v.to_str().ok()))
}

// The API key, size limits, timeouts and injected faults are documented for every operation by
// `salve_common::openapi::describe_edge`; these annotations list what the handlers answer.
#[utoipa::path(post, path = "/customers", request_body = NewCustomer,
    responses((status = 201, body = Customer), (status = 400, body = ErrorBody, description = "Invalid or malformed customer")))]
async fn create_customer(
    State(svc): State<Arc<OrderService>>,
    ApiJson(new): ApiJson<NewCustomer>,
) -> ApiResult<(StatusCode, Json<Customer>)> {
    Ok((StatusCode::CREATED, Json(svc.create_customer(new).await?)))
}

#[utoipa::path(get, path = "/customers/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Customer), (status = 404, body = ErrorBody)))]
async fn get_customer(State(svc): State<Arc<OrderService>>, ApiPath(id): ApiPath<String>) -> ApiResult<Json<Customer>> {
    Ok(Json(svc.customer(&id).await?))
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateOrderResponse {
    pub order_id: String,
}

#[utoipa::path(post, path = "/orders", request_body = NewOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the first order")),
    responses((status = 201, body = CreateOrderResponse, description = "Placed (PENDING_INVENTORY), or the first order placed with this Idempotency-Key"),
        (status = 400, body = ErrorBody, description = "Invalid order, unknown customer or SKU, or a bad Idempotency-Key"),
        (status = 422, body = ErrorBody, description = "Idempotency-Key reused with a different body"),
        (status = 503, body = ErrorBody, description = "The product catalog (IMS) or storage is unavailable")))]
async fn create_order(State(svc): State<Arc<OrderService>>, headers: HeaderMap, ApiJson(new): ApiJson<NewOrder>) -> ApiResult<Response> {
    let key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if (1..=255).contains(&k.len()) => Some(k.to_string()),
            _ => return Err(ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")),
        },
    };
    let placed = svc.place_order(new, key, &trace_of(&headers)).await?;
    let mut response = (StatusCode::CREATED, Json(CreateOrderResponse { order_id: placed.order_id })).into_response();
    if placed.replayed {
        response.headers_mut().insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Every field is an `Option` so that a missing or malformed value gets this API's 400, not
/// axum's plain-text rejection; the annotations say what the handler actually requires.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListOrdersParams {
    /// The customer whose orders are listed.
    #[param(required = true)]
    customer_id: Option<String>,
    #[param(value_type = Option<OrderStatus>, inline)]
    status: Option<String>,
    /// Orders created at or after (ISO 8601).
    #[param(value_type = Option<String>, format = DateTime)]
    start_date: Option<String>,
    /// Orders created at or before (ISO 8601).
    #[param(value_type = Option<String>, format = DateTime)]
    end_date: Option<String>,
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// From the previous page's `next_token`.
    next_token: Option<String>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListOrdersResponse {
    pub orders: Vec<Order>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    created_at: String,
    id: String,
}

#[utoipa::path(get, path = "/orders", params(ListOrdersParams),
    responses((status = 200, body = ListOrdersResponse, description = "Newest first"), (status = 400, body = ErrorBody, description = "Missing customer_id or an invalid filter")))]
async fn list_orders(State(svc): State<Arc<OrderService>>, ApiQuery(p): ApiQuery<ListOrdersParams>) -> ApiResult<Json<ListOrdersResponse>> {
    let customer_id = p.customer_id.filter(|c| !c.is_empty()).ok_or_else(|| ApiError::bad_request("customer_id is required"))?;
    let status = match p.status.as_deref() {
        None => None,
        Some(s) => Some(
            OrderStatus::parse(s)
                .ok_or_else(|| ApiError::bad_request(format!("status must be PENDING_INVENTORY, CONFIRMED or CANCELLED, got {s}")))?,
        ),
    };
    let date = |name: &str, v: Option<String>| -> Result<_, ApiError> {
        v.map(|s| from_text(&s).map_err(|_| ApiError::bad_request(format!("{name} must be an ISO 8601 date-time, got {s}")))).transpose()
    };
    let start = date("start_date", p.start_date)?;
    let end = date("end_date", p.end_date)?;
    let limit = page_token::check_limit(p.limit)?;
    let after = match p.next_token {
        None => None,
        Some(t) => {
            let c: Cursor = page_token::decode(&t)?;
            let at = from_text(&c.created_at).map_err(|_| ApiError::bad_request("next_token is not a valid pagination token"))?;
            Some((at, c.id))
        }
    };
    let page = svc.list_orders(&OrderQuery { customer_id, status, start, end, limit, after }).await?;
    let next_token = if page.more {
        page.orders.last().map(|o| page_token::encode(&Cursor { created_at: to_text(o.created_at), id: o.id.clone() }))
    } else {
        None
    };
    Ok(Json(ListOrdersResponse { orders: page.orders, next_token }))
}

#[utoipa::path(get, path = "/orders/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = ErrorBody)))]
async fn get_order(State(svc): State<Arc<OrderService>>, ApiPath(id): ApiPath<String>) -> ApiResult<Json<Order>> {
    Ok(Json(svc.order(&id).await?))
}

#[utoipa::path(delete, path = "/orders/{id}", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted; a CONFIRMED order's stock is released"), (status = 404, body = ErrorBody)))]
async fn delete_order(State(svc): State<Arc<OrderService>>, headers: HeaderMap, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    svc.delete_order(&id, &trace_of(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Order Management System (OMS) API", version = "1.0.0"),
    paths(create_customer, get_customer, create_order, list_orders, get_order, delete_order),
    components(schemas(NewCustomer, Customer, NewOrder, OrderLine, Order, OrderItem, OrderStatus, CreateOrderResponse, ListOrdersResponse, ErrorBody)),
    modifiers(&ApiKeySecurity),
    security(("ApiKeyAuth" = []))
)]
pub struct OmsApi;

/// The business routes' document; the shared routes are added when the router is assembled.
pub fn api_doc() -> utoipa::openapi::OpenApi {
    OmsApi::openapi()
}
