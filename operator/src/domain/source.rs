//! Where an incident came from and how bad it is: value types shared by the `Incident` CRD,
//! intake and the post-mortem record.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SourceKind {
    Manual,
    CloudWatchAlarm,
    Alertmanager,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentSource {
    pub kind: SourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// RFC 3339 time of the alarm's state change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_change_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Alertmanager alert name and fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The metric the alarm watches, when known (its datapoints around the alarm become evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<AlarmMetric>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlarmMetric {
    /// e.g. `AWS/ApplicationELB`, `ContainerInsights`.
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dimensions: std::collections::BTreeMap<String, String>,
    /// e.g. `Average`, `Sum`, `p99`; unset = the operator's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
}
