//! Prometheus metrics common to both services. Each service owns one registry (so two services
//! in one process never mix their numbers) and adds its own business metrics to it.

use prometheus::{Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    pub messages_sent: IntCounterVec,
    pub messages_received: IntCounterVec,
    pub outbox_depth: IntGauge,
    pub outbox_oldest_age_seconds: Gauge,
}

impl Metrics {
    pub fn new(service: &str) -> Metrics {
        let registry = Registry::new_custom(Some(service.to_string()), None).unwrap_or_default();
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by method, route and status"),
            &["method", "route", "status"],
        )
        .expect("static metric definition");
        let http_latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by method and route")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["method", "route"],
        )
        .expect("static metric definition");
        let messages_sent =
            IntCounterVec::new(Opts::new("messages_sent_total", "Outbox deliveries by message type and outcome"), &["type", "outcome"])
                .expect("static metric definition");
        let messages_received = IntCounterVec::new(
            Opts::new("messages_received_total", "Inbox messages by outcome (processed, duplicate, dead_lettered, refused)"),
            &["outcome"],
        )
        .expect("static metric definition");
        let outbox_depth =
            IntGauge::new("outbox_depth", "Messages waiting in the outbox (counted up to 100,000 on SQLite, 1,000 on DynamoDB)")
                .expect("static metric definition");
        let outbox_oldest_age_seconds =
            Gauge::new("outbox_oldest_age_seconds", "Age of the oldest undelivered message").expect("static metric definition");
        let metrics =
            Metrics { registry, http_requests, http_latency, messages_sent, messages_received, outbox_depth, outbox_oldest_age_seconds };
        metrics.register(Box::new(metrics.http_requests.clone()));
        metrics.register(Box::new(metrics.http_latency.clone()));
        metrics.register(Box::new(metrics.messages_sent.clone()));
        metrics.register(Box::new(metrics.messages_received.clone()));
        metrics.register(Box::new(metrics.outbox_depth.clone()));
        metrics.register(Box::new(metrics.outbox_oldest_age_seconds.clone()));
        metrics
    }

    /// Registration only fails on a duplicate name, which is a programming error caught by tests.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(collector) {
            tracing::error!(error = %e, "metric registration failed");
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
