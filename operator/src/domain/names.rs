//! Names and label values Salve derives from an object's name. A valid object name (up to 253
//! characters) does not make a valid label value (63) nor leave room for a suffix, so long
//! names are shortened with a hash of the whole name: still unique, still valid, still readable.

use sha2::{Digest, Sha256};

/// Longest label value (Kubernetes: 63 characters, alphanumeric at both ends).
pub const MAX_LABEL_VALUE: usize = 63;
/// Longest object name that is a DNS subdomain (ConfigMaps, custom resources).
pub const MAX_OBJECT_NAME: usize = 253;

fn short_hash(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// `text` cut to at most `max` characters, ending in `-<hash of the whole text>` when cut, so
/// two long names that share a prefix stay distinct. Names are ASCII (DNS rules).
fn fit(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let hash = short_hash(text);
    let keep = max - hash.len() - 1;
    let head = text.get(..keep).unwrap_or_default().trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{head}-{hash}")
}

/// A label value that identifies the object `name`.
pub fn label_value(name: &str) -> String {
    fit(name, MAX_LABEL_VALUE)
}

/// `<base><suffix>` (e.g. `-r2`, `-postmortem`) as a valid object name: the base is shortened
/// with its hash when the whole would be too long; the suffix is always kept.
pub fn derived_name(base: &str, suffix: &str) -> String {
    format!("{}{suffix}", fit(base, MAX_OBJECT_NAME - suffix.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_label_value(v: &str) -> bool {
        v.len() <= MAX_LABEL_VALUE
            && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
            && v.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
    }

    #[test]
    fn short_names_are_kept_as_they_are() {
        assert_eq!(label_value("oms-5xx"), "oms-5xx");
        assert_eq!(derived_name("oms-5xx", "-r1"), "oms-5xx-r1");
    }

    #[test]
    fn every_valid_name_gives_a_valid_distinct_label() {
        let a = format!("{}-a", "x".repeat(70));
        let b = format!("{}-b", "x".repeat(70));
        let dashes = format!("{}{}", "a".repeat(52), "-".repeat(200));
        for n in [&a, &b, &dashes, &"y".repeat(253)] {
            assert!(valid_label_value(&label_value(n)), "{n} -> {}", label_value(n));
        }
        assert_ne!(label_value(&a), label_value(&b));
    }

    #[test]
    fn derived_names_stay_within_the_object_name_limit() {
        let long = "z".repeat(253);
        let name = derived_name(&long, "-postmortem");
        assert!(name.len() <= MAX_OBJECT_NAME && name.ends_with("-postmortem"), "{name}");
    }
}
