//! Logs (JSON in production) and optional OTLP traces. Reconcile spans from kube-runtime and
//! our own `tracing` spans are exported when `--otlp-endpoint` is set.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::domain::redact::redact_text;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("tracing subscriber: {0}")]
    Init(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the trace pipeline alive; `shutdown` flushes pending spans.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            eprintln!("OTLP shutdown: {e}");
        }
    }
}

/// OTLP/HTTP trace pipeline to `endpoint` (e.g. `http://otel-collector:4318/v1/traces`).
pub fn tracer_provider(endpoint: &str, service: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_endpoint(endpoint).build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service.to_string()).build())
        .build())
}

/// Installs the global subscriber: `json` or text logs, plus OTLP when an endpoint is given.
pub fn init(log_format: &str, otlp_endpoint: Option<&str>) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    // Colour only for a person at a terminal: never in files, pipes or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none();
    let out = Redacting(std::io::stdout);
    let fmt = if log_format == "json" {
        tracing_subscriber::fmt::layer().json().with_writer(out).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(out).boxed()
    };
    let provider = otlp_endpoint.map(|e| tracer_provider(e, "salve-operator")).transpose()?;
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("salve-operator")));
    tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init()?;
    Ok(Telemetry { provider })
}

/// The logs' place in the outbound gate: every formatted log line, whoever wrote it (our code,
/// kube-rs, the AWS SDK), is masked before it reaches `W`. Wraps any `MakeWriter`.
#[derive(Clone, Debug)]
pub struct Redacting<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter { inner: self.0.make_writer(), buf: Vec::new() }
    }
}

/// Collects one event's formatted text and writes it masked when the event is done (the
/// formatter makes one writer per event), so a secret split over two writes is still seen whole.
pub struct RedactingWriter<W: std::io::Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: std::io::Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let masked = redact_text(&text);
        // A log line that cannot be written is lost, as with the plain writer.
        let _ = self.inner.write_all(masked.as_bytes());
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_are_masked_before_they_are_written() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt().json().with_writer(Redacting(move || sink.clone())).finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(url = "postgres://oms:hunter2@db/shop", "calling with Authorization: Bearer abcdef123456");
        });
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(!text.contains("hunter2") && !text.contains("abcdef123456"), "{text}");
        assert!(text.contains("postgres://oms:[REDACTED:url-password]@db/shop"), "{text}");
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("still one JSON line");
        assert_eq!(line["level"], "WARN");
    }
}
