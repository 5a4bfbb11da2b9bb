//! A small client for the shop APIs, for tests, the demo and the load generator.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

#[derive(Clone)]
pub struct ShopClient {
    pub http: Client,
    pub oms: String,
    pub ims: String,
    pub key: String,
}

impl ShopClient {
    pub fn new(oms: &str, ims: &str, key: &str) -> Self {
        let http = Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(256).build().unwrap_or_default();
        Self { http, oms: oms.trim_end_matches('/').into(), ims: ims.trim_end_matches('/').into(), key: key.into() }
    }

    pub async fn call(&self, method: reqwest::Method, url: &str, body: Option<Value>) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.http.request(method, url).header("x-api-key", &self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("calling {url}"))?;
        let status = response.status();
        let text = response.text().await?;
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Ok((status, value))
    }

    async fn expect(&self, method: reqwest::Method, url: &str, body: Option<Value>, want: StatusCode) -> anyhow::Result<Value> {
        let (status, value) = self.call(method, url, body).await?;
        if status != want {
            bail!("{url}: expected {want}, got {status}: {value}");
        }
        Ok(value)
    }

    /// Creates the product (if new) and sets its stock.
    pub async fn product_with_stock(&self, sku: &str, name: &str, price: f64, stock: i64) -> anyhow::Result<()> {
        self.create_product(sku, name, price).await?;
        self.set_stock(sku, stock).await
    }

    /// Creates the product; `false` if it existed already.
    pub async fn create_product(&self, sku: &str, name: &str, price: f64) -> anyhow::Result<bool> {
        let (status, body) = self
            .call(reqwest::Method::POST, &format!("{}/products", self.ims), Some(json!({"sku": sku, "name": name, "price": price})))
            .await?;
        match status {
            StatusCode::CREATED => Ok(true),
            StatusCode::CONFLICT => Ok(false),
            _ => bail!("creating {sku}: {status} {body}"),
        }
    }

    pub async fn set_stock(&self, sku: &str, quantity: i64) -> anyhow::Result<()> {
        self.expect(reqwest::Method::PUT, &format!("{}/inventory/{sku}", self.ims), Some(json!({"quantity": quantity})), StatusCode::OK)
            .await?;
        Ok(())
    }

    pub async fn stock(&self, sku: &str) -> anyhow::Result<i64> {
        let v = self.expect(reqwest::Method::GET, &format!("{}/inventory/{sku}", self.ims), None, StatusCode::OK).await?;
        v["quantity"].as_i64().context("quantity missing")
    }

    pub async fn customer(&self, name: &str, email: &str) -> anyhow::Result<String> {
        let v = self
            .expect(
                reqwest::Method::POST,
                &format!("{}/customers", self.oms),
                Some(json!({"name": name, "email": email})),
                StatusCode::CREATED,
            )
            .await?;
        Ok(v["id"].as_str().context("id missing")?.to_string())
    }

    /// Places an order; returns its id.
    pub async fn order(&self, customer_id: &str, items: &[(&str, i64)]) -> anyhow::Result<String> {
        let items: Vec<Value> = items.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q})).collect();
        let v = self
            .expect(
                reqwest::Method::POST,
                &format!("{}/orders", self.oms),
                Some(json!({"customer_id": customer_id, "items": items})),
                StatusCode::CREATED,
            )
            .await?;
        Ok(v["order_id"].as_str().context("order_id missing")?.to_string())
    }

    pub async fn get_order(&self, id: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::GET, &format!("{}/orders/{id}", self.oms), None).await
    }

    /// Polls until the order leaves PENDING_INVENTORY; returns the final order.
    pub async fn settled(&self, id: &str, within: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok((StatusCode::OK, order)) = self.get_order(id).await
                && order["status"] != "PENDING_INVENTORY"
            {
                return Ok(order);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("order {id} still not settled after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
