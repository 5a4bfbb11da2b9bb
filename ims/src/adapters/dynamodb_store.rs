//! The inventory store on DynamoDB. A reservation is ONE TransactWriteItems: every decrement
//! (conditioned on enough stock), the reservation record, the incoming message's processed
//! marker (conditioned on not existing) and the reply in the outbox table. A cancelled
//! transaction's reasons say which SKUs fell short; they become the failure reason.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use salve_common::aws::dynamo::{
    CONDITION_FAILED, Item, TableSpec, get_item, get_n, get_s, get_time, n, outbox_put, outbox_spec, processed_put, put, s, transact,
};
use salve_common::aws::errors::describe;
use salve_common::messages::{Envelope, Message, MessageItem};
use salve_common::messaging::outbox::Outbox;
use salve_common::time::to_text;

use crate::domain::ports::{Adjusted, Emit, InventoryStore, ProductPage, Released, Reserved, StoreError};
use crate::domain::product::{InventoryItem, Product};
use crate::domain::reservation;

/// DynamoDB's limit on actions in one TransactWriteItems: a reservation uses one per line
/// plus three (processed marker, reservation record, reply).
const MAX_TRANSACTION_ITEMS: usize = 100;

#[derive(Clone)]
pub struct Tables {
    pub products: String,
    pub inventory: String,
    pub reservations: String,
    pub processed: String,
    pub outbox: String,
}

impl Tables {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            products: format!("{prefix}ims-products"),
            inventory: format!("{prefix}ims-inventory"),
            reservations: format!("{prefix}ims-reservations"),
            processed: format!("{prefix}ims-processed"),
            outbox: format!("{prefix}ims-outbox"),
        }
    }

    pub fn specs(&self) -> Vec<TableSpec> {
        let plain = |name: &String, key| TableSpec { name: name.clone(), key, indexes: vec![], ttl_attribute: None };
        vec![
            plain(&self.products, "sku"),
            plain(&self.inventory, "sku"),
            plain(&self.reservations, "order_id"),
            TableSpec { name: self.processed.clone(), key: "message_id", indexes: vec![], ttl_attribute: Some("expires_at") },
            outbox_spec(&self.outbox),
        ]
    }
}

pub struct DynamoInventoryStore {
    client: Client,
    tables: Tables,
    outbox: Outbox,
}

impl DynamoInventoryStore {
    pub fn new(client: Client, tables: Tables, outbox: Outbox) -> Self {
        Self { client, tables, outbox }
    }

    async fn get(&self, table: &str, key: &str, value: &str) -> Result<Option<Item>, StoreError> {
        get_item(&self.client, table, key, value).await.map_err(StoreError::Unavailable)
    }

    async fn stock(&self, skus: &[String]) -> Result<HashMap<String, i64>, StoreError> {
        let mut found = HashMap::new();
        for sku in skus {
            if let Some(item) = self.get(&self.tables.inventory, "sku", sku).await?
                && let Some(q) = get_n(&item, "quantity")
            {
                found.insert(sku.clone(), q);
            }
        }
        Ok(found)
    }

