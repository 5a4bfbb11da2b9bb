//! The SQS bus: publishing (the relay's sink), consuming with long polling, moving rejected
//! messages to the queue's DLQ, redriving the DLQ, and creating queues.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::errors::describe;
use crate::messaging::inbox::{Inbox, InboxError};
use crate::messaging::sink::{DeliveryError, MessageSink, OutgoingMessage};

pub const ATTR_MESSAGE_ID: &str = "message_id";
pub const ATTR_TYPE: &str = "type";
pub const ATTR_TRACEPARENT: &str = "traceparent";
pub const ATTR_TRACESTATE: &str = "tracestate";
pub const ATTR_REJECTION: &str = "rejection_reason";

fn string_attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data_type is set")
}

/// Publishes outbox messages to the other service's queue; `traceparent` travels as a message
/// attribute so the consumer continues the same trace.
pub struct SqsSink {
    pub client: Client,
    pub queue_url: String,
}

/// SendMessageBatch's limit of entries per call.
const SEND_BATCH_ENTRIES: usize = 10;
/// A call's whole payload is limited too (1 MiB); a batch is cut at this many bytes of bodies,
/// far below it, so attributes never tip it over. A bigger message goes alone.
const SEND_BATCH_BODY_BYTES: usize = 256 * 1024;

fn message_attributes(message: &OutgoingMessage) -> HashMap<String, MessageAttributeValue> {
    let mut attributes = HashMap::from([
        (ATTR_MESSAGE_ID.to_string(), string_attr(&message.message_id)),
        (ATTR_TYPE.to_string(), string_attr(&message.message_type)),
    ]);
    if let Some(tp) = &message.traceparent {
        attributes.insert(ATTR_TRACEPARENT.to_string(), string_attr(tp));
    }
    attributes
}

/// Consecutive runs of `messages` that fit one SendMessageBatch call.
fn send_batches(messages: &[&OutgoingMessage]) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, message) in messages.iter().enumerate() {
        let full = i - start == SEND_BATCH_ENTRIES || (i > start && bytes + message.body.len() > SEND_BATCH_BODY_BYTES);
        if full {
            batches.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += message.body.len();
    }
    if start < messages.len() {
        batches.push(start..messages.len());
    }
    batches
}

impl SqsSink {
    /// One SendMessageBatch call; a result per message. SQS answers each entry on its own: some
    /// may fail while the rest are queued, and only those are retried.
    async fn send_batch(&self, messages: &[&OutgoingMessage]) -> Vec<Result<(), DeliveryError>> {
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .set_message_attributes(Some(message_attributes(m)))
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let sent = self.client.send_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await;
        let output = match sent {
            Ok(output) => output,
            Err(e) => {
                let reason = describe("SendMessageBatch", &self.queue_url, &e);
                return messages.iter().map(|_| Err(DeliveryError::Unavailable(reason.clone()))).collect();
            }
        };
        let queued: std::collections::HashSet<&str> = output.successful().iter().map(|e| e.id()).collect();
        let failed: HashMap<&str, String> = output
            .failed()
            .iter()
            .map(|e| (e.id(), format!("SendMessageBatch on {}: {}: {}", self.queue_url, e.code(), e.message().unwrap_or("no message"))))
            .collect();
        (0..messages.len())
            .map(|i| {
                let id = i.to_string();
                if queued.contains(id.as_str()) {
                    return Ok(());
                }
                let reason = failed
                    .get(id.as_str())
                    .cloned()
                    .unwrap_or_else(|| format!("SendMessageBatch on {}: entry {id} not answered", self.queue_url));
                Err(DeliveryError::Unavailable(reason))
            })
            .collect()
    }
}

#[async_trait]
impl MessageSink for SqsSink {
    async fn deliver(&self, message: &OutgoingMessage) -> Result<(), DeliveryError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&message.body)
            .set_message_attributes(Some(message_attributes(message)))
            .send()
            .await
            .map_err(|e| DeliveryError::Unavailable(describe("SendMessage", &self.queue_url, &e)))?;
        Ok(())
    }

    /// Ten messages a call (SQS's batch actions; a tenth of the requests, which are what SQS
    /// bills), the calls side by side.
    async fn deliver_all(&self, messages: &[&OutgoingMessage]) -> Vec<Result<(), DeliveryError>> {
        let batches = send_batches(messages);
        let answers = futures::future::join_all(batches.into_iter().map(|range| self.send_batch(&messages[range]))).await;
        answers.into_iter().flatten().collect()
    }
}

