//! DynamoDB pieces both services use: attribute helpers, the outbox table (written inside the
//! business TransactWriteItems, read by the relay), processed-message markers with a TTL,
//! readiness, transaction cancellation reasons, and idempotent table creation.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, Put,
    ScalarAttributeType, Tag, TimeToLiveSpecification, TransactWriteItem,
};
use chrono::{DateTime, Utc};

use super::errors::describe;
use crate::http::ReadinessCheck;
use crate::messages::Envelope;
use crate::messaging::StoreUnavailable;
use crate::messaging::outbox::{OutboxStats, OutboxStore, Pending, Retry, age};
use crate::messaging::sink::OutgoingMessage;
use crate::time::{from_text, to_text};
use crate::trace_context::TraceParent;

pub type Item = HashMap<String, AttributeValue>;

/// How long a processed-message marker is kept (its TTL): far longer than any redelivery.
pub const PROCESSED_TTL_DAYS: i64 = 7;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn get_s(item: &Item, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

pub fn get_n(item: &Item, key: &str) -> Option<i64> {
    item.get(key).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

pub fn get_time(item: &Item, key: &str) -> Option<DateTime<Utc>> {
    get_s(item, key).and_then(|t| from_text(&t).ok())
}

/// A Put for a transaction, optionally with a condition and its values.
pub fn put(table: &str, item: Item, condition: Option<&str>, values: Option<Item>) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_string))
        .set_expression_attribute_values(values)
        .build()
        .expect("table and item are set");
    TransactWriteItem::builder().put(put).build()
}

/// The outbox item for `envelope`, to go in the same transaction as the change causing it.
pub fn outbox_put(table: &str, envelope: &Envelope, trace: &TraceParent, now: DateTime<Utc>) -> TransactWriteItem {
    let now = to_text(now);
    let item = HashMap::from([
        ("message_id".to_string(), s(&envelope.message_id)),
        ("message_type".to_string(), s(envelope.message.kind())),
        ("body".to_string(), s(envelope.to_json())),
        ("traceparent".to_string(), s(trace.child().to_string())),
        ("created_at".to_string(), s(&now)),
        ("next_attempt_at".to_string(), s(&now)),
        ("attempts".to_string(), n(0)),
    ]);
    put(table, item, Some("attribute_not_exists(message_id)"), None)
}

/// The dedupe marker for an incoming message; the transaction fails on it when the message
/// was processed before. Expired markers may linger until DynamoDB deletes them; treating
/// them as "seen" is the safe reading.
pub fn processed_put(table: &str, message_id: &str, now: DateTime<Utc>) -> TransactWriteItem {
    let expires = (now + chrono::Duration::days(PROCESSED_TTL_DAYS)).timestamp();
    let item = HashMap::from([
        ("message_id".to_string(), s(message_id)),
        ("processed_at".to_string(), s(to_text(now))),
        ("expires_at".to_string(), n(expires)),
    ]);
    put(table, item, Some("attribute_not_exists(message_id)"), None)
}

/// Per-item cancellation codes of a cancelled transaction ("None", "ConditionalCheckFailed",
/// ...), in the order the items were sent; `None` when it failed for another reason.
pub fn cancellation_codes(error: &SdkError<TransactWriteItemsError>) -> Option<Vec<String>> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            Some(e.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_string()).collect())
        }
        _ => None,
    }
}

pub const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// The relay's view of an outbox table. The table stays small (items leave once delivered),
/// so a consistent Scan is the simple, correct way to find due messages.
pub struct DynamoOutbox {
    pub client: Client,
    pub table: String,
}

impl DynamoOutbox {
    async fn scan_all(&self) -> Result<Vec<Item>, StoreUnavailable> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreUnavailable(describe("Scan", &self.table, &e)))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

#[async_trait]
impl OutboxStore for DynamoOutbox {
    async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Pending>, StoreUnavailable> {
        let now = to_text(now);
        let mut due: Vec<(String, Pending)> = self
            .scan_all()
            .await?
            .into_iter()
            .filter(|i| get_s(i, "next_attempt_at").is_some_and(|t| t <= now))
            .filter_map(|i| {
                Some((
                    get_s(&i, "created_at")?,
                    Pending {
                        message: OutgoingMessage {
                            message_id: get_s(&i, "message_id")?,
                            message_type: get_s(&i, "message_type").unwrap_or_default(),
                            body: get_s(&i, "body")?,
                            traceparent: get_s(&i, "traceparent"),
                        },
                        attempts: get_n(&i, "attempts").unwrap_or(0),
                    },
                ))
            })
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(due.into_iter().take(limit as usize).map(|(_, p)| p).collect())
    }

