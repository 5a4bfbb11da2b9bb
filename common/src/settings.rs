//! Runtime settings: a TOML file the service re-reads when it changes.
//!
//! In Kubernetes the file is a mounted ConfigMap, which the kubelet swaps through a symlink;
//! polling the file's content catches that reliably where file-system events often do not.
//! A file that does not parse or validate is rejected with a logged error and the previous
//! settings stay in force. At start-up an invalid file is fatal: better a crash loop an
//! operator can see than a service running on settings nobody asked for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// A request that takes longer is answered 503 and its work abandoned.
    pub request_timeout_ms: u64,
    /// A request body not fully received within this long is answered 408: a client that sends
    /// less than its Content-Length hears so at once, instead of waiting for the request timeout.
    pub body_timeout_ms: u64,
    /// Read connections to the service's database.
    pub pool_size: usize,
    /// /readyz fails when the oldest undelivered message is older than this.
    pub outbox_stuck_after_secs: u64,
    pub faults: Faults,
}

/// Switches for demos and tests: they make the service misbehave on purpose.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Keyed by "METHOD /route/template", e.g. "POST /orders".
    pub routes: BTreeMap<String, RouteFault>,
    /// Extra time before each incoming message is processed.
    pub message_delay_ms: u64,
    /// The inbox refuses messages (503), so they pile up in the sender's outbox.
    pub consumer_paused: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteFault {
    pub latency_ms: u64,
    /// Share of requests answered 500, 0.0..=1.0.
    pub error_rate: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self { request_timeout_ms: 10_000, body_timeout_ms: 5_000, pool_size: 8, outbox_stuck_after_secs: 120, faults: Faults::default() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid settings in {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl Settings {
    pub fn parse(text: &str) -> Result<Settings, String> {
        let settings: Settings = toml::from_str(text).map_err(|e| e.to_string())?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), String> {
        if !(1..=600_000).contains(&self.request_timeout_ms) {
            return Err("request_timeout_ms must be 1..=600000".into());
        }
        if !(1..=600_000).contains(&self.body_timeout_ms) {
            return Err("body_timeout_ms must be 1..=600000".into());
        }
        if !(1..=64).contains(&self.pool_size) {
            return Err("pool_size must be 1..=64".into());
        }
        if self.outbox_stuck_after_secs == 0 {
            return Err("outbox_stuck_after_secs must be > 0".into());
        }
        for (route, fault) in &self.faults.routes {
            if !(0.0..=1.0).contains(&fault.error_rate) {
                return Err(format!("faults.routes.\"{route}\".error_rate must be within 0.0..=1.0"));
            }
            if route.split_once(' ').is_none_or(|(m, p)| m.is_empty() || !p.starts_with('/')) {
                return Err(format!("faults.routes key \"{route}\" must look like \"POST /orders\""));
            }
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read { path: path.into(), source })?;
        Settings::parse(&text).map_err(|reason| SettingsError::Invalid { path: path.into(), reason })
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }
}

/// Read side handed to every component; cheap to clone.
#[derive(Clone)]
pub struct SettingsHandle(watch::Receiver<Arc<Settings>>);

impl SettingsHandle {
    pub fn current(&self) -> Arc<Settings> {
        self.0.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Settings>> {
        self.0.clone()
    }

    /// Fixed settings, for tests and for services started without a file.
    pub fn fixed(settings: Settings) -> (SettingsHandle, watch::Sender<Arc<Settings>>) {
        let (tx, rx) = watch::channel(Arc::new(settings));
        (SettingsHandle(rx), tx)
    }
}

/// Loads the file (if any) and, while `stop` is not cancelled, re-reads it every `every`.
pub fn watch_file(path: Option<PathBuf>, every: Duration, stop: CancellationToken) -> Result<SettingsHandle, SettingsError> {
    let Some(path) = path else { return Ok(SettingsHandle::fixed(Settings::default()).0) };
    let text = std::fs::read_to_string(&path).map_err(|source| SettingsError::Read { path: path.clone(), source })?;
    let initial = Settings::parse(&text).map_err(|reason| SettingsError::Invalid { path: path.clone(), reason })?;
    let (handle, tx) = SettingsHandle::fixed(initial);
    // The text just loaded is the baseline: a change made before the reloader first runs is
    // still seen as a change.
    tokio::spawn(reload_loop(path, text, every, tx, stop));
    Ok(handle)
}

async fn reload_loop(path: PathBuf, loaded: String, every: Duration, tx: watch::Sender<Arc<Settings>>, stop: CancellationToken) {
    let mut last_text = Some(loaded);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            Err(e) => {
                if last_text.is_some() {
                    tracing::error!(path = %path.display(), error = %e, "settings file unreadable; keeping previous settings");
                    last_text = None;
                }
                continue;
            }
        };
        if last_text.as_deref() == Some(text.as_str()) {
            continue;
        }
        // A file written in place (`>` in a shell, most editors, `std::fs::write`) is first
        // truncated, then filled: a read in between sees an empty or partial file, and an empty
        // one parses as all defaults. So a change counts only once a second read a moment later
        // finds the same text. (A mounted ConfigMap is swapped atomically by the kubelet and
        // never shows half-written; this is for files edited on a host.)
        tokio::time::sleep((every / 4).min(Duration::from_millis(100))).await;
        match tokio::fs::read_to_string(&path).await {
            Ok(again) if again == text => {}
            // Still being written, or gone again: the next poll looks afresh.
            _ => continue,
        }
        last_text = Some(text.clone());
        match Settings::parse(&text) {
            Ok(new) => {
                tracing::info!(path = %path.display(), settings = ?new, "settings reloaded");
                tx.send_replace(Arc::new(new));
            }
            Err(reason) => {
                tracing::error!(path = %path.display(), %reason, "settings file rejected; keeping previous settings");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let s = Settings::parse(
            r#"
            request_timeout_ms = 500
            body_timeout_ms = 200
            pool_size = 2
            [faults]
            message_delay_ms = 50
            consumer_paused = true
            [faults.routes."POST /orders"]
            latency_ms = 20
            error_rate = 0.5
            "#,
        )
        .unwrap();
        assert_eq!(s.request_timeout_ms, 500);
        assert_eq!(s.body_timeout_ms, 200);
        assert_eq!(s.pool_size, 2);
        assert!(s.faults.consumer_paused);
        assert_eq!(s.faults.routes["POST /orders"].error_rate, 0.5);
    }

    #[test]
    fn rejects_invalid_values_and_unknown_keys() {
        assert!(Settings::parse("pool_size = 0").is_err());
        assert!(Settings::parse("body_timeout_ms = 0").is_err());
        assert!(Settings::parse("pool_sise = 3").is_err());
        assert!(Settings::parse("[faults.routes.\"POST /orders\"]\nerror_rate = 2.0").is_err());
        assert!(Settings::parse("[faults.routes.\"orders\"]\nerror_rate = 0.1").is_err());
        assert!(Settings::parse("request_timeout_ms = \"fast\"").is_err());
        assert_eq!(Settings::parse("").unwrap(), Settings::default());
    }

    #[tokio::test]
    async fn reloads_valid_changes_and_keeps_previous_on_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "pool_size = 3").unwrap();
        let stop = CancellationToken::new();
        let handle = watch_file(Some(path.clone()), Duration::from_millis(20), stop.clone()).unwrap();
        assert_eq!(handle.current().pool_size, 3);
        let mut changes = handle.subscribe();

        std::fs::write(&path, "pool_size = 5").unwrap();
        changes.changed().await.unwrap();
        assert_eq!(handle.current().pool_size, 5);

        std::fs::write(&path, "pool_size = -1").unwrap();
        // Give the reloader several polls to (wrongly) apply the invalid file, then a valid one.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(handle.current().pool_size, 5, "invalid file must not replace the settings");
        // `fs::write` truncates first: a poll in between once applied the empty file (all
        // defaults, pool_size 8) and this saw 8. A change now counts only when read twice.
        std::fs::write(&path, "pool_size = 7").unwrap();
        changes.changed().await.unwrap();
        assert_eq!(handle.current().pool_size, 7);
        stop.cancel();
    }

    #[test]
    fn invalid_file_at_start_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "pool_size = 1000").unwrap();
        assert!(matches!(Settings::load(&path), Err(SettingsError::Invalid { .. })));
    }
}
