//! Deleting many items of one table at once: what the outbox relay does with every batch it
//! delivered.
//!
//! One DeleteItem per item is one round trip each: the relay's 256 deliveries used to cost 256
//! of them one after another, about a second at DynamoDB's few milliseconds, which capped a
//! service at some 200 messages per second however fast SQS took them. BatchWriteItem takes up
//! to 25 deletes a request, and the requests run side by side.
//!
//! BatchWriteItem can succeed while leaving part of its work undone: items throttled or failed
//! inside DynamoDB come back as `UnprocessedItems`, and the API reference asks callers to send
//! exactly those again "using an exponential backoff algorithm"
//! (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html).
//! The same page sets the limits kept here: at most 25 requests per call, and no key twice in
//! one call (a ValidationException for the whole call).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use futures::{StreamExt, TryStreamExt};

use super::dynamo::s;
use super::errors::describe;

/// DynamoDB's limit of put and delete requests per BatchWriteItem call.
pub const PER_REQUEST: usize = 25;
/// Calls of one batch in flight at once.
const CONCURRENT_REQUESTS: usize = 4;
/// Sends of the same unprocessed deletes before giving up (waits of 25–50 ms doubling, about
/// 0.8 s in all).
pub const ATTEMPTS: u32 = 6;

/// Deletes the items whose string key `key` is one of `ids`. Ok once every delete is done;
/// Err when a call fails or deletes stay unprocessed after [`ATTEMPTS`] sends. Deletes are
/// idempotent, so a caller that retries later loses nothing.
pub async fn delete_all(client: &Client, table: &str, key: &str, mut ids: Vec<String>) -> Result<(), String> {
    ids.sort_unstable();
    ids.dedup();
    let chunks: Vec<Vec<String>> = ids.chunks(PER_REQUEST).map(<[String]>::to_vec).collect();
    futures::stream::iter(chunks)
        .map(|chunk| delete_chunk(client, table, key, chunk))
        .buffer_unordered(CONCURRENT_REQUESTS)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn delete_chunk(client: &Client, table: &str, key: &str, ids: Vec<String>) -> Result<(), String> {
    let mut pending: Vec<WriteRequest> = ids
        .into_iter()
        .map(|id| {
            let delete = DeleteRequest::builder().key(key, s(id)).build().expect("the key is set");
            WriteRequest::builder().delete_request(delete).build()
        })
        .collect();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let output = client
            .batch_write_item()
            .request_items(table, std::mem::take(&mut pending))
            .send()
            .await
            .map_err(|e| describe("BatchWriteItem", table, &e))?;
        pending = output.unprocessed_items.and_then(|mut left| left.remove(table)).unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
    }
    Err(format!("BatchWriteItem on {table}: deletes still unprocessed after {ATTEMPTS} attempts: {}", pending.len()))
}

/// 25 ms doubling per attempt, each wait drawn from its upper half.
fn backoff(attempt: u32) -> std::time::Duration {
    use rand::Rng;
    let ceiling = 25u64 << attempt.min(6);
    std::time::Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode};
    use serde_json::{Value, json};

    use super::*;

    /// What the stand-in saw: every call's keys, and the keys it deleted.
    #[derive(Default)]
    struct Seen {
        calls: Vec<Vec<String>>,
        deleted: BTreeSet<String>,
    }

    /// A labelled stand-in for DynamoDB's BatchWriteItem on its JSON 1.0 wire protocol (moto
    /// never leaves items unprocessed). It enforces the API's limits as DynamoDB does — more
    /// than 25 requests or a key twice fail the whole call with a ValidationException — and
    /// for its first `throttled_calls` calls processes only the first half of the deletes,
    /// returning the rest as `UnprocessedItems` in the request's own shape.
    async fn dynamodb_throttling(throttled_calls: usize) -> (Client, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let seen_in = seen.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let seen = seen_in.clone();
            async move {
                assert_eq!(headers.get("x-amz-target").and_then(|v| v.to_str().ok()), Some("DynamoDB_20120810.BatchWriteItem"));
                let request: Value = serde_json::from_str(&body).unwrap();
                let (table, writes) = request["RequestItems"].as_object().unwrap().iter().next().unwrap();
                let writes = writes.as_array().unwrap().clone();
                let keys: Vec<String> =
                    writes.iter().map(|w| w["DeleteRequest"]["Key"]["message_id"]["S"].as_str().unwrap().to_string()).collect();
                let invalid = |message: &str| {
                    let body = json!({"__type": "com.amazon.coral.validate#ValidationException", "message": message});
                    crate::aws::stand_in::answer(StatusCode::BAD_REQUEST, body)
                };
                if keys.len() > PER_REQUEST {
                    return invalid("Too many items requested for the BatchWriteItem call");
                }
                if keys.iter().collect::<BTreeSet<_>>().len() != keys.len() {
                    return invalid("Provided list of item keys contains duplicates");
                }
                let mut seen = seen.lock().unwrap();
                seen.calls.push(keys.clone());
                let processed = if seen.calls.len() <= throttled_calls { keys.len() / 2 } else { keys.len() };
                seen.deleted.extend(keys[..processed].iter().cloned());
                let unprocessed = &writes[processed..];
                let body = if unprocessed.is_empty() {
                    json!({"UnprocessedItems": {}})
                } else {
                    json!({"UnprocessedItems": {table.clone(): unprocessed}})
                };
                crate::aws::stand_in::answer(StatusCode::OK, body)
            }
        });
        (Client::new(&crate::aws::stand_in::serve(app).await), seen)
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m-{i:03}")).collect()
    }

    #[tokio::test]
    async fn every_delete_is_done_within_the_limits_even_when_some_come_back_unprocessed() {
        let (client, seen) = dynamodb_throttling(3).await;
        let mut wanted = ids(60);
        wanted.push("m-007".into()); // delivered twice (the index is eventually consistent)
        delete_all(&client, "oms-outbox", "message_id", wanted).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.deleted, ids(60).into_iter().collect::<BTreeSet<_>>(), "every message deleted");
        assert!(seen.calls.len() > 3, "the unprocessed deletes were sent again: {} calls", seen.calls.len());
    }

    #[tokio::test]
    async fn deletes_that_stay_unprocessed_are_an_error_after_the_last_attempt() {
        let (client, seen) = dynamodb_throttling(usize::MAX).await;
        let error = delete_all(&client, "oms-outbox", "message_id", ids(2)).await.unwrap_err();
        assert!(error.contains("deletes still unprocessed after 6 attempts: 1"), "{error}");
        assert_eq!(seen.lock().unwrap().calls.len(), ATTEMPTS as usize);
    }
}
