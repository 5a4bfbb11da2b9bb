//! The SQS bus: publishing (the relay's sink), consuming with long polling, moving rejected
//! messages to the queue's DLQ, redriving the DLQ, and creating queues.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
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

#[async_trait]
impl MessageSink for SqsSink {
    async fn deliver(&self, message: &OutgoingMessage) -> Result<(), DeliveryError> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&message.body)
            .message_attributes(ATTR_MESSAGE_ID, string_attr(&message.message_id))
            .message_attributes(ATTR_TYPE, string_attr(&message.message_type));
        if let Some(tp) = &message.traceparent {
            send = send.message_attributes(ATTR_TRACEPARENT, string_attr(tp));
        }
        send.send().await.map_err(|e| DeliveryError::Unavailable(describe("SendMessage", &self.queue_url, &e)))?;
        Ok(())
    }
}

/// Long-polls a queue and hands each message to the inbox. Success deletes it; a rejection
/// moves it to the DLQ at once (with the reason as an attribute); a failure leaves it for
/// redelivery, and SQS moves it to the DLQ after maxReceiveCount receives. While a handler is
/// slow, the message's visibility timeout is extended so no other consumer takes it meanwhile.
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
        let heartbeat = self.keep_invisible(receipt.clone());
        let outcome = self.inbox.receive(&body, traceparent.as_deref()).await;
        heartbeat.abort();
        match outcome {
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
    }

    /// Extends the visibility timeout every half period while the handler runs.
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

/// Wires a service to the SQS bus: consumes its own queue into `inbox` (until `stop`) and
/// returns the sink that publishes to the other service's queue.
pub async fn start_bus(
    client: Client,
    own_queue: &str,
    peer_queue: &str,
    inbox: Arc<Inbox>,
    wait_seconds: i32,
    visibility_seconds: i32,
    stop: CancellationToken,
) -> Result<Arc<dyn MessageSink>, String> {
    let (own, peer_url) = resolve(&client, own_queue, peer_queue).await?;
    tracing::info!(queue = %own.queue_url, dlq = %own.dlq_url, peer = %peer_url, "SQS bus connected");
    SqsConsumer { client: client.clone(), queue_url: own.queue_url, dlq_url: own.dlq_url, inbox, wait_seconds, visibility_seconds }
        .spawn(stop);
    Ok(Arc::new(SqsSink { client, queue_url: peer_url }))
}
