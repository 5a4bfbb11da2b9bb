//! kill -9 of either service at arbitrary moments loses nothing: after restarts every order
//! ends CONFIRMED or CANCELLED and stock is conserved.

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use reqwest::Method;
use serde_json::Value;
use shop_tests::client::ShopClient;
use shop_tests::processes::TwoProcesses;

const KEY: &str = "chaos-key";

#[tokio::test]
async fn kill_nine_loses_nothing_and_conserves_stock() {
    let dir = tempfile::tempdir().unwrap();
    let mut shop = TwoProcesses::start(dir.path(), KEY, &[], &[]).await.unwrap();
    let client = ShopClient::new(&shop.oms.url, &shop.ims.url, KEY);
    let initial: HashMap<&str, i64> = HashMap::from([("SCARCE", 40), ("PLENTY", 10_000)]);
    for (sku, stock) in &initial {
        client.product_with_stock(sku, sku, 3.0, *stock).await.unwrap();
    }
    let customer = client.customer("Chaos", "chaos@example.com").await.unwrap();

    for round in 0..8 {
        // A burst of orders (and deletes of earlier ones) while one service dies mid-way.
        let burst = {
            let (client, customer) = (client.clone(), customer.clone());
            tokio::spawn(async move {
                let mut placed = Vec::new();
                for i in 0..30 {
                    let items: &[(&str, i64)] = if i % 3 == 0 { &[("SCARCE", 2), ("PLENTY", 5)] } else { &[("SCARCE", 1)] };
                    if let Ok(id) = client.order(&customer, items).await {
                        placed.push(id);
                    }
                    if i % 7 == 0
                        && let Some(id) = placed.first()
                    {
                        let _ = client.call(Method::DELETE, &format!("{}/orders/{id}", client.oms), None).await;
                    }
                }
            })
        };
        let delay = rand::rng().random_range(5..120);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let victim = if round % 2 == 0 { &mut shop.ims } else { &mut shop.oms };
        victim.kill9();
        tokio::time::sleep(Duration::from_millis(100)).await;
        victim.restart().await.unwrap();
        let _ = burst.await;
    }

    // Let every outbox drain, then check the books.
    let orders = settled_orders(&client, &customer).await;
    assert!(!orders.is_empty());
    let mut held: HashMap<String, i64> = HashMap::new();
    for order in &orders {
        let status = order["status"].as_str().unwrap();
        assert!(status == "CONFIRMED" || status == "CANCELLED", "order {} ended {status}", order["id"]);
        if status == "CONFIRMED" {
            for item in order["items"].as_array().unwrap() {
                *held.entry(item["sku"].as_str().unwrap().to_string()).or_default() += item["quantity"].as_i64().unwrap();
            }
        }
    }
    wait_for_empty_outboxes(&client).await;
    for (sku, start) in &initial {
        let now = client.stock(sku).await.unwrap();
        let sold = held.get(*sku).copied().unwrap_or(0);
        assert!(now >= 0);
        assert_eq!(now + sold, *start, "{sku}: stock {now} + held by confirmed orders {sold} must equal the initial {start}");
    }
}

/// All orders of the customer once none is pending (paging through the list).
async fn settled_orders(client: &ShopClient, customer: &str) -> Vec<Value> {
    for _ in 0..600 {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/orders?customer_id={customer}&limit=100", client.oms);
            if let Some(t) = &token {
                url.push_str(&format!("&next_token={t}"));
            }
            let (_, page) = client.call(Method::GET, &url, None).await.unwrap();
            all.extend(page["orders"].as_array().unwrap().iter().cloned());
            match page["next_token"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        if all.iter().all(|o| o["status"] != "PENDING_INVENTORY") {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("orders still pending after a minute");
}

async fn wait_for_empty_outboxes(client: &ShopClient) {
    for _ in 0..600 {
        let mut empty = true;
        for base in [&client.oms, &client.ims] {
            let ready: Value = client.http.get(format!("{base}/readyz")).send().await.unwrap().json().await.unwrap_or_default();
            empty &= ready["outbox_depth"] == 0;
        }
        if empty {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("outboxes never drained");
}
