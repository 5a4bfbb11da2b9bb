//! What the controllers cache of a Remediation (see `Cached` and `CachedKind`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::core::error_boundary::InvalidObject;
use serde::Deserialize;
use serde_json::Value;

use super::cached::{Cached, CachedKind, Parts};
use super::post_mortem::remediation_record_hash;
use crate::crd::{Remediation, RemediationSpec, RemediationStatus};
use crate::domain::phase::RemediationPhase;

/// A Remediation as the controllers cache it.
pub type CachedRemediation = Cached<Remediation>;

/// What is read of a cached Remediation without decoding it: the policy's counts read these of
/// every Remediation in the cluster on each decision (see `policy_context::gather`), and the
/// post-mortem comparison reads the record's hash.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RemediationSummary {
    pub phase: RemediationPhase,
    /// `status.appliedAt`, parsed (`None` when absent or not a time).
    pub applied_at: Option<Timestamp>,
    /// `post_mortem::remediation_record_hash` of the whole Remediation.
    pub record: u64,
}

/// Of a Remediation, the cache keeps what its terminal check, the policy's counts and the
/// notifier read: metadata, spec without the rationale, and status without its conditions,
/// feedback, snapshot, patch, verification and dry-run result. What the post-mortem
/// comparison reads of it is kept as the hash of its post-mortem record (about 300 bytes of
/// JSON fewer per Remediation).
impl CachedKind for Remediation {
    type Spec = RemediationSpec;
    type Status = RemediationStatus;
    type Summary = RemediationSummary;

    fn decode<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Result<Self, InvalidObject>, D::Error> {
        // Remediations are small and rarely many: decoded as `DeserializeGuard` would, in one
        // generic pass, so that any field that does not parse marks the object invalid.
        let json = Value::deserialize(deserializer)?;
        let mut rem = match Remediation::deserialize(&json) {
            Ok(rem) => rem,
            Err(e) => {
                let metadata = ObjectMeta::deserialize(json.get("metadata").unwrap_or(&Value::Null)).map_err(serde::de::Error::custom)?;
                return Ok(Err(InvalidObject { error: e.to_string(), metadata }));
            }
        };
        rem.spec.rationale = String::new();
        if let Some(st) = rem.status.as_mut() {
            st.conditions = Vec::new();
            st.feedback = None;
        }
        Ok(Ok(rem))
    }

    fn into_parts(mut self) -> Parts<Self> {
        let st = self.status.as_ref();
        let summary = RemediationSummary {
            phase: st.map(|s| s.phase).unwrap_or_default(),
            applied_at: st.and_then(RemediationStatus::applied_time),
            record: remediation_record_hash(&self),
        };
        if let Some(st) = self.status.as_mut() {
            st.snapshot = None;
            st.applied_patch = None;
            st.verification = None;
            st.dry_run_result = None;
        }
        Parts { meta: self.metadata, spec: self.spec, status: self.status, summary: Some(summary) }
    }

    fn from_parts(metadata: ObjectMeta, spec: RemediationSpec, status: Option<RemediationStatus>) -> Self {
        Remediation { metadata, spec, status }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_remediation_keeps_what_its_readers_need() {
        let c: CachedRemediation = serde_json::from_value(json!({
            "apiVersion": "salve.dev/v1alpha1", "kind": "Remediation",
            "metadata": {"name": "inc-r1", "namespace": "shop", "resourceVersion": "7", "labels": {"salve.dev/incident": "inc"},
                "ownerReferences": [{"apiVersion": "salve.dev/v1alpha1", "kind": "Incident", "name": "inc", "uid": "u1", "controller": true}],
                "managedFields": [{"manager": "salve-operator", "operation": "Apply"}]},
            "spec": {"incidentRef": "inc", "risk": "Low", "rationale": "long reasoning",
                "action": {"kind": "SetConfigMapKey", "targetName": "web-config", "key": "POOL_SIZE", "value": "10"}},
            "status": {"phase": "Succeeded", "appliedAt": "2026-11-29T10:00:00Z", "feedback": "meh",
                "appliedPatch": "{\"data\":{\"POOL_SIZE\":\"10\"}}", "prUrl": "https://github.com/acme/shop/pull/7",
                "snapshot": {"target": "ConfigMap/web-config", "resourceVersion": "6", "undoPatch": "{}", "takenAt": "2026-11-29T09:59:00Z"},
                "verification": {"deadline": "2026-11-29T10:05:00Z", "passed": true, "message": "the alarm returned to OK"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "Verified", "message": "", "lastTransitionTime": "t"}]}
        }))
        .expect("remediation");
        let rem = c.object().expect("parsed");
        assert_eq!(rem.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(rem.metadata.owner_references.as_ref().map(Vec::len), Some(1), "owners wake their Incident");
        assert!(rem.metadata.managed_fields.is_none() && rem.metadata.labels.is_none());
        assert_eq!(rem.spec.action.target_name, "web-config");
        assert!(rem.spec.rationale.is_empty());
        let st = rem.status.expect("status");
        assert_eq!(st.applied_at.as_deref(), Some("2026-11-29T10:00:00Z"));
        assert_eq!(st.pr_url.as_deref(), Some("https://github.com/acme/shop/pull/7"), "the notifier links it");
        assert!(st.conditions.is_empty() && st.feedback.is_none());
        assert!(st.snapshot.is_none() && st.applied_patch.is_none() && st.verification.is_none(), "kept as the record's hash");
        let summary = c.summary().expect("parsed");
        assert_eq!(summary.phase, RemediationPhase::Succeeded, "the policy counts it without a decode");
        assert_eq!(summary.applied_at, crate::domain::time::parse_time("2026-11-29T10:00:00Z"));
    }

    #[test]
    fn a_remediation_that_does_not_parse_is_kept_with_its_metadata() {
        let c: CachedRemediation = serde_json::from_value(json!({
            "metadata": {"name": "bad", "namespace": "shop"},
            "spec": {"incidentRef": "inc", "risk": "Cosmic", "action": {"kind": "SetConfigMapKey", "targetName": "x"}}
        }))
        .expect("the watch goes on");
        let invalid = c.object().expect_err("invalid");
        assert!(invalid.error.contains("Cosmic"), "{}", invalid.error);
        assert_eq!(invalid.metadata.name.as_deref(), Some("bad"));
    }
}
