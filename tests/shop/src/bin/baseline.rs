//! The benchmark's baseline: bare axum doing the JSON work the shop's endpoints do, and no
//! more — so the ratio printed by `loadgen` is what storage, the saga and the shared edge
//! (auth, limits, metrics) cost. `POST /orders` checks the API key, parses and validates the
//! same order body into typed structs and answers 201 with a new order id; `GET /orders/{id}`
//! builds and serialises an order of the same shape as OMS's.

use std::net::SocketAddr;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use clap::Parser;
use serde::{Deserialize, Serialize};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[arg(long, env = "SALVE_API_KEYS", default_value = "loadgen")]
    api_key: String,
}

#[derive(Deserialize, Serialize)]
struct Line {
    sku: String,
    quantity: i64,
}

#[derive(Deserialize, Serialize)]
struct NewOrder {
    customer_id: String,
    items: Vec<Line>,
}

#[derive(Serialize)]
struct Created {
    order_id: String,
}

#[derive(Serialize)]
struct Item {
    sku: String,
    quantity: u32,
    price: f64,
    name: String,
}

#[derive(Serialize)]
struct Order {
    id: String,
    customer_id: String,
    items: Vec<Item>,
    total: f64,
    status: &'static str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

type Refusal = (StatusCode, Json<serde_json::Value>);

fn refuse(status: StatusCode, message: &str) -> Refusal {
    (status, Json(serde_json::json!({"error": {"code": "refused", "message": message}})))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let key = args.api_key.clone();
    let authorised = move |headers: &HeaderMap| headers.get("x-api-key").is_some_and(|v| v.as_bytes() == key.as_bytes());
    let check = authorised.clone();
    let router = Router::new()
        .route(
            "/orders",
            post(move |headers: HeaderMap, Json(order): Json<NewOrder>| async move {
                if !check(&headers) {
                    return Err(refuse(StatusCode::UNAUTHORIZED, "missing or wrong API key"));
                }
                if order.customer_id.is_empty() || order.items.is_empty() || order.items.iter().any(|l| l.quantity < 1) {
                    return Err(refuse(StatusCode::BAD_REQUEST, "invalid order"));
                }
                Ok((StatusCode::CREATED, Json(Created { order_id: uuid::Uuid::now_v7().to_string() })))
            }),
        )
        .route(
            "/orders/{id}",
            get(move |headers: HeaderMap, Path(id): Path<String>| async move {
                if !authorised(&headers) {
                    return Err(refuse(StatusCode::UNAUTHORIZED, "missing or wrong API key"));
                }
                let now = Utc::now();
                let items: Vec<Item> = (0..3)
                    .map(|i| Item { sku: format!("SKU-{i:05}"), quantity: 2, price: 1.25, name: format!("Product SKU-{i:05}") })
                    .collect();
                let total = items.iter().map(|i| i.price * f64::from(i.quantity)).sum();
                Ok(Json(Order {
                    id,
                    customer_id: uuid::Uuid::now_v7().to_string(),
                    items,
                    total,
                    status: "CONFIRMED",
                    created_at: now,
                    updated_at: now,
                }))
            }),
        )
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("baseline on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
