//! Names that make intake idempotent. Pure.
//!
//! An Incident's name is derived from what it is about (the alarm, the state-change time), so a
//! redelivered or duplicated message names the same Incident and its create answers 409. The
//! alarm label lets the alarm's OK transition find the Incidents it opened.

use sha2::{Digest, Sha256};

/// Label on every Incident intake creates: a hash of the alarm's identity (ARN, or
/// Alertmanager alert name + fingerprint). Label values cannot hold an ARN, hence the hash.
pub const ALARM_LABEL: &str = "salve.dev/alarm";

const MAX_NAME: usize = 63;
const HASH_CHARS: usize = 10;

fn hex_digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The `salve.dev/alarm` label value for an alarm identity (32 hex characters).
pub fn alarm_key(identity: &str) -> String {
    hex_digest(&[identity])[..32].to_string()
}

/// DNS-1123 name of at most 63 characters: a readable slug of `readable` (the alarm name) and a
/// short hash of the alarm's identity and the state-change time.
pub fn incident_name(readable: &str, identity: &str, state_change_time: &str) -> String {
    let hash = &hex_digest(&[identity, state_change_time])[..HASH_CHARS];
    let mut slug = String::new();
    for c in readable.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(MAX_NAME - HASH_CHARS - 1);
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "alarm" } else { slug };
    format!("{slug}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_dns1123(s: &str) -> bool {
        s.len() <= 63
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    }

    #[test]
    fn names_are_readable_stable_and_distinct() {
        let arn = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:OMS 5xx";
        let a = incident_name("OMS 5xx (prod)", arn, "2026-11-21T19:56:10.708Z");
        assert!(a.starts_with("oms-5xx-prod-"), "{a}");
        assert!(is_dns1123(&a), "{a}");
        assert_eq!(a, incident_name("OMS 5xx (prod)", arn, "2026-11-21T19:56:10.708Z"), "same transition, same name");
        assert_ne!(a, incident_name("OMS 5xx (prod)", arn, "2026-11-21T20:56:10.708Z"), "a later transition is a new incident");
        assert_ne!(a, incident_name("OMS 5xx (prod)", "other-arn", "2026-11-21T19:56:10.708Z"), "same name, other alarm");
    }

    #[test]
    fn awkward_names_stay_valid() {
        for readable in ["", "----", "Ünïcode ☃ alarm", &"x".repeat(200), "ends-with-dash-", "UPPER_case.dots/and:colons"] {
            let n = incident_name(readable, "id", "t");
            assert!(is_dns1123(&n), "{readable:?} -> {n}");
        }
    }

    #[test]
    fn alarm_keys_are_label_values() {
        let k = alarm_key("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:oms-5xx");
        assert_eq!(k.len(), 32);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(k, alarm_key("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:oms-5xy"));
    }
}
