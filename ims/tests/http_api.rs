//! Every IMS route, including its error cases, through the real router and a real SQLite file.

use axum::Router;
use axum::http::{Method, StatusCode};
use salve_common::auth::ApiKeys;
use salve_common::settings::SettingsHandle;
use salve_common::testing::{Reply, call, error_code};
use serde_json::{Value, json};

const KEY: &str = "k";

struct Ims {
    router: Router,
    _dir: tempfile::TempDir,
}

fn ims() -> Ims {
    let dir = tempfile::tempdir().unwrap();
    let (settings, _) = SettingsHandle::fixed(Default::default());
    let app = ims::app::build(dir.path(), ApiKeys::from_csv(KEY), settings).unwrap();
    Ims { router: app.router, _dir: dir }
}

impl Ims {
    async fn req(&self, method: Method, uri: &str, body: Option<Value>) -> Reply {
        call(&self.router, method, uri, Some(KEY), body.map(|b| b.to_string()).as_deref(), &[]).await
    }

    async fn product(&self, sku: &str, price: f64, stock: i64) {
        let r = self.req(Method::POST, "/products", Some(json!({"sku": sku, "name": format!("Product {sku}"), "price": price}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        if stock > 0 {
            assert_eq!(self.req(Method::PUT, &format!("/inventory/{sku}"), Some(json!({"quantity": stock}))).await.status, StatusCode::OK);
        }
    }
}

#[tokio::test]
async fn every_business_route_needs_a_valid_api_key() {
    let ims = ims();
    for (method, uri) in [
        (Method::POST, "/products"),
        (Method::GET, "/products"),
        (Method::GET, "/products/A"),
        (Method::GET, "/inventory/A"),
        (Method::PUT, "/inventory/A"),
        (Method::POST, "/inventory/A/adjust"),
        (Method::POST, "/inventory/check"),
        (Method::POST, "/internal/messages"),
    ] {
        let r = call(&ims.router, method.clone(), uri, Some("nope"), None, &[]).await;
        assert_eq!((r.status, error_code(&r).as_str()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{method} {uri}");
    }
}

#[tokio::test]
async fn products_are_created_with_zero_stock_and_validated() {
    let ims = ims();
    let r = ims
        .req(
            Method::POST,
            "/products",
            Some(json!({"sku": "TEA-1", "name": "Tea", "price": 4.5, "description": "Green", "image_url": "https://img/tea.png"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["sku"], "TEA-1");
    assert_eq!(r.body["price"], 4.5);
    assert_eq!(r.body["description"], "Green");
    assert!(r.body["created_at"].is_string() && r.body["updated_at"].is_string());

    let got = ims.req(Method::GET, "/products/TEA-1", None).await;
    assert_eq!((got.status, &got.body["quantity"], &got.body["name"]), (StatusCode::OK, &json!(0), &json!("Tea")));
    assert_eq!(ims.req(Method::GET, "/products/NOPE", None).await.status, StatusCode::NOT_FOUND);

    let dup = ims.req(Method::POST, "/products", Some(json!({"sku": "TEA-1", "name": "Tea", "price": 1}))).await;
    assert_eq!((dup.status, error_code(&dup).as_str()), (StatusCode::CONFLICT, "conflict"));
    for bad in [
        json!({"sku": "bad sku", "name": "x", "price": 1}),
        json!({"sku": "OK", "name": "", "price": 1}),
        json!({"sku": "OK", "name": "x", "price": -1}),
        json!({"sku": "OK", "name": "x", "price": 1.234}),
        json!({"sku": "OK", "name": "x"}),
        json!({"sku": "OK", "name": "x", "price": 1, "image_url": "ftp://x"}),
    ] {
        let r = ims.req(Method::POST, "/products", Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        error_code(&r);
    }
}

#[tokio::test]
async fn products_are_listed_in_pages() {
    let ims = ims();
    for sku in ["C", "A", "B"] {
        ims.product(sku, 1.0, 0).await;
    }
    let first = ims.req(Method::GET, "/products?limit=2", None).await;
    let skus: Vec<&str> = first.body["products"].as_array().unwrap().iter().map(|p| p["sku"].as_str().unwrap()).collect();
    assert_eq!(skus, ["A", "B"]);
    let token = first.body["next_token"].as_str().unwrap();
    let second = ims.req(Method::GET, &format!("/products?limit=2&next_token={token}"), None).await;
    assert_eq!(second.body["products"][0]["sku"], "C");
    assert!(second.body.get("next_token").is_none());
    for bad in ["?limit=0", "?limit=101", "?next_token=garbage!"] {
        assert_eq!(ims.req(Method::GET, &format!("/products{bad}"), None).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn stock_is_set_adjusted_and_never_negative() {
    let ims = ims();
    ims.product("NUT", 0.1, 0).await;
    let set = ims.req(Method::PUT, "/inventory/NUT", Some(json!({"quantity": 10}))).await;
    assert_eq!((set.status, &set.body["quantity"]), (StatusCode::OK, &json!(10)));
    let add = ims.req(Method::POST, "/inventory/NUT/adjust", Some(json!({"delta": 5}))).await;
    assert_eq!(add.body["quantity"], 15);
    let remove = ims.req(Method::POST, "/inventory/NUT/adjust", Some(json!({"delta": -15}))).await;
    assert_eq!(remove.body["quantity"], 0);
    let below = ims.req(Method::POST, "/inventory/NUT/adjust", Some(json!({"delta": -1}))).await;
    assert_eq!((below.status, error_code(&below).as_str()), (StatusCode::CONFLICT, "insufficient_stock"));
    assert_eq!(below.body["error"]["details"]["available"], 0);

    let inv = ims.req(Method::GET, "/inventory/NUT", None).await;
    assert_eq!((inv.status, &inv.body["quantity"]), (StatusCode::OK, &json!(0)));
    assert!(inv.body["updated_at"].is_string());

    assert_eq!(ims.req(Method::PUT, "/inventory/NUT", Some(json!({"quantity": -1}))).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(ims.req(Method::PUT, "/inventory/NUT", Some(json!({"qty": 1}))).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(ims.req(Method::PUT, "/inventory/GHOST", Some(json!({"quantity": 1}))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(ims.req(Method::POST, "/inventory/GHOST/adjust", Some(json!({"delta": 1}))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(ims.req(Method::GET, "/inventory/GHOST", None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn availability_check_answers_per_sku() {
    let ims = ims();
    ims.product("A", 1.0, 3).await;
    ims.product("B", 1.0, 0).await;
    let r = ims
        .req(
            Method::POST,
            "/inventory/check",
            Some(json!({"items": [{"sku": "A", "quantity": 3}, {"sku": "B", "quantity": 1}, {"sku": "Z", "quantity": 1}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"A": "AVAILABLE", "B": "UNAVAILABLE", "Z": "UNAVAILABLE"}));
    for bad in [json!({"items": []}), json!({"items": [{"sku": "A", "quantity": 0}]}), json!({})] {
        assert_eq!(ims.req(Method::POST, "/inventory/check", Some(bad.clone())).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn unknown_routes_methods_and_documents() {
    let ims = ims();
    let r = ims.req(Method::GET, "/orders", None).await;
    assert_eq!((r.status, error_code(&r).as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let r = ims.req(Method::DELETE, "/products", None).await;
    assert_eq!((r.status, error_code(&r).as_str()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let doc = call(&ims.router, Method::GET, "/openapi.json", None, None, &[]).await.body;
    for path in ["/products", "/products/{sku}", "/inventory/{sku}", "/inventory/check", "/inventory/{sku}/adjust"] {
        assert!(doc["paths"].get(path).is_some(), "{path} not documented");
    }
    let ready = call(&ims.router, Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!((ready.status, &ready.body["status"]), (StatusCode::OK, &json!("ready")));
}
