//! OMS's catalog port with a memory, for the shop in one process (`in_process.rs`): products
//! already looked up are priced without asking IMS again, which there is a read of IMS's
//! database whose page cache every IMS commit invalidates. OMS as its own process does not use
//! it: there an IMS outage must still fail new orders with a 503, the symptom an operator (or
//! Salve) diagnoses it by, and a memory of prices would hide it.
//!
//! Exact, not merely fresh enough: an IMS product cannot change once created. Its API creates
//! and reads products and never updates or deletes one (docs/contracts/ims.yaml: `/products`
//! and `/products/{sku}` have no PUT, PATCH or DELETE; stock, which does change, lives apart in
//! `/inventory`). So a product found once stays right. An unknown SKU is never remembered: it
//! may be created a moment later. Entries still expire after [`KEEP_FOR`], so a row edited by
//! hand in the table behind the API is picked up, and the map is bounded by [`MAX_PRODUCTS`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use oms::domain::ports::{Catalog, CatalogError, CatalogProduct};

/// How long a product is priced from memory before IMS is asked again.
const KEEP_FOR: Duration = Duration::from_secs(60);
/// Products remembered at most; when full the memory starts over (a catalog this size is rare,
/// and starting over costs one lookup per product).
const MAX_PRODUCTS: usize = 50_000;

pub struct CachedCatalog {
    inner: Arc<dyn Catalog>,
    known: RwLock<HashMap<String, (CatalogProduct, Instant)>>,
}

impl CachedCatalog {
    pub fn new(inner: Arc<dyn Catalog>) -> Self {
        Self { inner, known: RwLock::default() }
    }
}

#[async_trait]
impl Catalog for CachedCatalog {
    async fn lookup(&self, skus: &[String]) -> Result<HashMap<String, CatalogProduct>, CatalogError> {
        let now = Instant::now();
        let mut found = HashMap::with_capacity(skus.len());
        let mut missing = Vec::new();
        {
            let known = self.known.read().unwrap_or_else(|p| p.into_inner());
            for sku in skus {
                match known.get(sku) {
                    Some((product, since)) if now.duration_since(*since) < KEEP_FOR => {
                        found.insert(sku.clone(), product.clone());
                    }
                    _ => missing.push(sku.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let fetched = self.inner.lookup(&missing).await?;
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        if known.len() + fetched.len() > MAX_PRODUCTS {
            known.clear();
        }
        for (sku, product) in fetched {
            known.insert(sku.clone(), (product.clone(), now));
            found.insert(sku, product);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use salve_common::money::Money;

    use super::*;

    /// Test stand-in for IMS: one product, and a record of what it was asked.
    struct CountingCatalog {
        asked: Mutex<Vec<String>>,
        down: Mutex<bool>,
    }

    #[async_trait]
    impl Catalog for CountingCatalog {
        async fn lookup(&self, skus: &[String]) -> Result<HashMap<String, CatalogProduct>, CatalogError> {
            if *self.down.lock().unwrap() {
                return Err(CatalogError::Unavailable("connection refused".into()));
            }
            self.asked.lock().unwrap().extend(skus.iter().cloned());
            let product = CatalogProduct { name: "Tea".into(), price: Money::from_cents(350) };
            Ok(skus.iter().filter(|s| *s == "TEA").map(|s| (s.clone(), product.clone())).collect())
        }
    }

    #[tokio::test]
    async fn found_products_are_remembered_and_unknown_skus_are_asked_again() {
        let ims = Arc::new(CountingCatalog { asked: Mutex::default(), down: Mutex::new(false) });
        let catalog = CachedCatalog::new(ims.clone());
        let skus = vec!["TEA".to_string(), "NEW".to_string()];

        let first = catalog.lookup(&skus).await.unwrap();
        assert_eq!(first.get("TEA").map(|p| p.price), Some(Money::from_cents(350)));
        assert!(!first.contains_key("NEW"));
        let second = catalog.lookup(&skus).await.unwrap();
        assert_eq!(second, first, "the same answer from memory");
        assert_eq!(*ims.asked.lock().unwrap(), vec!["TEA", "NEW", "NEW"], "TEA was asked once; the unknown SKU every time");

        // IMS down: what is remembered is still priced; an unknown SKU is still an outage.
        *ims.down.lock().unwrap() = true;
        assert!(catalog.lookup(&["TEA".to_string()]).await.is_ok());
        assert!(catalog.lookup(&skus).await.is_err());
    }
}
