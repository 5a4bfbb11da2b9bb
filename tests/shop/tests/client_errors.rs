//! Every client error is a JSON 4xx in the services' error shape, and it comes without waiting
//! for a timeout: also for requests hyper refuses before our code sees them, for a body that
//! never arrives in full, and for a body over the limit. Over real TCP, because these are about
//! what goes over the wire.

use std::sync::Arc;

use salve_common::http::{MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_URI_BYTES};
use salve_common::settings::{Settings, SettingsHandle};
use shop_tests::in_process::{Shop, ShopOptions};
use shop_tests::raw::{RawReply, Then, exchange};

const KEY: &str = "edge-key";

struct Running {
    shop: Shop,
    _dir: tempfile::TempDir,
    _settings: tokio::sync::watch::Sender<Arc<Settings>>,
}

/// A body timeout far below the request timeout: a stalled body must get the first, not the
/// second.
async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (oms_settings, tx) = SettingsHandle::fixed(Settings { body_timeout_ms: 200, request_timeout_ms: 600_000, ..Settings::default() });
    let options = ShopOptions { oms_settings, ..ShopOptions::local(KEY) };
    let shop = Shop::start(dir.path(), options).await.unwrap();
    Running { shop, _dir: dir, _settings: tx }
}

fn request(head: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

/// The JSON error shape, with `status` and `code`.
fn assert_json_error(reply: &RawReply, status: u16, code: &str, what: &str) {
    assert_eq!(reply.status, status, "{what}: {reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"), "{what}: {reply:?}");
    let error = &reply.body["error"];
    assert_eq!(error["code"], code, "{what}: {reply:?}");
    assert!(error["message"].is_string(), "{what}: {reply:?}");
    assert!(error.get("details").is_some(), "{what}: {reply:?}");
}

#[tokio::test]
async fn requests_hyper_refuses_itself_get_json_errors_too() {
    let running = start().await;
    let addr = running.shop.oms_addr;
    let cases = [
        // The `http` crate cannot hold a URI of 64 KiB: hyper answers before any of our code runs.
        ("a 70 KiB URI", format!("GET /orders?customer_id={} HTTP/1.1\r\nhost: shop\r\n\r\n", "c".repeat(70 * 1024)), 414, "uri_too_long"),
        // Beyond hyper's read buffer.
        (
            "a 1 MiB header",
            format!("GET /healthz HTTP/1.1\r\nhost: shop\r\nx-big: {}\r\n\r\n", "b".repeat(1024 * 1024)),
            431,
            "headers_too_large",
        ),
        (
            "150 header fields",
            format!("GET /healthz HTTP/1.1\r\nhost: shop\r\n{}\r\n", (0..150).map(|i| format!("x-h{i}: v\r\n")).collect::<String>()),
            431,
            "headers_too_large",
        ),
        ("a request line that is not HTTP", "GET /healthz NOT-HTTP\r\nhost: shop\r\n\r\n".to_string(), 400, "malformed_request"),
        // Within hyper's limits, over ours.
        ("a 9 KiB URI", format!("GET /healthz?pad={} HTTP/1.1\r\nhost: shop\r\n\r\n", "p".repeat(MAX_URI_BYTES)), 414, "uri_too_long"),
        (
            "17 KiB of header fields",
            format!("GET /healthz HTTP/1.1\r\nhost: shop\r\nx-pad: {}\r\n\r\n", "p".repeat(MAX_HEADER_BYTES)),
            431,
            "headers_too_large",
        ),
    ];
    for (what, head, status, code) in cases {
        let reply = exchange(addr, request(&head, b""), Then::Wait).await.unwrap_or_else(|e| panic!("{what}: {e:#}"));
        assert_json_error(&reply, status, code, what);
    }
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_a_client_error_not_a_timeout() {
    let running = start().await;
    let head = format!(
        "POST /customers HTTP/1.1\r\nhost: shop\r\nx-api-key: {KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
    );
    // The client waits for more it will never send: 408 once body_timeout_ms has passed (the
    // request timeout, 10 minutes here, would have made it a 503).
    let stalled = exchange(running.shop.oms_addr, request(&head, b"{\"name\":\"A"), Then::Wait).await.unwrap();
    assert_json_error(&stalled, 408, "request_timeout", "a stalled body");
    assert_eq!(stalled.body["error"]["details"]["body_timeout_ms"], 200);
    assert_eq!(stalled.header("connection"), Some("close"), "the unread rest makes the connection unusable");
    // The client gives up sending: the body ends early.
    let ended = exchange(running.shop.oms_addr, request(&head, b"{\"name\":\"A"), Then::HalfClose).await.unwrap();
    assert_json_error(&ended, 400, "incomplete_body", "a body cut short");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_whether_declared_or_streamed() {
    let running = start().await;
    let over = vec![b' '; MAX_BODY_BYTES + 1];
    let declared = format!(
        "POST /customers HTTP/1.1\r\nhost: shop\r\nx-api-key: {KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        over.len()
    );
    let reply = exchange(running.shop.oms_addr, request(&declared, &over), Then::Wait).await.unwrap();
    assert_json_error(&reply, 413, "payload_too_large", "a declared over-limit body");

    // Chunked: the size is only known while reading.
    let mut chunked = format!(
        "POST /customers HTTP/1.1\r\nhost: shop\r\nx-api-key: {KEY}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in over.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let reply = exchange(running.shop.oms_addr, chunked, Then::Wait).await.unwrap();
    assert_json_error(&reply, 413, "payload_too_large", "a streamed over-limit body");

    // A well-behaved client (reqwest) reads the answer too.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .post(format!("{}/customers", running.shop.oms_url()))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(over)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");

    // Just under the limit is read and judged on its content.
    let mut within = format!("{{\"name\":\"Ada\",\"email\":\"ada@example.com\",\"address\":\"{}\"}}", "a".repeat(100)).into_bytes();
    within.resize(MAX_BODY_BYTES, b' ');
    let response = client
        .post(format!("{}/customers", running.shop.oms_url()))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(within)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}
