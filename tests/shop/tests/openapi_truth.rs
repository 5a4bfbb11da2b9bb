//! The OpenAPI documents the services serve tell the truth, checked against real answers over
//! real HTTP rather than by reading the document:
//!
//! - every answer to a request for a documented operation has a documented status, a
//!   documented content type and a body the documented schema accepts;
//! - every documented answer is one the services really give (a few are listed as not
//!   reachable from a test, each with its reason);
//! - every method not documented on a documented path is refused (405);
//! - the documents cover the reference contracts in docs/contracts: their operations, their
//!   query parameters (where and whether required), their statuses, and their schemas accept
//!   the same real answers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use salve_common::http::{MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_URI_BYTES};
use salve_common::settings::{RouteFault, Settings, SettingsHandle};
use serde_json::{Value, json};
use shop_tests::in_process::{Shop, ShopOptions};
use shop_tests::raw::{self, RawReply, Then};
use tokio::sync::watch;

const KEY: &str = "doc-key";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Svc {
    Oms,
    Ims,
}

/// One real answer.
#[derive(Debug)]
struct Seen {
    status: u16,
    content_type: Option<String>,
    /// Parsed JSON, `Null` when empty, a string for anything else.
    body: Value,
}

impl Seen {
    async fn from_response(response: reqwest::Response) -> Seen {
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = response.bytes().await.unwrap_or_default();
        Seen { status, content_type, body: parse_body(&bytes) }
    }

    fn from_raw(reply: RawReply) -> Seen {
        let content_type = reply.header("content-type").map(str::to_string);
        Seen { status: reply.status, content_type, body: reply.body }
    }
}

