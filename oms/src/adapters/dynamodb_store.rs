//! The order store on DynamoDB. An order and its ReserveInventory message (and the
//! idempotency key) commit in one TransactWriteItems; an inventory answer, its processed
//! marker and any resulting message likewise. Listing queries the by-customer GSI; the cursor
//! (created_at, id) is exactly the index's LastEvaluatedKey, so tokens look the same as with
//! the embedded store.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, Select, TransactWriteItem, Update};
use salve_common::aws::dynamo::{
    CONDITION_FAILED, Item, TableSpec, get_item, get_n, get_s, get_time, n, outbox_put, outbox_spec, processed_put, put, s, transact,
};
use salve_common::aws::errors::describe;
use salve_common::messages::{Envelope, Message};
use salve_common::messaging::outbox::Outbox;
use salve_common::time::to_text;
use salve_common::trace_context::TraceParent;

use crate::domain::customer::Customer;
use crate::domain::order::{Order, OrderStatus, Reaction, ReservationResult, on_reservation_result};
use crate::domain::ports::{Applied, Deleted, Emit, IdempotencyKey, OrderPage, OrderQuery, OrderStore, PlaceOutcome, StoreError};

pub const BY_CUSTOMER: &str = "by-customer";
pub const BY_STATUS: &str = "by-status";
/// Idempotency keys are honoured this long (TTL; expired keys are ignored on read).
const IDEMPOTENCY_TTL_HOURS: i64 = 24;

#[derive(Clone)]
pub struct Tables {
    pub customers: String,
    pub orders: String,
    pub idempotency: String,
    pub processed: String,
    pub outbox: String,
}

impl Tables {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            customers: format!("{prefix}oms-customers"),
            orders: format!("{prefix}oms-orders"),
            idempotency: format!("{prefix}oms-idempotency"),
            processed: format!("{prefix}oms-processed"),
            outbox: format!("{prefix}oms-outbox"),
        }
    }

    pub fn specs(&self) -> Vec<TableSpec> {
        vec![
            TableSpec { name: self.customers.clone(), key: "id", indexes: vec![], ttl_attribute: None },
            TableSpec {
                name: self.orders.clone(),
                key: "id",
                indexes: vec![(BY_CUSTOMER, "customer_id", "created_at"), (BY_STATUS, "status", "created_at")],
                ttl_attribute: None,
            },
            TableSpec { name: self.idempotency.clone(), key: "key", indexes: vec![], ttl_attribute: Some("expires_at") },
            TableSpec { name: self.processed.clone(), key: "message_id", indexes: vec![], ttl_attribute: Some("expires_at") },
            outbox_spec(&self.outbox),
        ]
    }
}

pub struct DynamoOrderStore {
    client: Client,
    tables: Tables,
    outbox: Outbox,
}

impl DynamoOrderStore {
    pub fn new(client: Client, tables: Tables, outbox: Outbox) -> Self {
        Self { client, tables, outbox }
    }

    async fn get(&self, table: &str, key: &str, value: &str) -> Result<Option<Item>, StoreError> {
        get_item(&self.client, table, key, value).await.map_err(StoreError::Unavailable)
    }

    /// `Ok(None)` when committed, `Ok(Some(codes))` when cancelled.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<Vec<String>>, StoreError> {
        transact(&self.client, items, &self.tables.orders).await.map_err(StoreError::Unavailable)
    }

    /// The key's order, unless absent or expired (DynamoDB deletes expired items late).
    async fn live_key(&self, key: &str) -> Result<Option<(String, String)>, StoreError> {
        let now = chrono::Utc::now().timestamp();
        Ok(self
            .get(&self.tables.idempotency, "key", key)
            .await?
            .filter(|i| get_n(i, "expires_at").is_none_or(|e| e > now))
            .and_then(|i| Some((get_s(&i, "request_hash")?, get_s(&i, "order_id")?))))
    }
}

fn order_item(o: &Order) -> Result<Item, StoreError> {
    let mut item = HashMap::from([
        ("id".to_string(), s(&o.id)),
        ("customer_id".to_string(), s(&o.customer_id)),
        ("items".to_string(), s(serde_json::to_string(&o.items).map_err(|e| StoreError::Failed(e.to_string()))?)),
        ("total_cents".to_string(), n(o.total.cents())),
        ("status".to_string(), s(o.status.as_str())),
        ("created_at".to_string(), s(to_text(o.created_at))),
        ("updated_at".to_string(), s(to_text(o.updated_at))),
    ]);
    if let Some(reason) = &o.cancellation_reason {
        item.insert("cancellation_reason".to_string(), s(reason));
    }
    Ok(item)
}

