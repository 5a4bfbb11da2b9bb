//! Process start-up shared by every binary: one rustls crypto provider and tracing logs.

/// kube and the AWS SDK each pull in rustls; with two providers compiled in, rustls refuses to
/// pick one and panics at the first TLS connection. Installing aws-lc-rs first settles it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// JSON logs for production, readable text for a terminal. `RUST_LOG` filters.
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}