fn parse_body(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// "application/json; charset=utf-8" -> "application/json".
fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// An OpenAPI document, served or a reference contract, as JSON.
struct Doc {
    name: String,
    json: Value,
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

impl Doc {
    fn operations(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (path, item) in self.json["paths"].as_object().into_iter().flatten() {
            for method in METHODS {
                if item.get(method).is_some() {
                    found.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        found
    }

    fn operation(&self, method: &str, path: &str) -> Option<&Value> {
        self.json["paths"].get(path)?.get(method.to_lowercase())
    }

    fn statuses(&self, method: &str, path: &str) -> BTreeSet<u16> {
        let responses = self.operation(method, path).and_then(|op| op["responses"].as_object());
        responses.into_iter().flatten().filter_map(|(status, _)| status.parse().ok()).collect()
    }

    /// The response object for a status, with a `$ref` to components.responses followed.
    fn response(&self, method: &str, path: &str, status: u16) -> Option<Value> {
        let response = self.operation(method, path)?["responses"].get(status.to_string())?;
        match response.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.strip_prefix("#/components/responses/")?;
                self.json["components"]["responses"].get(name).cloned()
            }
            None => Some(response.clone()),
        }
    }

    fn is_public(&self, method: &str, path: &str) -> bool {
        self.operation(method, path).is_some_and(|op| op.get("security") == Some(&json!([])))
    }

    fn takes_body(&self, method: &str, path: &str) -> Option<BTreeSet<String>> {
        let content = self.operation(method, path)?["requestBody"]["content"].as_object()?;
        Some(content.keys().cloned().collect())
    }

    /// Why `seen` is not what this document says `method path` answers, if it is not.
    /// `complete`: the document claims to list every answer (the served one); a reference
    /// contract is only held to the answers it does describe.
    fn disagreement(&self, method: &str, path: &str, seen: &Seen, complete: bool) -> Option<String> {
        let context = format!("{}: {method} {path} answered {} {}", self.name, seen.status, seen.body);
        let Some(response) = self.response(method, path, seen.status) else {
            return complete.then(|| format!("{context}: status not documented"));
        };
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            return (complete && !seen.body.is_null()).then(|| format!("{context}: documented without a body"));
        };
        let actual = seen.content_type.as_deref().map(essence).unwrap_or_default();
        let Some((_, media)) = content.iter().find(|(documented, _)| essence(documented) == actual) else {
            return complete.then(|| format!("{context}: content type {actual:?} not documented"));
        };
        let schema = media.get("schema")?;
        if actual != "application/json" {
            return (!seen.body.is_string()).then(|| format!("{context}: expected text"));
        }
        let errors = schema_errors(&self.json, schema, &seen.body);
        (!errors.is_empty()).then(|| format!("{context}: the documented schema rejects the body: {}", errors.join("; ")))
    }
}

/// Validates against a schema of an OpenAPI document, its `#/components/...` references
/// resolved within that document.
fn schema_errors(doc: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = match jsonschema::options().with_draft(jsonschema::Draft::Draft202012).should_validate_formats(true).build(&root) {
        Ok(validator) => validator,
        Err(e) => return vec![format!("the schema does not compile: {e}")],
    };
    validator.iter_errors(instance).map(|e| format!("{e} (at {})", e.instance_path())).collect()
}

fn load_contract(name: &str) -> Doc {
    let path = format!("{}/../../docs/contracts/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"));
    Doc { name: format!("docs/contracts/{name}.yaml"), json: serde_json::to_value(yaml).expect("YAML maps to JSON") }
}

/// Both services in one process, their settings switchable while they run, and what was
/// answered to which operation.
struct Bench {
    shop: Shop,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
    settings: BTreeMap<Svc, watch::Sender<Arc<Settings>>>,
    served: BTreeMap<Svc, Doc>,
    contracts: BTreeMap<Svc, Doc>,
    /// (service, METHOD, path template, status) of every answer checked.
    seen: BTreeSet<(Svc, String, String, u16)>,
}

impl Bench {
    async fn start() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let (oms_settings, oms_tx) = SettingsHandle::fixed(Settings::default());
        let (ims_settings, ims_tx) = SettingsHandle::fixed(Settings::default());
        let options = ShopOptions { oms_settings, ims_settings, ..ShopOptions::local(KEY) };
        let shop = Shop::start(dir.path(), options).await.unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut served = BTreeMap::new();
        for (svc, url) in [(Svc::Oms, shop.oms_url()), (Svc::Ims, shop.ims_url())] {
            let json: Value = http.get(format!("{url}/openapi.json")).send().await.unwrap().json().await.unwrap();
            served.insert(svc, Doc { name: format!("{svc:?} /openapi.json"), json });
        }
        let contracts = BTreeMap::from([(Svc::Oms, load_contract("oms")), (Svc::Ims, load_contract("ims"))]);
        let settings = BTreeMap::from([(Svc::Oms, oms_tx), (Svc::Ims, ims_tx)]);
        Bench { shop, _dir: dir, http, settings, served, contracts, seen: BTreeSet::new() }
    }

    fn url(&self, svc: Svc) -> String {
        match svc {
            Svc::Oms => self.shop.oms_url(),
            Svc::Ims => self.shop.ims_url(),
        }
    }

    fn addr(&self, svc: Svc) -> std::net::SocketAddr {
        match svc {
            Svc::Oms => self.shop.oms_addr,
            Svc::Ims => self.shop.ims_addr,
        }
    }

    fn set(&self, svc: Svc, settings: Settings) {
        self.settings[&svc].send_replace(Arc::new(settings));
    }

    /// Checks one real answer to `method template` against the served document and the
    /// contract, and records it.
    fn check(&mut self, svc: Svc, method: &str, template: &str, seen: &Seen, expect: u16) {
        assert_eq!(seen.status, expect, "{svc:?} {method} {template}: {}", seen.body);
        if let Some(problem) = self.served[&svc].disagreement(method, template, seen, true) {
            panic!("{problem}");
        }
        if self.contracts[&svc].operation(method, template).is_some()
            && let Some(problem) = self.contracts[&svc].disagreement(method, template, seen, false)
        {
            panic!("{problem}");
        }
        self.seen.insert((svc, method.to_string(), template.to_string(), seen.status));
    }

    /// Sends `request` (built on the service's base URL plus `uri`) and checks the answer.
    async fn send(
        &mut self,
        svc: Svc,
        method: &str,
        template: &str,
        uri: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
        expect: u16,
    ) -> Value {
        let method_value = Method::from_bytes(method.as_bytes()).unwrap();
        let request = build(self.http.request(method_value, format!("{}{uri}", self.url(svc))));
        let seen = Seen::from_response(request.send().await.unwrap()).await;
        self.check(svc, method, template, &seen, expect);
        seen.body
    }

    /// With the API key, and `body` as JSON.
    async fn call(&mut self, svc: Svc, method: &str, template: &str, uri: &str, body: Option<Value>, expect: u16) -> Value {
        self.send(
            svc,
            method,
            template,
            uri,
            |r| {
                let r = r.header("x-api-key", KEY);
                match body {
                    Some(body) => r.json(&body),
                    None => r,
                }
            },
            expect,
        )
        .await
    }

    async fn raw(&mut self, svc: Svc, method: &str, template: &str, request: Vec<u8>, then: Then, expect: u16) {
        let reply = raw::exchange(self.addr(svc), request, then).await.unwrap();
        self.check(svc, method, template, &Seen::from_raw(reply), expect);
    }
}

