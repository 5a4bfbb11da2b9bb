//! The inventory use cases.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use salve_common::messages::MessageItem;
use salve_common::time::{Clock, IdSource};
use salve_common::trace_context::TraceParent;

use super::error::InventoryError;
use super::ports::{Adjusted, Emit, InventoryStore, ProductPage, Released, Reserved, StoreError};
use super::product::{InventoryItem, NewProduct, Product, ProductWithInventory, validate_sku};

pub struct InventoryService {
    store: Arc<dyn InventoryStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Availability {
    Available,
    Unavailable,
}

impl InventoryService {
    pub fn new(store: Arc<dyn InventoryStore>, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>) -> Self {
        Self { store, clock, ids }
    }

    pub async fn create_product(&self, new: NewProduct) -> Result<Product, InventoryError> {
        new.validate()?;
        let now = self.clock.now();
        let product = Product {
            sku: new.sku,
            name: new.name.trim().to_string(),
            description: new.description,
            price: new.price,
            image_url: new.image_url,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_product(&product).await {
            Ok(()) => Ok(product),
            Err(StoreError::AlreadyExists) => Err(InventoryError::AlreadyExists(product.sku)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn product(&self, sku: &str) -> Result<ProductWithInventory, InventoryError> {
        let (product, quantity) = self.store.product(sku).await?.ok_or_else(|| InventoryError::NotFound(format!("product {sku}")))?;
        Ok(ProductWithInventory { product, quantity })
    }

    /// Name and price of each known SKU, for pricing an order; unknown SKUs are left out.
    pub async fn products(&self, skus: &[String]) -> Result<HashMap<String, Product>, InventoryError> {
        Ok(self.store.products_by_sku(skus).await?)
    }

    pub async fn list_products(&self, limit: u32, after: Option<String>) -> Result<ProductPage, InventoryError> {
        Ok(self.store.list_products(limit, after).await?)
    }

    pub async fn inventory(&self, sku: &str) -> Result<InventoryItem, InventoryError> {
        self.store.inventory(sku).await?.ok_or_else(|| InventoryError::NotFound(format!("inventory for {sku}")))
    }

    /// AVAILABLE when the requested quantity is in stock now (a hint: nothing is held).
    pub async fn check(&self, items: &[MessageItem]) -> Result<BTreeMap<String, Availability>, InventoryError> {
        if items.is_empty() {
            return Err(InventoryError::Validation("items must not be empty".into()));
        }
        if let Some(bad) = items.iter().find(|i| i.quantity < 1) {
            return Err(InventoryError::Validation(format!("quantity for {} must be at least 1", bad.sku)));
        }
        let skus: Vec<String> = items.iter().map(|i| i.sku.clone()).collect();
        let stock = self.store.quantities(&skus).await?;
        Ok(items
            .iter()
            .map(|i| {
                let ok = stock.get(&i.sku).is_some_and(|q| *q >= i.quantity);
                (i.sku.clone(), if ok { Availability::Available } else { Availability::Unavailable })
            })
            .collect())
    }

    pub async fn set_stock(&self, sku: &str, quantity: i64) -> Result<InventoryItem, InventoryError> {
        validate_sku(sku)?;
        if quantity < 0 {
            return Err(InventoryError::Validation("quantity must be >= 0".into()));
        }
        self.store.set_stock(sku, quantity, self.clock.now()).await?.ok_or_else(|| InventoryError::NotFound(format!("product {sku}")))
    }

    pub async fn adjust_stock(&self, sku: &str, delta: i64) -> Result<InventoryItem, InventoryError> {
        validate_sku(sku)?;
        match self.store.adjust_stock(sku, delta, self.clock.now()).await? {
            Adjusted::Done(item) => Ok(item),
            Adjusted::NotFound => Err(InventoryError::NotFound(format!("product {sku}"))),
            Adjusted::Insufficient { available } => Err(InventoryError::InsufficientStock { sku: sku.to_string(), available, delta }),
        }
    }

    pub async fn reserve(
        &self,
        message_id: &str,
        order_id: &str,
        items: &[MessageItem],
        trace: &TraceParent,
    ) -> Result<Reserved, InventoryError> {
        let reply = Emit { message_id: self.ids.new_id(), trace: trace.clone(), now: self.clock.now() };
        let outcome = self.store.reserve(message_id, order_id, items, reply).await?;
        match &outcome {
            Reserved::Reserved => tracing::info!(%order_id, trace_id = %trace.trace_id, "stock reserved"),
            Reserved::Failed { reason } => tracing::info!(%order_id, %reason, trace_id = %trace.trace_id, "reservation refused"),
            Reserved::Duplicate => tracing::debug!(%order_id, "duplicate reservation message ignored"),
        }
        Ok(outcome)
    }

    pub async fn release(&self, message_id: &str, order_id: &str) -> Result<Released, InventoryError> {
        let outcome = self.store.release(message_id, order_id, self.clock.now()).await?;
        if outcome == Released::Released {
            tracing::info!(%order_id, "stock released");
        }
        Ok(outcome)
    }
}
