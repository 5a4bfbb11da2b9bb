//! Steady traffic on the shop while a scenario runs: a product with stock, a customer, then
//! orders at a fixed rate through the OMS Service, as users would send them.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::{Api, Client};
use shop_tests::client::ShopClient;
use tokio_util::sync::CancellationToken;

async fn service_url(client: &Client, ns: &str, name: &str, port: u16) -> Option<String> {
    let svc = Api::<Service>::namespaced(client.clone(), ns).get_opt(name).await.ok().flatten()?;
    Some(format!("http://{}:{port}", svc.spec?.cluster_ip?))
}

/// Sends `per_second` orders until `stop` (errors are the point of a fault; they are not fatal).
pub async fn run(client: Client, ns: String, key: String, per_second: u32, stop: CancellationToken) {
    let (Some(oms), Some(ims)) = (service_url(&client, &ns, "salve-oms", 8080).await, service_url(&client, &ns, "salve-ims", 8081).await)
    else {
        return;
    };
    let shop = ShopClient::new(&oms, &ims, &key);
    let mut customer = None;
    while customer.is_none() && !stop.is_cancelled() {
        if shop.product_with_stock("SANDBOX-1", "Sandbox mug", 9.5, 1_000_000).await.is_ok() {
            customer = shop.customer("Ada Sandbox", "ada@sandbox.example").await.ok();
        }
        if customer.is_none() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let Some(customer) = customer else { return };
    let period = Duration::from_millis(1000 / u64::from(per_second.max(1)));
    while !stop.is_cancelled() {
        let shop = shop.clone();
        let customer = customer.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), shop.order(&customer, &[("SANDBOX-1", 1)])).await;
        });
        tokio::select! { _ = tokio::time::sleep(period) => {}, _ = stop.cancelled() => {} }
    }
}
