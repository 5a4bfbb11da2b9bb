//! The message contract between OMS and IMS (JSON, snake_case, `type` as the tag).
//!
//! Every message travels in an [`Envelope`] that adds a `message_id`: consumers dedupe on it, so
//! at-least-once delivery has exactly-once effects.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    pub sku: String,
    /// Signed on purpose: a bad quantity in a message is a business failure with a reason,
    /// not an unreadable message.
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Message {
    /// OMS -> IMS: reserve all of these items for the order, or none of them.
    ReserveInventory { order_id: String, customer_id: String, items: Vec<MessageItem>, timestamp: DateTime<Utc> },
    /// IMS -> OMS: the stock is held for the order.
    InventoryReserved { order_id: String, timestamp: DateTime<Utc> },
    /// IMS -> OMS: nothing was reserved, and why.
    InventoryReservationFailed {
        order_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        timestamp: DateTime<Utc>,
    },
    /// OMS -> IMS: give back what was reserved for the order (it was deleted).
    ReleaseInventory { order_id: String, timestamp: DateTime<Utc> },
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::ReserveInventory { .. } => "ReserveInventory",
            Message::InventoryReserved { .. } => "InventoryReserved",
            Message::InventoryReservationFailed { .. } => "InventoryReservationFailed",
            Message::ReleaseInventory { .. } => "ReleaseInventory",
        }
    }

    pub fn order_id(&self) -> &str {
        match self {
            Message::ReserveInventory { order_id, .. }
            | Message::InventoryReserved { order_id, .. }
            | Message::InventoryReservationFailed { order_id, .. }
            | Message::ReleaseInventory { order_id, .. } => order_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub message_id: String,
    #[serde(flatten)]
    pub message: Message,
}

impl Envelope {
    pub fn new(message_id: String, message: Message) -> Self {
        Self { message_id, message }
    }

    pub fn to_json(&self) -> String {
        // An enum of strings, numbers and timestamps always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(raw: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw)
    }
}

/// What a store needs to emit a message, should its decision call for one: the new message's
/// id, the trace it continues, and the time.
#[derive(Debug, Clone)]
pub struct Emit {
    pub message_id: String,
    pub trace: crate::trace_context::TraceParent,
    pub now: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_flat_snake_case_with_a_type_tag() {
        let ts = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().with_timezone(&Utc);
        let env = Envelope::new(
            "m1".into(),
            Message::ReserveInventory {
                order_id: "o1".into(),
                customer_id: "c1".into(),
                items: vec![MessageItem { sku: "SKU-1".into(), quantity: 2 }],
                timestamp: ts,
            },
        );
        let json: serde_json::Value = serde_json::from_str(&env.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"message_id":"m1","type":"ReserveInventory","order_id":"o1","customer_id":"c1",
                "items":[{"sku":"SKU-1","quantity":2}],"timestamp":"2026-01-02T03:04:05Z"})
        );
        assert_eq!(Envelope::from_json(&env.to_json()).unwrap(), env);
    }

    #[test]
    fn unreadable_messages_are_errors() {
        assert!(Envelope::from_json("{}").is_err());
        assert!(Envelope::from_json(r#"{"message_id":"m","type":"Nope","order_id":"o"}"#).is_err());
        assert!(Envelope::from_json(r#"{"type":"InventoryReserved","order_id":"o","timestamp":"2026-01-01T00:00:00Z"}"#).is_err());
    }
}