/// Long-polls a queue and hands each message to the inbox. Success deletes it; a rejection
/// moves it to the DLQ at once (with the reason as an attribute); a failure leaves it for
/// redelivery, and SQS moves it to the DLQ after maxReceiveCount receives. Until a message is
/// deleted or let go, its visibility timeout is extended so no other consumer takes it meanwhile.
#[derive(Clone)]
pub struct SqsConsumer {
    pub client: Client,
    pub queue_url: String,
    pub dlq_url: String,
    pub inbox: Arc<Inbox>,
    pub wait_seconds: i32,
    pub visibility_seconds: i32,
}

impl SqsConsumer {
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move { self.run(stop).await })
    }

    async fn run(self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let received = tokio::select! {
                r = self.client.receive_message()
                    .queue_url(&self.queue_url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(self.wait_seconds)
                    .visibility_timeout(self.visibility_seconds)
                    .message_attribute_names("All")
                    .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                    .send() => r,
                _ = stop.cancelled() => break,
            };
            match received {
                Ok(output) => {
                    let messages = output.messages.unwrap_or_default();
                    futures::future::join_all(messages.into_iter().map(|m| self.handle(m))).await;
                }
                Err(e) => {
                    describe("ReceiveMessage", &self.queue_url, &e);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.cancelled() => break,
                    }
                }
            }
        }
        tracing::info!(queue = %self.queue_url, "SQS consumer stopped");
    }

    async fn handle(&self, message: Message) {
        let Some(receipt) = message.receipt_handle.clone() else { return };
        let body = message.body.clone().unwrap_or_default();
        let attrs = message.message_attributes.clone().unwrap_or_default();
        let traceparent = attrs.get(ATTR_TRACEPARENT).and_then(|a| a.string_value.clone());
        // Kept invisible until it is deleted, not only while the inbox works on it: if it
        // showed again between a rejection and its delete, another receiver (another loop,
        // another replica) would take it and park it in the DLQ a second time.
        let heartbeat = self.keep_invisible(receipt.clone());
        match self.inbox.receive(&body, traceparent.as_deref()).await {
            Ok(_) => self.delete(&receipt).await,
            Err(InboxError::Rejected(reason)) => {
                if self.park_in_dlq(&body, &attrs, &reason).await {
                    self.delete(&receipt).await;
                }
            }
            Err(InboxError::Unavailable(reason)) => {
                tracing::warn!(queue = %self.queue_url, %reason, "message not processed; SQS will redeliver it");
            }
        }
        heartbeat.abort();
    }

    /// Extends the visibility timeout every half period until the returned task is aborted.
    fn keep_invisible(&self, receipt: String) -> JoinHandle<()> {
        let (client, queue, period) = (self.client.clone(), self.queue_url.clone(), self.visibility_seconds.max(2));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs((period / 2) as u64)).await;
                let extended =
                    client.change_message_visibility().queue_url(&queue).receipt_handle(&receipt).visibility_timeout(period).send().await;
                if let Err(e) = extended {
                    describe("ChangeMessageVisibility", &queue, &e);
                }
            }
        })
    }

    async fn park_in_dlq(&self, body: &str, attrs: &HashMap<String, MessageAttributeValue>, reason: &str) -> bool {
        let mut send = self.client.send_message().queue_url(&self.dlq_url).message_body(body).set_message_attributes(Some(attrs.clone()));
        send = send.message_attributes(ATTR_REJECTION, string_attr(&reason.chars().take(1000).collect::<String>()));
        match send.send().await {
            Ok(_) => true,
            Err(e) => {
                describe("SendMessage", &self.dlq_url, &e);
                false
            }
        }
    }

    async fn delete(&self, receipt: &str) {
        if let Err(e) = self.client.delete_message().queue_url(&self.queue_url).receipt_handle(receipt).send().await {
            describe("DeleteMessage", &self.queue_url, &e);
        }
    }
}

