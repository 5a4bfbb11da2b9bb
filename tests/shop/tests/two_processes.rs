//! The real `oms` and `ims` binaries as separate processes, talking over HTTP.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use shop_tests::client::ShopClient;
use shop_tests::processes::TwoProcesses;

const KEY: &str = "process-key";
const SETTLE: Duration = Duration::from_secs(30);

fn client(shop: &TwoProcesses) -> ShopClient {
    ShopClient::new(&shop.oms.url, &shop.ims.url, KEY)
}

#[tokio::test]
async fn two_binaries_confirm_cancel_and_release_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let mut shop = TwoProcesses::start(dir.path(), KEY, &[], &[]).await.unwrap();
    let client = client(&shop);
    client.product_with_stock("LAMP", "Lamp", 25.0, 2).await.unwrap();
    let customer = client.customer("Lin", "lin@example.com").await.unwrap();

    let first = client.order(&customer, &[("LAMP", 2)]).await.unwrap();
    let second = client.order(&customer, &[("LAMP", 1)]).await.unwrap();
    assert_eq!(client.settled(&first, SETTLE).await.unwrap()["status"], "CONFIRMED");
    let cancelled = client.settled(&second, SETTLE).await.unwrap();
    assert_eq!(cancelled["status"], "CANCELLED");
    assert!(cancelled["cancellation_reason"].as_str().unwrap().contains("insufficient stock"));
    assert_eq!(client.stock("LAMP").await.unwrap(), 0);

    let (status, _) = client.call(Method::DELETE, &format!("{}/orders/{first}", client.oms), None).await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut stock = 0;
    for _ in 0..500 {
        stock = client.stock("LAMP").await.unwrap();
        if stock == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stock, 2, "the deleted order's stock came back through ReleaseInventory");

    // Listing: newest first, paged with an opaque token, filtered by status.
    let (_, page) = client.call(Method::GET, &format!("{}/orders?customer_id={customer}&limit=1", client.oms), None).await.unwrap();
    assert_eq!(page["orders"][0]["id"], second.as_str());
    assert!(page["next_token"].is_null(), "only one order is left after the delete");

    // SIGTERM: both exit cleanly.
    assert!(shop.oms.terminate().unwrap().success());
    assert!(shop.ims.terminate().unwrap().success());
}

#[tokio::test]
async fn runtime_settings_reload_without_restart_and_invalid_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let ims_settings = dir.path().join("ims-settings.toml");
    let oms_settings = dir.path().join("oms-settings.toml");
    std::fs::write(&ims_settings, "[faults]\nconsumer_paused = true\n").unwrap();
    std::fs::write(&oms_settings, "[faults.routes.\"GET /orders/{id}\"]\nerror_rate = 1.0\n").unwrap();
    let shop = TwoProcesses::start(
        dir.path(),
        KEY,
        &[("OMS_SETTINGS_FILE", oms_settings.display().to_string())],
        &[("IMS_SETTINGS_FILE", ims_settings.display().to_string())],
    )
    .await
    .unwrap();
    let client = client(&shop);

    // Injected fault on one route.
    let (status, body) = client.get_order("anything").await.unwrap();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "injected_fault");
    std::fs::write(&oms_settings, "request_timeout_ms = 5000\n").unwrap();
    wait_until(|| async { client.get_order("anything").await.unwrap().0 == StatusCode::NOT_FOUND }).await;

    // IMS's consumer is paused: the order waits in the OMS outbox.
    client.product_with_stock("BOOK", "Book", 12.0, 5).await.unwrap();
    let customer = client.customer("Kim", "kim@example.com").await.unwrap();
    let order = client.order(&customer, &[("BOOK", 1)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(client.get_order(&order).await.unwrap().1["status"], "PENDING_INVENTORY");
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", client.oms)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["outbox_depth"], 1);

    // An invalid file is rejected: still paused, and the log says why.
    std::fs::write(&ims_settings, "pool_size = 0\n[faults]\nconsumer_paused = false\n").unwrap();
    wait_until(|| async { shop.ims.log().contains("settings file rejected") }).await;
    assert_eq!(client.get_order(&order).await.unwrap().1["status"], "PENDING_INVENTORY");

    // A valid file resumes consumption; the message was never lost.
    std::fs::write(&ims_settings, "[faults]\nconsumer_paused = false\n").unwrap();
    assert_eq!(client.settled(&order, SETTLE).await.unwrap()["status"], "CONFIRMED");
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let oms_settings = dir.path().join("oms-settings.toml");
    std::fs::write(&oms_settings, "[faults.routes.\"GET /orders/{id}\"]\nlatency_ms = 1500\n").unwrap();
    let mut shop = TwoProcesses::start(dir.path(), KEY, &[("OMS_SETTINGS_FILE", oms_settings.display().to_string())], &[]).await.unwrap();
    let client = client(&shop);
    let slow = tokio::spawn(async move { client.get_order("in-flight").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = tokio::task::spawn_blocking(move || shop.oms.terminate().unwrap()).await.unwrap();
    assert!(status.success());
    let (code, body) = slow.await.unwrap().unwrap();
    assert_eq!(code, StatusCode::NOT_FOUND, "the in-flight request got its real answer: {body}");
}

async fn wait_until<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached");
}
