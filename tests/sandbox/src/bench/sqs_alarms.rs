//! Alarm -> Incident through SQS, as CloudWatch delivers alarms: the alarm notification published
//! to an SNS topic, fanned out to two SQS queues (SNS envelope, as by default). The operator
//! consumes one; the baseline is a bare long-polling consumer on the other, so the transport's
//! own latency is measured in the same run, on the same messages.
//!
//! Only against a local emulator (`AWS_ENDPOINT_URL` set, e.g. moto from tests/moto.sh): the
//! benchmark creates topics and queues and never touches a real account.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher;
use operator::crd::Incident;
use operator::intake::identity::{ALARM_LABEL, alarm_key};
use salve_common::aws::errors::describe;
use serde_json::{Value, json};

use super::NS;

/// Alarm names the operator maps to the bench's `web` Deployment.
pub const ALARM_PREFIX: &str = "bench-sqs-";

pub struct AlarmQueues {
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    topic_arn: String,
    /// The operator's queue.
    pub operator_queue_url: String,
    baseline_queue_url: String,
}

/// Latencies (ms) from publishing an alarm to its arrival: a burst of 100, then 10/s.
#[derive(Default)]
pub struct Latencies {
    pub burst: Vec<f64>,
    pub steady: Vec<f64>,
}

/// The emulator's endpoint, when one is configured.
pub fn emulator() -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL").ok().filter(|u| !u.trim().is_empty())
}

/// A topic and two queues subscribed to it.
pub async fn create() -> Result<AlarmQueues, String> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let (sqs, sns) = (aws_sdk_sqs::Client::new(&config), aws_sdk_sns::Client::new(&config));
    let topic = format!("salve-bench-alarms-{}", std::process::id());
    let topic_arn = sns
        .create_topic()
        .name(&topic)
        .send()
        .await
        .map_err(|e| describe("CreateTopic", &topic, &e))?
        .topic_arn
        .ok_or("CreateTopic returned no ARN")?;
    let operator_queue_url = subscribed_queue(&sqs, &sns, &topic_arn, &format!("{topic}-operator")).await?;
    let baseline_queue_url = subscribed_queue(&sqs, &sns, &topic_arn, &format!("{topic}-baseline")).await?;
    Ok(AlarmQueues { sqs, sns, topic_arn, operator_queue_url, baseline_queue_url })
}

/// A new queue receiving the topic's notifications (SNS envelope, as by default); its URL.
async fn subscribed_queue(sqs: &aws_sdk_sqs::Client, sns: &aws_sdk_sns::Client, topic_arn: &str, name: &str) -> Result<String, String> {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| describe("CreateQueue", name, &e))?
        .queue_url
        .ok_or("CreateQueue returned no URL")?;
    let arn = salve_common::aws::sqs::queue_arn(sqs, &url).await?;
    sns.subscribe().topic_arn(topic_arn).protocol("sqs").endpoint(arn).send().await.map_err(|e| describe("Subscribe", topic_arn, &e))?;
    Ok(url)
}

/// The notification CloudWatch publishes to SNS when an alarm enters ALARM (documented shape;
/// the dimensions name the Deployment only through the alarm-name map).
fn alarm(name: &str) -> String {
    json!({
        "AlarmName": name, "AlarmDescription": "bench", "AWSAccountId": "123456789012",
        "NewStateValue": "ALARM", "NewStateReason": "Threshold Crossed", "OldStateValue": "OK",
        "StateChangeTime": operator::domain::time::now_rfc3339(), "Region": "EU (Ireland)",
        "AlarmArn": arn(name), "OKActions": [], "AlarmActions": [], "InsufficientDataActions": [],
        "Trigger": {"MetricName": "HTTPCode_Target_5XX_Count", "Namespace": "AWS/ApplicationELB", "Statistic": "SUM",
            "Dimensions": [], "Period": 60, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 5.0}
    })
    .to_string()
}

fn arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}")
}

/// The alarm's key in an SNS-enveloped message body.
fn key_of(body: &str) -> Option<String> {
    let envelope: Value = serde_json::from_str(body).ok()?;
    let alarm: Value = serde_json::from_str(envelope.get("Message")?.as_str()?).ok()?;
    Some(alarm_key(alarm.get("AlarmArn")?.as_str()?))
}

