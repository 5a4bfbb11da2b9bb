//! Process start-up shared by every binary: one rustls crypto provider and tracing logs.

/// kube and the AWS SDK each pull in rustls; with two providers compiled in, rustls refuses to
/// pick one and panics at the first TLS connection. Installing aws-lc-rs first settles it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// JSON logs for production, readable text for a terminal. `RUST_LOG` filters.
pub fn init_logging(json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only where a terminal renders them: in a file, a pipe or a log collector
    // they are noise that breaks grep. NO_COLOR (https://no-color.org) is honoured too.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}
