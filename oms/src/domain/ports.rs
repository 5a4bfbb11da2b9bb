//! What the order core needs from the outside world. Each store method is one atomic unit:
//! the business change, the messages it causes, and (for incoming messages) the dedupe marker
//! commit together or not at all — in SQLite one transaction, in DynamoDB one
//! TransactWriteItems.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
pub use salve_common::messages::Emit;
use salve_common::messages::Envelope;
use salve_common::money::Money;
use salve_common::trace_context::TraceParent;

use super::customer::Customer;
use super::order::{Order, OrderStatus, ReservationResult};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable, retry: {0}")]
    Unavailable(String),
    #[error("storage failure: {0}")]
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyKey {
    pub key: String,
    /// Hash of the request body: the same key with another body is refused.
    pub request_hash: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlaceOutcome {
    Placed,
    /// The key was seen with the same request: this is the order it created.
    Replayed {
        order_id: String,
    },
    KeyReused,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderQuery {
    pub customer_id: String,
    pub status: Option<OrderStatus>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub limit: u32,
    /// Continue after this (created_at, id), exclusive; newest first.
    pub after: Option<(DateTime<Utc>, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    pub more: bool,
}

/// What deleting did, decided inside the store's transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    NotFound,
    Deleted { released_stock: bool },
}

/// What an incoming inventory answer did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Duplicate,
    Applied,
}

#[async_trait]
pub trait OrderStore: Send + Sync + 'static {
    async fn insert_customer(&self, customer: &Customer) -> Result<(), StoreError>;
    async fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError>;

    /// Saves the order and its ReserveInventory message (and the idempotency key) at once.
    async fn place_order(
        &self,
        order: &Order,
        reserve: &Envelope,
        trace: &TraceParent,
        key: Option<IdempotencyKey>,
    ) -> Result<PlaceOutcome, StoreError>;
    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError>;
    async fn list_orders(&self, query: &OrderQuery) -> Result<OrderPage, StoreError>;

    /// Deletes the order; a CONFIRMED one also emits ReleaseInventory in the same commit.
    async fn delete_order(&self, id: &str, emit: Emit) -> Result<Deleted, StoreError>;

    /// Applies the inventory's answer once per message id (see `order::on_reservation_result`).
    async fn apply_reservation_result(
        &self,
        message_id: &str,
        order_id: &str,
        result: &ReservationResult,
        emit: Emit,
    ) -> Result<Applied, StoreError>;

    async fn count_by_status(&self) -> Result<HashMap<OrderStatus, i64>, StoreError>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct CatalogProduct {
    pub name: String,
    pub price: Money,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    Unavailable(String),
}

/// Product names and prices, owned by the inventory service.
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Known SKUs only; an unknown SKU is simply absent from the map.
    async fn lookup(&self, skus: &[String]) -> Result<HashMap<String, CatalogProduct>, CatalogError>;
}
