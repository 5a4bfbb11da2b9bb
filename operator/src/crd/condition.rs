//! Kubernetes-style conditions. Stored as a list-map keyed by `type`, so server-side apply
//! merges them entry by entry instead of replacing the whole list.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::domain::conditions::{condition_type, reason};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// e.g. `Ready`, `PolicyAllowed`, `Approved`, `Applied`, `Verified`.
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    /// One CamelCase word a machine can match on.
    pub reason: String,
    /// Human-readable explanation.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the last change of `status`.
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    pub fn new(type_: &str, status: ConditionStatus, reason: &str, message: impl Into<String>, now: &str) -> Self {
        Self {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            // Status is read by anyone who may `get` the object: the outbound gate.
            message: crate::domain::outbound::text(&message.into()),
            last_transition_time: now.to_string(),
            observed_generation: None,
        }
    }
}

/// Insert or replace the condition with the same `type`. The transition time only moves
/// when the status actually changes, as Kubernetes conventions require.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == new.type_) {
        if existing.status == new.status {
            new.last_transition_time = existing.last_transition_time.clone();
        }
        *existing = new;
    } else {
        conditions.push(new);
    }
}

/// Schema helper: marks a `Vec<Condition>` as a list-map keyed by `type`.
pub fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_kept_when_status_unchanged() {
        let mut c = vec![Condition::new("Ready", ConditionStatus::False, "A", "", "t1")];
        set_condition(&mut c, Condition::new("Ready", ConditionStatus::False, "B", "", "t2"));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, "t1");
        assert_eq!(c[0].reason, "B");
        set_condition(&mut c, Condition::new("Ready", ConditionStatus::True, "C", "", "t3"));
        assert_eq!(c[0].last_transition_time, "t3");
        set_condition(&mut c, Condition::new("Other", ConditionStatus::True, "C", "", "t4"));
        assert_eq!(c.len(), 2);
    }
}