    /// `Ok(None)` when committed, `Ok(Some(codes))` when cancelled.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<Vec<String>>, StoreError> {
        transact(&self.client, items, &self.tables.inventory).await.map_err(StoreError::Unavailable)
    }

    fn reservation_put(
        &self,
        order_id: &str,
        items: &[MessageItem],
        status: &str,
        reason: Option<&str>,
        now: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = HashMap::from([
            ("order_id".to_string(), s(order_id)),
            ("items".to_string(), s(serde_json::to_string(items).map_err(|e| StoreError::Failed(e.to_string()))?)),
            ("status".to_string(), s(status)),
            ("created_at".to_string(), s(now)),
            ("updated_at".to_string(), s(now)),
        ]);
        if let Some(reason) = reason {
            item.insert("reason".to_string(), s(reason));
        }
        Ok(put(&self.tables.reservations, item, Some("attribute_not_exists(order_id)"), None))
    }

    fn stock_update(&self, sku: &str, delta: i64, now: &str, condition: Option<(&str, i64)>) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(&self.tables.inventory)
            .key("sku", s(sku))
            .update_expression("SET quantity = quantity + :delta, updated_at = :now")
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":now", s(now));
        if let Some((expression, value)) = condition {
            update = update.condition_expression(expression).expression_attribute_values(":need", n(value));
        }
        TransactWriteItem::builder().update(update.build().expect("table, key and expression set")).build()
    }

    fn reply(&self, order_id: &str, outcome: &Reserved, reply: &Emit) -> TransactWriteItem {
        let message = match outcome {
            Reserved::Failed { reason } => {
                Message::InventoryReservationFailed { order_id: order_id.to_string(), reason: Some(reason.clone()), timestamp: reply.now }
            }
            _ => Message::InventoryReserved { order_id: order_id.to_string(), timestamp: reply.now },
        };
        outbox_put(&self.tables.outbox, &Envelope::new(reply.message_id.clone(), message), &reply.trace, reply.now)
    }

    /// Records a refusal: processed marker, FAILED reservation, and the failure reply.
    async fn refuse(
        &self,
        message_id: &str,
        order_id: &str,
        items: &[MessageItem],
        reason: String,
        reply: &Emit,
    ) -> Result<Reserved, StoreError> {
        let now = to_text(reply.now);
        let outcome = Reserved::Failed { reason: reason.clone() };
        let writes = vec![
            processed_put(&self.tables.processed, message_id, reply.now),
            self.reservation_put(order_id, items, "FAILED", Some(&reason), &now)?,
            self.reply(order_id, &outcome, reply),
        ];
        match self.transact(writes).await? {
            None => Ok(outcome),
            Some(codes) if codes.first().map(String::as_str) == Some(CONDITION_FAILED) => Ok(Reserved::Duplicate),
            Some(_) => self.answer_as_before(message_id, order_id, reply).await,
        }
    }

    /// The order was decided before (another message id): answer the same way again.
    async fn answer_as_before(&self, message_id: &str, order_id: &str, reply: &Emit) -> Result<Reserved, StoreError> {
        let Some(earlier) = self.get(&self.tables.reservations, "order_id", order_id).await? else {
            return Err(StoreError::Unavailable("reservation changed concurrently; retry".into()));
        };
        let outcome = match get_s(&earlier, "status").as_deref() {
            Some("RESERVED") => Reserved::Reserved,
            Some("RELEASED") => Reserved::Failed { reason: "the order's stock was already released".into() },
            _ => Reserved::Failed { reason: get_s(&earlier, "reason").unwrap_or_default() },
        };
        let writes = vec![processed_put(&self.tables.processed, message_id, reply.now), self.reply(order_id, &outcome, reply)];
        match self.transact(writes).await? {
            None => Ok(outcome),
            Some(_) => Ok(Reserved::Duplicate),
        }
    }
}

fn to_product(item: &Item) -> Option<Product> {
    Some(Product {
        sku: get_s(item, "sku")?,
        name: get_s(item, "name")?,
        description: get_s(item, "description"),
        price: salve_common::money::Money::from_cents(get_n(item, "price_cents")?),
        image_url: get_s(item, "image_url"),
        created_at: get_time(item, "created_at")?,
        updated_at: get_time(item, "updated_at")?,
    })
}

fn to_inventory(item: &Item) -> Option<InventoryItem> {
    Some(InventoryItem { sku: get_s(item, "sku")?, quantity: get_n(item, "quantity")?, updated_at: get_time(item, "updated_at")? })
}

