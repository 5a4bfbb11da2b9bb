//! Orders and the saga's decisions: what an order becomes when the inventory answers, and
//! when stock must be given back.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use salve_common::messages::{Message, MessageItem};
use salve_common::money::Money;
use serde::{Deserialize, Serialize};

use super::error::OrderError;
use super::ports::CatalogProduct;

pub const MAX_LINES: usize = 99;
pub const MAX_QUANTITY: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    PendingInventory,
    Confirmed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 3] = [OrderStatus::PendingInventory, OrderStatus::Confirmed, OrderStatus::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingInventory => "PENDING_INVENTORY",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// One requested line, before pricing. Quantity is signed so a negative value is a clear
/// validation error rather than a JSON type error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewOrder {
    pub customer_id: String,
    pub items: Vec<OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderItem {
    pub sku: String,
    pub quantity: u32,
    #[schema(value_type = f64)]
    pub price: Money,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub items: Vec<OrderItem>,
    #[schema(value_type = f64)]
    pub total: Money,
    pub status: OrderStatus,
    /// Why the inventory refused the order, when it is CANCELLED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl NewOrder {
    /// 1..=99 lines, each SKU once, each quantity 1..=1,000,000.
    pub fn validate(&self) -> Result<(), OrderError> {
        if self.customer_id.trim().is_empty() {
            return Err(OrderError::Validation("customer_id is required".into()));
        }
        if self.items.is_empty() {
            return Err(OrderError::Validation("items must not be empty".into()));
        }
        if self.items.len() > MAX_LINES {
            return Err(OrderError::Validation(format!("an order has at most {MAX_LINES} lines, got {}", self.items.len())));
        }
        let mut seen = HashSet::new();
        for line in &self.items {
            if line.sku.trim().is_empty() {
                return Err(OrderError::Validation("every item needs a sku".into()));
            }
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                return Err(OrderError::Validation(format!("quantity for {} must be 1..={MAX_QUANTITY}, got {}", line.sku, line.quantity)));
            }
            if !seen.insert(line.sku.as_str()) {
                return Err(OrderError::Validation(format!("sku {} is listed more than once", line.sku)));
            }
        }
        Ok(())
    }

    /// Prices each line from the catalog as it is now; the order keeps these prices.
    pub fn price(&self, catalog: &HashMap<String, CatalogProduct>) -> Result<(Vec<OrderItem>, Money), OrderError> {
        let unknown: Vec<String> = self.items.iter().filter(|l| !catalog.contains_key(&l.sku)).map(|l| l.sku.clone()).collect();
        if !unknown.is_empty() {
            return Err(OrderError::UnknownSkus(unknown));
        }
        let items: Vec<OrderItem> = self
            .items
            .iter()
            .filter_map(|l| {
                let product = catalog.get(&l.sku)?;
                Some(OrderItem { sku: l.sku.clone(), quantity: l.quantity as u32, price: product.price, name: product.name.clone() })
            })
            .collect();
        let total = items.iter().map(|i| i.price.times(i.quantity)).sum();
        Ok((items, total))
    }
}

impl Order {
    pub fn reserve_message(&self, now: DateTime<Utc>) -> Message {
        Message::ReserveInventory {
            order_id: self.id.clone(),
            customer_id: self.customer_id.clone(),
            items: self.items.iter().map(|i| MessageItem { sku: i.sku.clone(), quantity: i64::from(i.quantity) }).collect(),
            timestamp: now,
        }
    }