/// A concrete URI for a template: every `{id}` is 1 (dead-letter ids are integers), `{sku}` a
/// SKU nobody created.
fn instantiate(template: &str) -> String {
    template.replace("{id}", "1").replace("{sku}", "NO-SUCH-SKU")
}

fn truncated_body(method: &str, uri: &str) -> Vec<u8> {
    format!("{method} {uri} HTTP/1.1\r\nhost: shop\r\nx-api-key: {KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"name\":1")
        .into_bytes()
}

/// What the edge answers whatever the operation: no key, URI and header limits, body limits,
/// content type, a body that never arrives in full, injected faults and the request timeout.
async fn probe_every_operation(bench: &mut Bench, svc: Svc) {
    let operations = bench.served[&svc].operations();
    assert!(!operations.is_empty(), "{svc:?} documents no operation");
    let long_query = format!("?pad={}", "p".repeat(MAX_URI_BYTES));
    let big_header = "h".repeat(MAX_HEADER_BYTES);
    for (method, template) in &operations {
        let uri = instantiate(template);
        let public = bench.served[&svc].is_public(method, template);
        if !public {
            bench.send(svc, method, template, &uri, |r| r, 401).await;
        }
        bench.send(svc, method, template, &format!("{uri}{long_query}"), |r| r.header("x-api-key", KEY), 414).await;
        bench.send(svc, method, template, &uri, |r| r.header("x-api-key", KEY).header("x-pad", big_header.as_str()), 431).await;
        let Some(media_types) = bench.served[&svc].takes_body(method, template) else { continue };
        let oversize = vec![b' '; MAX_BODY_BYTES + 1];
        bench
            .send(
                svc,
                method,
                template,
                &uri,
                |r| r.header("x-api-key", KEY).header("content-type", "application/json").body(oversize),
                413,
            )
            .await;
        if media_types.contains("application/json") {
            bench
                .send(svc, method, template, &uri, |r| r.header("x-api-key", KEY).header("content-type", "text/plain").body("{}"), 415)
                .await;
        }
        bench.raw(svc, method, template, truncated_body(method, &uri), Then::HalfClose, 400).await;
    }

    // Short enough to wait for, for a body that never arrives in full.
    bench.set(svc, Settings { body_timeout_ms: 200, ..Settings::default() });
    for (method, template) in &operations {
        if bench.served[&svc].takes_body(method, template).is_some() {
            bench.raw(svc, method, template, truncated_body(method, &instantiate(template)), Then::Wait, 408).await;
        }
    }

    // Faults reach every route behind the API key.
    let protected: Vec<(String, String)> = operations.iter().filter(|(m, t)| !bench.served[&svc].is_public(m, t)).cloned().collect();
    let faults = |fault: RouteFault| {
        let mut settings = Settings::default();
        for (method, template) in &protected {
            settings.faults.routes.insert(format!("{method} {template}"), fault.clone());
        }
        settings
    };
    bench.set(svc, faults(RouteFault { latency_ms: 0, error_rate: 1.0 }));
    for (method, template) in &protected {
        bench.send(svc, method, template, &instantiate(template), |r| r.header("x-api-key", KEY), 500).await;
    }
    bench.set(svc, Settings { request_timeout_ms: 50, ..faults(RouteFault { latency_ms: 2_000, error_rate: 0.0 }) });
    for (method, template) in &protected {
        bench.send(svc, method, template, &instantiate(template), |r| r.header("x-api-key", KEY), 503).await;
    }
    bench.set(svc, Settings::default());

    // Methods the document does not list on a path are not served there.
    let paths: BTreeSet<&String> = operations.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in METHODS.map(str::to_uppercase) {
            if bench.served[&svc].operation(&method, path).is_none() {
                let uri = format!("{}{}", bench.url(svc), instantiate(path));
                let r =
                    bench.http.request(Method::from_bytes(method.as_bytes()).unwrap(), uri).header("x-api-key", KEY).send().await.unwrap();
                assert_eq!(r.status(), 405, "{svc:?} serves undocumented {method} {path}");
            }
        }
    }
}