    async fn settle(&self, delivered: Vec<String>, retries: Vec<Retry>) -> Result<(), StoreUnavailable> {
        for id in delivered {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("message_id", s(id))
                .send()
                .await
                .map_err(|e| StoreUnavailable(describe("DeleteItem", &self.table, &e)))?;
        }
        for r in retries {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("message_id", s(r.message_id))
                .update_expression("SET attempts = attempts + :one, next_attempt_at = :next, last_error = :err")
                .condition_expression("attribute_exists(message_id)")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":next", s(to_text(r.next_attempt_at)))
                .expression_attribute_values(":err", s(r.error))
                .send()
                .await
                .map_err(|e| StoreUnavailable(describe("UpdateItem", &self.table, &e)))?;
        }
        Ok(())
    }

    async fn stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, StoreUnavailable> {
        let items = self.scan_all().await?;
        let oldest = items.iter().filter_map(|i| get_time(i, "created_at")).min();
        Ok(OutboxStats { depth: items.len() as i64, oldest_age_seconds: oldest.map(|t| age(now, t)).unwrap_or(0.0) })
    }
}

/// Readiness: the service's main table answers.
pub struct TableReadiness {
    pub client: Client,
    pub table: String,
}

#[async_trait]
impl ReadinessCheck for TableReadiness {
    async fn ready(&self) -> Result<(), String> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe("DescribeTable", &self.table, &e))
    }
}

/// A table `init-aws` creates: string hash key, optional GSIs (hash, range; all attributes
/// projected) and an optional TTL attribute.
pub struct TableSpec {
    pub name: String,
    pub key: &'static str,
    pub indexes: Vec<(&'static str, &'static str, &'static str)>,
    pub ttl_attribute: Option<&'static str>,
}

/// Creates the table if it does not exist (on-demand billing), waits until it is active, and
/// turns TTL on. Safe to run again.
pub async fn ensure_table(client: &Client, spec: &TableSpec, tags: &[(String, String)]) -> Result<(), String> {
    let exists = client.describe_table().table_name(&spec.name).send().await.is_ok();
    if !exists {
        let mut attributes = vec![spec.key];
        for (_, hash, range) in &spec.indexes {
            attributes.extend([*hash, *range]);
        }
        attributes.sort_unstable();
        attributes.dedup();
        let key =
            |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("name and type set");
        let mut create = client
            .create_table()
            .table_name(&spec.name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(spec.key, KeyType::Hash))
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build().expect("key and value set")).collect()));
        for a in attributes {
            create = create.attribute_definitions(
                AttributeDefinition::builder().attribute_name(a).attribute_type(ScalarAttributeType::S).build().expect("name and type set"),
            );
        }
        for (index, hash, range) in &spec.indexes {
            create = create.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(*index)
                    .key_schema(key(hash, KeyType::Hash))
                    .key_schema(key(range, KeyType::Range))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .expect("index fields set"),
            );
        }
        if let Err(e) = create.send().await
            && super::errors::code(&e) != Some("ResourceInUseException")
        {
            return Err(describe("CreateTable", &spec.name, &e));
        }
    }
    for _ in 0..60 {
        let status = client.describe_table().table_name(&spec.name).send().await.ok().and_then(|d| d.table).and_then(|t| t.table_status);
        if status.as_ref().map(|s| s.as_str()) == Some("ACTIVE") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    if let Some(attribute) = spec.ttl_attribute {
        let spec_ttl = TimeToLiveSpecification::builder().attribute_name(attribute).enabled(true).build().expect("fields set");
        if let Err(e) = client.update_time_to_live().table_name(&spec.name).time_to_live_specification(spec_ttl).send().await {
            // Already enabled is fine; anything else is worth knowing.
            if !e.to_string().contains("already enabled") && super::errors::code(&e) != Some("ValidationException") {
                return Err(describe("UpdateTimeToLive", &spec.name, &e));
            }
        }
    }
    Ok(())
}

/// Consistent read of one item by its string key.
pub async fn get_item(client: &Client, table: &str, key: &str, value: &str) -> Result<Option<Item>, String> {
    let out = client
        .get_item()
        .table_name(table)
        .key(key, s(value))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| describe("GetItem", table, &e))?;
    Ok(out.item)
}

/// Runs one transaction: `Ok(None)` when it committed, `Ok(Some(codes))` when it was
/// cancelled (one code per item, in order), `Err` for anything else.
pub async fn transact(client: &Client, items: Vec<TransactWriteItem>, about: &str) -> Result<Option<Vec<String>>, String> {
    match client.transact_write_items().set_transact_items(Some(items)).send().await {
        Ok(_) => Ok(None),
        Err(e) => match cancellation_codes(&e) {
            Some(codes) => Ok(Some(codes)),
            None => Err(describe("TransactWriteItems", about, &e)),
        },
    }
}