#[async_trait]
impl InventoryStore for DynamoInventoryStore {
    async fn insert_product(&self, p: &Product) -> Result<(), StoreError> {
        let now = to_text(p.created_at);
        let mut product = HashMap::from([
            ("sku".to_string(), s(&p.sku)),
            ("name".to_string(), s(&p.name)),
            ("price_cents".to_string(), n(p.price.cents())),
            ("created_at".to_string(), s(&now)),
            ("updated_at".to_string(), s(&now)),
        ]);
        if let Some(d) = &p.description {
            product.insert("description".to_string(), s(d));
        }
        if let Some(u) = &p.image_url {
            product.insert("image_url".to_string(), s(u));
        }
        let stock = HashMap::from([("sku".to_string(), s(&p.sku)), ("quantity".to_string(), n(0)), ("updated_at".to_string(), s(&now))]);
        let writes = vec![
            put(&self.tables.products, product, Some("attribute_not_exists(sku)"), None),
            put(&self.tables.inventory, stock, Some("attribute_not_exists(sku)"), None),
        ];
        match self.transact(writes).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::AlreadyExists),
        }
    }

    async fn product(&self, sku: &str) -> Result<Option<(Product, i64)>, StoreError> {
        let Some(item) = self.get(&self.tables.products, "sku", sku).await? else { return Ok(None) };
        let product = to_product(&item).ok_or_else(|| StoreError::Failed(format!("product {sku} is malformed in DynamoDB")))?;
        let quantity = self.stock(&[sku.to_string()]).await?.get(sku).copied().unwrap_or(0);
        Ok(Some((product, quantity)))
    }

    async fn list_products(&self, limit: u32, after: Option<String>) -> Result<ProductPage, StoreError> {
        let out = self
            .client
            .scan()
            .table_name(&self.tables.products)
            .limit(limit as i32)
            .set_exclusive_start_key(after.map(|sku| HashMap::from([("sku".to_string(), s(sku))])))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe("Scan", &self.tables.products, &e)))?;
        let products = out.items.unwrap_or_default().iter().filter_map(to_product).collect();
        Ok(ProductPage { products, more: out.last_evaluated_key.is_some_and(|k| !k.is_empty()) })
    }

    async fn inventory(&self, sku: &str) -> Result<Option<InventoryItem>, StoreError> {
        Ok(self.get(&self.tables.inventory, "sku", sku).await?.as_ref().and_then(to_inventory))
    }

    async fn quantities(&self, skus: &[String]) -> Result<HashMap<String, i64>, StoreError> {
        self.stock(skus).await
    }

    async fn set_stock(&self, sku: &str, quantity: i64, now: DateTime<Utc>) -> Result<Option<InventoryItem>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.inventory)
            .key("sku", s(sku))
            .update_expression("SET quantity = :q, updated_at = :now")
            .condition_expression("attribute_exists(sku)")
            .expression_attribute_values(":q", n(quantity))
            .expression_attribute_values(":now", s(to_text(now)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.attributes.as_ref().and_then(to_inventory)),
            Err(e) if salve_common::aws::errors::code(&e) == Some("ConditionalCheckFailedException") => Ok(None),
            Err(e) => Err(StoreError::Unavailable(describe("UpdateItem", &self.tables.inventory, &e))),
        }
    }

    async fn adjust_stock(&self, sku: &str, delta: i64, now: DateTime<Utc>) -> Result<Adjusted, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.inventory)
            .key("sku", s(sku))
            .update_expression("SET quantity = quantity + :delta, updated_at = :now")
            .condition_expression("attribute_exists(sku) AND quantity >= :need")
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":need", n(delta.saturating_neg().max(0)))
            .expression_attribute_values(":now", s(to_text(now)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.attributes.as_ref().and_then(to_inventory).map(Adjusted::Done).unwrap_or(Adjusted::NotFound)),
            Err(e) if salve_common::aws::errors::code(&e) == Some("ConditionalCheckFailedException") => {
                match self.stock(&[sku.to_string()]).await?.get(sku) {
                    Some(available) => Ok(Adjusted::Insufficient { available: *available }),
                    None => Ok(Adjusted::NotFound),
                }
            }
            Err(e) => Err(StoreError::Unavailable(describe("UpdateItem", &self.tables.inventory, &e))),
        }
    }

    async fn reserve(&self, message_id: &str, order_id: &str, items: &[MessageItem], reply: Emit) -> Result<Reserved, StoreError> {
        // Rules that need no stock (empty, repeated SKU, bad quantity) and unknown SKUs are
        // decided on a consistent read; enough stock is enforced by the transaction itself.
        if items.len() + 3 > MAX_TRANSACTION_ITEMS {
            let reason = format!("{} lines cannot be reserved in one transaction (at most {})", items.len(), MAX_TRANSACTION_ITEMS - 3);
            return self.refuse(message_id, order_id, items, reason, &reply).await.inspect(|_| self.outbox.wake_relay());
        }
        let skus: Vec<String> = items.iter().map(|i| i.sku.clone()).collect();
        let stock = self.stock(&skus).await?;
        if let Err(reason) = reservation::plan(items, &stock) {
            return self.refuse(message_id, order_id, items, reason, &reply).await.inspect(|_| self.outbox.wake_relay());
        }
        let now = to_text(reply.now);
        let mut writes: Vec<TransactWriteItem> =
            items.iter().map(|i| self.stock_update(&i.sku, -i.quantity, &now, Some(("quantity >= :need", i.quantity)))).collect();
        writes.push(processed_put(&self.tables.processed, message_id, reply.now));
        writes.push(self.reservation_put(order_id, items, "RESERVED", None, &now)?);
        writes.push(self.reply(order_id, &Reserved::Reserved, &reply));
        let outcome = match self.transact(writes).await? {
            None => Reserved::Reserved,
            Some(codes) => {
                let failed = |i: usize| codes.get(i).map(String::as_str) == Some(CONDITION_FAILED);
                if failed(items.len()) {
                    return Ok(Reserved::Duplicate);
                }
                if failed(items.len() + 1) {
                    self.answer_as_before(message_id, order_id, &reply).await?
                } else {
                    // Map the cancelled decrements back to their SKUs.
                    let short: Vec<String> =
                        items.iter().enumerate().filter(|(i, _)| failed(*i)).map(|(_, item)| item.sku.clone()).collect();
                    let now_stock = self.stock(&short).await?;
                    let detail: Vec<String> = items
                        .iter()
                        .filter(|i| short.contains(&i.sku))
                        .map(|i| format!("{} (requested {}, available {})", i.sku, i.quantity, now_stock.get(&i.sku).copied().unwrap_or(0)))
                        .collect();
                    let reason = if detail.is_empty() {
                        "stock changed concurrently".to_string()
                    } else {
                        format!("insufficient stock: {}", detail.join(", "))
                    };
                    self.refuse(message_id, order_id, items, reason, &reply).await?
                }
            }
        };
        self.outbox.wake_relay();
        Ok(outcome)
    }

    async fn release(&self, message_id: &str, order_id: &str, now: DateTime<Utc>) -> Result<Released, StoreError> {
        let held = self.get(&self.tables.reservations, "order_id", order_id).await?;
        let now_text = to_text(now);
        let mut writes = vec![processed_put(&self.tables.processed, message_id, now)];
        let releasing = match &held {
            Some(r) if get_s(r, "status").as_deref() == Some("RESERVED") => {
                let items: Vec<MessageItem> =
                    serde_json::from_str(&get_s(r, "items").unwrap_or_default()).map_err(|e| StoreError::Failed(e.to_string()))?;
                writes.extend(items.iter().map(|i| self.stock_update(&i.sku, i.quantity, &now_text, None)));
                let update = Update::builder()
                    .table_name(&self.tables.reservations)
                    .key("order_id", s(order_id))
                    .update_expression("SET #st = :released, updated_at = :now")
                    .condition_expression("#st = :reserved")
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":released", s("RELEASED"))
                    .expression_attribute_values(":reserved", s("RESERVED"))
                    .expression_attribute_values(":now", s(&now_text))
                    .build()
                    .expect("table, key and expression set");
                writes.push(TransactWriteItem::builder().update(update).build());
                true
            }
            _ => false,
        };
        match self.transact(writes).await? {
            None if releasing => Ok(Released::Released),
            None => Ok(Released::NothingHeld),
            Some(codes) if codes.first().map(String::as_str) == Some(CONDITION_FAILED) => Ok(Released::Duplicate),
            Some(_) => Err(StoreError::Unavailable("reservation changed concurrently; retry".into())),
        }
    }
}