/// Moves the messages that are in the DLQ when it starts back to its queue (attributes kept,
/// the rejection reason dropped). Returns how many moved. It stops at the starting count, so
/// a message that is rejected again while the redrive runs is not moved in a loop.
pub async fn redrive(client: &Client, dlq_url: &str, queue_url: &str) -> Result<usize, String> {
    let waiting = client
        .get_queue_attributes()
        .queue_url(dlq_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| describe("GetQueueAttributes", dlq_url, &e))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages).and_then(|n| n.parse::<usize>().ok()))
        .unwrap_or(0);
    let mut moved = 0;
    while moved < waiting {
        let output = client
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages((waiting - moved).min(10) as i32)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| describe("ReceiveMessage", dlq_url, &e))?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        for m in messages {
            let mut attrs = m.message_attributes.unwrap_or_default();
            attrs.remove(ATTR_REJECTION);
            client
                .send_message()
                .queue_url(queue_url)
                .message_body(m.body.unwrap_or_default())
                .set_message_attributes(Some(attrs))
                .send()
                .await
                .map_err(|e| describe("SendMessage", queue_url, &e))?;
            if let Some(receipt) = m.receipt_handle {
                client
                    .delete_message()
                    .queue_url(dlq_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(|e| describe("DeleteMessage", dlq_url, &e))?;
            }
            moved += 1;
        }
    }
    Ok(moved)
}

pub struct Queues {
    pub queue_url: String,
    pub dlq_url: String,
}

/// A queue's ARN (what a redrive policy or an SNS subscription names it by).
pub async fn queue_arn(client: &Client, queue_url: &str) -> Result<String, String> {
    client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| describe("GetQueueAttributes", queue_url, &e))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| format!("GetQueueAttributes on {queue_url} returned no QueueArn"))
}

/// Creates `<name>-dlq` and `<name>` (redriving to it after `max_receive_count` receives),
/// tagged; idempotent.
pub async fn ensure_queue(client: &Client, name: &str, max_receive_count: u32, tags: &[(String, String)]) -> Result<Queues, String> {
    let tag_map: HashMap<String, String> = tags.iter().cloned().collect();
    let dlq_name = format!("{name}-dlq");
    let dlq_url = client
        .create_queue()
        .queue_name(&dlq_name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .set_tags(Some(tag_map.clone()))
        .send()
        .await
        .map_err(|e| describe("CreateQueue", &dlq_name, &e))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = queue_arn(client, &dlq_url).await?;
    let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count.to_string()}).to_string();
    let queue_url = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .set_tags(Some(tag_map))
        .send()
        .await
        .map_err(|e| describe("CreateQueue", name, &e))?
        .queue_url
        .unwrap_or_default();
    Ok(Queues { queue_url, dlq_url })
}

/// URL of an existing queue by name.
pub async fn queue_url(client: &Client, name: &str) -> Result<String, String> {
    client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| describe("GetQueueUrl", name, &e))?
        .queue_url
        .ok_or_else(|| format!("no URL for queue {name}"))
}

/// This service's queue and DLQ, and the other service's queue, by name (as `init-aws` made them).
pub async fn resolve(client: &Client, own_queue: &str, peer_queue: &str) -> Result<(Queues, String), String> {
    let own = Queues { queue_url: queue_url(client, own_queue).await?, dlq_url: queue_url(client, &format!("{own_queue}-dlq")).await? };
    Ok((own, queue_url(client, peer_queue).await?))
}

/// How a service consumes its queue.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerSettings {
    pub wait_seconds: i32,
    pub visibility_seconds: i32,
    /// Receive loops side by side. SQS returns at most 10 messages per ReceiveMessage, and a
    /// loop handles them before asking again, so one loop moves 10 messages per round of
    /// calls (receive, handle, delete: tens of milliseconds on AWS); AWS's advice for more
    /// throughput is more receivers
    /// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-throughput-horizontal-scaling-and-batching.html).
    pub pollers: usize,
}

