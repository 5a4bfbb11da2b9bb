//! Every OMS route, including its error cases, through the real router and a real SQLite file.
//! The IMS catalog is replaced by a fixed in-memory catalog (a test stand-in for the port).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::http::{Method, StatusCode};
use oms::domain::ports::{Catalog, CatalogError, CatalogProduct};
use salve_common::auth::ApiKeys;
use salve_common::money::Money;
use salve_common::settings::SettingsHandle;
use salve_common::testing::{Reply, call, error_code};
use serde_json::{Value, json};

const KEY: &str = "k1";

/// Test stand-in for the IMS catalog: two products, or "down" for every lookup.
struct FixedCatalog {
    down: bool,
}

#[async_trait]
impl Catalog for FixedCatalog {
    async fn lookup(&self, skus: &[String]) -> Result<HashMap<String, CatalogProduct>, CatalogError> {
        if self.down {
            return Err(CatalogError::Unavailable("connection refused".into()));
        }
        let known = HashMap::from([
            ("A".to_string(), CatalogProduct { name: "Apple".into(), price: Money::from_cents(120) }),
            ("B".to_string(), CatalogProduct { name: "Bread".into(), price: Money::from_cents(250) }),
        ]);
        Ok(skus.iter().filter_map(|s| known.get(s).map(|p| (s.clone(), p.clone()))).collect())
    }
}

struct Oms {
    router: Router,
    _dir: tempfile::TempDir,
}

fn oms_with(catalog_down: bool) -> Oms {
    let dir = tempfile::tempdir().unwrap();
    let (settings, _) = SettingsHandle::fixed(Default::default());
    let app = oms::app::build(dir.path(), ApiKeys::from_csv("k0,k1"), settings, Arc::new(FixedCatalog { down: catalog_down })).unwrap();
    Oms { router: app.router, _dir: dir }
}

impl Oms {
    async fn req(&self, method: Method, uri: &str, body: Option<Value>) -> Reply {
        call(&self.router, method, uri, Some(KEY), body.map(|b| b.to_string()).as_deref(), &[]).await
    }

