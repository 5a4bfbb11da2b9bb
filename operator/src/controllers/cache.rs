//! What the controllers keep in memory. Their reflector stores hold every Incident and every
//! Remediation in the cluster, so an object is cut down before it enters a store, to what
//! deciding "is there anything to do?" needs: no managedFields, none of an Incident's bulky
//! status (see `cached_incident`), none of a Remediation's conditions or rationale. A reconcile
//! that acts reads the whole object first (see `incident::reconcile_cached`), so what is written
//! is always based on the full object, never on a cached copy.
//!
//! Remediations are watched once: one shared reflector feeds the Remediation controller, the
//! Incident controller's "owned Remediation changed" trigger and the policy's counts.

use std::sync::{Arc, Mutex};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{controller, watcher};

pub use super::cached_incident::CachedIncident;
use super::cached_incident::LAST_APPLIED;
use crate::crd::Remediation;

pub type IncidentStore = Store<CachedIncident>;
pub type RemediationStore = Store<DeserializeGuard<Remediation>>;

/// Objects per page of an initial list (and relist): bounds what is decoded at once.
pub const PAGE_SIZE: u32 = 500;

/// Watches with paged initial lists.
pub fn watch_config() -> watcher::Config {
    watcher::Config::default().page_size(PAGE_SIZE)
}

/// Bounded concurrency: kube-rs runs every due reconcile at once unless told otherwise, and a
/// restart makes every object due, so each would hold its task (and requests) at the same time.
pub fn controller_config(max_concurrent_reconciles: u16) -> controller::Config {
    controller::Config::default().concurrency(max_concurrent_reconciles)
}

fn strip_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
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