/// Wires a service to the SQS bus: consumes its own queue into `inbox` (until `stop`) and
/// returns the sink that publishes to the other service's queue.
pub async fn start_bus(
    client: Client,
    own_queue: &str,
    peer_queue: &str,
    inbox: Arc<Inbox>,
    settings: ConsumerSettings,
    stop: CancellationToken,
) -> Result<Arc<dyn MessageSink>, String> {
    let (own, peer_url) = resolve(&client, own_queue, peer_queue).await?;
    tracing::info!(queue = %own.queue_url, dlq = %own.dlq_url, peer = %peer_url, "SQS bus connected");
    let ConsumerSettings { wait_seconds, visibility_seconds, pollers } = settings;
    let consumer =
        SqsConsumer { client: client.clone(), queue_url: own.queue_url, dlq_url: own.dlq_url, inbox, wait_seconds, visibility_seconds };
    for _ in 0..pollers.max(1) {
        consumer.clone().spawn(stop.clone());
    }
    Ok(Arc::new(SqsSink { client, queue_url: peer_url }))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::http::{HeaderMap, StatusCode};
    use serde_json::{Value, json};

    use super::*;

    fn message(i: usize, body_bytes: usize) -> OutgoingMessage {
        OutgoingMessage {
            message_id: format!("m-{i}"),
            message_type: "ReserveInventory".into(),
            body: "x".repeat(body_bytes),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        }
    }

    #[test]
    fn batches_hold_at_most_ten_messages_and_a_large_message_goes_alone() {
        let small: Vec<OutgoingMessage> = (0..23).map(|i| message(i, 100)).collect();
        assert_eq!(send_batches(&small.iter().collect::<Vec<_>>()), vec![0..10, 10..20, 20..23]);
        let mixed = [message(0, 100), message(1, SEND_BATCH_BODY_BYTES), message(2, 100), message(3, 100)];
        assert_eq!(send_batches(&mixed.iter().collect::<Vec<_>>()), vec![0..1, 1..2, 2..4]);
        assert!(send_batches(&[]).is_empty());
    }

    /// A labelled stand-in for SQS's SendMessageBatch on its JSON 1.0 wire protocol: it refuses
    /// a call of more than ten entries as SQS does (TooManyEntriesInBatchRequest) and answers the
    /// entry whose body is "fail" in `Failed` (SQS reports entries one by one: the call succeeds
    /// while some of its messages were not queued). It keeps the bodies it queued.
    async fn sqs_failing_some_entries() -> (Client, Arc<Mutex<Vec<String>>>) {
        let queued = Arc::new(Mutex::new(Vec::new()));
        let queued_in = queued.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let queued = queued_in.clone();
            async move {
                assert_eq!(headers.get("x-amz-target").and_then(|v| v.to_str().ok()), Some("AmazonSQS.SendMessageBatch"));
                let request: Value = serde_json::from_str(&body).unwrap();
                let entries = request["Entries"].as_array().unwrap();
                if entries.len() > SEND_BATCH_ENTRIES {
                    let error = json!({"__type": "com.amazonaws.sqs#TooManyEntriesInBatchRequest", "message": "Maximum number of entries per request are 10."});
                    return crate::aws::stand_in::answer(StatusCode::BAD_REQUEST, error);
                }
                let (mut successful, mut failed) = (Vec::new(), Vec::new());
                for entry in entries {
                    let (id, text) = (entry["Id"].as_str().unwrap(), entry["MessageBody"].as_str().unwrap());
                    assert!(entry["MessageAttributes"]["traceparent"]["StringValue"].is_string(), "the trace travels with the message");
                    if text == "fail" {
                        failed.push(json!({"Id": id, "SenderFault": false, "Code": "InternalError", "Message": "try again"}));
                    } else {
                        queued.lock().unwrap().push(text.to_string());
                        successful.push(json!({"Id": id, "MessageId": format!("sqs-{id}"), "MD5OfMessageBody": "0"}));
                    }
                }
                let answer = json!({"Successful": successful, "Failed": failed});
                crate::aws::stand_in::answer(StatusCode::OK, answer)
            }
        });
        (Client::new(&crate::aws::stand_in::serve(app).await), queued)
    }

    #[tokio::test]
    async fn only_the_entries_sqs_did_not_queue_are_failed_deliveries() {
        let (client, queued) = sqs_failing_some_entries().await;
        let sink = SqsSink { client, queue_url: "http://sqs.local/000000000000/ims-inbox".into() };
        let mut messages: Vec<OutgoingMessage> = (0..25).map(|i| OutgoingMessage { body: format!("order-{i}"), ..message(i, 0) }).collect();
        messages[13].body = "fail".into();
        let results = sink.deliver_all(&messages.iter().collect::<Vec<_>>()).await;
        assert_eq!(results.len(), 25);
        let failed: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_err()).map(|(i, _)| i).collect();
        assert_eq!(failed, vec![13], "the failed entry, and only it, is retried");
        let reason = results[13].as_ref().unwrap_err().to_string();
        assert!(reason.contains("InternalError"), "{reason}");
        let mut got = queued.lock().unwrap().clone();
        got.sort();
        let mut wanted: Vec<String> = (0..25).filter(|i| *i != 13).map(|i| format!("order-{i}")).collect();
        wanted.sort();
        assert_eq!(got, wanted);
    }
}
