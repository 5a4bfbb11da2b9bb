//! DynamoDB pieces both services use: attribute helpers, the outbox table (written inside the
//! business TransactWriteItems, read by the relay), processed-message markers with a TTL,
//! readiness, transaction cancellation reasons, and idempotent table creation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, Put,
    ScalarAttributeType, Tag, TimeToLiveSpecification, TransactWriteItem,
};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::errors::describe;
use crate::http::ReadinessCheck;
use crate::messages::Envelope;
use crate::messaging::outbox::{OutboxStats, OutboxStore, Pending, Retry, age};
use crate::messaging::sink::OutgoingMessage;
use crate::messaging::{PROCESSED_TTL_DAYS, StoreUnavailable};
use crate::time::{from_text, to_text};
use crate::trace_context::TraceParent;

pub type Item = HashMap<String, AttributeValue>;

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

/// The outbox's sparse index of undelivered messages by next attempt: only items carrying
/// [`PENDING`] are in it, so the relay's Query reads what is due and nothing else — not the
/// messages waiting out a backoff, however many there are.
pub const OUTBOX_DUE_INDEX: &str = "due";
/// The index's partition attribute; always [`PENDING_VALUE`] while a message is undelivered.
pub const PENDING: &str = "pending";
pub const PENDING_VALUE: &str = "1";

/// An outbox table: keyed by message id, with the [`OUTBOX_DUE_INDEX`].
pub fn outbox_spec(name: &str) -> TableSpec {
    TableSpec {
        name: name.to_string(),
        key: "message_id",
        indexes: vec![(OUTBOX_DUE_INDEX, PENDING, "next_attempt_at")],
        ttl_attribute: None,
    }
}

/// The outbox item for `envelope`, to go in the same transaction as the change causing it.
pub fn outbox_put(table: &str, envelope: &Envelope, trace: &TraceParent, now: DateTime<Utc>) -> TransactWriteItem {
    let now = to_text(now);
    let item = HashMap::from([
        ("message_id".to_string(), s(&envelope.message_id)),
        (PENDING.to_string(), s(PENDING_VALUE)),
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

/// The relay's view of an outbox table. Due messages are found by a Query of the sparse
/// [`OUTBOX_DUE_INDEX`] (next attempt <= now, earliest first, at most the batch size), so a
/// batch costs what it delivers, not what the table holds.
///
/// The index is eventually consistent: a message committed a moment ago may show a little
/// later (the relay's idle poll picks it up), and one just delivered may show once more
/// (delivered twice; the receiver's dedupe absorbs it).
pub struct DynamoOutbox {
    pub client: Client,
    pub table: String,
    /// Items DynamoDB evaluated for the relay's due queries (ScannedCount): what it is billed on.
    items_read: AtomicU64,
}

impl DynamoOutbox {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), items_read: AtomicU64::new(0) }
    }

    /// Items read so far to find due messages.
    pub fn items_read(&self) -> u64 {
        self.items_read.load(Ordering::Relaxed)
    }

    /// Counts a failed delivery on the message and sets its next attempt.
    async fn reschedule(&self, r: Retry) -> Result<(), StoreUnavailable> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("message_id", s(r.message_id))
            .update_expression("SET attempts = attempts + :one, next_attempt_at = :next, last_error = :err")
            .condition_expression("attribute_exists(message_id)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":next", s(to_text(r.next_attempt_at)))
            .expression_attribute_values(":err", s(r.error))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            // Gone: an earlier batch delivered it (a stale index entry brought it back).
            Err(e) if super::errors::code(&e) == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(StoreUnavailable(describe("UpdateItem", &self.table, &e))),
        }
    }
}

/// Items of the due index `stats` reads: one page (DynamoDB stops a page at 1 MB).
const STATS_SAMPLE: i32 = 1_000;

/// Failed deliveries rescheduled at once.
const RESCHEDULES_IN_FLIGHT: usize = 8;

fn to_pending(i: &Item) -> Option<Pending> {
    Some(Pending {
        message: OutgoingMessage {
            message_id: get_s(i, "message_id")?,
            message_type: get_s(i, "message_type").unwrap_or_default(),
            body: get_s(i, "body")?,
            traceparent: get_s(i, "traceparent"),
        },
        attempts: get_n(i, "attempts").unwrap_or(0),
    })
}

