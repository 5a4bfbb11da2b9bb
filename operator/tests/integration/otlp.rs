//! OTLP traces reach a collector: a local HTTP endpoint stands in for the OpenTelemetry
//! Collector and records what the exporter posts.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use opentelemetry::trace::{Tracer, TracerProvider};

type Seen = Arc<Mutex<Vec<(String, usize)>>>;

async fn collect(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> &'static str {
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    seen.lock().unwrap_or_else(|e| e.into_inner()).push((ct, body.len()));
    ""
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_http() {
    let seen: Seen = Arc::default();
    let app = Router::new().route("/v1/traces", post(collect)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let provider = operator::telemetry::tracer_provider(&format!("http://{addr}/v1/traces"), "salve-operator-test").expect("provider");
    provider.tracer("test").in_span("reconcile incident", |_| {});
    // Shutdown flushes the batch; it blocks, so keep it off the async workers.
    tokio::task::spawn_blocking(move || provider.shutdown()).await.expect("join").expect("flush");

    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(!seen.is_empty(), "the collector received the span");
    assert_eq!(seen[0].0, "application/x-protobuf");
    assert!(seen[0].1 > 0);
}
