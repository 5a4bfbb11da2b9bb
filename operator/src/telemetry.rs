//! Logs (JSON in production) and optional OTLP traces. Reconcile spans from kube-runtime and
//! our own `tracing` spans are exported when `--otlp-endpoint` is set.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

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
    let fmt = if log_format == "json" {
        tracing_subscriber::fmt::layer().json().boxed()
    } else {
        tracing_subscriber::fmt::layer().with_ansi(ansi).boxed()
    };
    let provider = otlp_endpoint.map(|e| tracer_provider(e, "salve-operator")).transpose()?;
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("salve-operator")));
    tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init()?;
    Ok(Telemetry { provider })
}
