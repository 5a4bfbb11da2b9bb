//! CloudWatch alarm state changes as they arrive on an SQS queue, in the three documented
//! shapes: an SNS notification envelope whose `Message` is the alarm JSON (raw message delivery
//! off), the alarm JSON itself (raw message delivery on), and an EventBridge
//! "CloudWatch Alarm State Change" event. All three become one `AlarmTransition`. Pure.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::crd::AlarmMetric;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmState {
    Alarm,
    Ok,
    InsufficientData,
}

impl AlarmState {
    fn parse(s: &str) -> Result<Self, ParseError> {
        match s {
            "ALARM" => Ok(Self::Alarm),
            "OK" => Ok(Self::Ok),
            "INSUFFICIENT_DATA" => Ok(Self::InsufficientData),
            other => Err(ParseError::UnknownState(other.to_string())),
        }
    }
}

/// One state change of one CloudWatch alarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmTransition {
    pub name: String,
    pub arn: Option<String>,
    /// Region code (`eu-west-1`), taken from the ARN when there is one: SNS notifications carry
    /// only the display name ("EU (Ireland)").
    pub region: Option<String>,
    /// RFC 3339.
    pub state_change_time: String,
    pub reason: String,
    pub description: Option<String>,
    pub state: AlarmState,
    /// Metric dimensions (name -> value) of the alarm's metric(s).
    pub dimensions: BTreeMap<String, String>,
    /// The alarm's (first) metric, when known: AWS evidence reads its datapoints.
    pub metric: Option<AlarmMetric>,
}