/// The answers only particular requests get.
async fn probe_business(bench: &mut Bench) {
    use Svc::{Ims, Oms};
    for svc in [Oms, Ims] {
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
            bench.send(svc, "GET", path, path, |r| r, 200).await;
        }
    }

    // IMS: products and stock.
    let tea = json!({"sku": "TEA-1", "name": "Green tea", "price": 4.5, "description": "Sencha"});
    bench.call(Ims, "POST", "/products", "/products", Some(tea.clone()), 201).await;
    bench.call(Ims, "POST", "/products", "/products", Some(tea), 409).await;
    bench.call(Ims, "POST", "/products", "/products", Some(json!({"sku": "bad sku", "name": "x", "price": 1})), 400).await;
    bench.call(Ims, "GET", "/products", "/products", None, 200).await;
    bench.call(Ims, "GET", "/products", "/products?limit=1", None, 200).await;
    bench.call(Ims, "GET", "/products", "/products?limit=0", None, 400).await;
    bench.call(Ims, "GET", "/products/{sku}", "/products/TEA-1", None, 200).await;
    bench.call(Ims, "GET", "/products/{sku}", "/products/NOPE", None, 404).await;
    bench.call(Ims, "PUT", "/inventory/{sku}", "/inventory/TEA-1", Some(json!({"quantity": 5})), 200).await;
    bench.call(Ims, "PUT", "/inventory/{sku}", "/inventory/TEA-1", Some(json!({"quantity": -1})), 400).await;
    bench.call(Ims, "PUT", "/inventory/{sku}", "/inventory/NOPE", Some(json!({"quantity": 1})), 404).await;
    bench.call(Ims, "GET", "/inventory/{sku}", "/inventory/TEA-1", None, 200).await;
    bench.call(Ims, "GET", "/inventory/{sku}", "/inventory/NOPE", None, 404).await;
    bench.call(Ims, "POST", "/inventory/{sku}/adjust", "/inventory/TEA-1/adjust", Some(json!({"delta": 1})), 200).await;
    bench.call(Ims, "POST", "/inventory/{sku}/adjust", "/inventory/TEA-1/adjust", Some(json!({"delta": -100})), 409).await;
    bench.call(Ims, "POST", "/inventory/{sku}/adjust", "/inventory/NOPE/adjust", Some(json!({"delta": 1})), 404).await;
    bench.call(Ims, "POST", "/inventory/{sku}/adjust", "/inventory/bad%20sku/adjust", Some(json!({"delta": 1})), 400).await;
    let check = json!({"items": [{"sku": "TEA-1", "quantity": 1}, {"sku": "NOPE", "quantity": 1}]});
    bench.call(Ims, "POST", "/inventory/check", "/inventory/check", Some(check), 200).await;
    bench.call(Ims, "POST", "/inventory/check", "/inventory/check", Some(json!({"items": []})), 400).await;

    // OMS: customers and orders.
    let customer = bench.call(Oms, "POST", "/customers", "/customers", Some(json!({"name": "Ada", "email": "ada@example.com"})), 201).await;
    let customer = customer["id"].as_str().unwrap().to_string();
    bench.call(Oms, "POST", "/customers", "/customers", Some(json!({"name": "Ada", "email": "nope"})), 400).await;
    bench.call(Oms, "GET", "/customers/{id}", &format!("/customers/{customer}"), None, 200).await;
    bench.call(Oms, "GET", "/customers/{id}", "/customers/nobody", None, 404).await;
    let order = json!({"customer_id": customer, "items": [{"sku": "TEA-1", "quantity": 1}]});
    let placed = bench
        .send(Oms, "POST", "/orders", "/orders", |r| r.header("x-api-key", KEY).header("idempotency-key", "k-1").json(&order), 201)
        .await;
    let order_id = placed["order_id"].as_str().unwrap().to_string();
    let other = json!({"customer_id": customer, "items": [{"sku": "TEA-1", "quantity": 2}]});
    bench.send(Oms, "POST", "/orders", "/orders", |r| r.header("x-api-key", KEY).header("idempotency-key", "k-1").json(&other), 422).await;
    bench.call(Oms, "POST", "/orders", "/orders", Some(json!({"customer_id": customer, "items": []})), 400).await;
    bench.call(Oms, "GET", "/orders", &format!("/orders?customer_id={customer}&status=PENDING_INVENTORY&limit=5"), None, 200).await;
    bench.call(Oms, "GET", "/orders", "/orders", None, 400).await;
    bench.call(Oms, "GET", "/orders/{id}", &format!("/orders/{order_id}"), None, 200).await;
    bench.call(Oms, "GET", "/orders/{id}", "/orders/nothing", None, 404).await;
    bench.call(Oms, "DELETE", "/orders/{id}", &format!("/orders/{order_id}"), None, 204).await;
    bench.call(Oms, "DELETE", "/orders/{id}", &format!("/orders/{order_id}"), None, 404).await;

    // Both: the inbox and the dead letters.
    let answers = [
        (Oms, json!({"message_id": "m-oms", "type": "InventoryReserved", "order_id": "gone", "timestamp": "2026-01-01T00:00:00Z"})),
        (Ims, json!({"message_id": "m-ims", "type": "ReleaseInventory", "order_id": "gone", "timestamp": "2026-01-01T00:00:00Z"})),
    ];
    for (svc, message) in answers {
        let inbox = "/internal/messages";
        bench.send(svc, "POST", inbox, inbox, |r| r.header("x-api-key", KEY).body(message.to_string()), 200).await;
        bench.send(svc, "POST", inbox, inbox, |r| r.header("x-api-key", KEY).body("not a message"), 202).await;
        let listed = bench.call(svc, "GET", "/admin/dead-letters", "/admin/dead-letters", None, 200).await;
        bench.call(svc, "GET", "/admin/dead-letters", "/admin/dead-letters?limit=0", None, 400).await;
        let unreadable = listed["dead_letters"][0]["id"].as_i64().unwrap();
        let redrive = "/admin/dead-letters/{id}/redrive";
        bench.call(svc, "POST", redrive, &format!("/admin/dead-letters/{unreadable}/redrive"), None, 422).await;
        bench.call(svc, "POST", redrive, "/admin/dead-letters/999999/redrive", None, 404).await;
        bench.call(svc, "POST", redrive, "/admin/dead-letters/x/redrive", None, 400).await;
        bench.call(svc, "DELETE", "/admin/dead-letters/{id}", &format!("/admin/dead-letters/{unreadable}"), None, 204).await;
        bench.call(svc, "DELETE", "/admin/dead-letters/{id}", &format!("/admin/dead-letters/{unreadable}"), None, 404).await;
        bench.call(svc, "DELETE", "/admin/dead-letters/{id}", "/admin/dead-letters/x", None, 400).await;

        // A readable message kept aside (as an older release might have) goes through on redrive.
        let runtime = match svc {
            Oms => &bench.shop.oms.runtime,
            Ims => &bench.shop.ims.runtime,
        };
        let store = runtime.dead_letters.clone().expect("the embedded default keeps dead letters");
        let readable = json!({"message_id": format!("kept-{svc:?}"), "type": if svc == Oms { "InventoryReserved" } else { "ReleaseInventory" },
            "order_id": "gone", "timestamp": "2026-01-01T00:00:00Z"});
        store.store(&readable.to_string(), None, "kept for the test", chrono::Utc::now()).await.unwrap();
        let listed = bench.call(svc, "GET", "/admin/dead-letters", "/admin/dead-letters", None, 200).await;
        let kept = listed["dead_letters"][0]["id"].as_i64().unwrap();
        bench.call(svc, "POST", redrive, &format!("/admin/dead-letters/{kept}/redrive"), None, 200).await;
    }
}