    async fn customer(&self) -> String {
        let r = self.req(Method::POST, "/customers", Some(json!({"name": "Ada", "email": "ada@example.com"}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    async fn order(&self, customer: &str, items: Value) -> Reply {
        self.req(Method::POST, "/orders", Some(json!({"customer_id": customer, "items": items}))).await
    }

    /// Delivers an inventory answer to the inbox, as IMS would.
    async fn answer(&self, order_id: &str, reserved: bool) {
        let message = if reserved {
            json!({"message_id": format!("ans-{order_id}"), "type": "InventoryReserved", "order_id": order_id, "timestamp": "2026-01-01T00:00:00Z"})
        } else {
            json!({"message_id": format!("ans-{order_id}"), "type": "InventoryReservationFailed", "order_id": order_id, "reason": "no stock", "timestamp": "2026-01-01T00:00:00Z"})
        };
        assert_eq!(self.req(Method::POST, "/internal/messages", Some(message)).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn every_business_route_needs_a_valid_api_key() {
    let oms = oms_with(false);
    for (method, uri) in [
        (Method::POST, "/customers"),
        (Method::GET, "/customers/x"),
        (Method::POST, "/orders"),
        (Method::GET, "/orders?customer_id=x"),
        (Method::GET, "/orders/x"),
        (Method::DELETE, "/orders/x"),
        (Method::POST, "/internal/messages"),
        (Method::GET, "/admin/dead-letters"),
    ] {
        for key in [None, Some("wrong"), Some("")] {
            let r = call(&oms.router, method.clone(), uri, key, None, &[]).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri} with {key:?}");
            assert_eq!(error_code(&r), "unauthorized");
        }
    }
    // Both configured keys work; health, metrics and the OpenAPI document are open.
    assert_eq!(call(&oms.router, Method::GET, "/orders/x", Some("k0"), None, &[]).await.status, StatusCode::NOT_FOUND);
    for open in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(call(&oms.router, Method::GET, open, None, None, &[]).await.status, StatusCode::OK, "{open}");
    }
}

#[tokio::test]
async fn customers_are_created_validated_and_read() {
    let oms = oms_with(false);
    let r = oms.req(Method::POST, "/customers", Some(json!({"name": "Ada", "email": "ada@example.com", "address": "1 Loop Rd"}))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    for field in ["id", "name", "email", "address", "created_at"] {
        assert!(r.body.get(field).is_some(), "{field} missing: {}", r.body);
    }
    let id = r.body["id"].as_str().unwrap();
    let got = oms.req(Method::GET, &format!("/customers/{id}"), None).await;
    assert_eq!((got.status, &got.body["email"]), (StatusCode::OK, &json!("ada@example.com")));
    assert_eq!(oms.req(Method::GET, "/customers/nope", None).await.status, StatusCode::NOT_FOUND);

    let bad = oms.req(Method::POST, "/customers", Some(json!({"name": "Ada", "email": "not-an-email"}))).await;
    assert_eq!((bad.status, error_code(&bad).as_str()), (StatusCode::BAD_REQUEST, "validation_failed"));
    let missing = oms.req(Method::POST, "/customers", Some(json!({"name": "Ada"}))).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let malformed = call(&oms.router, Method::POST, "/customers", Some(KEY), Some("{\"name\":"), &[]).await;
    assert_eq!((malformed.status, error_code(&malformed).as_str()), (StatusCode::BAD_REQUEST, "malformed_json"));
}

#[tokio::test]
async fn orders_are_priced_from_the_catalog_and_start_pending() {
    let oms = oms_with(false);
    let customer = oms.customer().await;
    let r = oms.order(&customer, json!([{"sku": "A", "quantity": 3}, {"sku": "B", "quantity": 1}])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["order_id"].as_str().unwrap();
    let order = oms.req(Method::GET, &format!("/orders/{id}"), None).await;
    assert_eq!(order.status, StatusCode::OK);
    assert_eq!(order.body["status"], "PENDING_INVENTORY");
    assert_eq!(order.body["total"], 6.1);
    assert_eq!(order.body["items"][0], json!({"sku": "A", "quantity": 3, "price": 1.2, "name": "Apple"}));
    assert_eq!(order.body["customer_id"], customer.as_str());
    // The ReserveInventory message waits in the outbox (no relay runs in this test).
    let ready = call(&oms.router, Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(ready.body["outbox_depth"], 1);
}

#[tokio::test]
async fn invalid_orders_are_refused_with_400() {
    let oms = oms_with(false);
    let customer = oms.customer().await;
    let many: Vec<Value> = (0..100).map(|i| json!({"sku": format!("S{i}"), "quantity": 1})).collect();
    let cases = [
        (json!({"customer_id": "ghost", "items": [{"sku": "A", "quantity": 1}]}), "unknown_customer"),
        (json!({"customer_id": customer, "items": []}), "validation_failed"),
        (json!({"customer_id": customer, "items": many}), "validation_failed"),
        (json!({"customer_id": customer, "items": [{"sku": "A", "quantity": 0}]}), "validation_failed"),
        (json!({"customer_id": customer, "items": [{"sku": "A", "quantity": -1}]}), "validation_failed"),
        (json!({"customer_id": customer, "items": [{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 1}]}), "validation_failed"),
        (json!({"customer_id": customer, "items": [{"sku": "A", "quantity": 1}, {"sku": "ZZZ", "quantity": 1}]}), "unknown_sku"),
        (json!({"customer_id": customer, "items": [{"sku": "A", "quantity": "two"}]}), "validation_failed"),
        (json!({"items": [{"sku": "A", "quantity": 1}]}), "validation_failed"),
    ];
    for (body, code) in cases {
        let r = oms.req(Method::POST, "/orders", Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&r), code, "{body}");
    }
    let unknown = oms.order(&customer, json!([{"sku": "ZZZ", "quantity": 1}])).await;
    assert_eq!(unknown.body["error"]["details"]["skus"], json!(["ZZZ"]));
    let no_type = call(&oms.router, Method::POST, "/orders", Some(KEY), None, &[]).await;
    assert_eq!(no_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    error_code(&no_type);
}

#[tokio::test]
async fn catalog_outage_is_a_503() {
    let oms = oms_with(true);
    let customer = oms.customer().await;
    let r = oms.order(&customer, json!([{"sku": "A", "quantity": 1}])).await;
    assert_eq!((r.status, error_code(&r).as_str()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
}

#[tokio::test]
async fn idempotency_key_replays_the_first_order_and_refuses_a_different_body() {
    let oms = oms_with(false);
    let customer = oms.customer().await;
    let body = json!({"customer_id": customer, "items": [{"sku": "A", "quantity": 1}]}).to_string();
    let first = call(&oms.router, Method::POST, "/orders", Some(KEY), Some(&body), &[("idempotency-key", "abc")]).await;
    let again = call(&oms.router, Method::POST, "/orders", Some(KEY), Some(&body), &[("idempotency-key", "abc")]).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(first.body, again.body, "the original 201 is replayed");
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let other = json!({"customer_id": customer, "items": [{"sku": "A", "quantity": 2}]}).to_string();
    let reused = call(&oms.router, Method::POST, "/orders", Some(KEY), Some(&other), &[("idempotency-key", "abc")]).await;
    assert_eq!((reused.status, error_code(&reused).as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"));
    let listed = oms.req(Method::GET, &format!("/orders?customer_id={customer}"), None).await;
    assert_eq!(listed.body["orders"].as_array().unwrap().len(), 1, "one order for one key");
}

#[tokio::test]
async fn listing_is_newest_first_paged_and_filtered() {
    let oms = oms_with(false);
    let customer = oms.customer().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let r = oms.order(&customer, json!([{"sku": "A", "quantity": 1}])).await;
        ids.push(r.body["order_id"].as_str().unwrap().to_string());
    }
    oms.answer(&ids[0], true).await;
    oms.answer(&ids[1], false).await;

    let mut seen = Vec::new();
    let mut uri = format!("/orders?customer_id={customer}&limit=2");
    loop {
        let page = oms.req(Method::GET, &uri, None).await;
        assert_eq!(page.status, StatusCode::OK);
        seen.extend(page.body["orders"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()));
        match page.body["next_token"].as_str() {
            Some(t) => uri = format!("/orders?customer_id={customer}&limit=2&next_token={t}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let confirmed = oms.req(Method::GET, &format!("/orders?customer_id={customer}&status=CONFIRMED"), None).await;
    assert_eq!(confirmed.body["orders"].as_array().unwrap().len(), 1);
    assert_eq!(confirmed.body["orders"][0]["id"], ids[0].as_str());
    let cancelled = oms.req(Method::GET, &format!("/orders?customer_id={customer}&status=CANCELLED"), None).await;
    assert_eq!(cancelled.body["orders"][0]["cancellation_reason"], "no stock");

    let future = oms.req(Method::GET, &format!("/orders?customer_id={customer}&start_date=2999-01-01T00:00:00Z"), None).await;
    assert_eq!(future.body["orders"].as_array().unwrap().len(), 0);
    let past = oms.req(Method::GET, &format!("/orders?customer_id={customer}&end_date=2000-01-01T00:00:00Z"), None).await;
    assert_eq!(past.body["orders"].as_array().unwrap().len(), 0);
    let window = oms
        .req(Method::GET, &format!("/orders?customer_id={customer}&start_date=2000-01-01T00:00:00Z&end_date=2999-01-01T00:00:00Z"), None)
        .await;
    assert_eq!(window.body["orders"].as_array().unwrap().len(), 5);
    let other = oms.req(Method::GET, "/orders?customer_id=someone-else", None).await;
    assert_eq!(other.body["orders"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn listing_rejects_bad_parameters() {
    let oms = oms_with(false);
    for query in [
        "",
        "?customer_id=c&limit=0",
        "?customer_id=c&limit=101",
        "?customer_id=c&limit=ten",
        "?customer_id=c&status=SHIPPED",
        "?customer_id=c&start_date=yesterday",
        "?customer_id=c&start_date=2026-02-01T00:00:00Z&end_date=2026-01-01T00:00:00Z",
        "?customer_id=c&next_token=%21%21",
    ] {
        let r = oms.req(Method::GET, &format!("/orders{query}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        error_code(&r);
    }
    assert_eq!(oms.req(Method::GET, "/orders?customer_id=c&limit=100", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn delete_answers_204_then_404() {
    let oms = oms_with(false);
    let customer = oms.customer().await;
    let id = oms.order(&customer, json!([{"sku": "B", "quantity": 2}])).await.body["order_id"].as_str().unwrap().to_string();
    assert_eq!(oms.req(Method::DELETE, &format!("/orders/{id}"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(oms.req(Method::DELETE, &format!("/orders/{id}"), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(oms.req(Method::GET, &format!("/orders/{id}"), None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oversize_requests_get_json_413_414_and_431() {
    use salve_common::http::{MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_URI_BYTES};
    let oms = oms_with(false);
    let body = format!("{{\"name\":\"{}\"}}", "n".repeat(MAX_BODY_BYTES));
    let r = call(&oms.router, Method::POST, "/customers", Some(KEY), Some(&body), &[]).await;
    assert_eq!((r.status, error_code(&r).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    let uri = format!("/orders?customer_id={}", "c".repeat(MAX_URI_BYTES));
    let r = oms.req(Method::GET, &uri, None).await;
    assert_eq!((r.status, error_code(&r).as_str()), (StatusCode::URI_TOO_LONG, "uri_too_long"));
    let pad = "p".repeat(MAX_HEADER_BYTES);
    let r = call(&oms.router, Method::GET, "/healthz", None, None, &[("x-pad", pad.as_str())]).await;
    assert_eq!((r.status, error_code(&r).as_str()), (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let oms = oms_with(false);
    let r = oms.req(Method::GET, "/nope", None).await;
    assert_eq!((r.status, error_code(&r).as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let r = oms.req(Method::PATCH, "/orders", None).await;
    assert_eq!((r.status, error_code(&r).as_str()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
}

#[tokio::test]
async fn metrics_and_openapi_describe_the_service() {
    let oms = oms_with(false);
    let customer = oms.customer().await;
    let id = oms.order(&customer, json!([{"sku": "A", "quantity": 1}])).await.body["order_id"].as_str().unwrap().to_string();
    oms.answer(&id, true).await;
    let metrics = call(&oms.router, Method::GET, "/metrics", None, None, &[]).await.body;
    let text = metrics.as_str().unwrap();
    for needle in [
        r#"oms_orders{status="CONFIRMED"} 1"#,
        r#"oms_http_requests_total{method="POST",route="/orders",status="201"} 1"#,
        "oms_http_request_duration_seconds_bucket",
        "oms_outbox_depth 1",
        "oms_outbox_oldest_age_seconds",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    let doc = call(&oms.router, Method::GET, "/openapi.json", None, None, &[]).await.body;
    for path in ["/orders", "/orders/{id}", "/customers", "/customers/{id}"] {
        assert!(doc["paths"].get(path).is_some(), "{path} not documented");
    }
    assert_eq!(doc["components"]["securitySchemes"]["ApiKeyAuth"]["name"], "x-api-key");
    assert_eq!(doc["components"]["schemas"]["OrderStatus"]["enum"], json!(["PENDING_INVENTORY", "CONFIRMED", "CANCELLED"]));
}
