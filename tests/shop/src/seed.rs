//! Sample data for the demo and the load generator.

use crate::client::ShopClient;

pub const SAMPLE_PRODUCTS: &[(&str, &str, f64, i64)] = &[
    ("TEA-GREEN", "Green tea, 100 g", 4.50, 100),
    ("COFFEE-BEANS", "Coffee beans, 1 kg", 18.90, 40),
    ("MUG-BLUE", "Blue mug", 7.25, 12),
    ("KETTLE", "Electric kettle", 39.00, 2),
];

pub const SAMPLE_CUSTOMERS: &[(&str, &str)] = &[("Ada Lovelace", "ada@example.com"), ("Grace Hopper", "grace@example.com")];

/// Creates the sample products (resetting their stock) and customers; returns customer ids.
pub async fn seed(client: &ShopClient) -> anyhow::Result<Vec<String>> {
    for (sku, name, price, stock) in SAMPLE_PRODUCTS {
        client.product_with_stock(sku, name, *price, *stock).await?;
    }
    let mut ids = Vec::new();
    for (name, email) in SAMPLE_CUSTOMERS {
        ids.push(client.customer(name, email).await?);
    }
    Ok(ids)
}