/// /readyz fails when a message waits too long: each service's replies wait while the other
/// refuses its messages.
async fn probe_stuck_outboxes(bench: &mut Bench) {
    let stuck = Settings { outbox_stuck_after_secs: 1, ..Settings::default() };
    let mut paused = Settings { outbox_stuck_after_secs: 1, ..Settings::default() };
    paused.faults.consumer_paused = true;
    let client = shop_tests::client::ShopClient::new(&bench.shop.oms_url(), &bench.shop.ims_url(), KEY);
    client.product_with_stock("MUG-1", "Mug", 7.0, 10).await.unwrap();
    let customer = client.customer("Lin", "lin@example.com").await.unwrap();

    // OMS refuses messages: IMS's answer to the reservation waits in IMS's outbox.
    bench.set(Svc::Oms, paused.clone());
    bench.set(Svc::Ims, stuck);
    client.order(&customer, &[("MUG-1", 1)]).await.unwrap();
    wait_unready(bench, Svc::Ims).await;
    // Both refuse: the next reservation waits in OMS's outbox.
    bench.set(Svc::Ims, paused);
    client.order(&customer, &[("MUG-1", 1)]).await.unwrap();
    wait_unready(bench, Svc::Oms).await;
    bench.set(Svc::Oms, Settings::default());
    bench.set(Svc::Ims, Settings::default());
}