    /// Deleting a CONFIRMED order gives its stock back. A PENDING one has nothing reserved
    /// yet; if the reservation lands after the delete, [`on_reservation_result`] releases it.
    pub fn must_release_on_delete(&self) -> bool {
        self.status == OrderStatus::Confirmed
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReservationResult {
    Reserved,
    Failed { reason: Option<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reaction {
    /// The order leaves PENDING_INVENTORY.
    Settle { status: OrderStatus, reason: Option<String> },
    /// Stock was reserved for an order that no longer exists: give it back.
    ReleaseOrphanedStock,
    /// Already settled (a duplicate answer), or nothing to undo.
    Nothing,
}

/// What the inventory's answer means for the order (None: the order was deleted meanwhile).
pub fn on_reservation_result(order: Option<&Order>, result: &ReservationResult) -> Reaction {
    match (order, result) {
        (None, ReservationResult::Reserved) => Reaction::ReleaseOrphanedStock,
        (None, ReservationResult::Failed { .. }) => Reaction::Nothing,
        (Some(o), _) if o.status != OrderStatus::PendingInventory => Reaction::Nothing,
        (Some(_), ReservationResult::Reserved) => Reaction::Settle { status: OrderStatus::Confirmed, reason: None },
        (Some(_), ReservationResult::Failed { reason }) => Reaction::Settle { status: OrderStatus::Cancelled, reason: reason.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: i64) -> OrderLine {
        OrderLine { sku: sku.into(), quantity }
    }

    fn catalog() -> HashMap<String, CatalogProduct> {
        HashMap::from([
            ("A".to_string(), CatalogProduct { name: "Apple".into(), price: Money::from_cents(150) }),
            ("B".to_string(), CatalogProduct { name: "Bread".into(), price: Money::from_cents(325) }),
        ])
    }

    fn order(status: OrderStatus) -> Order {
        let now = Utc::now();
        Order {
            id: "o".into(),
            customer_id: "c".into(),
            items: vec![],
            total: Money::ZERO,
            status,
            cancellation_reason: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn validation_rules() {
        let ok = NewOrder { customer_id: "c".into(), items: vec![line("A", 1)] };
        assert!(ok.validate().is_ok());
        let bad = [
            NewOrder { customer_id: "c".into(), items: vec![] },
            NewOrder { customer_id: "c".into(), items: (0..100).map(|i| line(&format!("S{i}"), 1)).collect() },
            NewOrder { customer_id: "c".into(), items: vec![line("A", 0)] },
            NewOrder { customer_id: "c".into(), items: vec![line("A", -3)] },
            NewOrder { customer_id: "c".into(), items: vec![line("A", 1), line("A", 2)] },
            NewOrder { customer_id: " ".into(), items: vec![line("A", 1)] },
        ];
        for order in bad {
            assert!(matches!(order.validate(), Err(OrderError::Validation(_))), "{order:?}");
        }
        let max = NewOrder { customer_id: "c".into(), items: (0..99).map(|i| line(&format!("S{i}"), 1)).collect() };
        assert!(max.validate().is_ok());
    }

    #[test]
    fn prices_from_the_catalog_and_totals_exactly() {
        let order = NewOrder { customer_id: "c".into(), items: vec![line("A", 3), line("B", 2)] };
        let (items, total) = order.price(&catalog()).unwrap();
        assert_eq!(items[0].name, "Apple");
        assert_eq!(items[1].price, Money::from_cents(325));
        assert_eq!(total, Money::from_cents(3 * 150 + 2 * 325));
    }

    #[test]
    fn unknown_skus_are_named() {
        let order = NewOrder { customer_id: "c".into(), items: vec![line("A", 1), line("Z", 1), line("Y", 1)] };
        match order.price(&catalog()) {
            Err(OrderError::UnknownSkus(skus)) => assert_eq!(skus, vec!["Z".to_string(), "Y".to_string()]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn saga_reactions() {
        let pending = order(OrderStatus::PendingInventory);
        assert_eq!(
            on_reservation_result(Some(&pending), &ReservationResult::Reserved),
            Reaction::Settle { status: OrderStatus::Confirmed, reason: None }
        );
        assert_eq!(
            on_reservation_result(Some(&pending), &ReservationResult::Failed { reason: Some("out of stock".into()) }),
            Reaction::Settle { status: OrderStatus::Cancelled, reason: Some("out of stock".into()) }
        );
        // A late duplicate never flips a settled order.
        let confirmed = order(OrderStatus::Confirmed);
        assert_eq!(on_reservation_result(Some(&confirmed), &ReservationResult::Failed { reason: None }), Reaction::Nothing);
        // Reserved for a deleted order: the stock goes back.
        assert_eq!(on_reservation_result(None, &ReservationResult::Reserved), Reaction::ReleaseOrphanedStock);
        assert_eq!(on_reservation_result(None, &ReservationResult::Failed { reason: None }), Reaction::Nothing);
    }

    #[test]
    fn only_confirmed_orders_release_on_delete() {
        assert!(order(OrderStatus::Confirmed).must_release_on_delete());
        assert!(!order(OrderStatus::PendingInventory).must_release_on_delete());
        assert!(!order(OrderStatus::Cancelled).must_release_on_delete());
    }
}
