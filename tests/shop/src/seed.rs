//! Sample data for the quick-start `shop` binary.

use chrono::Utc;
use oms::domain::Customer;

use crate::client::ShopClient;
use crate::in_process::Shop;

/// (SKU, name, price, stock when first created).
pub const SAMPLE_PRODUCTS: &[(&str, &str, f64, i64)] = &[
    ("TEA-GREEN", "Green tea, 100 g", 4.50, 100),
    ("COFFEE-BEANS", "Coffee beans, 1 kg", 18.90, 40),
    ("MUG-BLUE", "Blue mug", 7.25, 12),
    ("KETTLE", "Electric kettle", 39.00, 2),
];

/// (id, name, email). Fixed ids: seeding again finds them instead of adding look-alikes.
pub const SAMPLE_CUSTOMERS: &[(&str, &str, &str)] =
    &[("sample-ada", "Ada Lovelace", "ada@example.com"), ("sample-grace", "Grace Hopper", "grace@example.com")];

/// Adds whichever sample products and customers are missing, and changes nothing else: a
/// restart keeps the stock and the customers as they were left. Returns the customers' ids.
pub async fn seed(shop: &Shop, client: &ShopClient) -> anyhow::Result<Vec<String>> {
    for (sku, name, price, stock) in SAMPLE_PRODUCTS {
        if client.create_product(sku, name, *price).await? {
            client.set_stock(sku, *stock).await?;
        }
    }
    // The API gives every new customer a fresh id, so the fixed ones go through the store.
    let store = shop.oms.service.store();
    for (id, name, email) in SAMPLE_CUSTOMERS {
        if store.customer(id).await?.is_none() {
            let customer =
                Customer { id: id.to_string(), name: name.to_string(), email: email.to_string(), address: None, created_at: Utc::now() };
            store.insert_customer(&customer).await?;
        }
    }
    Ok(SAMPLE_CUSTOMERS.iter().map(|(id, _, _)| id.to_string()).collect())
}