async fn wait_unready(bench: &mut Bench, svc: Svc) {
    // A bound only so that a broken build fails instead of hanging; the wait is about 1 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        let response = bench.http.get(format!("{}/readyz", bench.url(svc))).send().await.unwrap();
        let seen = Seen::from_response(response).await;
        let status = seen.status;
        bench.check(svc, "GET", "/readyz", &seen, status);
        if status == 503 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{svc:?} /readyz never reported its stuck outbox");
}

/// Documented answers a test cannot provoke, with the reason.
const NOT_PROVOKED: &[(&str, &str, u16, &str)] = &[
    ("GET", "/healthz", 503, "only when the process cannot answer within request_timeout_ms; no fault switch reaches it"),
    ("GET", "/metrics", 503, "as /healthz"),
    ("GET", "/openapi.json", 503, "as /healthz"),
];

#[tokio::test]
async fn every_real_answer_is_documented_and_every_documented_answer_is_real() {
    let mut bench = Bench::start().await;
    probe_business(&mut bench).await;
    probe_stuck_outboxes(&mut bench).await;
    for svc in [Svc::Oms, Svc::Ims] {
        probe_every_operation(&mut bench, svc).await;
    }

    let mut never_seen = Vec::new();
    for svc in [Svc::Oms, Svc::Ims] {
        for (method, path) in bench.served[&svc].operations() {
            for status in bench.served[&svc].statuses(&method, &path) {
                let exempt = NOT_PROVOKED.iter().any(|(m, p, s, _)| (*m, *p, *s) == (method.as_str(), path.as_str(), status));
                if !exempt && !bench.seen.contains(&(svc, method.clone(), path.clone(), status)) {
                    never_seen.push(format!("{svc:?} {method} {path} {status}"));
                }
            }
        }
    }
    assert!(never_seen.is_empty(), "documented but never answered:\n{}", never_seen.join("\n"));
}

