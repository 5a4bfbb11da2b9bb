//! Content-addressed incident signature: the same failure on the same workload gets the same
//! signature, so post-mortems can be grouped and replayed.

use sha2::{Digest, Sha256};

/// `sha256:<hex>` over the workload, the root-cause category and the sorted evidence markers
/// (termination reasons, waiting reasons, changed ConfigMap keys). Volatile things (pod names,
/// timestamps, counts) are left out on purpose.
pub fn incident_signature(workload: &str, category: &str, markers: &[String]) -> String {
    let mut m: Vec<&String> = markers.iter().collect();
    m.sort();
    m.dedup();
    let mut h = Sha256::new();
    h.update(workload.as_bytes());
    h.update([0]);
    h.update(category.as_bytes());
    for x in m {
        h.update([0]);
        h.update(x.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Hash of a prompt or any input text (for the diagnosis record).
pub fn content_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_duplicates_do_not_matter() {
        let a = incident_signature("Deployment/x", "Config_Error", &["b".into(), "a".into(), "a".into()]);
        let b = incident_signature("Deployment/x", "Config_Error", &["a".into(), "b".into()]);
        assert_eq!(a, b);
        assert_ne!(a, incident_signature("Deployment/y", "Config_Error", &["a".into(), "b".into()]));
    }
}