#[async_trait]
impl OutboxStore for DynamoOutbox {
    async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Pending>, StoreUnavailable> {
        // One page: `limit` caps the items DynamoDB evaluates, so this is the whole cost.
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OUTBOX_DUE_INDEX)
            .key_condition_expression("#pending = :pending AND next_attempt_at <= :now")
            .expression_attribute_names("#pending", PENDING)
            .expression_attribute_values(":pending", s(PENDING_VALUE))
            .expression_attribute_values(":now", s(to_text(now)))
            .limit(limit.clamp(1, i32::MAX as u32) as i32)
            .send()
            .await
            .map_err(|e| StoreUnavailable(describe("Query", &format!("{}/{OUTBOX_DUE_INDEX}", self.table), &e)))?;
        self.items_read.fetch_add(page.scanned_count.max(0) as u64, Ordering::Relaxed);
        Ok(page.items.unwrap_or_default().iter().filter_map(to_pending).collect())
    }

    /// Deletes what was delivered in BatchWriteItem calls (see [`super::batch_delete`]) and
    /// reschedules what was not, a few updates at a time.
    async fn settle(&self, delivered: Vec<String>, retries: Vec<Retry>) -> Result<(), StoreUnavailable> {
        super::batch_delete::delete_all(&self.client, &self.table, "message_id", delivered).await.map_err(StoreUnavailable)?;
        futures::stream::iter(retries).map(|r| self.reschedule(r)).buffer_unordered(RESCHEDULES_IN_FLIGHT).try_collect::<Vec<()>>().await?;
        Ok(())
    }

    /// One page of the due index, earliest next attempt first, creation times only: at most
    /// [`STATS_SAMPLE`] items, however deep the backlog (reading all of it cost every probe
    /// read units in proportion to the backlog, and a deep one outlasted a probe's timeout).
    /// `depth` is counted up to that many. The oldest age is the oldest in that page: never
    /// older than the truth, so a stuck outbox this reports is stuck. Messages that were never
    /// retried come in creation order there (their next attempt is their creation time), so a
    /// relay that stopped shows at once; one that keeps failing reschedules what it tries, and
    /// those come back into the page as they fall due again.
    async fn stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, StoreUnavailable> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OUTBOX_DUE_INDEX)
            .key_condition_expression("#pending = :pending")
            .expression_attribute_names("#pending", PENDING)
            .expression_attribute_values(":pending", s(PENDING_VALUE))
            .projection_expression("created_at")
            .limit(STATS_SAMPLE)
            .send()
            .await
            .map_err(|e| StoreUnavailable(describe("Query", &format!("{}/{OUTBOX_DUE_INDEX}", self.table), &e)))?;
        let items = page.items.unwrap_or_default();
        let oldest = items.iter().filter_map(|item| get_time(item, "created_at")).min();
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
    wait_active(client, &spec.name).await;
    if exists {
        add_missing_indexes(client, spec).await?;
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

async fn wait_active(client: &Client, table: &str) {
    for _ in 0..60 {
        let described = client.describe_table().table_name(table).send().await.ok().and_then(|d| d.table);
        let table_active = described.as_ref().and_then(|t| t.table_status.as_ref()).map(|s| s.as_str()) == Some("ACTIVE");
        let indexes_active = described
            .as_ref()
            .map(|t| t.global_secondary_indexes().iter().all(|i| i.index_status().map(|s| s.as_str()) == Some("ACTIVE")))
            .unwrap_or(false);
        if table_active && indexes_active {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A table created by an older release may lack an index the code now queries (the outbox's
/// [`OUTBOX_DUE_INDEX`]): create it, one at a time as DynamoDB requires, and for the outbox
/// put the undelivered messages written without [`PENDING`] into it.
async fn add_missing_indexes(client: &Client, spec: &TableSpec) -> Result<(), String> {
    let described = client.describe_table().table_name(&spec.name).send().await.map_err(|e| describe("DescribeTable", &spec.name, &e))?;
    let present: Vec<String> = described
        .table
        .map(|t| t.global_secondary_indexes().iter().filter_map(|i| i.index_name().map(str::to_string)).collect())
        .unwrap_or_default();
    for (index, hash, range) in &spec.indexes {
        if present.iter().any(|p| p == index) {
            continue;
        }
        let key =
            |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("name and type set");
        let create = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
            .index_name(*index)
            .key_schema(key(hash, KeyType::Hash))
            .key_schema(key(range, KeyType::Range))
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(|e| e.to_string())?;
        let mut update = client
            .update_table()
            .table_name(&spec.name)
            .global_secondary_index_updates(aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder().create(create).build());
        for a in [*hash, *range] {
            update = update.attribute_definitions(
                AttributeDefinition::builder().attribute_name(a).attribute_type(ScalarAttributeType::S).build().expect("name and type set"),
            );
        }
        update.send().await.map_err(|e| describe("UpdateTable", &spec.name, &e))?;
        wait_active(client, &spec.name).await;
        if *index == OUTBOX_DUE_INDEX {
            mark_pending(client, &spec.name).await?;
        }
    }
    Ok(())
}

/// Once, when the index is added: every outbox item is undelivered (delivered ones are
/// deleted), so each gets [`PENDING`].
async fn mark_pending(client: &Client, table: &str) -> Result<(), String> {
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .filter_expression("attribute_not_exists(#pending)")
            .expression_attribute_names("#pending", PENDING)
            .projection_expression("message_id")
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| describe("Scan", table, &e))?;
        for item in page.items.unwrap_or_default() {
            let Some(id) = item.get("message_id").cloned() else { continue };
            let marked = client
                .update_item()
                .table_name(table)
                .key("message_id", id)
                .update_expression("SET #pending = :pending")
                .condition_expression("attribute_exists(message_id)")
                .expression_attribute_names("#pending", PENDING)
                .expression_attribute_values(":pending", s(PENDING_VALUE))
                .send()
                .await;
            if let Err(e) = marked
                && super::errors::code(&e) != Some("ConditionalCheckFailedException")
            {
                return Err(describe("UpdateItem", table, &e));
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(()),
        }
    }
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

/// Runs one transaction: `Ok(None)` when it committed, `Ok(Some(codes))` when DynamoDB
/// cancelled it because a condition was false (one code per item, in order: "None" or
/// "ConditionalCheckFailed"), `Err` for anything else.
///
/// A cancellation is not always a false condition. DynamoDB also cancels a transaction when
/// another transaction holds one of its items (`TransactionConflict`) or a table is throttled
/// (`ThrottlingError`, `ProvisionedThroughputExceeded`), and the SDK does not retry those: a
/// `TransactionCanceledException` is a client error to it. Taken for a false condition, a
/// conflict on a hot SKU would cancel an order that had stock. So those are retried here with
/// a short jittered backoff, as the DynamoDB developer guide advises for conflicts ("Transaction
/// conflict handling"; reason codes in the TransactionCanceledException reference), and end in
/// `Err` (retry later) if they persist. Other codes (ValidationError,
/// ItemCollectionSizeLimitExceeded) are `Err` at once.
pub async fn transact(client: &Client, items: Vec<TransactWriteItem>, about: &str) -> Result<Option<Vec<String>>, String> {
    let mut attempt = 1;
    loop {
        let error = match client.transact_write_items().set_transact_items(Some(items.clone())).send().await {
            Ok(_) => return Ok(None),
            Err(e) => e,
        };
        let Some(codes) = cancellation_codes(&error) else { return Err(describe("TransactWriteItems", about, &error)) };
        match Cancellation::of(&codes) {
            Cancellation::ConditionsFailed => return Ok(Some(codes)),
            Cancellation::Contended if attempt < TRANSACT_ATTEMPTS => {
                tokio::time::sleep(contention_backoff(attempt)).await;
                attempt += 1;
            }
            Cancellation::Contended | Cancellation::Invalid => {
                return Err(format!("TransactWriteItems on {about} cancelled ({}) after {attempt} attempt(s)", codes.join(", ")));
            }
        }
    }
}

/// Tries of one transaction while it is cancelled for contention.
const TRANSACT_ATTEMPTS: u32 = 4;

/// Cancellation codes that mean "not now" rather than "not so".
const CONTENTION_CODES: [&str; 3] = ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"];

/// Why DynamoDB cancelled a transaction, read from its per-item codes.
#[derive(Debug, PartialEq, Eq)]
enum Cancellation {
    /// Only conditions were false: a business answer (duplicate, out of stock...).
    ConditionsFailed,
    /// Another transaction or the table's capacity was in the way: try again.
    Contended,
    /// The request itself cannot succeed as it is.
    Invalid,
}

impl Cancellation {
    fn of(codes: &[String]) -> Self {
        if codes.iter().any(|c| CONTENTION_CODES.contains(&c.as_str())) {
            // A condition checked during a conflict may read differently once it is over.
            Cancellation::Contended
        } else if codes.iter().all(|c| c == "None" || c == CONDITION_FAILED) && codes.iter().any(|c| c == CONDITION_FAILED) {
            Cancellation::ConditionsFailed
        } else {
            Cancellation::Invalid
        }
    }
}

/// 40 ms doubling per attempt, each wait drawn from its upper half, so contending writers
/// spread out instead of colliding again.
fn contention_backoff(attempt: u32) -> std::time::Duration {
    use rand::Rng;
    let ceiling = 20u64 << attempt.min(6);
    std::time::Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::types::Delete;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    use super::*;

    /// A labelled stand-in for DynamoDB's TransactWriteItems on its JSON 1.0 wire protocol
    /// (moto never reports a conflict): answers each call with the next scripted cancellation,
    /// then with success. Error shape as DynamoDB sends it: `__type` and `CancellationReasons`.
    async fn dynamodb_answering(cancellations: Vec<Vec<&'static str>>) -> (Client, Arc<Mutex<u32>>) {
        let script = Arc::new(Mutex::new(cancellations.into_iter().collect::<VecDeque<_>>()));
        let calls = Arc::new(Mutex::new(0u32));
        let (script_in, calls_in) = (script.clone(), calls.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap| {
            let (script, calls) = (script_in.clone(), calls_in.clone());
            async move {
                assert_eq!(headers.get("x-amz-target").and_then(|v| v.to_str().ok()), Some("DynamoDB_20120810.TransactWriteItems"));
                *calls.lock().unwrap() += 1;
                let Some(codes) = script.lock().unwrap().pop_front() else { return (StatusCode::OK, "{}".to_string()).into_response() };
                let reasons: Vec<serde_json::Value> = codes.iter().map(|c| serde_json::json!({"Code": c})).collect();
                let body = serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
                    "CancellationReasons": reasons,
                });
                crate::aws::stand_in::answer(StatusCode::BAD_REQUEST, body)
            }
        });
        (Client::new(&crate::aws::stand_in::serve(app).await), calls)
    }

    fn two_items() -> Vec<TransactWriteItem> {
        let delete = |id: &str| {
            let delete = Delete::builder().table_name("stock").key("sku", s(id)).build().unwrap();
            TransactWriteItem::builder().delete(delete).build()
        };
        vec![delete("HOT"), delete("COLD")]
    }

    #[tokio::test]
    async fn a_conflict_is_retried_not_taken_for_a_false_condition() {
        let (client, calls) = dynamodb_answering(vec![vec!["None", "TransactionConflict"], vec!["ThrottlingError", "None"]]).await;
        assert_eq!(transact(&client, two_items(), "stock").await, Ok(None));
        assert_eq!(*calls.lock().unwrap(), 3);
    }

    #[tokio::test]
    async fn a_lasting_conflict_is_an_error_to_retry_later() {
        let (client, calls) = dynamodb_answering(vec![vec!["TransactionConflict", "None"]; 10]).await;
        let error = transact(&client, two_items(), "stock").await.unwrap_err();
        assert!(error.contains("TransactionConflict") && error.contains("4 attempt"), "{error}");
        assert_eq!(*calls.lock().unwrap(), TRANSACT_ATTEMPTS);
    }

    #[tokio::test]
    async fn a_false_condition_is_answered_at_once_with_its_codes() {
        let (client, calls) = dynamodb_answering(vec![vec!["None", CONDITION_FAILED]]).await;
        assert_eq!(transact(&client, two_items(), "stock").await, Ok(Some(vec!["None".to_string(), CONDITION_FAILED.to_string()])));
        assert_eq!(*calls.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn an_invalid_transaction_is_an_error_without_retries() {
        let (client, calls) = dynamodb_answering(vec![vec!["ValidationError", "None"]]).await;
        assert!(transact(&client, two_items(), "stock").await.unwrap_err().contains("ValidationError"));
        assert_eq!(*calls.lock().unwrap(), 1);
    }
}
