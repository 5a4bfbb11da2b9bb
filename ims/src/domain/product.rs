use chrono::{DateTime, Utc};
use salve_common::money::Money;
use serde::{Deserialize, Serialize};

use super::error::InventoryError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    pub sku: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[schema(value_type = f64)]
    pub price: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductWithInventory {
    #[serde(flatten)]
    pub product: Product,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InventoryItem {
    pub sku: String,
    pub quantity: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[schema(value_type = f64)]
    pub price: Money,
    #[serde(default)]
    pub image_url: Option<String>,
}

/// SKUs appear in URLs and message bodies: keep them to a safe, unambiguous alphabet.
pub fn validate_sku(sku: &str) -> Result<(), InventoryError> {
    let ok = (1..=64).contains(&sku.len()) && sku.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok { Ok(()) } else { Err(InventoryError::Validation(format!("sku must be 1-64 characters of A-Z a-z 0-9 - _ ., got {sku:?}"))) }
}

impl NewProduct {
    pub fn validate(&self) -> Result<(), InventoryError> {
        validate_sku(&self.sku)?;
        // Limits count characters, as the messages say, not bytes: "é" is one character.
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(InventoryError::Validation("name must be 1 to 200 characters".into()));
        }
        if self.description.as_ref().is_some_and(|d| d.chars().count() > 4000) {
            return Err(InventoryError::Validation("description must be at most 4000 characters".into()));
        }
        if let Some(url) = &self.image_url
            && (!(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048)
        {
            return Err(InventoryError::Validation("image_url must be an http(s) URL".into()));
        }
        Ok(())
    }
}

/// The new quantity after adding `delta`, unless it would be negative.
pub fn adjusted(sku: &str, available: i64, delta: i64) -> Result<i64, InventoryError> {
    match available.checked_add(delta) {
        Some(q) if q >= 0 => Ok(q),
        _ => Err(InventoryError::InsufficientStock { sku: sku.to_string(), available, delta }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_alphabet() {
        assert!(validate_sku("SKU-1_a.b").is_ok());
        for bad in ["", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(validate_sku(bad).is_err(), "{bad}");
        }
    }

    fn product(name: &str, description: Option<String>) -> NewProduct {
        NewProduct { sku: "SKU-1".into(), name: name.into(), description, price: Money::from_cents(100), image_url: None }
    }

    #[test]
    fn name_and_description_limits_count_characters_not_bytes() {
        assert!(product(&"é".repeat(200), None).validate().is_ok(), "200 characters (400 bytes) is within the limit");
        assert!(product(&"é".repeat(201), None).validate().is_err());
        assert!(product("Tea", Some("茶".repeat(4000))).validate().is_ok(), "4000 characters (12000 bytes) is within the limit");
        assert!(product("Tea", Some("茶".repeat(4001))).validate().is_err());
    }

    #[test]
    fn adjustments_never_go_below_zero() {
        assert_eq!(adjusted("A", 5, -5).unwrap(), 0);
        assert_eq!(adjusted("A", 5, 3).unwrap(), 8);
        assert!(matches!(adjusted("A", 5, -6), Err(InventoryError::InsufficientStock { available: 5, delta: -6, .. })));
        assert!(adjusted("A", i64::MAX, 1).is_err());
    }
}
