//! Alarm delivery for tests: SNS topics and SQS queues in moto (started by tests/run.sh), and
//! the CloudWatch alarm notification JSON as AWS documents it.

use aws_sdk_sns::Client as SnsClient;
use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

use super::moto::{aws, unique};

pub struct Queues {
    pub sqs: SqsClient,
    pub sns: SnsClient,
    pub topic_arn: String,
    pub url: String,
    pub dlq_url: String,
}

/// A topic, a queue subscribed to it (raw message delivery on or off) and a dead-letter queue.
pub async fn queues(raw_delivery: bool) -> Queues {
    let cfg = aws().await;
    let (sqs, sns) = (SqsClient::new(&cfg), SnsClient::new(&cfg));
    let name = unique("alarms");
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("url");
    let dlq_url = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.expect("create dlq").queue_url.expect("url");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue arn")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("arn");
    let topic_arn = sns.create_topic().name(format!("{name}-topic")).send().await.expect("topic").topic_arn.expect("topic arn");
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", if raw_delivery { "true" } else { "false" })
        .send()
        .await
        .expect("subscribe");
    Queues { sqs, sns, topic_arn, url, dlq_url }
}

/// The alarm JSON CloudWatch publishes to SNS (shape from the AWS documentation).
pub fn alarm(name: &str, state: &str, time: &str, dimensions: Value) -> String {
    json!({
        "AlarmName": name,
        "AlarmDescription": format!("{name} fired"),
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2026-11-21T10:00:00.000+0000",
        "NewStateValue": state,
        "NewStateReason": "Threshold Crossed: 1 datapoint [12.0 (21/11/26 19:55:00)] was greater than the threshold (5.0).",
        "StateChangeTime": time,
        "Region": "EU (Ireland)",
        "AlarmArn": format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"),
        "OldStateValue": if state == "ALARM" { "OK" } else { "ALARM" },
        "OKActions": [], "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:salve"], "InsufficientDataActions": [],
        "Trigger": {"MetricName": "HTTPCode_Target_5XX_Count", "Namespace": "AWS/ApplicationELB", "StatisticType": "Statistic",
            "Statistic": "SUM", "Unit": null, "Dimensions": dimensions, "Period": 60, "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanThreshold", "Threshold": 5.0, "TreatMissingData": "missing", "EvaluateLowSampleCountPercentile": ""}
    })
    .to_string()
}

pub async fn publish(q: &Queues, message: &str) {
    q.sns.publish().topic_arn(&q.topic_arn).message(message).send().await.expect("publish");
}
