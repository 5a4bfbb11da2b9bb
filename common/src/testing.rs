//! Helpers for tests that drive a service's router in-process (no socket), as axum's own
//! examples do with `oneshot`.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Parsed JSON, `Value::Null` for an empty body, a string for anything else.
    pub body: Value,
}

/// Sends one request; `body` is sent as raw text with a JSON content type.
pub async fn call(router: &Router, method: Method, uri: &str, key: Option<&str>, body: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        request = request.header(crate::auth::API_KEY_HEADER, key);
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).expect("valid test request");
    let response = router.clone().oneshot(request).await.expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply { status, headers, body }
}

/// Asserts the shared JSON error shape and returns its code.
pub fn error_code(reply: &Reply) -> String {
    let error = &reply.body["error"];
    assert!(error["message"].is_string(), "not the JSON error shape: {}", reply.body);
    assert!(error.get("details").is_some(), "error without details: {}", reply.body);
    error["code"].as_str().unwrap_or_default().to_string()
}