/// Operations the services serve beyond the reference contracts.
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("oms", "POST", "/customers"),
    ("oms", "GET", "/customers/{id}"),
    ("ims", "PUT", "/inventory/{sku}"),
    ("ims", "POST", "/inventory/{sku}/adjust"),
    ("*", "GET", "/healthz"),
    ("*", "GET", "/readyz"),
    ("*", "GET", "/metrics"),
    ("*", "GET", "/openapi.json"),
    ("*", "POST", "/internal/messages"),
    ("*", "GET", "/admin/dead-letters"),
    ("*", "DELETE", "/admin/dead-letters/{id}"),
    ("*", "POST", "/admin/dead-letters/{id}/redrive"),
];

/// Statuses the contracts list that the services never send, with the reason.
const NOT_SENT: &[(u16, &str)] = &[(429, "the services do not rate-limit; a gateway in front of them may")];

#[tokio::test]
async fn the_served_documents_cover_the_reference_contracts() {
    let bench = Bench::start().await;
    for (svc, name) in [(Svc::Oms, "oms"), (Svc::Ims, "ims")] {
        let (served, contract) = (&bench.served[&svc], &bench.contracts[&svc]);
        let served_ops: BTreeSet<(String, String)> = served.operations().into_iter().collect();
        let contract_ops: BTreeSet<(String, String)> = contract.operations().into_iter().collect();
        let missing: Vec<_> = contract_ops.difference(&served_ops).collect();
        assert!(missing.is_empty(), "{name}: in the contract, not served: {missing:?}");
        let extra: Vec<_> = served_ops
            .difference(&contract_ops)
            .filter(|(m, p)| !EXTENSIONS.iter().any(|(s, em, ep)| (*s == name || *s == "*") && em == m && ep == p))
            .collect();
        assert!(extra.is_empty(), "{name}: served but neither in the contract nor a known extension: {extra:?}");

        for (method, path) in &contract_ops {
            let op = format!("{name} {method} {path}");
            let statuses = served.statuses(method, path);
            for status in contract.statuses(method, path) {
                if !statuses.contains(&status) && !NOT_SENT.iter().any(|(s, _)| *s == status) {
                    panic!("{op}: the contract lists {status}, the served document does not");
                }
            }
            for status in served.statuses(method, path).into_iter().filter(|s| (200..300).contains(s)) {
                assert!(contract.statuses(method, path).contains(&status), "{op}: success {status} is not the contract's");
            }
            let params = |doc: &Doc| -> BTreeMap<String, (String, bool)> {
                let list = doc.operation(method, path).and_then(|o| o["parameters"].as_array()).cloned().unwrap_or_default();
                list.iter()
                    .map(|p| {
                        let name = p["name"].as_str().unwrap_or_default().to_string();
                        (name, (p["in"].as_str().unwrap_or_default().to_string(), p["required"].as_bool().unwrap_or(false)))
                    })
                    .collect()
            };
            let served_params = params(served);
            for (param, wanted) in params(contract) {
                assert_eq!(served_params.get(&param), Some(&wanted), "{op}: parameter {param} (in, required)");
            }
        }
    }
}
