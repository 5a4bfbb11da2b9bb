//! The order use cases.

use std::sync::Arc;

use salve_common::messages::{Envelope, Message};
use salve_common::time::{Clock, IdSource};
use salve_common::trace_context::TraceParent;
use sha2::{Digest, Sha256};

use super::customer::{Customer, NewCustomer};
use super::error::OrderError;
use super::known_customers::KnownCustomers;
use super::order::{NewOrder, Order, OrderStatus, ReservationResult};
use super::ports::{Applied, Catalog, Deleted, Emit, IdempotencyKey, OrderPage, OrderQuery, OrderStore, PlaceOutcome};

pub struct OrderService {
    store: Arc<dyn OrderStore>,
    catalog: Arc<dyn Catalog>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    known_customers: KnownCustomers,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub order_id: String,
    pub replayed: bool,
}

impl OrderService {
    pub fn new(store: Arc<dyn OrderStore>, catalog: Arc<dyn Catalog>, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>) -> Self {
        Self { store, catalog, clock, ids, known_customers: KnownCustomers::default() }
    }

    pub fn store(&self) -> &Arc<dyn OrderStore> {
        &self.store
    }

    pub async fn create_customer(&self, new: NewCustomer) -> Result<Customer, OrderError> {
        new.validate()?;
        let customer = Customer {
            id: self.ids.new_id(),
            name: new.name.trim().to_string(),
            email: new.email.trim().to_string(),
            address: new.address,
            created_at: self.clock.now(),
        };
        self.store.insert_customer(&customer).await?;
        Ok(customer)
    }

    pub async fn customer(&self, id: &str) -> Result<Customer, OrderError> {
        self.store.customer(id).await?.ok_or_else(|| OrderError::NotFound(format!("customer {id}")))
    }

    /// Validates, prices from the catalog, and saves the order with its ReserveInventory
    /// message. With an idempotency key, a retry of the same request returns the first order.
    pub async fn place_order(&self, new: NewOrder, idempotency_key: Option<String>, trace: &TraceParent) -> Result<Placed, OrderError> {
        new.validate()?;
        let key = idempotency_key.map(|key| IdempotencyKey { request_hash: request_hash(&new), key });
        if !self.known_customers.contains(&new.customer_id) {
            if self.store.customer(&new.customer_id).await?.is_none() {
                return Err(OrderError::UnknownCustomer(new.customer_id));
            }
            self.known_customers.remember(&new.customer_id);
        }
        let skus: Vec<String> = new.items.iter().map(|l| l.sku.clone()).collect();
        let catalog = self.catalog.lookup(&skus).await?;
        let (items, total) = new.price(&catalog)?;
        let now = self.clock.now();
        let order = Order {
            id: self.ids.new_id(),
            customer_id: new.customer_id,
            items,
            total,
            status: OrderStatus::PendingInventory,
            cancellation_reason: None,
            created_at: now,
            updated_at: now,
        };
        let reserve = Envelope::new(self.ids.new_id(), order.reserve_message(now));
        match self.store.place_order(&order, &reserve, trace, key).await? {
            PlaceOutcome::Placed => {
                tracing::info!(order_id = %order.id, trace_id = %trace.trace_id, "order placed");
                Ok(Placed { order_id: order.id, replayed: false })
            }
            PlaceOutcome::Replayed { order_id } => Ok(Placed { order_id, replayed: true }),
            PlaceOutcome::KeyReused => Err(OrderError::IdempotencyKeyReused),
        }
    }

    pub async fn order(&self, id: &str) -> Result<Order, OrderError> {
        self.store.order(id).await?.ok_or_else(|| OrderError::NotFound(format!("order {id}")))
    }

    pub async fn list_orders(&self, query: &OrderQuery) -> Result<OrderPage, OrderError> {
        if let (Some(start), Some(end)) = (query.start, query.end)
            && start > end
        {
            return Err(OrderError::Validation("start_date must not be after end_date".into()));
        }
        Ok(self.store.list_orders(query).await?)
    }

    pub async fn delete_order(&self, id: &str, trace: &TraceParent) -> Result<(), OrderError> {
        match self.store.delete_order(id, self.emit(trace)).await? {
            Deleted::NotFound => Err(OrderError::NotFound(format!("order {id}"))),
            Deleted::Deleted { released_stock } => {
                tracing::info!(order_id = %id, released_stock, "order deleted");
                Ok(())
            }
        }
    }

    /// Handles InventoryReserved / InventoryReservationFailed. `None` for other message kinds.
    pub async fn apply_inventory_answer(
        &self,
        message_id: &str,
        message: &Message,
        trace: &TraceParent,
    ) -> Option<Result<Applied, OrderError>> {
        let (order_id, result) = match message {
            Message::InventoryReserved { order_id, .. } => (order_id, ReservationResult::Reserved),
            Message::InventoryReservationFailed { order_id, reason, .. } => {
                (order_id, ReservationResult::Failed { reason: reason.clone() })
            }
            _ => return None,
        };
        let applied = self.store.apply_reservation_result(message_id, order_id, &result, self.emit(trace)).await;
        if let Ok(Applied::Applied) = &applied {
            tracing::info!(%order_id, ?result, trace_id = %trace.trace_id, "inventory answer applied");
        }
        Some(applied.map_err(OrderError::from))
    }

    fn emit(&self, trace: &TraceParent) -> Emit {
        Emit { message_id: self.ids.new_id(), trace: trace.clone(), now: self.clock.now() }
    }
}

/// Canonical hash of what the client asked for (customer and lines, in order).
fn request_hash(new: &NewOrder) -> String {
    let canonical = serde_json::to_vec(new).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
