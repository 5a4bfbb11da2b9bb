//! What the controllers keep in memory. Their reflector stores hold every Incident and every
//! Remediation in the cluster, so an object is stripped before it enters a store, down to what
//! deciding "is there anything to do?" needs: no managedFields, none of an Incident's bulky
//! status (evidence, diagnosis, its inputs, timeline, usage, the post-mortem copy beyond the parts
//! that are compared), none of a Remediation's conditions or rationale. A reconcile that acts
//! reads the whole object first (see `incident::reconcile_cached`), so what is written is always
//! based on the full object, never on a stripped copy.
//!
//! Remediations are watched once: one shared reflector feeds the Remediation controller, the
//! Incident controller's "owned Remediation changed" trigger and the policy's counts.

use std::sync::{Arc, Mutex};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::crd::{Incident, Remediation, condition_type};
use crate::domain::llm_usage::LlmUsage;
use crate::domain::simulation::SimulationContext;

pub type IncidentStore = Store<DeserializeGuard<Incident>>;
pub type RemediationStore = Store<DeserializeGuard<Remediation>>;

/// Objects per page of an initial list (and relist): bounds what is decoded at once.
pub const PAGE_SIZE: u32 = 500;

/// Watches with paged initial lists.
pub fn watch_config() -> watcher::Config {
    watcher::Config::default().page_size(PAGE_SIZE)
}

fn strip_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Keeps of an Incident what `incident::reconcile_cached` reads: metadata (annotations: the
/// feedback score and the notifier's), spec, phase, remediations, the post-mortem digest, its
/// reference and archive, the `NotificationDelivered` condition and, of the post-mortem copy,
/// the parts compared with the current Incident and Remediations.
pub fn strip_incident(guard: &mut DeserializeGuard<Incident>) {
    let inc = match &mut guard.0 {
        Ok(inc) => inc,
        Err(invalid) => return strip_meta(&mut invalid.metadata),
    };
    strip_meta(&mut inc.metadata);
    let Some(st) = inc.status.as_mut() else { return };
    st.conditions.retain(|c| c.type_ == condition_type::NOTIFICATION_DELIVERED);
    st.conditions.shrink_to_fit();
    st.signature = None;
    st.evidence = None;
    st.diagnosis = None;
    st.feedback = Vec::new();
    st.timeline = Vec::new();
    st.diagnosis_inputs = None;
    st.llm_usage = None;
    if let Some(pm) = st.post_mortem.as_mut() {
        pm.schema_version = String::new();
        pm.closed_at = None;
        pm.incident_signature = None;
        pm.root_cause_category = None;
        pm.simulation_context = SimulationContext::default();
        pm.llm_usage = LlmUsage::default();
        pm.timeline = Vec::new();
    }
}

/// Keeps of a Remediation what its terminal check, the policy's counts and the post-mortem
/// comparison read: metadata, spec (without the rationale) and status without conditions.
pub fn strip_remediation(guard: &mut DeserializeGuard<Remediation>) {
    let rem = match &mut guard.0 {
        Ok(rem) => rem,
        Err(invalid) => return strip_meta(&mut invalid.metadata),
    };
    strip_meta(&mut rem.metadata);
    rem.spec.rationale = String::new();
    if let Some(st) = rem.status.as_mut() {
        st.conditions = Vec::new();
        st.feedback = None;
        if let Some(s) = st.snapshot.as_mut() {
            s.restart = None;
        }
    }
}

/// The shared Remediation store, set while the controllers run (and its first list is in).
#[derive(Clone, Default)]
pub struct RemediationCache(Arc<Mutex<Option<RemediationStore>>>);

impl RemediationCache {
    pub fn set(&self, store: Option<RemediationStore>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = store;
    }

    pub fn get(&self) -> Option<RemediationStore> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The cached (stripped) Remediation `ns/name`, when the store has it and it parses.
pub fn cached_remediation(store: &RemediationStore, ns: &str, name: &str) -> Option<Remediation> {
    store.get(&ObjectRef::new(name).within(ns)).and_then(|g| g.0.as_ref().ok().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_incident_keeps_what_the_decision_reads() {
        let mut g: DeserializeGuard<Incident> = serde_json::from_value(json!({
            "apiVersion": "salve.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": "inc", "namespace": "shop", "annotations": {"salve.dev/feedback-score": "4"},
                "managedFields": [{"manager": "salve-operator", "operation": "Apply"}]},
            "spec": {"service": "oms", "severity": "High", "source": {"kind": "Manual"}, "target": {"kind": "Deployment", "name": "oms"}},
            "status": {"phase": "Resolved", "remediations": ["inc-r1"], "postMortemDigest": "sha256:1", "postMortemRef": "inc-postmortem",
                "evidence": {"workload": "Deployment/oms", "logs": [{"pod": "p", "container": "c", "lines": ["x"]}]},
                "timeline": [{"time": "t", "phase": "Resolved", "message": "ok"}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "Resolved", "message": "", "lastTransitionTime": "t"}]}
        }))
        .expect("incident");
        strip_incident(&mut g);
        let inc = g.0.expect("parsed");
        assert!(inc.metadata.managed_fields.is_none());
        assert_eq!(inc.metadata.annotations.as_ref().map(|a| a.len()), Some(1));
        let st = inc.status.expect("status");
        assert!(st.evidence.is_none() && st.timeline.is_empty() && st.conditions.is_empty());
        assert_eq!(st.remediations, ["inc-r1"]);
        assert_eq!(st.post_mortem_digest.as_deref(), Some("sha256:1"));
        assert_eq!(st.post_mortem_ref.as_deref(), Some("inc-postmortem"));
    }
}
