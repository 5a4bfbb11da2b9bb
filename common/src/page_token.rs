//! Opaque pagination tokens: base64url of a small JSON cursor. Clients must treat them as
//! opaque; a token that does not decode is a 400, never a silent restart from page one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub fn encode<C: Serialize>(cursor: &C) -> String {
    // Serializing a plain struct of strings cannot fail.
    let json = serde_json::to_vec(cursor).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

pub fn decode<C: DeserializeOwned>(token: &str) -> Result<C, ApiError> {
    let bytes =
        URL_SAFE_NO_PAD.decode(token.as_bytes()).map_err(|_| ApiError::bad_request("next_token is not a valid pagination token"))?;
    serde_json::from_slice(&bytes).map_err(|_| ApiError::bad_request("next_token is not a valid pagination token"))
}

/// `limit` query parameter: default 20, 1..=100.
pub fn check_limit(limit: Option<i64>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(20),
        Some(n) if (1..=100).contains(&n) => Ok(n as u32),
        Some(n) => Err(ApiError::bad_request(format!("limit must be between 1 and 100, got {n}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Cursor {
        created_at: String,
        id: String,
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let c = Cursor { created_at: "2026-01-01T00:00:00.000000Z".into(), id: "o1".into() };
        let token = encode(&c);
        assert_eq!(decode::<Cursor>(&token).unwrap(), c);
        assert_eq!(decode::<Cursor>("!!!").unwrap_err().status, axum::http::StatusCode::BAD_REQUEST);
        assert!(decode::<Cursor>(&URL_SAFE_NO_PAD.encode(b"{}")).is_err());
    }

    #[test]
    fn limit_bounds() {
        assert_eq!(check_limit(None).unwrap(), 20);
        assert_eq!(check_limit(Some(100)).unwrap(), 100);
        assert!(check_limit(Some(0)).is_err());
        assert!(check_limit(Some(101)).is_err());
    }
}
