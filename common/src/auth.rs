//! `x-api-key` check for every business route.
//!
//! Keys are compared as SHA-256 digests with a constant-time equality, and every configured key
//! is compared on every request, so neither the length nor the position of a key leaks through
//! response timing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

pub const API_KEY_HEADER: &str = "x-api-key";
/// The key both services accept out of the box, for local use only.
pub const DEV_KEY: &str = "dev-key";

#[derive(Clone)]
pub struct ApiKeys {
    digests: Arc<Vec<[u8; 32]>>,
    /// The key this service presents when it calls the other service.
    outbound: Option<String>,
}

impl std::fmt::Debug for ApiKeys {
    // Never print keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} configured)", self.digests.len())
    }
}

impl ApiKeys {
    /// Parses the comma-separated `SALVE_API_KEYS` value; blanks are ignored.
    pub fn from_csv(csv: &str) -> Self {
        let keys: Vec<&str> = csv.split(',').map(str::trim).filter(|k| !k.is_empty()).collect();
        Self { digests: Arc::new(keys.iter().map(|k| digest(k)).collect()), outbound: keys.first().map(|k| k.to_string()) }
    }

    /// From the process configuration: at least one key; the development default is allowed
    /// but called out in the log.
    pub fn from_config(csv: &str) -> Result<Self, String> {
        let keys = Self::from_csv(csv);
        if keys.is_empty() {
            return Err("SALVE_API_KEYS must name at least one key".into());
        }
        if csv.trim() == DEV_KEY {
            tracing::warn!("using the default API key '{DEV_KEY}'; set SALVE_API_KEYS outside development");
        }
        Ok(keys)
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn outbound_key(&self) -> Option<&str> {
        self.outbound.as_deref()
    }

    pub fn accepts(&self, presented: &str) -> bool {
        let presented = digest(presented);
        let mut matched = subtle::Choice::from(0);
        for known in self.digests.iter() {
            matched |= known.ct_eq(&presented);
        }
        matched.into()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Middleware: 401 with the JSON error shape unless the request carries an accepted key.
pub async fn require_api_key(State(keys): State<ApiKeys>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    match presented {
        Some(key) if keys.accepts(key) => next.run(request).await,
        _ => ApiError::unauthorized().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_configured_key_and_nothing_else() {
        let keys = ApiKeys::from_csv(" alpha, beta ,,");
        assert!(keys.accepts("alpha"));
        assert!(keys.accepts("beta"));
        assert!(!keys.accepts("gamma"));
        assert!(!keys.accepts(""));
        assert!(!keys.accepts("alph"));
        assert_eq!(keys.outbound_key(), Some("alpha"));
    }

    #[test]
    fn debug_output_never_shows_keys() {
        let keys = ApiKeys::from_csv("secret-value");
        assert!(!format!("{keys:?}").contains("secret"));
    }
}
