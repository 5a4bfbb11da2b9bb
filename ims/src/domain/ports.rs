//! What the inventory core needs from storage. Each method is one atomic unit: stock changes,
//! the reservation record, the dedupe marker of the incoming message and the reply message
//! commit together or not at all (SQLite: one transaction; DynamoDB: one TransactWriteItems).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
pub use salve_common::messages::Emit;
use salve_common::messages::MessageItem;

use super::product::{InventoryItem, Product};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    AlreadyExists,
    #[error("storage unavailable, retry: {0}")]
    Unavailable(String),
    #[error("storage failure: {0}")]
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProductPage {
    pub products: Vec<Product>,
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Adjusted {
    NotFound,
    Insufficient { available: i64 },
    Done(InventoryItem),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reserved {
    /// This message id was processed before.
    Duplicate,
    Reserved,
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Released {
    Duplicate,
    Released,
    /// Nothing was held for the order (never reserved, failed, or already released).
    NothingHeld,
}

#[async_trait]
pub trait InventoryStore: Send + Sync + 'static {
    /// Creates the product and its stock row at 0.
    async fn insert_product(&self, product: &Product) -> Result<(), StoreError>;
    async fn product(&self, sku: &str) -> Result<Option<(Product, i64)>, StoreError>;
    /// The products with these SKUs (unknown ones are left out): the catalog lookup for one
    /// order's lines. Stores that can should answer in one read.
    async fn products_by_sku(&self, skus: &[String]) -> Result<HashMap<String, Product>, StoreError> {
        let mut found = HashMap::new();
        for sku in skus {
            if let Some((product, _)) = self.product(sku).await? {
                found.insert(sku.clone(), product);
            }
        }
        Ok(found)
    }
    /// By SKU, ascending, after `after` (exclusive).
    async fn list_products(&self, limit: u32, after: Option<String>) -> Result<ProductPage, StoreError>;
    async fn inventory(&self, sku: &str) -> Result<Option<InventoryItem>, StoreError>;
    async fn quantities(&self, skus: &[String]) -> Result<HashMap<String, i64>, StoreError>;
    async fn set_stock(&self, sku: &str, quantity: i64, now: DateTime<Utc>) -> Result<Option<InventoryItem>, StoreError>;
    async fn adjust_stock(&self, sku: &str, delta: i64, now: DateTime<Utc>) -> Result<Adjusted, StoreError>;

    /// Reserves all items for the order or none (see `reservation::plan`), records the message
    /// as processed, and enqueues InventoryReserved / InventoryReservationFailed.
    async fn reserve(&self, message_id: &str, order_id: &str, items: &[MessageItem], reply: Emit) -> Result<Reserved, StoreError>;
    /// Gives back what is held for the order, once.
    async fn release(&self, message_id: &str, order_id: &str, now: DateTime<Utc>) -> Result<Released, StoreError>;
}
