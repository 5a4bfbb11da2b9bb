//! The IMS HTTP API (contract: docs/contracts/ims.yaml, plus setting and adjusting stock).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use salve_common::error::{ApiError, ErrorBody};
use salve_common::extract::{ApiJson, ApiPath, ApiQuery};
use salve_common::messages::MessageItem;
use salve_common::openapi::ApiKeySecurity;
use salve_common::page_token;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::OpenApi;

use crate::domain::error::InventoryError;
use crate::domain::ports::StoreError;
use crate::domain::service::Availability;
use crate::domain::{InventoryItem, InventoryService, NewProduct, Product, ProductWithInventory};

pub fn routes(service: Arc<InventoryService>) -> Router {
    Router::new()
        .route("/products", post(create_product).get(list_products))
        .route("/products/{sku}", get(get_product))
        .route("/inventory/check", post(check_inventory))
        .route("/inventory/{sku}", get(get_inventory).put(set_inventory))
        .route("/inventory/{sku}/adjust", post(adjust_inventory))
        .with_state(service)
}

impl From<InventoryError> for ApiError {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::Validation(m) => ApiError::validation(m),
            InventoryError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            InventoryError::AlreadyExists(sku) => {
                ApiError::conflict(format!("product {sku} already exists")).with_details(json!({"sku": sku}))
            }
            InventoryError::InsufficientStock { sku, available, delta } => {
                ApiError::new(StatusCode::CONFLICT, "insufficient_stock", format!("stock of {sku} cannot go below zero"))
                    .with_details(json!({"sku": sku, "available": available, "delta": delta}))
            }
            InventoryError::Store(StoreError::Unavailable(e)) => ApiError::unavailable(format!("storage unavailable: {e}")),
            InventoryError::Store(e) => ApiError::internal(e),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

// The API key, size limits, timeouts and injected faults are documented for every operation by
// `salve_common::openapi::describe_edge`; these annotations list what the handlers answer.
#[utoipa::path(post, path = "/products", request_body = NewProduct,
    responses((status = 201, body = Product, description = "Created, with zero stock"), (status = 400, body = ErrorBody, description = "Invalid or malformed product"),
        (status = 409, body = ErrorBody, description = "The SKU already exists")))]
async fn create_product(
    State(svc): State<Arc<InventoryService>>,
    ApiJson(new): ApiJson<NewProduct>,
) -> ApiResult<(StatusCode, Json<Product>)> {
    Ok((StatusCode::CREATED, Json(svc.create_product(new).await?)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListProductsParams {
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// From the previous page's `next_token`.
    next_token: Option<String>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListProductsResponse {
    pub products: Vec<Product>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    sku: String,
}

#[utoipa::path(get, path = "/products", params(ListProductsParams),
    responses((status = 200, body = ListProductsResponse, description = "By SKU"), (status = 400, body = ErrorBody, description = "limit out of range or an invalid next_token")))]
async fn list_products(
    State(svc): State<Arc<InventoryService>>,
    ApiQuery(p): ApiQuery<ListProductsParams>,
) -> ApiResult<Json<ListProductsResponse>> {
    let limit = page_token::check_limit(p.limit)?;
    let after = p.next_token.map(|t| page_token::decode::<Cursor>(&t).map(|c| c.sku)).transpose()?;
    let page = svc.list_products(limit, after).await?;
    let next_token = if page.more { page.products.last().map(|p| page_token::encode(&Cursor { sku: p.sku.clone() })) } else { None };
    Ok(Json(ListProductsResponse { products: page.products, next_token }))
}

#[utoipa::path(get, path = "/products/{sku}", params(("sku" = String, Path)),
    responses((status = 200, body = ProductWithInventory), (status = 404, body = ErrorBody)))]
async fn get_product(State(svc): State<Arc<InventoryService>>, ApiPath(sku): ApiPath<String>) -> ApiResult<Json<ProductWithInventory>> {
    Ok(Json(svc.product(&sku).await?))
}

#[utoipa::path(get, path = "/inventory/{sku}", params(("sku" = String, Path)),
    responses((status = 200, body = InventoryItem), (status = 404, body = ErrorBody)))]
async fn get_inventory(State(svc): State<Arc<InventoryService>>, ApiPath(sku): ApiPath<String>) -> ApiResult<Json<InventoryItem>> {
    Ok(Json(svc.inventory(&sku).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CheckItem {
    sku: String,
    quantity: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CheckInventoryRequest {
    items: Vec<CheckItem>,
}

#[utoipa::path(post, path = "/inventory/check", request_body = CheckInventoryRequest,
    responses((status = 200, body = BTreeMap<String, Availability>, description = "Availability by SKU (a hint: nothing is held)"),
        (status = 400, body = ErrorBody, description = "No items, or a quantity below 1")))]
async fn check_inventory(
    State(svc): State<Arc<InventoryService>>,
    ApiJson(req): ApiJson<CheckInventoryRequest>,
) -> ApiResult<Json<BTreeMap<String, Availability>>> {
    let items: Vec<MessageItem> = req.items.into_iter().map(|i| MessageItem { sku: i.sku, quantity: i.quantity }).collect();
    Ok(Json(svc.check(&items).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SetStockRequest {
    /// The new stock level, >= 0.
    quantity: i64,
}

#[utoipa::path(put, path = "/inventory/{sku}", params(("sku" = String, Path)), request_body = SetStockRequest,
    responses((status = 200, body = InventoryItem), (status = 400, body = ErrorBody, description = "Negative quantity or an invalid SKU"), (status = 404, body = ErrorBody)))]
async fn set_inventory(
    State(svc): State<Arc<InventoryService>>,
    ApiPath(sku): ApiPath<String>,
    ApiJson(req): ApiJson<SetStockRequest>,
) -> ApiResult<Json<InventoryItem>> {
    Ok(Json(svc.set_stock(&sku, req.quantity).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AdjustStockRequest {
    /// Added to the stock level (negative removes).
    delta: i64,
}

#[utoipa::path(post, path = "/inventory/{sku}/adjust", params(("sku" = String, Path)), request_body = AdjustStockRequest,
    responses((status = 200, body = InventoryItem), (status = 400, body = ErrorBody, description = "Invalid SKU or malformed body"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Would go below zero")))]
async fn adjust_inventory(
    State(svc): State<Arc<InventoryService>>,
    ApiPath(sku): ApiPath<String>,
    ApiJson(req): ApiJson<AdjustStockRequest>,
) -> ApiResult<Json<InventoryItem>> {
    Ok(Json(svc.adjust_stock(&sku, req.delta).await?))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Inventory Management System (IMS) API", version = "1.0.0"),
    paths(create_product, list_products, get_product, get_inventory, check_inventory, set_inventory, adjust_inventory),
    components(schemas(NewProduct, Product, ProductWithInventory, InventoryItem, ListProductsResponse, CheckInventoryRequest, CheckItem,
        Availability, SetStockRequest, AdjustStockRequest, ErrorBody)),
    modifiers(&ApiKeySecurity),
    security(("ApiKeyAuth" = []))
)]
pub struct ImsApi;

/// The business routes' document; the shared routes are added when the router is assembled.
pub fn api_doc() -> utoipa::openapi::OpenApi {
    ImsApi::openapi()
}