fn to_order(item: &Item) -> Option<Order> {
    Some(Order {
        id: get_s(item, "id")?,
        customer_id: get_s(item, "customer_id")?,
        items: serde_json::from_str(&get_s(item, "items")?).ok()?,
        total: salve_common::money::Money::from_cents(get_n(item, "total_cents")?),
        status: OrderStatus::parse(&get_s(item, "status")?)?,
        cancellation_reason: get_s(item, "cancellation_reason"),
        created_at: get_time(item, "created_at")?,
        updated_at: get_time(item, "updated_at")?,
    })
}

fn release(emit: &Emit, order_id: &str, table: &str) -> TransactWriteItem {
    let message = Envelope::new(emit.message_id.clone(), Message::ReleaseInventory { order_id: order_id.to_string(), timestamp: emit.now });
    outbox_put(table, &message, &emit.trace, emit.now)
}

#[async_trait]
impl OrderStore for DynamoOrderStore {
    async fn insert_customer(&self, c: &Customer) -> Result<(), StoreError> {
        let mut item = HashMap::from([
            ("id".to_string(), s(&c.id)),
            ("name".to_string(), s(&c.name)),
            ("email".to_string(), s(&c.email)),
            ("created_at".to_string(), s(to_text(c.created_at))),
        ]);
        if let Some(a) = &c.address {
            item.insert("address".to_string(), s(a));
        }
        self.client
            .put_item()
            .table_name(&self.tables.customers)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe("PutItem", &self.tables.customers, &e)))?;
        Ok(())
    }

    async fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError> {
        Ok(self.get(&self.tables.customers, "id", id).await?.and_then(|i| {
            Some(Customer {
                id: get_s(&i, "id")?,
                name: get_s(&i, "name")?,
                email: get_s(&i, "email")?,
                address: get_s(&i, "address"),
                created_at: get_time(&i, "created_at")?,
            })
        }))
    }

    async fn place_order(
        &self,
        order: &Order,
        reserve: &Envelope,
        trace: &TraceParent,
        key: Option<IdempotencyKey>,
    ) -> Result<PlaceOutcome, StoreError> {
        if let Some(k) = &key
            && let Some((hash, order_id)) = self.live_key(&k.key).await?
        {
            return Ok(if hash == k.request_hash { PlaceOutcome::Replayed { order_id } } else { PlaceOutcome::KeyReused });
        }
        let mut writes = vec![
            put(&self.tables.orders, order_item(order)?, Some("attribute_not_exists(id)"), None),
            outbox_put(&self.tables.outbox, reserve, trace, order.created_at),
        ];
        if let Some(k) = &key {
            let expires = (order.created_at + chrono::Duration::hours(IDEMPOTENCY_TTL_HOURS)).timestamp();
            let item = HashMap::from([
                ("key".to_string(), s(&k.key)),
                ("request_hash".to_string(), s(&k.request_hash)),
                ("order_id".to_string(), s(&order.id)),
                ("expires_at".to_string(), n(expires)),
            ]);
            // `key` is a reserved word in expressions, hence #k. An expired key may be reused.
            let key_put = Put::builder()
                .table_name(&self.tables.idempotency)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#k) OR expires_at < :now")
                .expression_attribute_names("#k", "key")
                .expression_attribute_values(":now", n(order.created_at.timestamp()))
                .build()
                .expect("table and item set");
            writes.push(TransactWriteItem::builder().put(key_put).build());
        }
        match self.transact(writes).await? {
            None => {
                self.outbox.wake_relay();
                Ok(PlaceOutcome::Placed)
            }
            // Lost a race on the same key: the winner's order answers.
            Some(_) => match (&key, key.as_ref().map(|k| self.live_key(&k.key))) {
                (Some(k), Some(found)) => match found.await? {
                    Some((hash, order_id)) if hash == k.request_hash => Ok(PlaceOutcome::Replayed { order_id }),
                    Some(_) => Ok(PlaceOutcome::KeyReused),
                    None => Err(StoreError::Unavailable("order write cancelled; retry".into())),
                },
                _ => Err(StoreError::Unavailable("order write cancelled; retry".into())),
            },
        }
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        Ok(self.get(&self.tables.orders, "id", id).await?.as_ref().and_then(to_order))
    }

    async fn list_orders(&self, q: &OrderQuery) -> Result<OrderPage, StoreError> {
        let mut key_condition = "customer_id = :c".to_string();
        let mut values: Item = HashMap::from([(":c".to_string(), s(&q.customer_id))]);
        match (q.start, q.end) {
            (Some(a), Some(b)) => {
                key_condition.push_str(" AND created_at BETWEEN :a AND :b");
                values.insert(":a".into(), s(to_text(a)));
                values.insert(":b".into(), s(to_text(b)));
            }
            (Some(a), None) => {
                key_condition.push_str(" AND created_at >= :a");
                values.insert(":a".into(), s(to_text(a)));
            }
            (None, Some(b)) => {
                key_condition.push_str(" AND created_at <= :b");
                values.insert(":b".into(), s(to_text(b)));
            }
            (None, None) => {}
        }
        let filter = q.status.map(|st| {
            values.insert(":st".into(), s(st.as_str()));
            "#st = :st"
        });
        let mut start = q.after.as_ref().map(|(at, id)| {
            HashMap::from([
                ("customer_id".to_string(), s(&q.customer_id)),
                ("created_at".to_string(), s(to_text(*at))),
                ("id".to_string(), s(id)),
            ])
        });
        let mut orders = Vec::new();
        // With a filter, a page may hold fewer matches than asked for: keep reading.
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.tables.orders)
                .index_name(BY_CUSTOMER)
                .key_condition_expression(&key_condition)
                .set_filter_expression(filter.map(str::to_string))
                .set_expression_attribute_names(filter.map(|_| HashMap::from([("#st".to_string(), "status".to_string())])))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit((q.limit + 1) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe("Query", &self.tables.orders, &e)))?;
            orders.extend(page.items.unwrap_or_default().iter().filter_map(to_order));
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() && orders.len() <= q.limit as usize => start = Some(k),
                _ => break,
            }
        }
        let more = orders.len() > q.limit as usize;
        orders.truncate(q.limit as usize);
        Ok(OrderPage { orders, more })
    }

    async fn delete_order(&self, id: &str, emit: Emit) -> Result<Deleted, StoreError> {
        let Some(order) = self.order(id).await? else { return Ok(Deleted::NotFound) };
        // Delete only the state we decided on; a concurrent status change cancels the write.
        let delete = Delete::builder()
            .table_name(&self.tables.orders)
            .key("id", s(id))
            .condition_expression("#st = :seen")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":seen", s(order.status.as_str()))
            .build()
            .expect("table and key set");
        let mut writes = vec![TransactWriteItem::builder().delete(delete).build()];
        let released_stock = order.must_release_on_delete();
        if released_stock {
            writes.push(release(&emit, id, &self.tables.outbox));
        }
        match self.transact(writes).await? {
            None => {
                if released_stock {
                    self.outbox.wake_relay();
                }
                Ok(Deleted::Deleted { released_stock })
            }
            Some(_) => Err(StoreError::Unavailable("the order changed while being deleted; retry".into())),
        }
    }

    async fn apply_reservation_result(
        &self,
        message_id: &str,
        order_id: &str,
        result: &ReservationResult,
        emit: Emit,
    ) -> Result<Applied, StoreError> {
        let order = self.order(order_id).await?;
        let mut writes = vec![processed_put(&self.tables.processed, message_id, emit.now)];
        let mut wake = false;
        match on_reservation_result(order.as_ref(), result) {
            Reaction::Settle { status, reason } => {
                let mut update = Update::builder()
                    .table_name(&self.tables.orders)
                    .key("id", s(order_id))
                    .update_expression("SET #st = :new, updated_at = :now")
                    .condition_expression("#st = :pending")
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":new", s(status.as_str()))
                    .expression_attribute_values(":pending", s(OrderStatus::PendingInventory.as_str()))
                    .expression_attribute_values(":now", s(to_text(emit.now)));
                if let Some(reason) = reason {
                    update = update
                        .update_expression("SET #st = :new, updated_at = :now, cancellation_reason = :why")
                        .expression_attribute_values(":why", s(reason));
                }
                writes.push(TransactWriteItem::builder().update(update.build().expect("table, key and expression set")).build());
            }
            Reaction::ReleaseOrphanedStock => {
                let absent = ConditionCheck::builder()
                    .table_name(&self.tables.orders)
                    .key("id", s(order_id))
                    .condition_expression("attribute_not_exists(id)")
                    .build()
                    .expect("table, key and condition set");
                writes.push(TransactWriteItem::builder().condition_check(absent).build());
                writes.push(release(&emit, order_id, &self.tables.outbox));
                wake = true;
            }
            Reaction::Nothing => {}
        }
        match self.transact(writes).await? {
            None => {
                if wake {
                    self.outbox.wake_relay();
                }
                Ok(Applied::Applied)
            }
            Some(codes) if codes.first().map(String::as_str) == Some(CONDITION_FAILED) => Ok(Applied::Duplicate),
            // The order changed between our read and the write: the message is redelivered.
            Some(_) => Err(StoreError::Unavailable("order changed concurrently; retry".into())),
        }
    }

    async fn count_by_status(&self) -> Result<HashMap<OrderStatus, i64>, StoreError> {
        let mut counts = HashMap::new();
        for status in OrderStatus::ALL {
            let mut total = 0;
            let mut start: Option<Item> = None;
            loop {
                let page = self
                    .client
                    .query()
                    .table_name(&self.tables.orders)
                    .index_name(BY_STATUS)
                    .key_condition_expression("#st = :st")
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":st", s(status.as_str()))
                    .select(Select::Count)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| StoreError::Unavailable(describe("Query", &self.tables.orders, &e)))?;
                total += i64::from(page.count);
                match page.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
            counts.insert(status, total);
        }
        Ok(counts)
    }
}