impl AlarmTransition {
    /// What identifies the alarm across its transitions: the ARN (unique across accounts and
    /// regions), else the name.
    pub fn identity(&self) -> &str {
        self.arn.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("not a CloudWatch alarm notification, raw alarm or EventBridge alarm state change ({0})")]
    UnknownShape(String),
    #[error("missing or invalid field {0}")]
    MissingField(&'static str),
    #[error("unknown alarm state {0:?}")]
    UnknownState(String),
    #[error("invalid time {0:?}")]
    BadTime(String),
}

/// Parses an SQS message body in any of the three shapes.
pub fn parse_sqs_body(body: &str) -> Result<AlarmTransition, ParseError> {
    let v: Value = serde_json::from_str(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    if v.get("Type").and_then(Value::as_str) == Some("Notification") {
        let message = v.get("Message").and_then(Value::as_str).ok_or(ParseError::MissingField("Message"))?;
        let inner: Value = serde_json::from_str(message).map_err(|e| ParseError::NotJson(format!("SNS Message: {e}")))?;
        return parse_alarm_notification(inner);
    }
    if v.get("detail-type").is_some() {
        return parse_eventbridge(v);
    }
    if v.get("AlarmName").is_some() {
        return parse_alarm_notification(v);
    }
    Err(ParseError::UnknownShape("no Type=Notification, detail-type or AlarmName".into()))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AlarmNotification {
    alarm_name: String,
    #[serde(default)]
    alarm_description: Option<String>,
    #[serde(default)]
    alarm_arn: Option<String>,
    #[serde(default)]
    region: Option<String>,
    new_state_value: String,
    #[serde(default)]
    new_state_reason: String,
    state_change_time: String,
    #[serde(default)]
    trigger: Option<Trigger>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Trigger {
    #[serde(default)]
    metric_name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    dimensions: Vec<Dimension>,
    /// `SUM`, `AVERAGE`, `SAMPLE_COUNT`, ... (upper case in notifications).
    #[serde(default)]
    statistic: Option<String>,
    #[serde(default)]
    extended_statistic: Option<String>,
}

/// SNS alarm notifications spell dimension keys in lower case.
#[derive(Deserialize)]
struct Dimension {
    name: String,
    value: String,
}

fn parse_alarm_notification(v: Value) -> Result<AlarmTransition, ParseError> {
    let n: AlarmNotification = serde_json::from_value(v).map_err(|e| ParseError::UnknownShape(format!("alarm notification: {e}")))?;
    let trigger = n.trigger.unwrap_or(Trigger {
        metric_name: None,
        namespace: None,
        dimensions: Vec::new(),
        statistic: None,
        extended_statistic: None,
    });
    let dimensions: BTreeMap<String, String> = trigger.dimensions.into_iter().map(|d| (d.name, d.value)).collect();
    let statistic = trigger.extended_statistic.or(trigger.statistic.as_deref().map(statistic_name));
    let region = n.alarm_arn.as_deref().and_then(region_of_arn).or(n.region);
    Ok(AlarmTransition {
        name: non_empty(n.alarm_name, "AlarmName")?,
        region,
        arn: n.alarm_arn,
        state_change_time: rfc3339(&n.state_change_time)?,
        reason: n.new_state_reason,
        description: n.alarm_description.filter(|d| !d.is_empty()),
        state: AlarmState::parse(&n.new_state_value)?,
        metric: alarm_metric(trigger.namespace, trigger.metric_name, &dimensions, statistic),
        dimensions,
    })
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    detail: EventDetail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventDetail {
    alarm_name: String,
    state: EventState,
    #[serde(default)]
    configuration: Option<EventConfiguration>,
}

#[derive(Deserialize)]
struct EventState {
    value: String,
    #[serde(default)]
    reason: String,
    timestamp: String,
}

#[derive(Deserialize, Default)]
struct EventConfiguration {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metrics: Vec<EventMetric>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventMetric {
    #[serde(default)]
    metric_stat: Option<MetricStat>,
}

#[derive(Deserialize)]
struct MetricStat {
    metric: Metric,
    #[serde(default)]
    stat: Option<String>,
}

#[derive(Deserialize)]
struct Metric {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

fn parse_eventbridge(v: Value) -> Result<AlarmTransition, ParseError> {
    let e: Event = serde_json::from_value(v).map_err(|e| ParseError::UnknownShape(format!("EventBridge event: {e}")))?;
    if e.source != "aws.cloudwatch" || e.detail_type != "CloudWatch Alarm State Change" {
        return Err(ParseError::UnknownShape(format!("EventBridge event {:?} from {:?}", e.detail_type, e.source)));
    }
    let arn = e.resources.into_iter().next();
    let config = e.detail.configuration.unwrap_or_default();
    // Metric-math alarms list several metrics; every dimension they share is a hint.
    let stats: Vec<MetricStat> = config.metrics.into_iter().filter_map(|m| m.metric_stat).collect();
    let metric =
        stats.first().and_then(|s| alarm_metric(s.metric.namespace.clone(), s.metric.name.clone(), &s.metric.dimensions, s.stat.clone()));
    let dimensions = stats.into_iter().flat_map(|s| s.metric.dimensions).collect();
    Ok(AlarmTransition {
        name: non_empty(e.detail.alarm_name, "detail.alarmName")?,
        region: arn.as_deref().and_then(region_of_arn).or(e.region),
        arn,
        state_change_time: rfc3339(&e.detail.state.timestamp)?,
        reason: e.detail.state.reason,
        description: config.description.filter(|d| !d.is_empty()),
        state: AlarmState::parse(&e.detail.state.value)?,
        dimensions,
        metric,
    })
}

fn non_empty(s: String, field: &'static str) -> Result<String, ParseError> {
    if s.trim().is_empty() { Err(ParseError::MissingField(field)) } else { Ok(s) }
}

fn alarm_metric(
    namespace: Option<String>,
    name: Option<String>,
    dimensions: &BTreeMap<String, String>,
    statistic: Option<String>,
) -> Option<AlarmMetric> {
    Some(AlarmMetric { namespace: namespace?, name: name?, dimensions: dimensions.clone(), statistic })
}

/// `SAMPLE_COUNT` (notification spelling) -> `SampleCount` (GetMetricData spelling).
fn statistic_name(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase()).unwrap_or_default()
        })
        .collect()
}

/// `arn:aws:cloudwatch:<region>:<account>:alarm:<name>` -> region.
fn region_of_arn(arn: &str) -> Option<String> {
    let region = arn.split(':').nth(3)?;
    (!region.is_empty()).then(|| region.to_string())
}

/// CloudWatch writes `2021-07-14T23:20:50.708+0000` (no colon in the offset); EventBridge's
/// envelope uses RFC 3339. Both become RFC 3339 in UTC, so equal instants give equal names.
pub fn rfc3339(s: &str) -> Result<String, ParseError> {
    use k8s_openapi::jiff::{Timestamp, fmt::strtime};
    let parsed = s.parse::<Timestamp>().or_else(|_| strtime::parse("%Y-%m-%dT%H:%M:%S%.f%z", s).and_then(|t| t.to_timestamp()));
    parsed.map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()).map_err(|_| ParseError::BadTime(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The alarm JSON CloudWatch publishes to SNS (AWS documentation's example, trimmed).
    pub fn alarm_json(state: &str) -> Value {
        json!({
            "AlarmName": "oms-5xx",
            "AlarmDescription": "OMS answers 5xx",
            "AWSAccountId": "123456789012",
            "AlarmConfigurationUpdatedTimestamp": "2026-11-21T10:00:00.000+0000",
            "NewStateValue": state,
            "NewStateReason": "Threshold Crossed: 1 datapoint [12.0 (21/11/26 19:55:00)] was greater than the threshold (5.0).",
            "StateChangeTime": "2026-11-21T19:56:10.708+0000",
            "Region": "EU (Ireland)",
            "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:oms-5xx",
            "OldStateValue": "OK",
            "OKActions": [], "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:salve"], "InsufficientDataActions": [],
            "Trigger": {"MetricName": "HTTPCode_Target_5XX_Count", "Namespace": "AWS/ApplicationELB", "StatisticType": "Statistic",
                "Statistic": "SUM", "Unit": null, "Dimensions": [{"value": "app/shop/123", "name": "LoadBalancer"}],
                "Period": 60, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 5.0,
                "TreatMissingData": "missing", "EvaluateLowSampleCountPercentile": ""}
        })
    }

    #[test]
    fn raw_alarm_notification() {
        let t = parse_sqs_body(&alarm_json("ALARM").to_string()).expect("parse");
        assert_eq!(t.name, "oms-5xx");
        assert_eq!(t.state, AlarmState::Alarm);
        assert_eq!(t.region.as_deref(), Some("eu-west-1"));
        assert_eq!(t.state_change_time, "2026-11-21T19:56:10.708Z");
        assert_eq!(t.description.as_deref(), Some("OMS answers 5xx"));
        assert_eq!(t.dimensions.get("LoadBalancer").map(String::as_str), Some("app/shop/123"));
        let m = t.metric.expect("metric");
        assert_eq!(
            (m.namespace.as_str(), m.name.as_str(), m.statistic.as_deref()),
            ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", Some("Sum"))
        );
        assert_eq!(m.dimensions.get("LoadBalancer").map(String::as_str), Some("app/shop/123"));
        assert!(t.reason.starts_with("Threshold Crossed"));
    }

    #[test]
    fn sns_envelope_is_unwrapped() {
        let envelope = json!({
            "Type": "Notification", "MessageId": "b3f4", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:salve",
            "Subject": "ALARM: \"oms-5xx\" in EU (Ireland)", "Message": alarm_json("OK").to_string(),
            "Timestamp": "2026-11-21T19:56:10.800Z", "SignatureVersion": "1", "Signature": "x", "SigningCertURL": "https://x", "UnsubscribeURL": "https://x"
        });
        let t = parse_sqs_body(&envelope.to_string()).expect("parse");
        assert_eq!(t.state, AlarmState::Ok);
        assert_eq!(t.identity(), "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:oms-5xx");
    }

    #[test]
    fn eventbridge_state_change() {
        let event = json!({
            "version": "0", "id": "c4c1", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
            "account": "123456789012", "time": "2026-11-21T19:56:10Z", "region": "eu-west-1",
            "resources": ["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:ims-latency"],
            "detail": {"alarmName": "ims-latency",
                "configuration": {"description": "IMS is slow", "metrics": [{"id": "m1", "metricStat": {"metric": {
                    "dimensions": {"Namespace": "shop", "Deployment": "ims"}, "name": "p99", "namespace": "Shop"}, "period": 60, "stat": "p99"},
                    "returnData": true}]},
                "previousState": {"reason": "ok", "timestamp": "2026-11-21T19:00:00.000+0000", "value": "OK"},
                "state": {"reason": "latency high", "timestamp": "2026-11-21T19:56:10.551+0000", "value": "INSUFFICIENT_DATA"}}
        });
        let t = parse_sqs_body(&event.to_string()).expect("parse");
        assert_eq!(t.name, "ims-latency");
        assert_eq!(t.state, AlarmState::InsufficientData);
        assert_eq!(t.description.as_deref(), Some("IMS is slow"));
        assert_eq!(t.dimensions.get("Deployment").map(String::as_str), Some("ims"));
        let m = t.metric.expect("metric");
        assert_eq!((m.namespace.as_str(), m.name.as_str(), m.statistic.as_deref()), ("Shop", "p99", Some("p99")));
        assert_eq!(t.state_change_time, "2026-11-21T19:56:10.551Z");
    }

    #[test]
    fn anything_else_is_a_typed_error() {
        assert!(matches!(parse_sqs_body("not json"), Err(ParseError::NotJson(_))));
        assert!(matches!(parse_sqs_body(r#"{"hello":"world"}"#), Err(ParseError::UnknownShape(_))));
        assert!(matches!(parse_sqs_body(r#"{"Type":"Notification","Message":"{oops"}"#), Err(ParseError::NotJson(_))));
        let other_event = json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {"alarmName": "x",
            "state": {"value": "ALARM", "timestamp": "2026-11-21T19:56:10Z"}}});
        assert!(matches!(parse_sqs_body(&other_event.to_string()), Err(ParseError::UnknownShape(_))));
        let mut bad_state = alarm_json("ALARM");
        bad_state["NewStateValue"] = json!("ON_FIRE");
        assert_eq!(parse_sqs_body(&bad_state.to_string()), Err(ParseError::UnknownState("ON_FIRE".into())));
        let mut bad_time = alarm_json("ALARM");
        bad_time["StateChangeTime"] = json!("yesterday");
        assert_eq!(parse_sqs_body(&bad_time.to_string()), Err(ParseError::BadTime("yesterday".into())));
    }
}
