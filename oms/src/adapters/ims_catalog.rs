//! The catalog port over HTTP: product names and prices from the inventory service
//! (`GET /products/{sku}`), looked up concurrently for the lines of one order.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use salve_common::auth::API_KEY_HEADER;
use salve_common::money::Money;
use serde::Deserialize;

use crate::domain::ports::{Catalog, CatalogError, CatalogProduct};

pub struct ImsCatalog {
    client: reqwest::Client,
    base: reqwest::Url,
    api_key: Option<String>,
}

#[derive(Deserialize)]
struct ProductBody {
    name: String,
    price: Money,
}

impl ImsCatalog {
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<Self, CatalogError> {
        let base = reqwest::Url::parse(base_url).map_err(|e| CatalogError::Unavailable(format!("invalid IMS url {base_url}: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| CatalogError::Unavailable(e.to_string()))?;
        Ok(Self { client, base, api_key })
    }

    async fn fetch(&self, sku: &str) -> Result<Option<CatalogProduct>, CatalogError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| CatalogError::Unavailable("IMS url cannot be a base".into()))?
            .pop_if_empty()
            .extend(["products", sku]);
        let mut request = self.client.get(url);
        if let Some(key) = &self.api_key {
            request = request.header(API_KEY_HEADER, key);
        }
        let response = request.send().await.map_err(|e| CatalogError::Unavailable(e.to_string()))?;
        match response.status() {
            s if s.is_success() => {
                let body: ProductBody = response.json().await.map_err(|e| CatalogError::Unavailable(format!("bad product body: {e}")))?;
                Ok(Some(CatalogProduct { name: body.name, price: body.price }))
            }
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            other => Err(CatalogError::Unavailable(format!("IMS answered {other}"))),
        }
    }
}

#[async_trait]
impl Catalog for ImsCatalog {
    async fn lookup(&self, skus: &[String]) -> Result<HashMap<String, CatalogProduct>, CatalogError> {
        let found = futures::future::try_join_all(
            skus.iter().map(|sku| async move { Ok::<_, CatalogError>((sku.clone(), self.fetch(sku).await?)) }),
        )
        .await?;
        Ok(found.into_iter().filter_map(|(sku, product)| product.map(|p| (sku, p))).collect())
    }
}
