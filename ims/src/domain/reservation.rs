//! The reservation rule: all items or none, never below zero, and a reason for every refusal.

use std::collections::{HashMap, HashSet};

use salve_common::messages::MessageItem;

/// New stock levels to write, or why nothing may be reserved.
pub fn plan(items: &[MessageItem], stock: &HashMap<String, i64>) -> Result<Vec<(String, i64)>, String> {
    if items.is_empty() {
        return Err("the reservation has no items".into());
    }
    let mut seen = HashSet::new();
    for item in items {
        if !seen.insert(item.sku.as_str()) {
            return Err(format!("sku {} is listed more than once", item.sku));
        }
        if item.quantity < 1 {
            return Err(format!("quantity for {} must be at least 1, got {}", item.sku, item.quantity));
        }
    }
    let mut unknown: Vec<&str> = items.iter().filter(|i| !stock.contains_key(&i.sku)).map(|i| i.sku.as_str()).collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(format!("unknown sku: {}", unknown.join(", ")));
    }
    let mut short = Vec::new();
    let mut plan = Vec::with_capacity(items.len());
    for item in items {
        let available = stock.get(&item.sku).copied().unwrap_or(0);
        if available < item.quantity {
            short.push(format!("{} (requested {}, available {})", item.sku, item.quantity, available));
        } else {
            plan.push((item.sku.clone(), available - item.quantity));
        }
    }
    if short.is_empty() { Ok(plan) } else { Err(format!("insufficient stock: {}", short.join(", "))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str, quantity: i64) -> MessageItem {
        MessageItem { sku: sku.into(), quantity }
    }

    fn stock() -> HashMap<String, i64> {
        HashMap::from([("A".to_string(), 5), ("B".to_string(), 1)])
    }

    #[test]
    fn reserves_everything_when_all_fits() {
        assert_eq!(plan(&[item("A", 5), item("B", 1)], &stock()).unwrap(), vec![("A".to_string(), 0), ("B".to_string(), 0)]);
    }

    #[test]
    fn all_or_nothing_with_a_reason() {
        let err = plan(&[item("A", 1), item("B", 2)], &stock()).unwrap_err();
        assert_eq!(err, "insufficient stock: B (requested 2, available 1)");
        assert_eq!(plan(&[item("A", 1), item("Z", 1)], &stock()).unwrap_err(), "unknown sku: Z");
        assert_eq!(plan(&[item("A", 1), item("A", 1)], &stock()).unwrap_err(), "sku A is listed more than once");
        assert!(plan(&[item("A", 0)], &stock()).unwrap_err().contains("at least 1"));
        assert!(plan(&[], &stock()).is_err());
    }
}
