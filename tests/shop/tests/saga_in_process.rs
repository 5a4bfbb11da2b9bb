//! The saga with both services in one process (in-process delivery).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use shop_tests::client::ShopClient;
use shop_tests::in_process::{Shop, ShopOptions};

const KEY: &str = "test-key";
const SETTLE: Duration = Duration::from_secs(10);

async fn start() -> (tempfile::TempDir, Shop, ShopClient) {
    let dir = tempfile::tempdir().unwrap();
    let shop = Shop::start(dir.path(), ShopOptions::local(KEY)).await.unwrap();
    let client = ShopClient::new(&shop.oms_url(), &shop.ims_url(), KEY);
    (dir, shop, client)
}

#[tokio::test]
async fn orders_confirm_or_cancel_and_deleting_a_confirmed_order_releases_its_stock() {
    let (_dir, shop, client) = start().await;
    client.product_with_stock("PEN", "Pen", 1.25, 5).await.unwrap();
    client.product_with_stock("INK", "Ink", 3.10, 1).await.unwrap();
    let customer = client.customer("Ada", "ada@example.com").await.unwrap();

    let confirmed = client.order(&customer, &[("PEN", 3), ("INK", 1)]).await.unwrap();
    let order = client.settled(&confirmed, SETTLE).await.unwrap();
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(order["total"], 3.0 * 1.25 + 3.10);
    assert_eq!(order["items"][0]["name"], "Pen");
    assert_eq!(client.stock("PEN").await.unwrap(), 2);
    assert_eq!(client.stock("INK").await.unwrap(), 0);

    // All or nothing: INK is gone, so PEN must not be touched either.
    let cancelled = client.order(&customer, &[("PEN", 1), ("INK", 1)]).await.unwrap();
    let order = client.settled(&cancelled, SETTLE).await.unwrap();
    assert_eq!(order["status"], "CANCELLED");
    assert!(order["cancellation_reason"].as_str().unwrap().contains("INK"));
    assert_eq!(client.stock("PEN").await.unwrap(), 2);

    let (status, _) = client.call(Method::DELETE, &format!("{}/orders/{confirmed}", client.oms), None).await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    wait_for_stock(&client, "PEN", 5).await;
    assert_eq!(client.stock("INK").await.unwrap(), 1);
    // Deleting a cancelled order gives nothing back (nothing was held).
    client.call(Method::DELETE, &format!("{}/orders/{cancelled}", client.oms), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(client.stock("PEN").await.unwrap(), 5);
    shop.stop().await;
}

async fn wait_for_stock(client: &ShopClient, sku: &str, want: i64) {
    for _ in 0..500 {
        if client.stock(sku).await.unwrap() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("stock of {sku} never reached {want} (now {})", client.stock(sku).await.unwrap());
}

async fn post_message(client: &ShopClient, base: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    client.call(Method::POST, &format!("{base}/internal/messages"), Some(body)).await.unwrap()
}

#[tokio::test]
async fn a_redelivered_or_repeated_message_has_no_second_effect() {
    let (_dir, shop, client) = start().await;
    client.product_with_stock("CUP", "Cup", 2.0, 10).await.unwrap();
    let customer = client.customer("Ada", "ada@example.com").await.unwrap();
    let order_id = client.order(&customer, &[("CUP", 4)]).await.unwrap();
    assert_eq!(client.settled(&order_id, SETTLE).await.unwrap()["status"], "CONFIRMED");
    assert_eq!(client.stock("CUP").await.unwrap(), 6);

    // The same order asked again under new message ids (a sender retry), and one of them
    // redelivered: answered, never reserved twice.
    let reserve = |message_id: &str| {
        json!({"message_id": message_id, "type": "ReserveInventory", "order_id": order_id, "customer_id": customer,
               "items": [{"sku": "CUP", "quantity": 4}], "timestamp": "2026-01-01T00:00:00Z"})
    };
    let (status, receipt) = post_message(&client, &client.ims, reserve("retry-1")).await;
    assert_eq!((status, receipt["outcome"].as_str()), (StatusCode::OK, Some("processed")));
    let (_, receipt) = post_message(&client, &client.ims, reserve("retry-1")).await;
    assert_eq!(receipt["outcome"], "duplicate");
    assert_eq!(client.stock("CUP").await.unwrap(), 6);

    // A late, contradicting answer never flips a settled order.
    let (_, receipt) = post_message(
        &client,
        &client.oms,
        json!({"message_id": "late-1", "type": "InventoryReservationFailed", "order_id": order_id, "reason": "late", "timestamp": "2026-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(receipt["outcome"], "processed");
    assert_eq!(client.get_order(&order_id).await.unwrap().1["status"], "CONFIRMED");

    // Deleting releases once; repeated releases change nothing.
    client.call(Method::DELETE, &format!("{}/orders/{order_id}", client.oms), None).await.unwrap();
    wait_for_stock(&client, "CUP", 10).await;
    for id in ["r-1", "r-1", "r-2"] {
        let release = json!({"message_id": id, "type": "ReleaseInventory", "order_id": order_id, "timestamp": "2026-01-01T00:00:00Z"});
        assert_eq!(post_message(&client, &client.ims, release).await.0, StatusCode::OK);
    }
    assert_eq!(client.stock("CUP").await.unwrap(), 10);
    shop.stop().await;
}

#[tokio::test]
async fn unknown_or_repeated_skus_fail_the_reservation_with_a_reason() {
    let (_dir, shop, client) = start().await;
    client.product_with_stock("CUP", "Cup", 2.0, 10).await.unwrap();
    for (id, items) in [
        ("m-unknown", json!([{"sku": "CUP", "quantity": 1}, {"sku": "NOPE", "quantity": 1}])),
        ("m-twice", json!([{"sku": "CUP", "quantity": 1}, {"sku": "CUP", "quantity": 2}])),
        ("m-zero", json!([{"sku": "CUP", "quantity": 0}])),
    ] {
        let (status, receipt) = post_message(
            &client,
            &client.ims,
            json!({"message_id": id, "type": "ReserveInventory", "order_id": id, "customer_id": "c", "items": items, "timestamp": "2026-01-01T00:00:00Z"}),
        )
        .await;
        // Processed (a failure answer was sent), not dead-lettered and not refused for retry.
        assert_eq!((status, receipt["outcome"].as_str()), (StatusCode::OK, Some("processed")), "{id}");
    }
    assert_eq!(client.stock("CUP").await.unwrap(), 10);
    let metrics = client.http.get(format!("{}/metrics", client.ims)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"ims_reservations_total{outcome="failed"} 3"#), "{metrics}");
    shop.stop().await;
}

#[tokio::test]
async fn malformed_messages_are_kept_as_dead_letters_listed_and_redriven() {
    let (_dir, shop, client) = start().await;
    let (status, receipt) = client
        .call(Method::POST, &format!("{}/internal/messages", client.ims), Some(json!({"message_id": "m-bad", "type": "ReserveInventory"})))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(receipt["outcome"], "dead_lettered");
    // A kind IMS never handles is kept too.
    post_message(
        &client,
        &client.ims,
        json!({"message_id": "m-wrong", "type": "InventoryReserved", "order_id": "o", "timestamp": "2026-01-01T00:00:00Z"}),
    )
    .await;

    let (status, list) = client.call(Method::GET, &format!("{}/admin/dead-letters", client.ims), None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let letters = list["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0]["message_id"], "m-bad");
    assert!(letters[0]["reason"].as_str().unwrap().contains("unreadable"));
    assert!(letters[1]["reason"].as_str().unwrap().contains("does not handle InventoryReserved"));

    // Redriving an unreadable message fails again and keeps it, with the count raised.
    let id = letters[0]["id"].as_i64().unwrap();
    let (status, body) = client.call(Method::POST, &format!("{}/admin/dead-letters/{id}/redrive", client.ims), None).await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, list) = client.call(Method::GET, &format!("{}/admin/dead-letters", client.ims), None).await.unwrap();
    assert_eq!(list["dead_letters"][0]["redrive_count"], 1);

    // A dead letter that is valid now (e.g. parked by an older version) is processed on redrive
    // and leaves the table.
    client.product_with_stock("CUP", "Cup", 2.0, 3).await.unwrap();
    let valid = json!({"message_id": "m-parked", "type": "ReserveInventory", "order_id": "o-parked", "customer_id": "c",
                       "items": [{"sku": "CUP", "quantity": 1}], "timestamp": "2026-01-01T00:00:00Z"})
    .to_string();
    shop.ims.inbox.dead_letters().unwrap().store(&valid, None, "parked by test", chrono::Utc::now()).await.unwrap();
    let (_, list) = client.call(Method::GET, &format!("{}/admin/dead-letters", client.ims), None).await.unwrap();
    let parked = list["dead_letters"].as_array().unwrap().iter().find(|l| l["message_id"] == "m-parked").unwrap()["id"].as_i64().unwrap();
    let (status, body) = client.call(Method::POST, &format!("{}/admin/dead-letters/{parked}/redrive", client.ims), None).await.unwrap();
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("processed")));
    let metrics = client.http.get(format!("{}/metrics", client.ims)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"ims_reservations_total{outcome="reserved"} 1"#), "{metrics}");
    // OMS has no such order, so it hands the stock straight back (orphan release).
    wait_for_stock(&client, "CUP", 3).await;
    let (_, list) = client.call(Method::GET, &format!("{}/admin/dead-letters", client.ims), None).await.unwrap();
    assert_eq!(list["dead_letters"].as_array().unwrap().len(), 2, "{list}");

    let (status, _) = client.call(Method::DELETE, &format!("{}/admin/dead-letters/{id}", client.ims), None).await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = client.call(Method::DELETE, &format!("{}/admin/dead-letters/{id}", client.ims), None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    shop.stop().await;
}

#[tokio::test]
async fn concurrent_orders_never_oversell() {
    let (_dir, shop, client) = start().await;
    const STOCK: i64 = 25;
    const ORDERS: usize = 120;
    client.product_with_stock("HOT", "Hot item", 9.99, STOCK).await.unwrap();
    let customer = client.customer("Crowd", "crowd@example.com").await.unwrap();
    let placed = futures::future::join_all((0..ORDERS).map(|_| {
        let (client, customer) = (client.clone(), customer.clone());
        async move { client.order(&customer, &[("HOT", 1)]).await.unwrap() }
    }))
    .await;
    let mut confirmed = 0;
    for id in &placed {
        let order = client.settled(id, Duration::from_secs(30)).await.unwrap();
        match order["status"].as_str() {
            Some("CONFIRMED") => confirmed += 1,
            Some("CANCELLED") => {}
            other => panic!("unexpected status {other:?}"),
        }
    }
    assert_eq!(confirmed, STOCK as usize, "exactly the stock is sold");
    assert_eq!(client.stock("HOT").await.unwrap(), 0, "never negative, nothing left over");
    shop.stop().await;
}