impl AlarmQueues {
    /// Publishes a burst of 100 alarms at once, then 50 at 10/s, and times each to its Incident
    /// (seen on a watch) and to its arrival at the bare consumer.
    pub async fn latency(&self, client: &kube::Client) -> (Latencies, Latencies) {
        let (tx, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<(&'static str, String, Instant)>();
        // Only Incidents raised from alarms carry the alarm label; the watch is listening before
        // the first alarm is published.
        let incidents = watcher(Api::<Incident>::namespaced(client.clone(), NS), watcher::Config::default().labels(ALARM_LABEL));
        let (listening, ready) = tokio::sync::oneshot::channel();
        let to_operator = tx.clone();
        let watch = tokio::spawn(async move {
            let mut incidents = std::pin::pin!(incidents);
            let mut listening = Some(listening);
            while let Some(Ok(event)) = incidents.next().await {
                match event {
                    watcher::Event::InitDone => {
                        if let Some(l) = listening.take() {
                            let _ = l.send(());
                        }
                    }
                    watcher::Event::Apply(inc) | watcher::Event::InitApply(inc) => {
                        if let Some(key) = inc.metadata.labels.as_ref().and_then(|l| l.get(ALARM_LABEL)) {
                            let _ = to_operator.send(("operator", key.clone(), Instant::now()));
                        }
                    }
                    _ => {}
                }
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(60), ready).await;
        let (sqs, url) = (self.sqs.clone(), self.baseline_queue_url.clone());
        let consumer = tokio::spawn(async move {
            loop {
                let Ok(got) = sqs.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(20).send().await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let at = Instant::now();
                let messages = got.messages.unwrap_or_default();
                for m in &messages {
                    if let Some(key) = m.body.as_deref().and_then(key_of) {
                        let _ = tx.send(("baseline", key, at));
                    }
                }
                // Deleted together, as the operator deletes a batch's messages concurrently.
                let _ = futures::future::join_all(messages.into_iter().filter_map(|m| m.receipt_handle).map(|receipt| {
                    let (sqs, url) = (sqs.clone(), url.clone());
                    async move { sqs.delete_message().queue_url(url).receipt_handle(receipt).send().await }
                }))
                .await;
            }
        });

        let mut published: HashMap<String, (Instant, bool)> = HashMap::new();
        let burst: Vec<String> = (0..100).map(|i| format!("{ALARM_PREFIX}burst-{i}")).collect();
        let sent = futures::future::join_all(burst.iter().map(|name| self.publish(name))).await;
        published.extend(sent.into_iter().flatten().map(|(key, at)| (key, (at, true))));
        for i in 0..50 {
            if let Some((key, at)) = self.publish(&format!("{ALARM_PREFIX}steady-{i}")).await {
                published.insert(key, (at, false));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let (mut operator, mut baseline) = (Latencies::default(), Latencies::default());
        let mut seen: std::collections::HashSet<(&'static str, String)> = Default::default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while seen.len() < 2 * published.len() {
            let Ok(Some((who, key, at))) = tokio::time::timeout_at(deadline, arrivals.recv()).await else { break };
            let Some((sent, in_burst)) = published.get(&key).copied() else { continue };
            if !seen.insert((who, key)) {
                continue;
            }
            let ms = at.saturating_duration_since(sent).as_secs_f64() * 1000.0;
            let into = if who == "operator" { &mut operator } else { &mut baseline };
            if in_burst { into.burst.push(ms) } else { into.steady.push(ms) }
        }
        watch.abort();
        consumer.abort();
        (operator, baseline)
    }

    /// The alarm's key and when its publishing started.
    async fn publish(&self, name: &str) -> Option<(String, Instant)> {
        let at = Instant::now();
        self.sns.publish().topic_arn(&self.topic_arn).message(alarm(name)).send().await.ok()?;
        Some((alarm_key(&arn(name)), at))
    }

    /// Removes the topic and the queues.
    pub async fn delete(self) {
        let _ = self.sns.delete_topic().topic_arn(&self.topic_arn).send().await;
        for url in [&self.operator_queue_url, &self.baseline_queue_url] {
            let _ = self.sqs.delete_queue().queue_url(url).send().await;
        }
    }
}
