//! The generic webhook's signature: header `X-Salve-Signature: t=<unix seconds>,v1=<hex>` where
//! `v1` is HMAC-SHA256 over `<t>.<body>` with the shared secret. A receiver recomputes it,
//! compares in constant time and rejects old timestamps (replays).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const HEADER: &str = "X-Salve-Signature";

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    Some(m)
}

/// The header value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let hex: String =
        mac(secret, timestamp, body).map(|m| m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()).unwrap_or_default();
    format!("t={timestamp},v1={hex}")
}

/// A receiver's check (constant-time), for tests and as the reference for users.
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let bytes: Option<Vec<u8>> = (0..v1.len()).step_by(2).map(|i| v1.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    match (mac(secret, t, body), bytes) {
        (Some(m), Some(b)) => m.verify_slice(&b).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_the_same_secret_time_and_body() {
        let h = sign(b"s3cret", 1_800_000_000, b"{\"a\":1}");
        assert!(h.starts_with("t=1800000000,v1="));
        assert!(verify(b"s3cret", &h, b"{\"a\":1}"));
        assert!(!verify(b"other", &h, b"{\"a\":1}"));
        assert!(!verify(b"s3cret", &h, b"{\"a\":2}"));
        assert!(!verify(b"s3cret", &h.replace("t=1800000000", "t=1800000001"), b"{\"a\":1}"));
    }
}
